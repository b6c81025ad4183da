import { randomBytes } from 'node:crypto';
import type { User } from '../config/load.js';
import { UserValidationError, validateUser } from '../config/users.js';
import type { Logger } from '../observability/logger.js';

/**
 * Users created through the user API live in a user store; users of the config file never do (they stay
 * read-only). A store keeps every user in memory, so that a login looks its user up without I/O, and
 * notices changes made by other replicas by polling. Records use describe-user's field names.
 */

export interface StoredKey {
  /** `key-` + 17 hex digits. */
  SshPublicKeyId: string;
  SshPublicKeyBody: string;
  /** ISO 8601. */
  DateImported: string;
}

export interface Tag {
  Key: string;
  Value: string;
}

export interface StoredUser {
  UserName: string;
  HomeDirectory?: string;
  HomeDirectoryType: 'PATH' | 'LOGICAL';
  HomeDirectoryMappings?: { Entry: string; Target: string; Type?: 'FILE' | 'DIRECTORY' }[];
  Role: string;
  Policy?: string;
  PosixProfile?: { Uid: number; Gid: number; SecondaryGids?: number[] };
  Tags?: Tag[];
  SshPublicKeys: StoredKey[];
}

export class UserExistsError extends Error {
  constructor(readonly userName: string) {
    super(`user ${userName} already exists`);
    this.name = 'UserExistsError';
  }
}

export class NoSuchUserError extends Error {
  constructor(readonly userName: string) {
    super(`no such user ${userName}`);
    this.name = 'NoSuchUserError';
  }
}

export interface UserStore {
  readonly kind: 'file' | 's3';
  /** Loads every user and starts watching for changes made elsewhere. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Re-reads what changed elsewhere now instead of at the next poll (another worker changed a user). */
  refresh(): Promise<void>;
  /** The login view of a user (keys parsed); undefined when absent or invalid. No I/O. */
  find(userName: string): User | undefined;
  get(userName: string): StoredUser | undefined;
  /** Every user, sorted by UserName. */
  list(): StoredUser[];
  /** Fails with UserExistsError when the name is taken. */
  create(user: StoredUser): Promise<void>;
  /** Read-modify-write of one user; fails with NoSuchUserError. */
  update(userName: string, change: (user: StoredUser) => StoredUser): Promise<StoredUser>;
  /** Fails with NoSuchUserError. */
  delete(userName: string): Promise<void>;
  /** The deployment's ServerId, created once and kept where the users are. */
  serverId(): Promise<string>;
}

/** The object validateUser (the config's rules) takes for a stored user. */
export function userInput(u: StoredUser): Record<string, unknown> {
  const { SshPublicKeys, ...rest } = u;
  return { ...rest, SshPublicKeys: SshPublicKeys.map((k) => k.SshPublicKeyBody) };
}

/** Applies the config file's rules; throws UserValidationError with `Field: message` lines. */
export function toUser(u: StoredUser): User {
  return validateUser(userInput(u));
}

export { UserValidationError };

export const newSshPublicKeyId = () => `key-${randomBytes(9).toString('hex').slice(0, 17)}`;
export const newServerId = () => `s-${randomBytes(9).toString('hex').slice(0, 17)}`;
export const SERVER_ID = /^s-[0-9a-f]{17}$/;

interface Entry {
  record: StoredUser;
  user: User | undefined;
  /** Version tag of what was read (S3 ETag, file store: unused). */
  version?: string;
}

/** The in-memory side shared by the stores: parsed users, invalid records logged once, serialized writes. */
export abstract class CachedUserStore implements UserStore {
  abstract readonly kind: 'file' | 's3';
  protected entries = new Map<string, Entry>();
  /** Counts changes to `entries`, so that a poll can tell whether it found any. */
  protected generation = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(protected readonly logger: Logger) {}

  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;
  abstract refresh(): Promise<void>;
  abstract create(user: StoredUser): Promise<void>;
  abstract update(userName: string, change: (user: StoredUser) => StoredUser): Promise<StoredUser>;
  abstract delete(userName: string): Promise<void>;
  abstract serverId(): Promise<string>;

  find(userName: string): User | undefined {
    return this.entries.get(userName)?.user;
  }

  get(userName: string): StoredUser | undefined {
    return this.entries.get(userName)?.record;
  }

  list(): StoredUser[] {
    return [...this.entries.values()]
      .map((e) => e.record)
      .sort((a, b) => (a.UserName < b.UserName ? -1 : a.UserName > b.UserName ? 1 : 0));
  }

  /** Runs mutations one at a time in this process. */
  protected serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Puts a record read from the store into the cache (unchanged versions are not parsed again). */
  protected remember(record: StoredUser, version?: string): void {
    const old = this.entries.get(record.UserName);
    if (old && version !== undefined && old.version === version) return;
    let user: User | undefined;
    try {
      user = toUser(record);
    } catch (e) {
      this.logger.warn(
        { component: 'user-store', user: record.UserName, problems: (e as Error).message },
        'stored user is not valid: logins refused until it is fixed',
      );
    }
    this.entries.set(record.UserName, { record, user, version });
    this.generation++;
  }

  protected forget(userName: string): void {
    if (this.entries.delete(userName)) this.generation++;
  }
}

/** Parses a stored record defensively (another replica or an operator may have written it). */
export function parseStoredUser(text: string, source: string): StoredUser {
  const data = JSON.parse(text) as StoredUser;
  if (!data || typeof data !== 'object' || typeof data.UserName !== 'string') {
    throw new Error(`${source}: not a stored user`);
  }
  if (!Array.isArray(data.SshPublicKeys)) data.SshPublicKeys = [];
  return data;
}
