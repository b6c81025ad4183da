import { z } from 'zod';

/** logging.writeIntervalMs: at most one write of log lines to stdout per this long (src/observability/logger.ts). */
export const DEFAULT_LOG_WRITE_INTERVAL_MS = 20;

/**
 * The config file's schema. User fields keep AWS Transfer's names and constraints (CreateUser in the API
 * model), so that `aws transfer describe-user` output moves over unchanged. Unknown keys are errors: a
 * typo must not silently turn a setting off.
 */

// CreateUser: UserName `^[\w][\w@.-]{2,99}$`
const userName = z
  .string()
  .regex(/^[\w][\w@.-]{2,99}$/, '3-100 characters of letters, digits, _ @ . -, not starting with - . or @');

// HomeDirectory `^$|/.*`, at most 1024. We need the `/bucket/prefix` form.
const homeDirectory = z
  .string()
  .max(1024, 'at most 1024 characters')
  .regex(/^\/[^/]+(\/.*)?$/, 'must be /bucket or /bucket/prefix');

const tag = z.strictObject({
  Key: z.string().min(1).max(128),
  Value: z.string().max(256),
});

const sshKeyEntry = z.union([
  z.string().min(1, 'empty key'),
  // describe-user's output shape
  z.looseObject({ SshPublicKeyBody: z.string().min(1), SshPublicKeyId: z.string().optional() }),
]);

const mapping = z.strictObject({
  Entry: z.string().regex(/^\/.*/, 'must start with /').max(1024),
  Target: z.string().regex(/^\/.*/, 'must start with /').max(1024),
  Type: z.enum(['FILE', 'DIRECTORY']).optional(),
});

export const userSchema = z
  .strictObject({
    UserName: userName,
    HomeDirectory: homeDirectory.optional(),
    HomeDirectoryType: z.enum(['PATH', 'LOGICAL']).default('PATH'),
    HomeDirectoryMappings: z.array(mapping).min(1).max(50000).optional(),
    SshPublicKeys: z.array(sshKeyEntry).max(50).optional(),
    SshPublicKeyBody: z.string().max(2048).optional(),
    Role: z
      .string()
      .regex(/^arn:.*role\/\S+$/, 'must be an IAM role ARN (arn:...:role/name)')
      .optional(),
    Policy: z.union([z.string().max(2048), z.record(z.string(), z.unknown())]).optional(),
    Tags: z.array(tag).max(50, 'at most 50 tags').optional(),
    PosixProfile: z.looseObject({ Uid: z.number(), Gid: z.number() }).optional(),
    ServerId: z.string().optional(),
    Description: z.string().optional(),
    /**
     * Not a CreateUser field: an argon2id hash (`$argon2id$...`, from `sftp-s3-gateway hash-password`)
     * for PASSWORD logins of SERVICE_MANAGED users, which the managed service only offers through a
     * custom identity provider.
     */
    PasswordHash: z
      .string()
      .regex(/^\$argon2id\$/, 'must be an argon2id hash ($argon2id$...; see hash-password)')
      .optional(),
  })
  .superRefine((u, ctx) => {
    if (u.HomeDirectoryType === 'PATH' && !u.HomeDirectory) {
      ctx.addIssue({
        code: 'custom',
        path: ['HomeDirectory'],
        message: 'required for HomeDirectoryType PATH',
      });
    }
    if (u.HomeDirectoryType === 'LOGICAL' && !u.HomeDirectoryMappings) {
      ctx.addIssue({
        code: 'custom',
        path: ['HomeDirectoryMappings'],
        message: 'required for HomeDirectoryType LOGICAL',
      });
    }
  });

const seconds = z.number().int().positive();

export const serverSchema = z.strictObject({
  host: z.string().default('0.0.0.0'),
  port: z.number().int().min(0).max(65535).default(2222),
  hostKeys: z.array(z.string().min(1)).min(1).default(['state/ssh_host_ed25519_key']),
  /** PreAuthenticationLoginBanner in the managed service. */
  banner: z.string().max(4096).optional(),
  maxAuthTries: z.number().int().min(1).default(6),
  loginGraceTimeSeconds: seconds.default(120),
  idleTimeoutSeconds: seconds.default(1800),
  maxChannelsPerConnection: z.number().int().min(1).default(10),
  /** ENABLE_NO_OP (accept and ignore mode/times, the default here) or DEFAULT (refuse them, as the managed service does on S3). */
  setStatOption: z.enum(['ENABLE_NO_OP', 'DEFAULT']).default('ENABLE_NO_OP'),
  shutdownDeadlineSeconds: z.number().min(0).default(30),
  /**
   * Processes serving SSH (node:cluster), each with its own event loop; `auto` is one per CPU the process
   * may run on. One event loop carries about one core of encryption and SFTP work; more workers use more
   * cores in one container. memoryBudgetMiB and uploadMemoryMiB are shared out between them.
   */
  workers: z.union([z.number().int().min(1).max(64), z.literal('auto')]).default(1),
  /** SftpAuthenticationMethods; default PUBLIC_KEY_OR_PASSWORD (password only for users with a PasswordHash). */
  sftpAuthenticationMethods: z
    .enum(['PUBLIC_KEY', 'PASSWORD', 'PUBLIC_KEY_OR_PASSWORD', 'PUBLIC_KEY_AND_PASSWORD'])
    .default('PUBLIC_KEY_OR_PASSWORD'),
  /** The ServerId sent to a custom identity provider (`s-` + 17 hex). */
  serverId: z
    .string()
    .regex(/^s-([0-9a-f]{17})$/, 'must be s- followed by 17 hex digits')
    .default('s-00000000000000000'),
  proxyProtocol: z
    .strictObject({
      enabled: z.boolean().default(false),
      trustedSources: z.array(z.string()).default([]),
      timeoutSeconds: z.number().positive().default(5),
    })
    .default({ enabled: false, trustedSources: [], timeoutSeconds: 5 }),
});

