/**
 * A user's effective access, as AWS computes it for a session that assumed the user's Role with the
 * scope-down Policy as session policy: the role's policies must allow, the session policy (when there
 * is one) must also allow, and an explicit Deny in either refuses.
 */
import {
  type CompiledPolicy,
  compilePolicy,
  type Decision,
  type Explanation,
  explain,
  type RequestContext,
} from './evaluate.js';
import type { TransferVariables } from './variables.js';

export interface PolicyEngineOptions {
  /**
   * The role's policy documents (objects or JSON strings). `'external'` means the role lives in AWS IAM
   * and is enforced by S3 itself through the STS credentials; only the scope-down policy is then
   * checked locally (to refuse early with a clear message).
   */
  rolePolicies: readonly unknown[] | 'external';
  /** The user's scope-down Policy (object or JSON string). */
  sessionPolicy?: unknown;
  variables: TransferVariables;
  /** Used in explanations, e.g. the role ARN. */
  roleLabel?: string;
}

export interface AccessResult {
  allowed: boolean;
  /** One readable sentence, safe to show the client and to log. */
  reason: string;
  /** The role's decision (`allow` when the role is external) and the session policy's, if any. */
  role: Decision;
  session?: Decision;
}

/** Anything that can answer an access question; the vfs depends on this, tests can stub it. */
export interface AccessChecker {
  isAllowed(action: string, resource: string, context?: RequestContext): AccessResult;
}

export class PolicyEngine implements AccessChecker {
  private readonly role: readonly CompiledPolicy[] | 'external';
  private readonly session?: CompiledPolicy;

  /** Throws PolicyError when a document is malformed, so bad config is caught at load, not at use. */
  constructor(opts: PolicyEngineOptions) {
    const roleLabel = opts.roleLabel ?? 'role';
    this.role =
      opts.rolePolicies === 'external'
        ? 'external'
        : opts.rolePolicies.map((p, i) =>
            compilePolicy(p, {
              label: opts.rolePolicies.length > 1 ? `${roleLabel} policy #${i + 1}` : `${roleLabel} policy`,
              variables: opts.variables,
            }),
          );
    if (opts.sessionPolicy !== undefined && opts.sessionPolicy !== null && opts.sessionPolicy !== '') {
      this.session = compilePolicy(opts.sessionPolicy, {
        label: 'scope-down policy',
        variables: opts.variables,
      });
    }
  }

  get hasSessionPolicy(): boolean {
    return this.session !== undefined;
  }

  isAllowed(action: string, resource: string, context: RequestContext = {}): AccessResult {
    const request = { action, resource, context };
    const role: Explanation = this.role === 'external' ? { decision: 'allow' } : explain(this.role, request);
    const session = this.session ? explain([this.session], request) : undefined;
    const what = `${action} on ${resource}`;

    // Deny first, whichever policy holds it: an explicit Deny is final in IAM.
    for (const e of [role, session]) {
      if (e?.decision === 'deny') {
        return {
          allowed: false,
          reason: `${what} explicitly denied by ${where(e)}`,
          ...decisions(role, session),
        };
      }
    }
    if (role.decision !== 'allow') {
      return {
        allowed: false,
        reason: `${what} not allowed by any role policy`,
        ...decisions(role, session),
      };
    }
    if (session && session.decision !== 'allow') {
      return {
        allowed: false,
        reason: `${what} not allowed by the scope-down policy`,
        ...decisions(role, session),
      };
    }
    const by = session ? `${where(role)} and ${where(session)}` : where(role);
    return { allowed: true, reason: `${what} allowed by ${by}`, ...decisions(role, session) };
  }
}

function where(e: Explanation): string {
  if (!e.statement) return 'the externally enforced role';
  const sid = e.statement.sid ? ` "${e.statement.sid}"` : '';
  return `${e.policy} statement ${e.statement.index}${sid}`;
}

function decisions(
  role: Explanation,
  session: Explanation | undefined,
): Pick<AccessResult, 'role' | 'session'> {
  return session ? { role: role.decision, session: session.decision } : { role: role.decision };
}
