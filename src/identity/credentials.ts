/**
 * Credentials of a session whose Role lives in AWS IAM: STS AssumeRole with the user's scope-down Policy
 * as the session policy and RoleSessionName `<user>.<session-id>`, exactly as the managed service does,
 * so S3 itself enforces the role AND the scope-down policy.
 */
import { fromTemporaryCredentials } from '@aws-sdk/credential-providers';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { StsConfig } from '../config/schema.js';

/** Credentials are renewed this long before they expire. */
export const REFRESH_BEFORE_EXPIRY_MS = 5 * 60_000;

/**
 * An STS endpoint that does not answer must not hold a login open: the SDK's default HTTP handler has no
 * timeouts. With the SDK's 3 attempts a dead endpoint refuses the session within about half a minute.
 */
const STS_CONNECTION_TIMEOUT_MS = 5000;
const STS_REQUEST_TIMEOUT_MS = 10_000;

export interface AssumeRoleOptions {
  roleArn: string;
  /** The scope-down Policy, already a JSON string with the Transfer variables substituted. */
  sessionPolicy?: string;
  userName: string;
  sessionId: string;
  sts?: StsConfig;
  /** Region of STS when `sts.region` is not set. */
  region: string;
  /** Who calls AssumeRole: static keys, or the default chain (IRSA, instance role, environment). */
  masterCredentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
}

/** RoleSessionName: 2-64 characters of `[\w+=,.@-]`; long user names are cut, the session id kept. */
export function roleSessionName(userName: string, sessionId: string): string {
  const user = userName.replace(/[^\w+=,.@-]/g, '_').slice(0, 63 - sessionId.length);
  return `${user}.${sessionId}`;
}

/** A provider that calls STS on first use and again only shortly before the credentials expire. */
export function assumeRoleCredentials(o: AssumeRoleOptions): AwsCredentialIdentityProvider {
  const base = fromTemporaryCredentials({
    params: {
      RoleArn: o.roleArn,
      RoleSessionName: roleSessionName(o.userName, o.sessionId),
      DurationSeconds: o.sts?.durationSeconds ?? 3600,
      ...(o.sessionPolicy ? { Policy: o.sessionPolicy } : {}),
    },
    ...(o.masterCredentials ? { masterCredentials: o.masterCredentials } : {}),
    clientConfig: {
      region: o.sts?.region ?? o.region,
      ...(o.sts?.endpoint ? { endpoint: o.sts.endpoint } : {}),
      requestHandler: {
        connectionTimeout: STS_CONNECTION_TIMEOUT_MS,
        requestTimeout: STS_REQUEST_TIMEOUT_MS,
        // Without it the SDK only logs a warning when requestTimeout passes and keeps waiting.
        throwOnRequestTimeout: true,
      },
    },
  });
  return cached(async () => {
    try {
      return await base();
    } catch (e) {
      throw assumeRoleError(o.roleArn, e);
    }
  });
}

/**
 * The store reports a credentials failure as the failure of the S3 request that needed them ("S3
 * HeadObject failed for ...: AccessDenied: ..."), which reads as if S3 refused. Say that STS refused which
 * role; keep the SDK's error name and HTTP status so the store still maps it (AccessDenied -> permission
 * denied, 5xx or network -> store unavailable).
 */
function assumeRoleError(roleArn: string, err: unknown): Error {
  const e = (err ?? {}) as {
    name?: string;
    message?: string;
    $metadata?: unknown;
    Code?: string;
    code?: string;
  };
  const wrapped = new Error(`STS AssumeRole of ${roleArn} failed: ${e.message ?? String(err)}`, {
    cause: err,
  });
  wrapped.name = e.name ?? 'Error';
  return Object.assign(wrapped, {
    ...(e.$metadata !== undefined ? { $metadata: e.$metadata } : {}),
    ...(e.Code !== undefined ? { Code: e.Code } : {}),
    ...(e.code !== undefined ? { code: e.code } : {}),
  });
}

export function cached(provider: AwsCredentialIdentityProvider): AwsCredentialIdentityProvider {
  let current: AwsCredentialIdentity | undefined;
  let pending: Promise<AwsCredentialIdentity> | undefined;
  return async () => {
    const fresh =
      current &&
      (!current.expiration || current.expiration.getTime() - REFRESH_BEFORE_EXPIRY_MS > Date.now());
    if (fresh) return current!;
    pending ??= provider().then(
      (c) => {
        current = c;
        pending = undefined;
        return c;
      },
      (e) => {
        pending = undefined;
        throw e;
      },
    );
    return pending;
  };
}
