import type { Readable } from 'node:stream';

/**
 * The seam between the user's filesystem view (vfs/) and a storage backend. Everything here speaks in
 * buckets and keys, never SFTP and never paths with `.` or `..`: vfs/ has already normalized and
 * confined them. LocalStore and S3Store give the same guarantees and pass one contract suite
 * (test/storage/contract.ts).
 *
 * Guarantees every store gives:
 * - An object written through `createWriter` becomes visible only when `complete()` resolves; `abort()`
 *   (or a crash) leaves nothing visible and nothing billable behind (no orphaned multipart parts).
 * - `list` returns one page at a time; nobody ever holds a whole listing in memory.
 * - Missing objects are `undefined` from `head`, `NotFound` (GatewayError) from reads.
 * - Errors are GatewayErrors (src/errors.ts) with a readable message naming the operation.
 */
export interface ObjectInfo {
  key: string;
  size: number;
  lastModified: Date;
  /** Opaque version tag; passed back to `openReader` to pin a version while reading. */
  etag: string;
}

/** What a key names: an object, a folder (keys below `key/`), both (S3 allows it), or nothing. */
export interface KeyProbe {
  object?: ObjectInfo;
  /** Present when keys lie below `key/`; `marker` is the folder's own zero-byte object when it has one. */
  folder?: { marker?: ObjectInfo };
}

export interface ListOptions {
  /** Key prefix, e.g. `home/alice/` ("" for the whole bucket). */
  prefix: string;
  /** With '/', keys below the next '/' after the prefix fold into `prefixes` (CommonPrefixes). */
  delimiter?: '/';
  continuationToken?: string;
  /** Page size, default 1000 (S3's maximum). */
  maxKeys?: number;
}

export interface ListPage {
  /** Full keys, sorted; includes the zero-byte directory marker `prefix` itself when it exists. */
  objects: ObjectInfo[];
  /** Full common prefixes ending with '/', sorted. */
  prefixes: string[];
  /** Present when more pages follow. */
  nextToken?: string;
}

export interface ObjectReader {
  /**
   * Up to `length` bytes starting at `offset`: fewer only at the end of the object, an empty buffer at
   * or past the end. Fails with PreconditionFailed if the object changed since it was opened.
   */
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Optional: reads into the caller's buffer (as many bytes as fit, fewer only at the end; the count, 0 at
   * or past the end), so a download can read straight into its reply packet.
   */
  readInto?(offset: number, target: Buffer): Promise<number>;
  close(): Promise<void>;
}

/** An object opened for reading: what it was when opened, and a reader pinned to that version. */
export interface OpenedObject {
  info: ObjectInfo;
  reader: ObjectReader;
}

export interface WriterOptions {
  /**
   * Start the new object with bytes [0, length) of this existing object, copied inside the store
   * (S3: UploadPartCopy) rather than through the gateway. Used for append and resume.
   */
  base?: {
    info: ObjectInfo;
    length: number;
    /** The bucket the base object is in, when not the new object's (a copy between buckets). */
    bucket?: string;
  };
  /** Fail `complete()` with AlreadyExists if the key exists by then (SFTP OPEN with EXCL). */
  ifNoneMatch?: boolean;
  /** User metadata stored with the object (S3: x-amz-meta-*). */
  metadata?: Record<string, string>;
}

export interface ObjectWriter {
  /**
   * Appends bytes after everything written so far. Resolves when the data is accepted (buffered or
   * stored); a slow resolution is backpressure and callers must wait for it before writing more.
   */
  write(data: Buffer): Promise<void>;
  /** Bytes the object will have if completed now (base included). */
  readonly size: number;
  /** Makes the object visible. After this, neither write nor abort may be called. */
  complete(): Promise<ObjectInfo>;
  /** Discards everything; idempotent; never throws for a writer already aborted. */
  abort(reason?: string): Promise<void>;
  /**
   * Keep-partial mode (the managed service's PARTIAL_CLOSE): complete with what has arrived so far.
   * Stores that cannot do it fall back to `abort`.
   */
  completePartial?(): Promise<ObjectInfo | undefined>;
}

export interface StoreStatfs {
  blockSize: number;
  totalBlocks: number;
  freeBlocks: number;
  totalFiles: number;
  freeFiles: number;
  nameMax: number;
}

export interface ObjectStore {
  readonly kind: 'local' | 's3';
  bucketExists(bucket: string): Promise<boolean>;
  head(bucket: string, key: string): Promise<ObjectInfo | undefined>;
  /**
   * Optional: `head(key)` and "is anything below `key/`?" in one request, for a store where one answers
   * both (a file system's stat). Without it the vfs asks head and a one-key list in parallel.
   */
  probe?(bucket: string, key: string): Promise<KeyProbe>;
  list(bucket: string, options: ListOptions): Promise<ListPage>;
  /** Opens a reader pinned to `info` (from head); the store picks read-ahead or exact ranges. */
  openReader(bucket: string, key: string, info: ObjectInfo): Promise<ObjectReader>;
  /**
   * `head` and `openReader` in one: undefined when the object does not exist. S3 does it with a single
   * ranged GET of the first chunk (its response carries size, ETag and date), not HEAD + GET.
   * `speculative`: an open no client has asked for yet (a file fetched ahead); it fails at once instead
   * of waiting when its buffers would have to wait for memory, so it never delays a client's own reads.
   */
  openObject(bucket: string, key: string, options?: { speculative?: boolean }): Promise<OpenedObject | undefined>;
  /** A byte range [start, end) as a stream (end omitted: to the end). The caller consumes or destroys it. */
  getStream(
    bucket: string,
    key: string,
    range: { start: number; end?: number; etag?: string },
  ): Promise<Readable>;
  /** Writes a small object (directory markers, files that fit one part) at once. */
  put(bucket: string, key: string, body: Buffer, options?: Omit<WriterOptions, 'base'>): Promise<ObjectInfo>;
  createWriter(bucket: string, key: string, options?: WriterOptions): ObjectWriter;
  /** Server-side copy; `source.etag` pins the version copied when given. */
  copy(
    source: { bucket: string; key: string; etag?: string },
    target: { bucket: string; key: string },
  ): Promise<ObjectInfo>;
  /** Deletes keys (missing ones are ignored). Batches internally. */
  delete(bucket: string, keys: string[]): Promise<void>;
  statfs(bucket: string): Promise<StoreStatfs>;
  /** Readiness probe: resolves when the store answers, throws StoreUnavailable otherwise. */
  check(): Promise<void>;
  /** Aborts what is still open and releases sockets and timers. */
  close(): Promise<void>;
}
