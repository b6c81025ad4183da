/**
 * Who may log in. SERVICE_MANAGED: the users of the config file (looked up at each login, so a reload
 * applies at once). A custom identity provider: an HTTP endpoint answering in the AWS_LAMBDA response
 * shape, so an existing Lambda behind a function URL works unchanged.
 */
import { dummyHash, verifyPassword } from '../auth/passwords.js';
import type { IdentityProviderConfig } from '../config/schema.js';
import { isRefusedLoginName, type User, validateUser } from '../config/users.js';
import type { Logger } from '../observability/logger.js';

export interface LoginRequest {
  username: string;
  sourceIp: string;
  sessionId: string;
}

export interface IdentityProvider {
  readonly kind: 'SERVICE_MANAGED' | 'AWS_LAMBDA' | 'API_GATEWAY';
  /** For public-key logins: the user with the keys that may log in, or undefined (refused). */
  lookup(req: LoginRequest): Promise<User | undefined>;
  /** For password logins: the user when the password is right, else undefined. */
  passwordLogin(req: LoginRequest & { password: string }): Promise<User | undefined>;
}

/** Users from the config file; `users()` is read at every login. */
export class ServiceManagedProvider implements IdentityProvider {
  readonly kind = 'SERVICE_MANAGED' as const;
  constructor(private readonly users: () => ReadonlyMap<string, User>) {}

  async lookup(req: LoginRequest): Promise<User | undefined> {
    if (isRefusedLoginName(req.username)) return undefined;
    return this.users().get(req.username);
  }

  async passwordLogin(req: LoginRequest & { password: string }): Promise<User | undefined> {
    const user = isRefusedLoginName(req.username) ? undefined : this.users().get(req.username);
    // Unknown users and users without a password cost the same time as a wrong password.
    const hash = user?.PasswordHash ?? (await dummyHash());
    const ok = await verifyPassword(hash, req.password);
    return ok && user?.PasswordHash ? user : undefined;
  }
}

/** The AWS_LAMBDA response shape (also what an API Gateway custom provider returns). */
export interface IdentityProviderResponse {
  Role?: string;
  Policy?: string;
  HomeDirectoryType?: 'PATH' | 'LOGICAL';
  /** A JSON string holding `[{Entry, Target, Type?}]`. */
  HomeDirectoryDetails?: string;
  HomeDirectory?: string;
  PublicKeys?: string[];
  PosixProfile?: { Uid: number; Gid: number; SecondaryGids?: number[] };
}

export class IdentityProviderError extends Error {}

/**
 * POSTs `{username, password?, protocol: "SFTP", serverId, sourceIp}` to the provider's URL and turns
 * the answer into a User, validated by the same rules as config users. `{}`, an empty Role, a timeout,
 * an HTTP error or an invalid answer: no session (logged with the reason).
 */
export class HttpIdentityProvider implements IdentityProvider {
  readonly kind: 'AWS_LAMBDA' | 'API_GATEWAY';
  constructor(
    private readonly config: IdentityProviderConfig,
    private readonly serverId: string,
    private readonly logger: Logger,
  ) {
    this.kind = config.type;
  }

  async lookup(req: LoginRequest): Promise<User | undefined> {
    const user = await this.ask(req);
    // Key logins need keys; without any the provider refuses key authentication.
    return user && user.keys.length > 0 ? user : undefined;
  }

  async passwordLogin(req: LoginRequest & { password: string }): Promise<User | undefined> {
    return this.ask(req, req.password);
  }

  private async ask(req: LoginRequest, password?: string): Promise<User | undefined> {
    if (isRefusedLoginName(req.username)) return undefined;
    const log = this.logger.child({ user: req.username, 'session-id': req.sessionId });
    const body = {
      username: req.username,
      ...(password !== undefined ? { password } : {}),
      protocol: 'SFTP',
      serverId: this.serverId,
      sourceIp: req.sourceIp,
    };
    let answer: IdentityProviderResponse;
    try {
      const res = await fetch(this.config.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.config.headers },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.config.timeoutSeconds * 1000),
      });
      if (!res.ok) throw new IdentityProviderError(`HTTP ${res.status}`);
      answer = (await res.json()) as IdentityProviderResponse;
    } catch (e) {
      const err = e as Error;
      const reason =
        err.name === 'TimeoutError'
          ? `no answer within ${this.config.timeoutSeconds} s`
          : `${err.message}${err.cause ? ` (${(err.cause as Error).message})` : ''}`;
      log.warn(
        { 'identity-provider': this.config.url, err: reason },
        'identity provider failed: login refused',
      );
      return undefined;
    }
    if (!answer || typeof answer !== 'object' || !answer.Role) {
      log.info('identity provider refused the login');
      return undefined;
    }
    try {
      return userFromResponse(req.username, answer);
    } catch (e) {
      log.warn(
        { 'identity-provider': this.config.url, err: (e as Error).message },
        'identity provider answer is not a valid user: login refused',
      );
      return undefined;
    }
  }
}

/** The provider's answer as a User (AWS field names), checked like a config user. */
export function userFromResponse(username: string, r: IdentityProviderResponse): User {
  let mappings: unknown;
  if (r.HomeDirectoryDetails !== undefined && r.HomeDirectoryDetails !== '') {
    try {
      mappings =
        typeof r.HomeDirectoryDetails === 'string'
          ? JSON.parse(r.HomeDirectoryDetails)
          : r.HomeDirectoryDetails;
    } catch (e) {
      throw new IdentityProviderError(`HomeDirectoryDetails is not JSON: ${(e as Error).message}`);
    }
  }
  const type = r.HomeDirectoryType ?? (mappings ? 'LOGICAL' : 'PATH');
  const candidate: Record<string, unknown> = {
    UserName: username,
    Role: r.Role,
    HomeDirectoryType: type,
    ...(r.HomeDirectory ? { HomeDirectory: r.HomeDirectory } : {}),
    ...(type === 'LOGICAL' && mappings ? { HomeDirectoryMappings: mappings } : {}),
    ...(r.Policy ? { Policy: r.Policy } : {}),
    ...(r.PublicKeys?.length ? { SshPublicKeys: r.PublicKeys } : {}),
    ...(r.PosixProfile ? { PosixProfile: r.PosixProfile } : {}),
  };
  return validateUser(candidate);
}

/** The provider a config asks for: `identityProvider:` when set, else the config's users. */
export function identityProviderFor(
  config: {
    identityProvider?: IdentityProviderConfig;
    server: { serverId: string };
    users: ReadonlyMap<string, User>;
  },
  logger: Logger,
): IdentityProvider {
  if (config.identityProvider) {
    return new HttpIdentityProvider(config.identityProvider, config.server.serverId, logger);
  }
  const users = config.users;
  return new ServiceManagedProvider(() => users);
}