export const localStorageSchema = z.strictObject({
  type: z.literal('local'),
  root: z.string().min(1),
  /** Where partial uploads and spools live; default `<root>/.sftp-gateway-tmp`. */
  tempDir: z.string().optional(),
});

export const s3StorageSchema = z.strictObject({
  type: z.literal('s3'),
  region: z.string().min(1).default('us-east-1'),
  /** Any S3-compatible endpoint; omitted for AWS. */
  endpoint: z.url().optional(),
  forcePathStyle: z.boolean().optional(),
  /** Static keys; omitted: the AWS default credential chain (environment, profile, IRSA, instance role). */
  credentials: z
    .strictObject({
      accessKeyId: z.string().min(1),
      secretAccessKey: z.string().min(1),
      sessionToken: z.string().optional(),
    })
    .optional(),
  /** First part of a multipart upload, MiB (later parts grow so that 5 TiB fits 10,000 parts). */
  partSizeMiB: z.number().int().min(5).max(5120).default(8),
  /** Parts of one upload in flight at once. */
  uploadConcurrency: z.number().int().min(1).max(64).default(4),
  /** Objects above this are copied (rename) with multipart UploadPartCopy, MiB. */
  copyPartThresholdMiB: z.number().int().min(5).max(5120).default(5120),
  readAheadChunkMiB: z.number().min(0.0625).max(64).default(4),
  readAheadChunks: z.number().int().min(1).max(32).default(4),
  /**
   * When a client downloads a directory's files one after another (`get -r`, `mget`), the next this many
   * files of at most 1 MiB are fetched ahead; 0 turns it off. A fetched file is handed only to an OPEN
   * within a second of its GET.
   */
  prefetchFiles: z.number().int().min(0).max(16).default(4),
  /** The janitor aborts the gateway's own multipart uploads older than this. */
  multipartMaxAgeHours: z.number().positive().default(24),
  /** aws: current SDK defaults. generic: Ceph, Swift, older MinIO (no flexible checksums, no conditional writes, Content-MD5 on DeleteObjects). */
  compatibility: z.enum(['aws', 'generic']).default('aws'),
  checksums: z.boolean().optional(),
  checksumAlgorithm: z.enum(['CRC32C', 'CRC32', 'SHA256']).optional(),
  /** auto: UNSIGNED-PAYLOAD for file data over HTTPS when checksums are on (storage/s3/payload-signing.ts). */
  payloadSigning: z.enum(['auto', 'signed', 'unsigned']).default('auto'),
  conditionalWrites: z.enum(['full', 'put', 'none']).optional(),
  deleteMode: z.enum(['batch', 'batch-md5', 'single']).optional(),
  maxSockets: z.number().int().min(1).optional(),
  /**
   * An S3 request fails (and is retried, up to the SDK's attempts) after this long without a byte sent
   * or received on its connection: a stalled store, not a slow one (see storage/s3/config.ts).
   */
  socketTimeoutSeconds: z.number().positive().max(3600).default(60),
  /** Bucket used by the readiness check (HeadBucket); without it, ListBuckets. */
  checkBucket: z.string().optional(),
});

export const storageSchema = z.discriminatedUnion('type', [localStorageSchema, s3StorageSchema]);

/** An IAM policy document, as an object or as the JSON string the AWS APIs take. */
const policyDocument = z.union([z.string().min(1), z.record(z.string(), z.unknown())]);

/** A role defined locally: its policies are enforced by the gateway (any S3-compatible store). */
export const roleSchema = z.strictObject({
  Arn: z.string().regex(/^arn:.*role\/\S+$/, 'must be an IAM role ARN (arn:...:role/name)'),
  Policies: z.array(policyDocument).default([]),
  Description: z.string().optional(),
});

/** Where roles that are not defined locally are assumed (AWS S3 only). */
export const stsSchema = z.strictObject({
  /** Omitted: the regional AWS STS endpoint. */
  endpoint: z.url().optional(),
  /** Omitted: storage.region. */
  region: z.string().min(1).optional(),
  durationSeconds: z.number().int().min(900).max(43200).default(3600),
});

