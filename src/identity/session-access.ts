/**
 * What a logged-in user may do, and with which credentials the store is reached:
 * - Role defined in `roles:`: the gateway enforces its policies AND the scope-down Policy.
 * - Role not defined locally, on S3 where STS can be reached (AWS, or `sts:` configured): the session
 *   assumes the role with the scope-down Policy as session policy; S3 enforces both, the gateway checks
 *   the scope-down Policy too so that refusals are early and clear.
 * - No role that applies and no Policy: no policy at all; PATH users stay confined to their home, LOGICAL
 *   users to their mappings (the vfs defaults).
 */
import type { GatewayConfig } from '../config/load.js';
import type { User } from '../config/users.js';
import type { Logger } from '../observability/logger.js';
import { PolicyEngine, transferVariableValues } from '../policy/index.js';
import type { CreatedStore } from '../storage/create-store.js';
import type { ObjectStore } from '../storage/object-store.js';
import type { AccessControl } from '../vfs/access.js';
import { PolicyAccess } from '../vfs/policy-access.js';
import { assumeRoleCredentials } from './credentials.js';

export interface SessionAccess {
  store: ObjectStore;
  /** Undefined: the vfs defaults (home confinement / mappings only). */
  access?: AccessControl;
  /** Releases the session's own store (assumed-role sessions). */
  close?: () => Promise<void>;
  /** For the log: local-role, assumed-role, scope-down-only, confined. */
  mode: 'local-role' | 'assumed-role' | 'scope-down-only' | 'confined';
}

/** The scope-down policy as JSON text with `${transfer:*}` substituted, as AWS Transfer hands it to STS. */
export function substitutedSessionPolicy(user: User): string | undefined {
  if (user.Policy === undefined) return undefined;
  const text = typeof user.Policy === 'string' ? user.Policy : JSON.stringify(user.Policy);
  const values = transferVariableValues({ userName: user.UserName, homeDirectory: user.HomeDirectory });
  return text.replace(/\$\{(transfer:[A-Za-z]+)\}/gi, (whole, name: string) => {
    const v = values.get(name.toLowerCase());
    return v === undefined ? whole : JSON.stringify(v).slice(1, -1);
  });
}

export function canAssumeRoles(
  config: GatewayConfig,
  created: Pick<CreatedStore, 'forCredentials'>,
): boolean {
  return (
    config.storage.type === 's3' &&
    created.forCredentials !== undefined &&
    (config.sts !== undefined || config.storage.endpoint === undefined)
  );
}

export function sessionAccess(
  user: User,
  config: GatewayConfig,
  created: Pick<CreatedStore, 'store' | 'forCredentials'>,
  session: { sessionId: string; logger: Logger },
): SessionAccess {
  const log = session.logger;
  const localRole = user.Role ? config.roles.get(user.Role) : undefined;
  const assume = user.Role !== undefined && !localRole && canAssumeRoles(config, created);
  const hasPolicy = user.Policy !== undefined && user.Policy !== '';
  if (user.Role && !localRole && !assume) {
    log.warn(
      { role: user.Role },
      hasPolicy
        ? 'role is not defined under roles: and cannot be assumed here (needs S3 on AWS or sts:): only the scope-down Policy applies'
        : 'role is not defined under roles: and cannot be assumed here (needs S3 on AWS or sts:): the user is confined to the home directory',
    );
  }
  if (!localRole && !assume && !hasPolicy) return { store: created.store, mode: 'confined' };

  const engine = new PolicyEngine({
    rolePolicies: localRole ? localRole.Policies : 'external',
    sessionPolicy: hasPolicy ? user.Policy : undefined,
    variables: { userName: user.UserName, homeDirectory: user.HomeDirectory },
    roleLabel: user.Role ? `role ${user.Role}` : 'role',
  });
  const access = new PolicyAccess(engine, (d) =>
    log.warn(
      {
        operation: d.fsAction,
        path: d.virtualPath,
        action: d.action,
        'resource-arn': d.resource,
        reason: d.reason,
      },
      `permission denied: ${d.action} on ${d.virtualPath}`,
    ),
  );
  if (!assume) return { store: created.store, access, mode: localRole ? 'local-role' : 'scope-down-only' };

  const s3 = config.storage.type === 's3' ? config.storage : undefined;
  const credentials = assumeRoleCredentials({
    roleArn: user.Role!,
    sessionPolicy: substitutedSessionPolicy(user),
    userName: user.UserName,
    sessionId: session.sessionId,
    sts: config.sts,
    region: s3?.region ?? 'us-east-1',
    masterCredentials: s3?.credentials,
  });
  const own = created.forCredentials!(credentials);
  return { store: own.store, access, close: own.close, mode: 'assumed-role' };
}
