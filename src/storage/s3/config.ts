import type { AwsCredentialIdentityProvider } from '@smithy/types';
import type { PayloadSigning } from './payload-signing.js';

/**
 * S3Store settings. Provider quirks are data: a `compatibility` preset fills in the named switches, and
 * any switch given explicitly wins over the preset.
 */
export type ChecksumAlgorithmName = 'CRC32C' | 'CRC32' | 'SHA256';

export interface S3StoreConfig {
  region: string;
  /** Any S3-compatible endpoint; omitted for AWS. */
  endpoint?: string;
  forcePathStyle?: boolean;
  /** Static keys or a provider (a session's assumed role); omitted: the AWS default credential chain. */
  credentials?:
    | { accessKeyId: string; secretAccessKey: string; sessionToken?: string }
    | AwsCredentialIdentityProvider;
  /** First part size in bytes (default 8 MiB, minimum 5 MiB); later parts grow so 5 TiB fits 10,000 parts. */
  partSize?: number;
  /** Parts of one upload in flight at once (default 4). */
  uploadConcurrency?: number;
  /** Objects above this size are copied with multipart UploadPartCopy (default 5 GiB, S3's CopyObject limit). */
  copyPartThreshold?: number;
  /** Part size of a multipart copy (default 512 MiB, at most 5 GiB). */
  copyPartSize?: number;
  /**
   * The first GET of a reader (at open) and the unit in which its read-ahead memory is taken from the
   * budget (default 4 MiB). Sequential readers then stream GETs of 2 chunks, doubling up to 16.
   */
  readAheadChunkSize?: number;
  /** Chunks a sequential reader reads ahead of its READs, budget permitting (default 4). */
  readAheadChunks?: number;
  /** Keep-partial mode (the managed service's PARTIAL_CLOSE); off by default. */
  keepPartial?: boolean;
  /** The janitor aborts the gateway's own multipart uploads older than this (ms; default 24 h). */
  multipartMaxAge?: number;
  /** How often the janitor runs (ms; default 1 h). */
  janitorInterval?: number;
  /** Buckets the janitor scans besides those this process has written to. */
  janitorBuckets?: string[];
  /**
   * Where the marks of the gateway's own multipart uploads live in each bucket. S3 lists in-progress
   * uploads without their metadata, so a mark the janitor can see must be an object of its own.
   */
  journalPrefix?: string;
  /** Sockets per host for the SDK's HTTP agent (default 200; the SDK's default of 50 is low for a gateway). */
  maxSockets?: number;
  /** SDK attempts per request including the first (default 3). */
  maxAttempts?: number;
  /** Timeout of check() in ms (default 5000). */
  checkTimeout?: number;
  /**
   * An S3 request fails (TimeoutError, retried by the SDK up to `maxAttempts`) once its connection has
   * neither sent nor received a byte for this long, in ms (default 60000). An inactivity timeout, not a
   * limit on a request's duration: see the S3Store constructor for what the SDK measures.
   */
  socketTimeout?: number;
  /** Bucket used by check() (HeadBucket); without it, ListBuckets. */
  checkBucket?: string;