/** A custom identity provider reached over HTTP (a Lambda function URL or an API Gateway endpoint). */
export const identityProviderSchema = z.strictObject({
  type: z.enum(['AWS_LAMBDA', 'API_GATEWAY']).default('AWS_LAMBDA'),
  url: z.url(),
  timeoutSeconds: z.number().positive().max(300).default(10),
  /** Extra request headers (e.g. an API key). */
  headers: z.record(z.string(), z.string()).optional(),
});

/** The user API (AWS Transfer's JSON API for users, SigV4 with these admin keys); off unless set. */
export const apiSchema = z.strictObject({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8080),
  accessKeys: z
    .array(
      z.strictObject({
        accessKeyId: z.string().regex(/^[A-Z0-9]{16,128}$/, '16-128 upper-case letters and digits'),
        secretAccessKey: z.string().min(8, 'at least 8 characters'),
      }),
    )
    .min(1, 'at least one access key'),
  /** Region and account shown in ARNs (any region is accepted in signatures). */
  region: z.string().min(1).default('us-east-1'),
  accountId: z
    .string()
    .regex(/^\d{12}$/, '12 digits')
    .default('000000000000'),
});

/** Where users created through the user API live: a file in stateDir, or one object per user in a bucket. */
export const userStoreSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('file'),
    /** Default `<stateDir>/users.json`. */
    path: z.string().optional(),
  }),
  z.strictObject({
    type: z.literal('s3'),
    bucket: z.string().min(1),
    prefix: z.string().default('sftp-gateway/'),
    pollIntervalMs: z.number().int().min(100).max(60000).default(1000),
  }),
]);

export const configSchema = z.strictObject({
  server: serverSchema.default(serverSchema.parse({})),
  storage: storageSchema.default({ type: 'local', root: 'data' }),
  /** Writable folder for spools and the user store; default: the first host key's folder. */
  stateDir: z.string().optional(),
  /** Memory for every upload part buffer and read-ahead buffer together, MiB. */
  memoryBudgetMiB: z.number().int().min(16).default(256),
  /**
   * The share of memoryBudgetMiB that upload part buffers may hold, MiB (at most the whole budget). A part
   * buffer is held from its first byte until its upload ends, so slowly filling parts of many uploaders
   * would take the whole budget: 64 concurrent 64 MiB uploads on S3 peaked at 501 MiB of RSS with all
   * 256 MiB open to uploads, 310-326 with 64, 281 with 32, 254 with 16, at the same MB/s (Swift on 2
   * cores, 2026-12-04), and a single 256 MiB put or 4 parallel ones moved as fast with 32 as with 256.
   * 32 MiB is 4 parts of 8 MiB: one upload fills a part while 3 are sent.
   */
  uploadMemoryMiB: z.number().int().min(8).default(32),
  /** PARTIAL_CLOSE: on a dropped connection, keep what arrived instead of discarding it. */
  keepPartialUploads: z.boolean().default(false),
  /** Out-of-order writes beyond the in-memory window go to a spool file of at most this size per file. */
  spoolMaxMiB: z.number().int().min(0).default(1024),
  logging: z
    .strictObject({
      level: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
      writeIntervalMs: z.number().int().min(0).max(1000).default(DEFAULT_LOG_WRITE_INTERVAL_MS),
    })
    .default({
      level: 'info',
      writeIntervalMs: DEFAULT_LOG_WRITE_INTERVAL_MS,
    }),
  metrics: z
    .union([
      z.literal(false),
      z.strictObject({ host: z.string().default('127.0.0.1'), port: z.number().int() }),
    ])
    .default({ host: '127.0.0.1', port: 9100 }),
  users: z.array(userSchema).default([]),
  api: apiSchema.optional(),
  userStore: userStoreSchema.default({ type: 'file' }),
  roles: z.array(roleSchema).default([]),
  sts: stsSchema.optional(),
  /** When set, logins are decided by this provider instead of `users` (IdentityProviderType AWS_LAMBDA / API_GATEWAY). */
  identityProvider: identityProviderSchema.optional(),
  /** Reload the config file when it changes (SIGHUP always reloads). */
  watchConfig: z.boolean().default(true),
});

export type RawConfig = z.infer<typeof configSchema>;
export type UserConfig = z.infer<typeof userSchema>;
export type StorageConfig = z.infer<typeof storageSchema>;
export type S3StorageSettings = z.infer<typeof s3StorageSchema>;
export type ServerConfig = z.infer<typeof serverSchema>;
export type ApiConfig = z.infer<typeof apiSchema>;
export type UserStoreConfig = z.infer<typeof userStoreSchema>;
export type RoleConfig = z.infer<typeof roleSchema>;
export type StsConfig = z.infer<typeof stsSchema>;
export type IdentityProviderConfig = z.infer<typeof identityProviderSchema>;
export type SftpAuthenticationMethods = ServerConfig['sftpAuthenticationMethods'];
