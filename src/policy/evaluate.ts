/**
 * IAM evaluation of identity-style policies (no Principal, no resource policies, no boundaries):
 * an explicit Deny in any statement wins; otherwise an Allow in any statement allows; otherwise the
 * request is implicitly denied.
 */
import { type CompiledCondition, compileCondition } from './conditions.js';
import { type PolicyDocument, PolicyError, type PolicyStatement, parsePolicy } from './document.js';
import { globMatch, partsToRegex } from './match.js';
import {
  ContextLookup,
  parseTemplate,
  resolveTemplate,
  type Template,
  type TransferVariables,
  transferVariableValues,
} from './variables.js';

export type Decision = 'allow' | 'deny' | 'implicit-deny';

export type RequestContext = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface PolicyRequest {
  /** `service:Action`, e.g. `s3:GetObject`. */
  action: string;
  /** The resource ARN, e.g. `arn:aws:s3:::bucket/key`. */
  resource: string;
  /** Condition keys (case-insensitive), e.g. `{ 's3:prefix': 'home/alice/' }`. Undefined = absent. */
  context?: RequestContext;
}

interface CompiledResource {
  readonly template: Template;
  /** Precompiled when the pattern needs nothing from the request. */
  readonly regex?: RegExp;
}

export interface CompiledStatement {
  readonly index: number;
  readonly sid?: string;
  readonly effect: 'Allow' | 'Deny';
  readonly actions: readonly string[];
  readonly actionsNegated: boolean;
  readonly resources: readonly CompiledResource[];
  readonly resourcesNegated: boolean;
  readonly conditions: readonly CompiledCondition[];
}

export interface CompiledPolicy {
  readonly label: string;
  readonly document: PolicyDocument;
  readonly statements: readonly CompiledStatement[];
}

export interface CompileOptions {
  /** Names the policy in error messages and explanations, e.g. `role arn:...` or `scope-down policy`. */
  label?: string;
  /** Values for `${transfer:*}`; without them those variables are looked up in the request context. */
  variables?: TransferVariables;
}

/** Parses (object or JSON string), validates, substitutes the Transfer variables and precompiles. */
export function compilePolicy(input: unknown, opts: CompileOptions = {}): CompiledPolicy {
  const label = opts.label ?? 'policy';
  const document = parsePolicy(input, label);
  const fixed = opts.variables ? transferVariableValues(opts.variables) : new Map<string, string>();
  const toTemplate = (s: string) =>
    parseTemplate(s, { fixed, iamVariables: document.version === '2012-10-17' });
  const statements = document.statements.map((st, index) => compileStatement(st, index, label, toTemplate));
  return { label, document, statements };
}

function compileStatement(
  st: PolicyStatement,
  index: number,
  label: string,
  toTemplate: (s: string) => Template,
): CompiledStatement {
  const resources = (st.resource ?? st.notResource ?? []).map((raw): CompiledResource => {
    const template = toTemplate(raw);
    if (!template.isStatic) return { template };
    return { template, regex: partsToRegex(resolveTemplate(template, new ContextLookup())!, false) };
  });
  const conditions: CompiledCondition[] = [];
  for (const [operator, keys] of Object.entries(st.condition ?? {})) {
    const compiled = compileCondition(operator, keys, toTemplate);
    if (typeof compiled === 'string') {
      const sid = st.sid ? ` (Sid "${st.sid}")` : '';
      throw new PolicyError(`${label}: Statement[${index}]${sid}: ${compiled}`);
    }
    conditions.push(...compiled);
  }
  return {
    index,
    sid: st.sid,
    effect: st.effect,
    actions: st.action ?? st.notAction ?? [],
    actionsNegated: st.action === undefined,
    resources,
    resourcesNegated: st.resource === undefined,
    conditions,
  };
}

function resourceMatches(r: CompiledResource, resource: string, ctx: ContextLookup): boolean {
  if (r.regex) return r.regex.test(resource);
  // A variable with no value makes this entry match no resource at all (IAM "Policy variables with no
  // value"); under NotResource that means the entry excludes nothing.
  const parts = resolveTemplate(r.template, ctx);
  return parts !== undefined && partsToRegex(parts, false).test(resource);
}

/** Whether the statement applies to the request: action, resource and every condition match. */
export function statementApplies(st: CompiledStatement, req: PolicyRequest, ctx: ContextLookup): boolean {
  // Action names are case-insensitive in IAM; resource ARNs are not.
  const actionHit = st.actions.some((a) => globMatch(a, req.action, true));
  if (actionHit === st.actionsNegated) return false;
  const resourceHit = st.resources.some((r) => resourceMatches(r, req.resource, ctx));
  if (resourceHit === st.resourcesNegated) return false;
  return st.conditions.every((c) => c.evaluate(ctx));
}

export interface Explanation {
  decision: Decision;
  /** The statement that decided: the first Deny that applied, else the first Allow. */
  policy?: string;
  statement?: { index: number; sid?: string };
}

export function explain(policies: readonly CompiledPolicy[], request: PolicyRequest): Explanation {
  const ctx = new ContextLookup(request.context);
  let allow: Explanation | undefined;
  for (const policy of policies) {
    for (const st of policy.statements) {
      if (st.effect === 'Allow' && allow !== undefined) continue;
      if (!statementApplies(st, request, ctx)) continue;
      const found = { policy: policy.label, statement: { index: st.index, sid: st.sid } };
      if (st.effect === 'Deny') return { decision: 'deny', ...found };
      allow = { decision: 'allow', ...found };
    }
  }
  return allow ?? { decision: 'implicit-deny' };
}

export function evaluate(policies: readonly CompiledPolicy[], request: PolicyRequest): Decision {
  return explain(policies, request).decision;
}
