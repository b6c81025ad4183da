import { createHash } from 'node:crypto';
import { z } from 'zod';
import { parseAuthorizedKey } from '../auth/public-keys.js';
import type { User } from '../config/load.js';
import { isGatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import {
  NoSuchUserError,
  newSshPublicKeyId,
  type StoredUser,
  type Tag,
  toUser,
  UserExistsError,
  type UserStore,
  UserValidationError,
} from '../users/store.js';
import { ApiError, invalidRequest, serverNotFound, userExists, userNotFound } from './errors.js';

/**
 * The AWS Transfer operations on users, with the request and response shapes of the API model
 * (botocore `transfer/2018-11-05/service-2.json`). Requests are checked against the model's types and
 * constraints first (unknown fields and wrong types are InvalidRequestException, where AWS would say
 * SerializationException or ValidationException), then the user as a whole against the config file's rules
 * (src/config/users.ts), so that a user created here is a user the config file could have held.
 */

// --- Field shapes of the API model -------------------------------------------------------------------

const userName = z
  .string()
  .regex(/^[\w][\w@.-]{2,99}$/, '3-100 characters of letters, digits, _ @ . -, not starting with - . or @');
const serverId = z.string().regex(/^s-([0-9a-f]{17})$/, 'must be s- followed by 17 hex digits');
const homeDirectory = z
  .string()
  .max(1024, 'at most 1024 characters')
  .regex(/^$|^\/.*/, 'must start with /');
const homeDirectoryType = z.enum(['PATH', 'LOGICAL']);
const mapEntryPath = z.string().max(1024, 'at most 1024 characters').regex(/^\/.*/, 'must start with /');
const homeDirectoryMappings = z
  .array(
    z.strictObject({
      Entry: mapEntryPath,
      Target: mapEntryPath,
      Type: z.enum(['FILE', 'DIRECTORY']).optional(),
    }),
  )
  .min(1, 'at least one mapping')
  .max(50000, 'at most 50000 mappings');
const policy = z.string().max(2048, 'at most 2048 characters');
const posixId = z.number().int().min(0).max(4294967295);
const posixProfile = z.strictObject({
  Uid: posixId,
  Gid: posixId,
  SecondaryGids: z.array(posixId).max(16).optional(),
});
const role = z
  .string()
  .min(20, 'at least 20 characters')
  .max(2048, 'at most 2048 characters')
  .regex(/^arn:.*role\/.*/, 'must be an IAM role ARN (arn:...:role/name)');
const sshPublicKeyBody = z.string().max(2048, 'at most 2048 characters');
const sshPublicKeyId = z.string().regex(/^key-[0-9a-f]{17}$/, 'must be key- followed by 17 hex digits');
const tagKey = z.string().max(128, 'at most 128 characters');
const tags = z
  .array(z.strictObject({ Key: tagKey, Value: z.string().max(256, 'at most 256 characters') }))
  .min(1, 'at least one tag')
  .max(50, 'at most 50 tags');
const maxResults = z.number().int().min(1, 'at least 1').max(1000, 'at most 1000');
const nextToken = z.string().min(1).max(6144);
const arn = z
  .string()
  .min(20)
  .max(1600)
  .regex(/^arn:.*/, 'must be an ARN');

const requests = {
  CreateUser: z.strictObject({
    ServerId: serverId,
    UserName: userName,
    Role: role,
    HomeDirectory: homeDirectory.optional(),
    HomeDirectoryType: homeDirectoryType.optional(),
    HomeDirectoryMappings: homeDirectoryMappings.optional(),
    Policy: policy.optional(),
    PosixProfile: posixProfile.optional(),
    SshPublicKeyBody: sshPublicKeyBody.optional(),
    Tags: tags.optional(),
  }),
  DescribeUser: z.strictObject({ ServerId: serverId, UserName: userName }),
  UpdateUser: z.strictObject({
    ServerId: serverId,
    UserName: userName,
    Role: role.optional(),
    HomeDirectory: homeDirectory.optional(),
    HomeDirectoryType: homeDirectoryType.optional(),
    HomeDirectoryMappings: homeDirectoryMappings.optional(),
    Policy: policy.optional(),
    PosixProfile: posixProfile.optional(),
  }),
  DeleteUser: z.strictObject({ ServerId: serverId, UserName: userName }),
  ListUsers: z.strictObject({
    ServerId: serverId,
    MaxResults: maxResults.optional(),
    NextToken: nextToken.optional(),
  }),
  ImportSshPublicKey: z.strictObject({
    ServerId: serverId,
    UserName: userName,
    SshPublicKeyBody: sshPublicKeyBody,
  }),
  DeleteSshPublicKey: z.strictObject({
    ServerId: serverId,
    UserName: userName,
    SshPublicKeyId: sshPublicKeyId,
  }),
  DescribeServer: z.strictObject({ ServerId: serverId }),
  ListServers: z.strictObject({ MaxResults: maxResults.optional(), NextToken: nextToken.optional() }),
  TagResource: z.strictObject({ Arn: arn, Tags: tags }),
  UntagResource: z.strictObject({
    Arn: arn,
    TagKeys: z.array(tagKey).min(1, 'at least one key').max(50, 'at most 50 keys'),
  }),
  ListTagsForResource: z.strictObject({
    Arn: arn,
    MaxResults: maxResults.optional(),
    NextToken: nextToken.optional(),
  }),
} as const;

export type OperationName = keyof typeof requests;
export const OPERATIONS = Object.keys(requests) as OperationName[];

/** Most keys a user may have (the config file's limit; the managed service's quota is 50 too). */
export const MAX_KEYS_PER_USER = 50;

function describeIssues(error: z.ZodError, value: unknown): string {
  const lines = error.issues.flatMap((i) => {
    const at = (p: PropertyKey[]) =>
      p.map((s, n) => (typeof s === 'number' ? `[${s}]` : n === 0 ? String(s) : `.${String(s)}`)).join('');
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => `${at([...i.path, k])}: unknown field`);
    let v: unknown = value;
    for (const k of i.path)
      v = v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
    if (i.code === 'invalid_type') {
      const got = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
      return [`${at(i.path)}: ${v === undefined ? 'required' : `expected ${i.expected}, got ${got}`}`];
    }
    return [`${at(i.path) || '(request)'}: ${i.message}`];
  });
  return `${lines.length} validation error${lines.length === 1 ? '' : 's'} detected: ${lines.join('; ')}`;
}