  /** 'aws' (default): current SDK defaults. 'generic': Ceph, Swift, older MinIO. */
  compatibility?: 'aws' | 'generic';
  /** Send additional checksums with parts and objects (aws: true, generic: false). */
  checksums?: boolean;
  checksumAlgorithm?: ChecksumAlgorithmName;
  /** Whether upload bodies are hashed into the signature (payload-signing.ts); default 'auto'. */
  payloadSigning?: PayloadSigning;
  /**
   * 'full': If-None-Match: * on PutObject and CompleteMultipartUpload (AWS). 'put': on PutObject only,
   * a HEAD check before completing a multipart upload. 'none': always the HEAD check (racy, but the
   * best such stores allow).
   */
  conditionalWrites?: 'full' | 'put' | 'none';
  /** 'batch': DeleteObjects as the SDK sends it; 'batch-md5': adds Content-MD5; 'single': DeleteObject per key. */
  deleteMode?: 'batch' | 'batch-md5' | 'single';
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * GiB;
export const MAX_PARTS = 10_000;

export type ResolvedS3StoreConfig = Required<
  Omit<S3StoreConfig, 'endpoint' | 'credentials' | 'checkBucket' | 'forcePathStyle'>
> &
  Pick<S3StoreConfig, 'endpoint' | 'credentials' | 'checkBucket' | 'forcePathStyle'>;

export function resolveS3StoreConfig(c: S3StoreConfig): ResolvedS3StoreConfig {
  const compatibility = c.compatibility ?? 'aws';
  const aws = compatibility === 'aws';
  const r: ResolvedS3StoreConfig = {
    ...c,
    partSize: c.partSize ?? 8 * MiB,
    uploadConcurrency: c.uploadConcurrency ?? 4,
    copyPartThreshold: c.copyPartThreshold ?? 5 * GiB,
    copyPartSize: c.copyPartSize ?? 512 * MiB,
    readAheadChunkSize: c.readAheadChunkSize ?? 4 * MiB,
    readAheadChunks: c.readAheadChunks ?? 4,
    keepPartial: c.keepPartial ?? false,
    multipartMaxAge: c.multipartMaxAge ?? 24 * 3600_000,
    janitorInterval: c.janitorInterval ?? 3600_000,
    janitorBuckets: c.janitorBuckets ?? [],
    journalPrefix: c.journalPrefix ?? '.sftp-gateway/multipart/',
    maxSockets: c.maxSockets ?? 200,
    maxAttempts: c.maxAttempts ?? 3,
    checkTimeout: c.checkTimeout ?? 5000,
    // 60 s without a byte either way: botocore's (boto3, the AWS CLI) default read_timeout. Well above
    // what a working store is silent for: a part upload writes continuously; S3 answers a long
    // CompleteMultipartUpload with 200 at once, then whitespace while it works (documented), and answers
    // CopyObject and UploadPartCopy (512 MiB pieces here) with a chunked 200 before the copy is done
    // (hence the SDK's "200 with an error inside" handling of those three). Short enough that a hung
    // request gives its part buffer back to the memory budget, and the SFTP client its failure status,
    // within minutes (maxAttempts x 60 s plus backoff) rather than never. A store that works silently for
    // longer before it answers (a slow server-side copy) needs a higher value.
    socketTimeout: c.socketTimeout ?? 60_000,
    compatibility,
    checksums: c.checksums ?? aws,
    // CRC32: Node's zlib computes it natively; the SDK's CRC32C is JavaScript and took a third of the
    // gateway's CPU in a 512 MiB upload (bench/results/2026-11-23-analysis.md, C1).
    checksumAlgorithm: c.checksumAlgorithm ?? 'CRC32',
    payloadSigning: c.payloadSigning ?? 'auto',
    conditionalWrites: c.conditionalWrites ?? (aws ? 'full' : 'none'),
    deleteMode: c.deleteMode ?? (aws ? 'batch' : 'batch-md5'),
  };
  if (!r.region) throw new Error('storage.region is required');
  if (r.partSize < MIN_PART_SIZE || r.partSize > MAX_PART_SIZE) {
    throw new Error(`storage.partSize must be between 5 MiB and 5 GiB: ${r.partSize}`);
  }
  if (r.copyPartSize < MIN_PART_SIZE || r.copyPartSize > MAX_PART_SIZE) {
    throw new Error(`storage.copyPartSize must be between 5 MiB and 5 GiB: ${r.copyPartSize}`);
  }
  if (r.uploadConcurrency < 1) throw new Error('storage.uploadConcurrency must be at least 1');
  if (!(r.socketTimeout > 0) || !Number.isFinite(r.socketTimeout)) {
    throw new Error(`storage.socketTimeout must be a positive number of ms: ${r.socketTimeout}`);
  }
  if (r.readAheadChunkSize < 64 * 1024) throw new Error('storage.readAheadChunkSize must be at least 64 KiB');
  if (!r.journalPrefix.endsWith('/')) throw new Error('storage.journalPrefix must end with /');
  return r;
}

/**
 * Size of part `partNumber` (1-based) of an upload whose total size is unknown. It doubles every 800
 * parts, capped at 5 GiB, so that even with 5 MiB first parts 10,000 parts hold more than 5 TiB, while
 * files below a few GiB keep small parts (less memory, finer retries).
 */
export function partSizeFor(partNumber: number, firstPartSize: number): number {
  const tier = Math.floor((partNumber - 1) / 800);
  return Math.min(MAX_PART_SIZE, firstPartSize * 2 ** tier);
}
