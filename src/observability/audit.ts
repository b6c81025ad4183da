import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from './logger.js';

/**
 * Activity log lines in the managed service's JSON structured log format: one pino line per event, with
 * `activity-type` and the kebab-case fields AWS Transfer Family writes (activity-type, session-id, user,
 * source-ip, path, bytes-in, bytes-out, mode, ssh-public-key-fingerprint, ssh-public-key-type, kex,
 * ciphers, message, ...), so that log queries written for the managed service keep working.
 *
 * Only the fields named in `AuditFields` are ever written, whatever a caller passes at run time: a
 * password, a secret or a key body has no field here and cannot reach a log line through `audit()`.
 * (The managed service logs the public key body as `ssh-public-key`; this gateway logs only its
 * fingerprint and type.)
 */

export const ACTIVITY_TYPES = [
  'CONNECTED',
  'CONNECTION_REJECTED',
  'AUTH_FAILURE',
  'OPEN',
  'CLOSE',
  'PARTIAL_CLOSE',
  'DELETE',
  'MKDIR',
  'RMDIR',
  'RENAME',
  'SETSTAT',
  'CREATE_SYMLINK',
  'ERROR',
  'DISCONNECTED',
  'EXIT_REASON',
] as const;

export type ActivityType = (typeof ACTIVITY_TYPES)[number];

export interface AuditFields {
  'session-id'?: string;
  user?: string;
  'source-ip'?: string;
  /** Not in the managed service's format; useful behind NAT and with PROXY protocol. */
  'source-port'?: number;
  /** The client's SSH identification string, e.g. SSH-2.0-OpenSSH_9.6. */
  client?: string;
  'home-dir'?: string;
  role?: string;
  'resource-arn'?: string;
  /** Authentication method: publickey, password, keyboard-interactive. */
  method?: string;
  kex?: string;
  ciphers?: string;
  mac?: string;
  'ssh-public-key-fingerprint'?: string;
  'ssh-public-key-type'?: string;
  path?: string;
  /** RENAME's target (the managed service's RENAME line has only `path`). */
  'new-path'?: string;
  /** How a file was opened: read, write, create, truncate, append, joined with `|` as the managed service does. */
  mode?: string;
  operation?: string;
  'bytes-in'?: number;
  'bytes-out'?: number;
  /** Time from OPEN to CLOSE or PARTIAL_CLOSE, in milliseconds. */
  'duration-ms'?: number;
  /** SETSTAT: what was asked (mtime, mode, size ...), without values that could be sensitive. */
  attributes?: string;
  /** Error or reason text: must never carry a secret. */
  message?: string;
  /** The gateway's error code (NotFound, PermissionDenied, ...) for ERROR lines. */
  'error-code'?: string;
  /** EXIT_REASON: why a session ended (client disconnect, idle timeout, shutdown, auth limit, ...). */
  reason?: string;
}

const FIELD_NAMES: ReadonlySet<string> = new Set<keyof AuditFields>([
  'session-id',
  'user',
  'source-ip',
  'source-port',
  'client',
  'home-dir',
  'role',
  'resource-arn',
  'method',
  'kex',
  'ciphers',
  'mac',
  'ssh-public-key-fingerprint',
  'ssh-public-key-type',
  'path',
  'new-path',
  'mode',
  'operation',
  'bytes-in',
  'bytes-out',
  'duration-ms',
  'attributes',
  'message',
  'error-code',
  'reason',
]);

/** Longest string value written; longer ones (a client's junk, a huge path) are cut with an ellipsis. */
export const MAX_FIELD_LENGTH = 2048;

const LEVELS: Record<ActivityType, 'info' | 'warn' | 'error'> = {
  CONNECTED: 'info',
  CONNECTION_REJECTED: 'warn',
  AUTH_FAILURE: 'warn',
  OPEN: 'info',
  CLOSE: 'info',
  PARTIAL_CLOSE: 'warn',
  DELETE: 'info',
  MKDIR: 'info',
  RMDIR: 'info',
  RENAME: 'info',
  SETSTAT: 'info',
  CREATE_SYMLINK: 'info',
  ERROR: 'error',
  DISCONNECTED: 'info',
  EXIT_REASON: 'info',
};