export interface ServerFacts {
  /** `SHA256:...` of the first host key. */
  hostKeyFingerprint?: string;
  banner?: string;
  setStatOption: string;
  identityProviderType: string;
}

export interface OperationsOptions {
  serverId: string;
  region: string;
  accountId: string;
  store: UserStore;
  /** The config file's users (read-only here), read at each call so that a reload applies. */
  configUsers: () => ReadonlyMap<string, User>;
  configFile: () => string;
  server: () => ServerFacts;
  logger: Logger;
  now?: () => Date;
}

/** A token that is opaque to clients: the last name returned, base64url JSON. */
function encodeToken(after: string, kind: string): string {
  return Buffer.from(JSON.stringify({ k: kind, a: after })).toString('base64url');
}

function decodeToken(token: string | undefined, kind: string): string | undefined {
  if (token === undefined) return undefined;
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { k?: unknown; a?: unknown };
    if (t.k === kind && typeof t.a === 'string') return t.a;
  } catch {
    // fall through
  }
  throw new ApiError('InvalidNextTokenException', 'The NextToken is not valid');
}

/** A stable key id for a config-file key (the file has no ids): key- + 17 hex digits of its blob's SHA-256. */
export function configKeyId(blob: Buffer): string {
  return `key-${createHash('sha256').update(blob).digest('hex').slice(0, 17)}`;
}

export class TransferOperations {
  constructor(private readonly o: OperationsOptions) {}

  get serverId(): string {
    return this.o.serverId;
  }

