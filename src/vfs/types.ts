/**
 * The seam between the SFTP protocol layer and the user's filesystem view. Everything here speaks SFTP's
 * language (paths, files, directories, handles) and is already normalized, confined and policy-checked;
 * the protocol layer never sees a bucket or a key. Errors are GatewayErrors (src/errors.ts).
 */
export interface FileStat {
  type: 'file' | 'directory';
  size: number;
  mtime: Date;
  /** Permission bits reported to clients (without the file-type bits). */
  permissions: number;
}

export interface DirEntry {
  name: string;
  stat: FileStat;
}

export interface OpenFlags {
  read: boolean;
  write: boolean;
  append: boolean;
  create: boolean;
  truncate: boolean;
  exclusive: boolean;
}

export interface SetAttributes {
  size?: number;
  permissions?: number;
  uid?: number;
  gid?: number;
  atime?: number;
  mtime?: number;
}

/**
 * A read handle's object as a write handle can copy it inside the store (copy-data). Opaque above the vfs:
 * the protocol layer only hands it from one handle to the other.
 */
export interface CopySource {
  readonly path: string;
}

export interface ReadHandle {
  readonly kind: 'read';
  readonly path: string;
  /** Present when the object can be copied inside the store, as it was when opened. */
  copySource?: CopySource;
  /** Up to `length` bytes at `offset`; an empty buffer means end of file. */
  read(offset: number, length: number): Promise<Buffer>;
  /** When the store can: fills `target` from `offset` without a buffer of its own; bytes read, 0 at end. */
  readInto?(offset: number, target: Buffer): Promise<number>;
  stat(): Promise<FileStat>;
  close(): Promise<void>;
}

export interface WriteHandle {
  readonly kind: 'write';
  readonly path: string;
  /**
   * Writes are applied in offset order whatever order they arrive in (a bounded reordering window, then
   * a local spool). The caller issues write() calls in the order requests arrived, without awaiting one
   * before the next; a slow promise is backpressure.
   */
  write(offset: number, data: Buffer): Promise<void>;
  stat(): Promise<FileStat>;
  setstat(attrs: SetAttributes): Promise<void>;
  /**
   * When nothing has been written yet and the file keeps nothing of an older one: makes `source` the
   * file's content so far, copied inside the store (S3: UploadPartCopy, no byte through the gateway), and
   * resolves its size; later writes go after it. Resolves undefined when it cannot (another store, data
   * already written): the caller then copies through the handles.
   */
  copyWhole?(source: CopySource): Promise<number | undefined>;
  /** Makes the file visible (completes the upload). */
  close(): Promise<void>;
  /** Discards the upload (connection dropped); keep-partial mode completes with what arrived instead. */
  abort(reason: string): Promise<void>;
}

export interface DirHandle {
  readonly path: string;
  /** The next batch of entries (at most `max`), or undefined at the end of the listing. */
  next(max: number): Promise<DirEntry[] | undefined>;
  close(): Promise<void>;
}

export interface StatFs {
  blockSize: number;
  fragmentSize: number;
  blocks: number;
  freeBlocks: number;
  availableBlocks: number;
  files: number;
  freeFiles: number;
  availableFiles: number;
  nameMax: number;
}

export interface UserFileSystem {
  /** The virtual path the session starts in, e.g. `/demo/home/alice` (PATH) or `/` (LOGICAL). */
  readonly home: string;
  /** Normalizes (resolving `.`, `..`, `//`, relative to home) without touching the store. */
  resolve(path: string): string;
  /** `resolve` plus a check that the result is reachable by this user. */
  realpath(path: string): Promise<string>;
  stat(path: string): Promise<FileStat>;
  openDir(path: string): Promise<DirHandle>;
  open(path: string, flags: OpenFlags): Promise<ReadHandle | WriteHandle>;
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  remove(path: string): Promise<void>;
  /** `overwrite` false is SFTP v3 RENAME (refuses an existing target); true is posix-rename@openssh.com. */
  rename(from: string, to: string, overwrite: boolean): Promise<void>;
  setstat(path: string, attrs: SetAttributes): Promise<void>;
  statfs(path: string): Promise<StatFs>;
  /** The session has ended: stops what the filesystem still has running for it. */
  close?(): Promise<void>;
}
