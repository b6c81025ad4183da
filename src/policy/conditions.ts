/**
 * Condition operators, with IAM's rules for absent keys, which decide whether a policy that looks safe
 * is safe:
 *
 * - Within one key, several policy values are OR'ed: the key matches if it matches any of them. For a
 *   negated operator (StringNotEquals, StringNotLike, ...) the result is the negation of that OR, so the
 *   key must match none of them.
 * - Several keys under one operator, and several operators, are AND'ed (done by the caller).
 * - A key absent from the request context: a positive operator is false; a negated operator is true
 *   ("If the policy condition requires that the key is not matched, such as StringNotLike or
 *   ArnNotLike, and the right key is not present, the condition is true", IAM condition operators
 *   reference). `...IfExists` is true whenever the key is absent, and otherwise behaves like the plain
 *   operator. `Null: true` is true exactly when the key is absent, `Null: false` when it is present.
 * - A policy value holding a variable with no value (`${aws:PrincipalTag/x}` when the tag is missing)
 *   matches nothing: positive operators ignore it, negated operators treat the key as "not equal to"
 *   it (IAM "Policy variables with no value").
 * - ForAnyValue: true if some context value satisfies the operator; false for an absent key.
 *   ForAllValues: true if every context value does; true for an absent key (the empty set), which is
 *   why IAM warns against ForAllValues with Allow.
 * - A multivalued context key without a set qualifier is treated like ForAnyValue for positive
 *   operators and as "none matches" for negated ones; the gateway only supplies single values.
 */
import { BlockList, isIP } from 'node:net';
import { globMatch, partsToRegex, partsToString } from './match.js';
import { type ContextLookup, type ResolvedParts, resolveTemplate, type Template } from './variables.js';

interface BaseOperator {
  readonly name: string;
  readonly negated: boolean;
  /** The positive test of one context value against one resolved policy value. */
  test(contextValue: string, policyValue: ResolvedParts): boolean;
  /** Throws a message when a policy value can never be valid for this operator. */
  validate?(value: string): string | undefined;
}

function num(s: string): number {
  return s.trim() === '' ? Number.NaN : Number(s);
}

function dateMs(s: string): number {
  // IAM accepts ISO 8601 dates and epoch seconds.
  return /^\d+$/.test(s) ? Number(s) * 1000 : Date.parse(s);
}

function compare(parse: (s: string) => number, cmp: (a: number, b: number) => boolean) {
  return (v: string, p: ResolvedParts) => {
    const a = parse(v);
    const b = parse(partsToString(p));
    return !Number.isNaN(a) && !Number.isNaN(b) && cmp(a, b);
  };
}

function ipMatch(v: string, p: ResolvedParts): boolean {
  const family = isIP(v);
  if (family === 0) return false;
  const list = ipBlockList(partsToString(p));
  return list?.check(v, family === 4 ? 'ipv4' : 'ipv6') === true;
}

function ipBlockList(cidr: string): BlockList | undefined {
  const [addr, bits] = cidr.split('/');
  const family = isIP(addr ?? '');
  if (family === 0) return undefined;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const list = new BlockList();
  if (bits === undefined) {
    list.addAddress(addr!, type);
    return list;
  }
  const prefix = Number(bits);
  if (!/^\d+$/.test(bits) || prefix > (family === 4 ? 32 : 128)) return undefined;
  list.addSubnet(addr!, prefix, type);
  return list;
}

/** ARNs are compared component by component; a wildcard never spans a `:` in the first five. */
function arnMatch(v: string, p: ResolvedParts, wildcards: boolean): boolean {
  const pattern = partsToString(p);
  if (!wildcards) return v === pattern;
  const split = (s: string) => {
    const segs = s.split(':');
    return segs.length < 6 ? undefined : [...segs.slice(0, 5), segs.slice(5).join(':')];
  };
  const vs = split(v);
  if (pattern === '*') return true;
  const ps = split(pattern);
  if (vs === undefined || ps === undefined) return globMatch(pattern, v, false);
  return ps.every((seg, i) => globMatch(seg, vs[i]!, false));
}

const eq = (v: string, p: ResolvedParts) => v === partsToString(p);
const eqIgnoreCase = (v: string, p: ResolvedParts) => v.toLowerCase() === partsToString(p).toLowerCase();
const like = (v: string, p: ResolvedParts) => partsToRegex(p, false).test(v);
const numeric = (cmp: (a: number, b: number) => boolean) => compare(num, cmp);
const date = (cmp: (a: number, b: number) => boolean) => compare(dateMs, cmp);
const validNumber = (s: string) => (Number.isNaN(num(s)) ? `"${s}" is not a number` : undefined);
const validDate = (s: string) => (Number.isNaN(dateMs(s)) ? `"${s}" is not a date` : undefined);
const validBool = (s: string) => (/^(true|false)$/i.test(s) ? undefined : `"${s}" is not true or false`);
const validIp = (s: string) => (ipBlockList(s) ? undefined : `"${s}" is not an IP address or CIDR block`);

const op = (
  name: string,
  negated: boolean,
  test: BaseOperator['test'],
  validate?: BaseOperator['validate'],
): BaseOperator => ({ name, negated, test, validate });