  serverArn(): string {
    return `arn:aws:transfer:${this.o.region}:${this.o.accountId}:server/${this.o.serverId}`;
  }

  userArn(name: string): string {
    return `arn:aws:transfer:${this.o.region}:${this.o.accountId}:user/${this.o.serverId}/${name}`;
  }

  isOperation(name: string): name is OperationName {
    return Object.hasOwn(requests, name);
  }

  /** Runs one operation; throws ApiError. Returns the response body (undefined: no output shape). */
  async call(operation: OperationName, input: unknown): Promise<Record<string, unknown> | undefined> {
    const parsed = requests[operation].safeParse(input ?? {});
    if (!parsed.success) throw invalidRequest(describeIssues(parsed.error, input));
    const r = parsed.data as Record<string, unknown>;
    if (typeof r['ServerId'] === 'string' && r['ServerId'] !== this.o.serverId) {
      throw serverNotFound(r['ServerId']);
    }
    try {
      return await this.dispatch(operation, r);
    } catch (e) {
      if (e instanceof ApiError) throw e;
      if (e instanceof UserValidationError) throw invalidRequest(e.problems.join('; '));
      if (e instanceof UserExistsError) throw userExists(e.userName, this.o.serverId);
      if (e instanceof NoSuchUserError) throw userNotFound(e.userName, this.o.serverId);
      if (isGatewayError(e, 'StoreUnavailable')) {
        throw new ApiError('ServiceUnavailableException', `The user store is unavailable: ${e.message}`);
      }
      this.o.logger.error({ operation, err: (e as Error).message }, 'user API operation failed');
      throw new ApiError('InternalServiceError', `Internal error: ${(e as Error).message}`);
    }
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- validated by the request schemas above
  private async dispatch(op: OperationName, r: any): Promise<Record<string, unknown> | undefined> {
    switch (op) {
      case 'CreateUser':
        return this.createUser(r);
      case 'DescribeUser':
        return { ServerId: this.o.serverId, User: this.describeUser(r.UserName) };
      case 'UpdateUser':
        return this.updateUser(r);
      case 'DeleteUser':
        this.writable(r.UserName);
        await this.o.store.delete(r.UserName);
        return undefined;
      case 'ListUsers':
        return this.listUsers(r.MaxResults ?? 1000, r.NextToken);
      case 'ImportSshPublicKey':
        return this.importKey(r.UserName, r.SshPublicKeyBody);
      case 'DeleteSshPublicKey':
        return this.deleteKey(r.UserName, r.SshPublicKeyId);
      case 'DescribeServer':
        return { Server: this.describeServer() };
      case 'ListServers': {
        const s = this.describeServer();
        const listed = {
          Arn: s.Arn,
          Domain: s.Domain,
          EndpointType: s.EndpointType,
          IdentityProviderType: s.IdentityProviderType,
          ServerId: s.ServerId,
          State: s.State,
          UserCount: s.UserCount,
        };
        // One server, so a token can only ever be refused: no page follows the first.
        if (r.NextToken !== undefined)
          throw new ApiError('InvalidNextTokenException', 'The NextToken is not valid');
        return { Servers: [listed] };
      }
      case 'TagResource':
        return this.tag(r.Arn, r.Tags);
      case 'UntagResource':
        return this.untag(r.Arn, r.TagKeys);
      case 'ListTagsForResource':
        return this.listTags(r.Arn, r.MaxResults ?? 1000, r.NextToken);
    }
  }

  /** Refuses changes to config-file users and to users that do not exist. */
  private writable(name: string): void {
    if (this.o.configUsers().has(name)) {
      throw invalidRequest(
        `User '${name}' is defined in the config file (${this.o.configFile()}) and is read-only through the API; edit the file to change it`,
      );
    }
    if (!this.o.store.get(name)) throw userNotFound(name, this.o.serverId);
  }

  private async createUser(r: {
    UserName: string;
    Role: string;
    HomeDirectory?: string;
    HomeDirectoryType?: 'PATH' | 'LOGICAL';
    HomeDirectoryMappings?: StoredUser['HomeDirectoryMappings'];
    Policy?: string;
    PosixProfile?: StoredUser['PosixProfile'];
    SshPublicKeyBody?: string;
    Tags?: Tag[];
  }) {
    if (this.o.configUsers().has(r.UserName)) throw userExists(r.UserName, this.o.serverId);
    if (r.SshPublicKeyBody !== undefined && r.SshPublicKeyBody.trim() !== '') {
      try {
        parseAuthorizedKey(r.SshPublicKeyBody);
      } catch (e) {
        throw invalidRequest(`SshPublicKeyBody: ${(e as Error).message}`);
      }
    }
    const now = (this.o.now?.() ?? new Date()).toISOString();
    const record: StoredUser = {
      UserName: r.UserName,
      ...(r.HomeDirectory !== undefined && { HomeDirectory: r.HomeDirectory }),
      HomeDirectoryType: r.HomeDirectoryType ?? 'PATH',
      ...(r.HomeDirectoryMappings && { HomeDirectoryMappings: r.HomeDirectoryMappings }),
      Role: r.Role,
      ...(r.Policy !== undefined && { Policy: r.Policy }),
      ...(r.PosixProfile && { PosixProfile: r.PosixProfile }),
      ...(r.Tags && { Tags: mergeTags([], r.Tags) }),
      SshPublicKeys:
        r.SshPublicKeyBody !== undefined && r.SshPublicKeyBody.trim() !== ''
          ? [
              {
                SshPublicKeyId: newSshPublicKeyId(),
                SshPublicKeyBody: keyBody(r.SshPublicKeyBody),
                DateImported: now,
              },
            ]
          : [],
    };
    toUser(record);
    await this.o.store.create(record);
    return { ServerId: this.o.serverId, UserName: r.UserName };
  }

  private async updateUser(r: Record<string, unknown> & { UserName: string }) {
    this.writable(r.UserName);
    const fields = [
      'Role',
      'HomeDirectory',
      'HomeDirectoryType',
      'HomeDirectoryMappings',
      'Policy',
      'PosixProfile',
    ];
    await this.o.store.update(r.UserName, (u) => {
      const next = { ...u } as Record<string, unknown>;
      for (const f of fields) if (r[f] !== undefined) next[f] = r[f];
      // An empty Policy removes the session policy, an empty HomeDirectory the home.
      if (next['Policy'] === '') delete next['Policy'];
      if (next['HomeDirectory'] === '') delete next['HomeDirectory'];
      toUser(next as unknown as StoredUser);
      return next as unknown as StoredUser;
    });
    return { ServerId: this.o.serverId, UserName: r.UserName };
  }

  private describeUser(name: string): Record<string, unknown> {
    const configUser = this.o.configUsers().get(name);
    if (configUser) return this.describeConfigUser(configUser);
    const u = this.o.store.get(name);
    if (!u) throw userNotFound(name, this.o.serverId);
    return {
      Arn: this.userArn(u.UserName),
      HomeDirectory: u.HomeDirectory,
      HomeDirectoryMappings: u.HomeDirectoryMappings,
      HomeDirectoryType: u.HomeDirectoryType,
      Policy: u.Policy,
      PosixProfile: u.PosixProfile,
      Role: u.Role,
      SshPublicKeys: u.SshPublicKeys.map((k) => ({
        DateImported: Date.parse(k.DateImported) / 1000,
        SshPublicKeyBody: k.SshPublicKeyBody,
        SshPublicKeyId: k.SshPublicKeyId,
      })),
      Tags: u.Tags ?? [],
      UserName: u.UserName,
    };
  }

  private describeConfigUser(u: User): Record<string, unknown> {
    return {
      Arn: this.userArn(u.UserName),
      HomeDirectory: u.HomeDirectory,
      HomeDirectoryMappings: u.HomeDirectoryMappings,
      HomeDirectoryType: u.HomeDirectoryType,
      Policy: u.Policy === undefined || typeof u.Policy === 'string' ? u.Policy : JSON.stringify(u.Policy),
      PosixProfile: u.PosixProfile,
      Role: u.Role,
      SshPublicKeys: u.keys.map((k) => ({
        DateImported: 0,
        SshPublicKeyBody: k.body,
        SshPublicKeyId: configKeyId(k.blob),
      })),
      Tags: u.Tags ?? [],
      UserName: u.UserName,
    };
  }

  /** Config users and stored users together, sorted by name (a config user hides a stored namesake). */
  private allUsers(): { name: string; listed: () => Record<string, unknown> }[] {
    const config = this.o.configUsers();
    const out = [...config.values()].map((u) => ({
      name: u.UserName,
      listed: () => ({
        Arn: this.userArn(u.UserName),
        HomeDirectory: u.HomeDirectory,
        HomeDirectoryType: u.HomeDirectoryType,
        Role: u.Role,
        SshPublicKeyCount: u.keys.length,
        UserName: u.UserName,
      }),
    }));
    for (const u of this.o.store.list()) {
      if (config.has(u.UserName)) continue;
      out.push({
        name: u.UserName,
        listed: () => ({
          Arn: this.userArn(u.UserName),
          HomeDirectory: u.HomeDirectory,
          HomeDirectoryType: u.HomeDirectoryType,
          Role: u.Role,
          SshPublicKeyCount: u.SshPublicKeys.length,
          UserName: u.UserName,
        }),
      });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private listUsers(max: number, token: string | undefined) {
    const after = decodeToken(token, 'users');
    const all = this.allUsers().filter((u) => after === undefined || u.name > after);
    const page = all.slice(0, max);
    return {
      ServerId: this.o.serverId,
      Users: page.map((u) => u.listed()),
      ...(all.length > max && { NextToken: encodeToken(page[page.length - 1]!.name, 'users') }),
    };
  }

  private async importKey(name: string, body: string) {
    this.writable(name);
    let parsed: ReturnType<typeof parseAuthorizedKey>;
    try {
      parsed = parseAuthorizedKey(body);
    } catch (e) {
      throw invalidRequest(`SshPublicKeyBody: ${(e as Error).message}`);
    }
    const id = newSshPublicKeyId();
    const now = (this.o.now?.() ?? new Date()).toISOString();
    await this.o.store.update(name, (u) => {
      for (const k of u.SshPublicKeys) {
        let blob: Buffer | undefined;
        try {
          blob = parseAuthorizedKey(k.SshPublicKeyBody).blob;
        } catch {
          blob = undefined;
        }
        if (blob?.equals(parsed.blob)) {
          throw new ApiError('ResourceExistsException', `This public key already exists for user '${name}'`, {
            Resource: k.SshPublicKeyId,
            ResourceType: 'SshPublicKey',
          });
        }
      }
      if (u.SshPublicKeys.length >= MAX_KEYS_PER_USER) {
        throw invalidRequest(`User '${name}' already has ${MAX_KEYS_PER_USER} keys, the most allowed`);
      }
      const next = {
        ...u,
        SshPublicKeys: [
          ...u.SshPublicKeys,
          { SshPublicKeyId: id, SshPublicKeyBody: keyBody(body), DateImported: now },
        ],
      };
      toUser(next);
      return next;
    });
    return { ServerId: this.o.serverId, SshPublicKeyId: id, UserName: name };
  }

  private async deleteKey(name: string, keyId: string) {
    this.writable(name);
    await this.o.store.update(name, (u) => {
      if (!u.SshPublicKeys.some((k) => k.SshPublicKeyId === keyId)) {
        throw new ApiError(
          'ResourceNotFoundException',
          `Unknown SSH public key '${keyId}' for user '${name}'`,
          {
            Resource: keyId,
            ResourceType: 'SshPublicKey',
          },
        );
      }
      return { ...u, SshPublicKeys: u.SshPublicKeys.filter((k) => k.SshPublicKeyId !== keyId) };
    });
    return undefined;
  }

  private describeServer() {
    const facts = this.o.server();
    const userCount = this.allUsers().length;
    return {
      Arn: this.serverArn(),
      Domain: 'S3',
      EndpointType: 'PUBLIC',
      HostKeyFingerprint: facts.hostKeyFingerprint,
      IdentityProviderType: facts.identityProviderType,
      PreAuthenticationLoginBanner: facts.banner,
      ProtocolDetails: { SetStatOption: facts.setStatOption },
      Protocols: ['SFTP'],
      SecurityPolicyName: 'TransferSecurityPolicy-2024-01',
      ServerId: this.o.serverId,
      State: 'ONLINE',
      Tags: [],
      UserCount: userCount,
    };
  }

  /** Which resource an ARN names: this server, or one of its users. */
  private resource(a: string): { kind: 'server' } | { kind: 'user'; name: string } {
    const m = /^arn:[^:]+:transfer:[^:]*:[^:]*:(server|user)\/(s-[0-9a-f]{17})(?:\/(.+))?$/.exec(a);
    if (!m) throw invalidRequest(`Arn: not a Transfer server or user ARN: ${a}`);
    if (m[2] !== this.o.serverId) throw serverNotFound(m[2]!);
    if (m[1] === 'server') {
      if (m[3] !== undefined) throw invalidRequest(`Arn: not a Transfer server or user ARN: ${a}`);
      return { kind: 'server' };
    }
    if (m[3] === undefined) throw invalidRequest(`Arn: a user ARN ends with /<server-id>/<user name>: ${a}`);
    return { kind: 'user', name: m[3] };
  }

  private async tag(a: string, add: Tag[]) {
    const res = this.resource(a);
    if (res.kind === 'server') {
      throw invalidRequest('Tags on the server are not supported by this gateway; tag its users');
    }
    this.writable(res.name);
    await this.o.store.update(res.name, (u) => {
      const merged = mergeTags(u.Tags ?? [], add);
      if (merged.length > 50)
        throw invalidRequest(`User '${res.name}' would have ${merged.length} tags: at most 50`);
      return { ...u, Tags: merged };
    });
    return undefined;
  }

  private async untag(a: string, keys: string[]) {
    const res = this.resource(a);
    if (res.kind === 'server') {
      throw invalidRequest('Tags on the server are not supported by this gateway; tag its users');
    }
    this.writable(res.name);
    await this.o.store.update(res.name, (u) => {
      const rest = (u.Tags ?? []).filter((t) => !keys.includes(t.Key));
      const next = { ...u, Tags: rest };
      if (rest.length === 0) delete (next as Partial<StoredUser>).Tags;
      return next;
    });
    return undefined;
  }

  private listTags(a: string, max: number, token: string | undefined) {
    const res = this.resource(a);
    let all: Tag[] = [];
    if (res.kind === 'user') {
      const user = this.describeUser(res.name);
      all = (user['Tags'] as Tag[] | undefined) ?? [];
    }
    const after = decodeToken(token, 'tags');
    const start = after === undefined ? 0 : all.findIndex((t) => t.Key === after) + 1;
    if (after !== undefined && start === 0)
      throw new ApiError('InvalidNextTokenException', 'The NextToken is not valid');
    const page = all.slice(start, start + max);
    return {
      Arn: a,
      Tags: page,
      ...(start + max < all.length && { NextToken: encodeToken(page[page.length - 1]!.Key, 'tags') }),
    };
  }
}

/** Tags by key, later values replacing earlier ones, in first-seen order. */
function mergeTags(existing: Tag[], add: Tag[]): Tag[] {
  const out = existing.map((t) => ({ ...t }));
  for (const t of add) {
    const i = out.findIndex((o) => o.Key === t.Key);
    if (i >= 0) out[i] = { Key: t.Key, Value: t.Value };
    else out.push({ Key: t.Key, Value: t.Value });
  }
  return out;
}

/** The key line as given, trimmed (describe-user returns it as imported). */
function keyBody(line: string): string {
  return line.trim();
}