/** The pino level an activity type is written at. */
export function auditLevel(type: ActivityType): 'info' | 'warn' | 'error' {
  return LEVELS[type];
}

/**
 * Copies into `out` only the known fields, with values of the right kind: strings cut to
 * MAX_FIELD_LENGTH, numbers finite. Anything else (unknown keys, objects, undefined) is dropped.
 * Records are built by assignment into one object, with no `{ ...a, ...b }`: Node 20's V8 copies a
 * spread through the runtime at 1-5 µs each, and a small download writes two lines.
 */
function sanitizeInto(
  out: Record<string, string | number>,
  fields: AuditFields | Record<string, unknown>,
): Record<string, string | number> {
  for (const key in fields) {
    if (!Object.hasOwn(fields, key) || !FIELD_NAMES.has(key)) continue;
    const value = (fields as Record<string, unknown>)[key];
    if (typeof value === 'string') {
      out[key] = value.length > MAX_FIELD_LENGTH ? `${value.slice(0, MAX_FIELD_LENGTH)}…` : value;
    } else if (typeof value === 'number' && Number.isFinite(value)) {
      out[key] = value;
    } else if (typeof value === 'bigint') {
      out[key] = Number(value);
    }
  }
  return out;
}

/**
 * The object `audit()` logs: `activity-type` first, then the sanitized fields of each layer, a later
 * layer's value winning. A field left undefined does not erase the value under it.
 */
export function buildAuditRecord(
  type: ActivityType,
  ...layers: Array<AuditFields | undefined>
): Record<string, string | number> {
  const record: Record<string, string | number> = { 'activity-type': type };
  for (const fields of layers) if (fields) sanitizeInto(record, fields);
  return record;
}

/**
 * Write one activity line. `logger` is usually a session's child logger that already carries
 * session-id, user and source-ip; fields given here are added to (or override) those.
 */
export function audit(logger: Logger, type: ActivityType, fields: AuditFields = {}): void {
  write(logger, type, buildAuditRecord(type, fields));
}

function write(logger: Logger, type: ActivityType, record: Record<string, string | number>): void {
  const msg = typeof record['message'] === 'string' ? `${type}: ${record['message']}` : type;
  logger[LEVELS[type]](record, msg);
}

/** An auditor bound to one session: every line carries its session-id, user and source-ip. */
export interface SessionAuditor {
  (type: ActivityType, fields?: AuditFields): void;
  /** Set once the user is known (after authentication), for every later line. */
  setUser(user: string): void;
  readonly context: Readonly<AuditFields>;
}

export function sessionAuditor(
  logger: Logger,
  context: Pick<AuditFields, 'session-id' | 'source-ip' | 'source-port' | 'user'>,
): SessionAuditor {
  const ctx: AuditFields = { ...context };
  const fn = ((type: ActivityType, fields: AuditFields = {}) =>
    write(logger, type, buildAuditRecord(type, ctx, fields))) as SessionAuditor;
  fn.setUser = (user: string) => {
    ctx.user = user;
  };
  Object.defineProperty(fn, 'context', { get: () => ({ ...ctx }) });
  return fn;
}

/**
 * `SHA256:<base64 without padding>` of an SSH public key blob (the wire-format key, not the text line),
 * as `ssh-keygen -l` and the managed service's console print it.
 */
export function sshKeyFingerprint(keyBlob: Buffer | Uint8Array): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The `mode` field for an SFTP OPEN's pflags (SSH_FXF_READ 1, WRITE 2, APPEND 4, CREAT 8, TRUNC 16, EXCL 32). */
export function openModeString(pflags: number): string {
  const parts: string[] = [];
  if (pflags & 0x01) parts.push('READ');
  if (pflags & 0x02) parts.push('WRITE');
  if (pflags & 0x04) parts.push('APPEND');
  if (pflags & 0x08) parts.push('CREATE');
  if (pflags & 0x10) parts.push('TRUNCATE');
  if (pflags & 0x20) parts.push('EXCLUSIVE');
  return parts.join('|');
}

/** A session id like the managed service's (16 hex characters), unique enough for log correlation. */
export function newSessionId(): string {
  return randomBytes(8).toString('hex');
}