const BASE_OPERATORS: readonly BaseOperator[] = [
  op('StringEquals', false, eq),
  op('StringNotEquals', true, eq),
  op('StringEqualsIgnoreCase', false, eqIgnoreCase),
  op('StringNotEqualsIgnoreCase', true, eqIgnoreCase),
  op('StringLike', false, like),
  op('StringNotLike', true, like),
  op(
    'NumericEquals',
    false,
    numeric((a, b) => a === b),
    validNumber,
  ),
  op(
    'NumericNotEquals',
    true,
    numeric((a, b) => a === b),
    validNumber,
  ),
  op(
    'NumericLessThan',
    false,
    numeric((a, b) => a < b),
    validNumber,
  ),
  op(
    'NumericLessThanEquals',
    false,
    numeric((a, b) => a <= b),
    validNumber,
  ),
  op(
    'NumericGreaterThan',
    false,
    numeric((a, b) => a > b),
    validNumber,
  ),
  op(
    'NumericGreaterThanEquals',
    false,
    numeric((a, b) => a >= b),
    validNumber,
  ),
  op(
    'DateEquals',
    false,
    date((a, b) => a === b),
    validDate,
  ),
  op(
    'DateNotEquals',
    true,
    date((a, b) => a === b),
    validDate,
  ),
  op(
    'DateLessThan',
    false,
    date((a, b) => a < b),
    validDate,
  ),
  op(
    'DateLessThanEquals',
    false,
    date((a, b) => a <= b),
    validDate,
  ),
  op(
    'DateGreaterThan',
    false,
    date((a, b) => a > b),
    validDate,
  ),
  op(
    'DateGreaterThanEquals',
    false,
    date((a, b) => a >= b),
    validDate,
  ),
  op('Bool', false, eqIgnoreCase, validBool),
  op('BinaryEquals', false, eq),
  op('IpAddress', false, ipMatch, validIp),
  op('NotIpAddress', true, ipMatch, validIp),
  op('ArnEquals', false, (v, p) => arnMatch(v, p, true)),
  op('ArnLike', false, (v, p) => arnMatch(v, p, true)),
  op('ArnNotEquals', true, (v, p) => arnMatch(v, p, true)),
  op('ArnNotLike', true, (v, p) => arnMatch(v, p, true)),
];

const BY_NAME = new Map(BASE_OPERATORS.map((o) => [o.name.toLowerCase(), o]));

export interface CompiledCondition {
  /** The operator as written, for messages. */
  readonly operator: string;
  readonly key: string;
  readonly evaluate: (context: ContextLookup) => boolean;
}

/**
 * Compiles one `operator: { key: values }` entry into one check per key. Returns an error message
 * instead of throwing so the caller can name the statement.
 */
export function compileCondition(
  operator: string,
  keys: Record<string, string[]>,
  toTemplate: (s: string) => Template,
): CompiledCondition[] | string {
  let rest = operator;
  let set: 'any' | 'all' | undefined;
  const lower = rest.toLowerCase();
  if (lower.startsWith('foranyvalue:')) {
    set = 'any';
    rest = rest.slice('ForAnyValue:'.length);
  } else if (lower.startsWith('forallvalues:')) {
    set = 'all';
    rest = rest.slice('ForAllValues:'.length);
  }

  if (rest.toLowerCase() === 'null') {
    if (set !== undefined)
      return `condition operator "${operator}" is not valid (Null takes no set qualifier)`;
    const out: CompiledCondition[] = [];
    for (const [key, values] of Object.entries(keys)) {
      const bad = values.find((v) => validBool(v) !== undefined);
      if (bad !== undefined) return `Condition.${operator}.${key}: "${bad}" must be "true" or "false"`;
      const wants = values.map((v) => v.toLowerCase() === 'true');
      out.push({
        operator,
        key,
        evaluate: (ctx) => {
          const absent = ctx.values(key) === undefined;
          return wants.some((wantAbsent) => wantAbsent === absent);
        },
      });
    }
    return out;
  }

  const ifExists = /ifexists$/i.test(rest);
  if (ifExists) rest = rest.slice(0, -'IfExists'.length);
  const base = BY_NAME.get(rest.toLowerCase());
  if (base === undefined) return `unknown or unsupported condition operator "${operator}"`;

  const out: CompiledCondition[] = [];
  for (const [key, rawValues] of Object.entries(keys)) {
    const templates = rawValues.map(toTemplate);
    if (base.validate) {
      for (const t of templates) {
        if (!t.isStatic) continue;
        const problem = base.validate(t.parts.map((p) => (p.kind === 'var' ? '' : p.value)).join(''));
        if (problem !== undefined) return `Condition.${operator}.${key}: ${problem}`;
      }
    }
    out.push({ operator, key, evaluate: (ctx) => evaluateOne(ctx, key, templates, base, set, ifExists) });
  }
  return out;
}

function evaluateOne(
  ctx: ContextLookup,
  key: string,
  templates: readonly Template[],
  base: BaseOperator,
  set: 'any' | 'all' | undefined,
  ifExists: boolean,
): boolean {
  const contextValues = ctx.values(key);
  if (contextValues === undefined || contextValues.length === 0) {
    if (ifExists) return true;
    if (set === 'all') return true;
    if (set === 'any') return false;
    return base.negated;
  }
  const policyValues: ResolvedParts[] = [];
  for (const t of templates) {
    const r = resolveTemplate(t, ctx);
    if (r !== undefined) policyValues.push(r);
  }
  const satisfies = (v: string) => {
    const matched = policyValues.some((p) => base.test(v, p));
    return base.negated ? !matched : matched;
  };
  if (set === 'all') return contextValues.every(satisfies);
  if (set === 'any') return contextValues.some(satisfies);
  if (base.negated) return contextValues.every(satisfies);
  return contextValues.some(satisfies);
}
