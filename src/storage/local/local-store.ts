import { randomBytes } from 'node:crypto';
import {
  close,
  closeSync,
  createReadStream,
  type Dirent,
  fstatSync,
  open,
  openSync,
  read,
  readSync,
  type Stats,
  statSync,
} from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { GatewayError, notFound } from '../../errors.js';
import type {
  KeyProbe,
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectReader,
  ObjectStore,
  ObjectWriter,
  OpenedObject,
  StoreStatfs,
  WriterOptions,
} from '../object-store.js';
import { type MemoryBudget, type Release, sharedMemoryBudget } from '../memory-budget.js';
import type { Logger } from '../../observability/logger.js';
import { type CommitResult, commitSmallUpload, isLocalFileSystem } from './small-commit.js';
import { DIRECTORY, FILE, type FolderSnapshot, type ListingCursor, ListingCursors, OTHER } from './listing-cursors.js';

export interface LocalStoreOptions {
  /** Each top-level folder is a bucket: bucket `demo`, key `x/y` -> `<root>/demo/x/y`. */
  root: string;
  /** Uploads in progress; default `<root>/.sftp-gateway-tmp` (a name no bucket can have). */
  tempDir?: string;
  /** What small uploads held in memory until CLOSE draw on; default: the process-wide budget. */
  memory?: MemoryBudget;
  /** What small files read whole at open draw on (see SMALL_READ_BYTES); default: the process-wide budget. */
  readMemory?: MemoryBudget;
  /** Told when calls on the event loop pause because one was slow. */
  logger?: Logger;
  /** How long a call on the event loop may take before they pause; default 10 ms. */
  slowCallMs?: number;
  /**
   * Make the calls of a small upload's commit and of a stat by name on the event loop (small-commit.ts):
   * default, when init() finds a local file system.
   */
  callsOnLoop?: boolean;
}

/** How long calls on the event loop pause after a slow one. */
const LOOP_CALLS_PAUSE_MS = 60_000;
/** What `onLoop` returns when the call is to go through the thread pool instead. */
const NOT_ON_LOOP = Symbol('not on the event loop');

const TEMP_NAME = '.sftp-gateway-tmp';
/** Files stat'ed at once while listing. */
const STAT_BATCH = 64;

type WalkEntry = ({ kind: 'object'; key: string; info: ObjectInfo } | { kind: 'prefix'; key: string }) & {
  /** In a folder listing: the folder as read, and this entry's index in it. */
  folder?: FolderSnapshot;
  at?: number;
};
/** Temp files older than this at start are leftovers of a crash. */
const STALE_TEMP_MS = 24 * 3600 * 1000;

/**
 * The embedded default store: objects are files under a root folder. It gives the S3 store's guarantees
 * (an upload is invisible until complete, then appears atomically by rename) with object semantics: a
 * key `a/b/` (a directory marker) is a folder, a key `a/b` a file. Because a folder is its own marker,
 * a folder stays after its last file is removed, where on S3 an unmarked prefix would vanish.
 */
export class LocalStore implements ObjectStore {
  readonly kind = 'local' as const;
  readonly root: string;
  private readonly tempDir: string;
  private readonly openWriters = new Set<LocalWriter>();
  private readonly cursors = new ListingCursors();
  readonly memory: MemoryBudget;
  readonly readMemory: MemoryBudget;
  /** Set by init() when both folders are on a local file system (small-commit.ts). */
  private callsOnLoop = false;
  private loopCallsPausedUntil = 0;
  /** Small uploads committed on the event loop (tests check which path an upload took). */
  loopCommits = 0;

  constructor(private readonly options: LocalStoreOptions) {
    this.root = path.resolve(options.root);
    this.tempDir = path.resolve(options.tempDir ?? path.join(this.root, TEMP_NAME));
    this.memory = options.memory ?? sharedMemoryBudget();
    this.readMemory = options.readMemory ?? sharedMemoryBudget();
  }

  /** Creates the root and temp folders and removes stale temp files left by a crash. */
  async init(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true });
    await fs.mkdir(this.tempDir, { recursive: true });
    const now = Date.now();
    for (const name of await fs.readdir(this.tempDir)) {
      const file = path.join(this.tempDir, name);
      const st = await fs.stat(file).catch(() => undefined);
      if (st && now - st.mtimeMs > STALE_TEMP_MS) await fs.rm(file, { force: true });
    }
    // Uploads are renamed from the temp folder to the root, so both are one file system in practice.
    const [root, temp] = await Promise.all([fs.statfs(this.root), fs.statfs(this.tempDir)]);
    this.callsOnLoop = this.options.callsOnLoop ?? (isLocalFileSystem(root.type) && isLocalFileSystem(temp.type));
  }

  async bucketExists(bucket: string): Promise<boolean> {
    const st = await this.stat(this.bucketPath(bucket));
    return st?.isDirectory() ?? false;
  }

  async head(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    const st = await this.stat(this.filePath(bucket, key));
    if (!st) return undefined;
    const isMarker = key.endsWith('/');
    if (isMarker !== st.isDirectory()) return undefined;
    return infoOf(key, st);
  }

  /** One stat: a folder here is a directory, and no file can also be one. A missing bucket probes empty. */
  async probe(bucket: string, key: string): Promise<KeyProbe> {
    const st = await this.stat(this.filePath(bucket, key));
    if (!st) return {};
    if (st.isDirectory()) return { folder: { marker: infoOf(`${key}/`, st) } };
    return { object: infoOf(key, st) };
  }

  async list(bucket: string, options: ListOptions): Promise<ListPage> {
    const max = Math.max(1, Math.min(options.maxKeys ?? 1000, 1000));
    const after = options.continuationToken;
    if (max === 1 && after === undefined && options.prefix.endsWith('/')) return this.firstBelow(bucket, options.prefix);
    // Asked alongside the walk, not before it: only an empty page needs the answer, and then it is ready.
    const bucketFound = this.bucketExists(bucket);
    bucketFound.catch(() => undefined); // an invalid name also fails the walk, which reports it
    const fold = options.delimiter === '/';
    const resumed = fold && after !== undefined ? this.cursors.take(cursorKey(bucket, options.prefix, after)) : undefined;
    const page: ListPage = { objects: [], prefixes: [] };
    let count = 0;
    let last: string | undefined;
    for await (const entry of this.walk(bucket, options.prefix, fold, after, resumed)) {
      if (after !== undefined && compareKeys(entry.key, after) <= 0) continue;
      if (count === max) {
        page.nextToken = last;
        if (entry.folder && last !== undefined)
          this.cursors.put(cursorKey(bucket, options.prefix, last), { folder: entry.folder, index: entry.at! });
        break;
      }
      if (entry.kind === 'prefix') page.prefixes.push(entry.key);
      else page.objects.push(entry.info);
      last = entry.key;
      count++;
    }
    if (count === 0 && !(await bucketFound)) throw noSuchBucket(bucket);
    return page;
  }

  /**
   * "Is anything below this folder?", the vfs's test for a directory, without reading and sorting the whole
   * folder: the folder is its own marker and sorts first, and one entry that is a file or folder says that
   * more follow. No such folder: an empty page, or NotFound when the bucket is missing too.
   */
  private async firstBelow(bucket: string, prefix: string): Promise<ListPage> {
    const marker = await this.head(bucket, prefix);
    if (!marker) {
      if (!(await this.bucketExists(bucket))) throw noSuchBucket(bucket);
      return { objects: [], prefixes: [] };
    }
    let more = false;
    try {
      const dir = await fs.opendir(this.filePath(bucket, prefix), { bufferSize: 32 });
      for await (const d of dir) {
        if (d.isFile() || d.isDirectory()) {
          more = true;
          break; // closes the directory
        }
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw storeError('list', e);
    }
    return { objects: [marker], prefixes: [], ...(more ? { nextToken: prefix } : {}) };
  }

  /**
   * Yields the keys under `prefix` in segment-wise order (a folder's marker before its contents), which is
   * the order continuation tokens compare in, starting after `after`. With `fold`, sub-folders come back
   * as prefixes. `resumed` continues a folder listing where its previous page stopped.
   */
  private async* walk(
    bucket: string,
    prefix: string,
    fold: boolean,
    after: string | undefined,
    resumed?: ListingCursor,
  ): AsyncGenerator<WalkEntry> {
    const slash = prefix.lastIndexOf('/');
    const dirKey = prefix.slice(0, slash + 1);
    const namePrefix = prefix.slice(slash + 1);
    // A resumed listing has passed the marker, which sorts first.
    if (dirKey !== '' && namePrefix === '' && !resumed) {
      const marker = await this.head(bucket, dirKey);
      // No such folder: nothing below it either (the usual answer when an upload asks what is below its key).
      if (!marker) return;
      if (after === undefined || compareKeys(dirKey, after) > 0) yield { kind: 'object', key: dirKey, info: marker };
    }
    yield* this.walkDir(bucket, dirKey, namePrefix, fold, after, resumed);
  }

  /**
   * Entries before the continuation token are skipped before anything is stat'ed (a page must not cost a
   * stat of every earlier entry), and files are stat'ed in parallel batches. In a folder listing (`fold`)
   * each entry says where it is in the folder, so that the page after it can resume there.
   */
  private async* walkDir(
    bucket: string,
    dirKey: string,
    namePrefix: string,
    fold: boolean,
    after: string | undefined,
    resumed?: ListingCursor,
  ): AsyncGenerator<WalkEntry> {
    const folder = resumed?.folder ?? (await this.readFolder(bucket, dirKey, namePrefix));
    if (!folder) return;
    const { names, kinds } = folder;
    const isAfter = (key: string) => after === undefined || compareKeys(key, after) > 0;
    const where = fold ? folder : undefined;
    let batchSize = 1;
    for (let i = resumed?.index ?? firstAfter(folder, dirKey, after); i < names.length;) {
      const key = dirKey + names[i]!;
      if (kinds[i] === DIRECTORY) {
        const at = i++;
        if (fold) {
          if (isAfter(`${key}/`)) yield { kind: 'prefix', key: `${key}/`, folder: where, at };
          continue;
        }
        const tokenInside = after?.startsWith(`${key}/`) ?? false;
        if (isAfter(`${key}/`)) {
          const marker = await this.head(bucket, `${key}/`);
          if (marker) yield { kind: 'object', key: `${key}/`, info: marker };
        }
        yield* this.walkDir(bucket, `${key}/`, '', false, tokenInside ? after : undefined);
        continue;
      }
      const batch: number[] = [];
      for (; i < names.length && kinds[i] !== DIRECTORY && batch.length < batchSize; i++) {
        if (kinds[i] === FILE && isAfter(dirKey + names[i]!)) batch.push(i);
      }
      // Growing batches: a caller that wants one key (is anything below this folder?) costs one stat.
      batchSize = Math.min(batchSize * 4, STAT_BATCH);
      const stats = await Promise.all(
        batch.map((j) => fs.stat(this.filePath(bucket, dirKey + names[j]!)).catch(() => undefined)),
      );
      for (let b = 0; b < batch.length; b++) {
        const st = stats[b];
        const fileKey = dirKey + names[batch[b]!]!;
        if (st?.isFile()) yield { kind: 'object', key: fileKey, info: infoOf(fileKey, st), folder: where, at: batch[b] };
      }
    }
  }

  /** The folder's entries whose names start with `namePrefix`, in key order; undefined if it is no folder. */
  private async readFolder(bucket: string, dirKey: string, namePrefix: string): Promise<FolderSnapshot | undefined> {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(this.filePath(bucket, dirKey), { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw storeError('list', e);
    }
    const wanted = entries
      .filter((d) => d.name.startsWith(namePrefix) && !(dirKey === '' && d.name === TEMP_NAME))
      .sort((a, b) => compareKeys(a.name, b.name));
    const kinds = new Uint8Array(wanted.length);
    const names = wanted.map((d, i) => {
      kinds[i] = d.isDirectory() ? DIRECTORY : d.isFile() ? FILE : OTHER;
      return d.name;
    });
    return { names, kinds };
  }

  async openReader(bucket: string, key: string, info: ObjectInfo): Promise<ObjectReader> {
    const opened = await this.openFile(bucket, key);
    if (opened === undefined) throw notFound(`${bucket}/${key}`);
    if (opened.info.etag !== info.etag) {
      await opened.reader.close();
      throw new GatewayError('PreconditionFailed', `${bucket}/${key} changed since it was opened`);
    }
    return opened.reader;
  }

  /**
   * open + fstat, without a stat by name first: a small download's open is two system calls.
   * `speculative` changes nothing here: the open holds a descriptor, no buffer.
   */
  async openObject(bucket: string, key: string, _options?: { speculative?: boolean }): Promise<OpenedObject | undefined> {
    if (key === '' || key.endsWith('/')) return undefined;
    return this.openFile(bucket, key);
  }

  private async openFile(bucket: string, key: string): Promise<OpenedObject | undefined> {
    const file = this.filePath(bucket, key);
    // A descriptor, not a FileHandle: an open by name is metadata, which a local disk answers from its
    // caches, so it runs on the event loop where calls there are allowed (one fewer thread-pool round trip
    // per small download), and only the reads, which may wait for the disk, go through the pool.
    let fd: number;
    try {
      const opened = this.onLoop(() => openSync(file, 'r'));
      fd = opened === NOT_ON_LOOP ? await openAsync(file) : opened;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw storeError('open', e);
    }
    // fstat of a descriptor just opened answers from the inode the open loaded (a network file system
    // fetched its attributes at open), so it runs on the event loop: 3-4 µs against 35-45 µs of CPU for a
    // round trip through libuv's thread pool on this VM, and one fewer wait per small download.
    let st: Stats;
    try {
      st = fstatSync(fd);
    } catch (e) {
      closeInBackground(fd);
      throw storeError('open', e);
    }
    // A folder opens too (O_RDONLY); it is not an object.
    if (!st.isFile()) {
      closeInBackground(fd);
      return undefined;
    }
    const held = st.size <= SMALL_READ_BYTES ? this.readWhole(fd, st.size) : undefined;
    if (held !== undefined) return { info: infoOf(key, st), reader: heldReader(held.data, held.release) };
    // The descriptor keeps reading the version it opened even if a new upload is renamed over it. It is
    // closed only once no read is in flight: a read queued after close(2) could read another file that
    // took the same descriptor number.
    let closed = false;
    let reading = 0;
    const readInto = async (offset: number, target: Buffer): Promise<number> => {
      const length = Math.min(target.length, st.size - offset);
      let filled = 0;
      try {
        while (filled < length) {
          if (closed) throw new Error('read after close');
          reading++;
          let bytesRead: number;
          try {
            bytesRead = await readAt(fd, target, filled, length - filled, offset + filled);
          } finally {
            if (--reading === 0 && closed) closeInBackground(fd);
          }
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
      } catch (e) {
        throw storeError('read', e);
      }
      return filled;
    };
    const reader: ObjectReader = {
      read: async (offset, length) => {
        if (offset >= st.size) return Buffer.alloc(0);
        const buf = Buffer.allocUnsafe(Math.min(length, st.size - offset));
        const filled = await readInto(offset, buf);
        return filled === buf.length ? buf : buf.subarray(0, filled);
      },
      readInto,
      // Nothing is left to report once reading is done (a read-only descriptor has nothing to flush), so
      // CLOSE is answered without waiting for close(2) to come back from the thread pool.
      close: async () => {
        if (closed) return;
        closed = true;
        if (reading === 0) closeInBackground(fd);
      },
    };
    return { info: infoOf(key, st), reader };
  }

  /**
   * A small file's bytes, read at open in one call on the event loop, and its descriptor closed there: its
   * READs are then answered from memory and its CLOSE has nothing to close. A 4 KiB download's read and
   * close went through the thread pool (35-45 µs of event-loop CPU each on this VM, and a thread hop on
   * the READ's way); a read of at most SMALL_READ_BYTES from the page cache takes a few microseconds, and
   * one that waits for the disk is one disk read, as a cold open's inode is, under onLoop's slow-call
   * pause. Undefined (the descriptor stays open for reads through the pool) where calls on the event loop
   * are off, when the read budget has no room, or when the file shrank since the fstat.
   */
  private readWhole(fd: number, size: number): { data: Buffer; release: Release } | undefined {
    const release = size === 0 ? () => undefined : this.readMemory.tryAcquire(size);
    if (release === undefined) return undefined;
    const data = Buffer.allocUnsafe(size);
    let filled: number | typeof NOT_ON_LOOP;
    try {
      filled = this.onLoop(() => {
        let n = 0;
        for (let got = -1; n < size && got !== 0; n += got) got = readSync(fd, data, n, size - n, n);
        return n;
      });
    } catch (e) {
      release();
      closeInBackground(fd);
      throw storeError('read', e);
    }
    if (filled !== size) {
      release();
      return undefined;
    }
    const closed = this.onLoop(() => {
      try {
        closeSync(fd);
      } catch {
        // A read-only descriptor has nothing to report, and must not be closed twice: the number may
        // already be another file's.
      }
    });
    if (closed === NOT_ON_LOOP) closeInBackground(fd);
    return { data, release };
  }

  async getStream(
    bucket: string,
    key: string,
    range: { start: number; end?: number; etag?: string },
  ): Promise<Readable> {
    const file = this.filePath(bucket, key);
    const st = await this.stat(file);
    if (!st?.isFile()) throw notFound(`${bucket}/${key}`);
    if (range.etag && infoOf(key, st).etag !== range.etag) {
      throw new GatewayError('PreconditionFailed', `${bucket}/${key} changed since it was opened`);
    }
    if (range.end !== undefined && range.end <= range.start)
      return createReadStream(file, { start: 1, end: 0 });
    return createReadStream(file, {
      start: range.start,
      end: range.end === undefined ? undefined : range.end - 1,
    });
  }

  async put(
    bucket: string,
    key: string,
    body: Buffer,
    options: Omit<WriterOptions, 'base'> = {},
  ): Promise<ObjectInfo> {
    await this.requireBucket(bucket);
    if (key.endsWith('/')) {
      const dir = this.filePath(bucket, key);
      await mkdirp(dir, bucket, key);
      return infoOf(key, await fs.stat(dir));
    }
    const writer = this.createWriter(bucket, key, options);
    try {
      await writer.write(body);
      return await writer.complete();
    } catch (e) {
      await writer.abort();
      throw e;
    }
  }

  createWriter(bucket: string, key: string, options: WriterOptions = {}): ObjectWriter {
    if (key.endsWith('/') || key === '')
      throw new GatewayError('InvalidPath', `not a file key: ${bucket}/${key}`);
    const writer = new LocalWriter(this, bucket, key, options, path.join(this.tempDir, tempName()));
    this.openWriters.add(writer);
    writer.done.finally(() => this.openWriters.delete(writer));
    return writer;
  }

  async copy(
    source: { bucket: string; key: string; etag?: string },
    target: { bucket: string; key: string },
  ): Promise<ObjectInfo> {
    await this.requireBucket(target.bucket);
    const from = this.filePath(source.bucket, source.key);
    const temp = path.join(this.tempDir, tempName());
    try {
      await fs.copyFile(from, temp);
      if (source.etag && !(await isVersion(from, source.key, source.etag))) {
        throw new GatewayError('PreconditionFailed', `${source.bucket}/${source.key} changed during the copy`);
      }
      return await this.publish(temp, target.bucket, target.key, false);
    } catch (e) {
      await fs.rm(temp, { force: true });
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`${source.bucket}/${source.key}`);
      throw storeError('copy', e);
    }
  }

  async delete(bucket: string, keys: string[]): Promise<void> {
    for (const key of keys) {
      const file = this.filePath(bucket, key);
      try {
        if (key.endsWith('/')) await fs.rmdir(file);
        else await fs.unlink(file);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // A folder with contents outlives the removal of its marker, as an S3 prefix does.
        if (
          code === 'ENOENT' ||
          code === 'ENOTEMPTY' ||
          code === 'EEXIST' ||
          code === 'EISDIR' ||
          code === 'ENOTDIR'
        ) {
          continue;
        }
        throw storeError('delete', e);
      }
    }
  }

  async statfs(): Promise<StoreStatfs> {
    const st = await fs.statfs(this.root);
    return {
      blockSize: st.bsize,
      totalBlocks: st.blocks,
      freeBlocks: st.bavail,
      totalFiles: st.files,
      freeFiles: st.ffree,
      nameMax: 255,
    };
  }

  async check(): Promise<void> {
    // Through the thread pool, not this.stat(): on a hung disk the probe must still time out and answer 503,
    // which a call blocking the event loop would prevent.
    const st = await fs.stat(this.root).catch(() => undefined);
    if (!st?.isDirectory())
      throw new GatewayError('StoreUnavailable', `storage root ${this.root} is not a directory`);
  }

  async close(): Promise<void> {
    await Promise.all([...this.openWriters].map((w) => w.abort('store closed')));
  }

  /**
   * Moves a finished temp file to its key; with `exclusive`, fails if the key exists. The rename is tried first and the folders are created only if
   * it fails for want of them, so a small upload costs one system call here instead of five (mkdir, stat of
   * the folder, stat of the target, rename, stat). `written` is the temp file's fstat taken before close:
   * rename and link keep the inode, size and mtime the object's ETag is made of.
   */
  async publish(
    temp: string,
    bucket: string,
    key: string,
    exclusive: boolean,
    written?: WrittenStat,
  ): Promise<ObjectInfo> {
    const file = this.filePath(bucket, key);
    const place = async () => {
      if (!exclusive) return fs.rename(temp, file);
      // link() fails if the target exists, which makes the check and the publish one atomic step.
      await fs.link(temp, file);
      await fs.unlink(temp);
    };
    try {
      await place().catch(async (e: unknown) => {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        await mkdirp(path.dirname(file), bucket, key);
        await place();
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const isDir = async () => (await this.stat(file))?.isDirectory() === true;
      if (code === 'EISDIR' || (code === 'EEXIST' && (await isDir())))
        throw new GatewayError('IsADirectory', `is a directory: /${bucket}/${key}`);
      if (code === 'EEXIST') throw new GatewayError('AlreadyExists', `already exists: /${bucket}/${key}`);
      if (code === 'ENOTDIR') throw fileInTheWay(bucket, key);
      throw e;
    }
    return infoOf(key, written ?? (await fs.stat(file)));
  }

  /**
   * Writes a small upload held in memory and moves it to its key with synchronous calls; undefined when
   * calls on the event loop are off, and the writer streams it through the thread pool instead.
   */
  commitOnLoop(temp: string, bucket: string, key: string, exclusive: boolean, chunks: Buffer[]): CommitResult | undefined {
    const file = this.filePath(bucket, key);
    const committed = this.onLoop(() => commitSmallUpload(temp, file, exclusive, chunks));
    if (committed === NOT_ON_LOOP) return undefined;
    this.loopCommits++;
    return committed;
  }

  /** stat by name; undefined when nothing (or nothing reachable) is there. */
  private async stat(file: string): Promise<Stats | undefined> {
    const st = this.onLoop(() => {
      try {
        return statSync(file, { throwIfNoEntry: false });
      } catch {
        return undefined; // ENOTDIR, EACCES: nothing this store can read is there
      }
    });
    return st === NOT_ON_LOOP ? fs.stat(file).catch(() => undefined) : st;
  }

  /**
   * Makes a file system call synchronously where this store's disk allows it (small-commit.ts): there a
   * stat or a small commit costs microseconds, against 35-45 µs of event-loop CPU per call through libuv's
   * thread pool, plus a thread hop. After a call slower than `slowCallMs` (a disk under heavy writeback,
   * say), calls go through the pool for a minute, so that a slow disk stalls the event loop once, not for
   * every request.
   */
  private onLoop<T>(call: () => T): T | typeof NOT_ON_LOOP {
    if (!this.callsOnLoop || performance.now() < this.loopCallsPausedUntil) return NOT_ON_LOOP;
    const started = performance.now();
    try {
      return call();
    } finally {
      const ms = performance.now() - started;
      if (ms > (this.options.slowCallMs ?? 10)) {
        this.loopCallsPausedUntil = performance.now() + LOOP_CALLS_PAUSE_MS;
        this.options.logger?.warn(
          { 'call-ms': Math.round(ms * 10) / 10, 'pause-seconds': LOOP_CALLS_PAUSE_MS / 1000 },
          'local store: a file system call took long on the event loop; making them through the thread pool for a while',
        );
      }
    }
  }

  private async requireBucket(bucket: string): Promise<void> {
    if (!(await this.bucketExists(bucket))) throw noSuchBucket(bucket);
  }

  private bucketPath(bucket: string): string {
    if (!isSafeSegment(bucket) || bucket.startsWith('.'))
      throw new GatewayError('InvalidPath', `invalid bucket name: ${bucket}`);
    return path.join(this.root, bucket);
  }

  /** Defence in depth: vfs already confines paths, but a key must never reach outside its bucket. */
  filePath(bucket: string, key: string): string {
    const segments = key.split('/');
    if (key.endsWith('/')) segments.pop();
    if (key !== '' && !segments.every(isSafeSegment))
      throw new GatewayError('InvalidPath', `invalid key: ${key}`);
    return path.join(this.bucketPath(bucket), ...segments);
  }
}

/** Files up to this size are read whole at open (readWhole). */
export const SMALL_READ_BYTES = 64 * 1024;

/** Reads of a file read whole at open; `release` returns its bytes to the budget at close. */
function heldReader(data: Buffer, release: Release): ObjectReader {
  let closed = false;
  const check = () => {
    if (closed) throw storeError('read', new Error('read after close'));
  };
  return {
    read: async (offset, length) => {
      check();
      // A view, not a copy: the held buffer is never written again.
      return data.subarray(Math.min(offset, data.length), Math.min(offset + length, data.length));
    },
    readInto: async (offset, target) => {
      check();
      return offset >= data.length ? 0 : data.copy(target, 0, offset, Math.min(offset + target.length, data.length));
    },
    close: async () => {
      if (closed) return;
      closed = true;
      release();
    },
  };
}

/**
 * Uploads up to this size are held in memory until CLOSE and committed in one go (commitOnLoop); larger
 * ones stream to their temp file from the first write that does not fit.
 */
export const SMALL_UPLOAD_BYTES = 64 * 1024;

class LocalWriter implements ObjectWriter {
  /** The temp file, once the upload streams to disk; undefined while it is small enough to hold. */
  private handle: Promise<fs.FileHandle> | undefined;
  private held: Buffer[] = [];
  private readonly releases: Release[] = [];
  private written = 0;
  private state: 'open' | 'completed' | 'aborted' = 'open';
  private resolveDone!: () => void;
  readonly done = new Promise<void>((r) => {
    this.resolveDone = r;
  });

  constructor(
    private readonly store: LocalStore,
    private readonly bucket: string,
    private readonly key: string,
    private readonly options: WriterOptions,
    private readonly temp: string,
  ) {
    // `size` includes the base from the start, as ObjectWriter promises, not only once start() ran.
    this.written = options.base?.length ?? 0;
    if (options.base && options.base.length > 0) this.streamToDisk();
  }

  get size(): number {
    return this.written;
  }

  async write(data: Buffer): Promise<void> {
    if (this.state !== 'open')
      throw new GatewayError('Failure', `upload of ${this.key} is already ${this.state}`);
    // Offsets are taken in call order, so writes issued without waiting for each other stay in order.
    const offset = this.written;
    this.written += data.length;
    if (this.handle === undefined) {
      if (this.written <= SMALL_UPLOAD_BYTES) {
        // Held only with room in the memory budget; without it the upload streams to disk as a large one.
        const release = data.length === 0 ? () => undefined : this.store.memory.tryAcquire(data.length);
        if (release) {
          this.releases.push(release);
          // A copy: the caller may reuse `data` once this resolves.
          this.held.push(Buffer.from(data));
          return;
        }
      }
      this.streamToDisk();
    }
    const handle = await this.handle!;
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await handle.write(data, done, data.length - done, offset + done);
      done += bytesWritten;
    }
  }

  async complete(): Promise<ObjectInfo> {
    if (this.state !== 'open')
      throw new GatewayError('Failure', `upload of ${this.key} is already ${this.state}`);
    this.state = 'completed';
    try {
      if (this.handle === undefined) {
        const exclusive = this.options.ifNoneMatch ?? false;
        const committed = this.store.commitOnLoop(this.temp, this.bucket, this.key, exclusive, this.held);
        if (committed) {
          const { stat } = committed;
          // Rounded as Node's Stats rounds it, so that this info equals what head() returns later.
          const written = { ...stat, mtime: new Date(Math.round(stat.mtimeMs)), isDirectory: () => false };
          // Missing folders, an existing key with `exclusive`, a folder in the way: as for any upload.
          if (committed.placeError) return await this.store.publish(this.temp, this.bucket, this.key, exclusive, written);
          return infoOf(this.key, written);
        }
        this.streamToDisk();
      }
      const handle = await this.handle!;
      const written = await handle.stat();
      await handle.close();
      return await this.store.publish(this.temp, this.bucket, this.key, this.options.ifNoneMatch ?? false, written);
    } catch (e) {
      await fs.rm(this.temp, { force: true });
      throw e instanceof GatewayError ? e : storeError('complete upload', e);
    } finally {
      this.releaseHeld();
      this.resolveDone();
    }
  }

  async completePartial(): Promise<ObjectInfo | undefined> {
    if (this.state !== 'open') return undefined;
    return this.complete();
  }

  async abort(_reason?: string): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    this.releaseHeld();
    if (this.handle) {
      await this.handle.then((h) => h.close()).catch(() => undefined);
      await fs.rm(this.temp, { force: true });
    }
    this.resolveDone();
  }

  /** Opens the temp file (after copying the base into it) and writes what was held so far. */
  private streamToDisk(): void {
    const held = this.held;
    this.held = [];
    this.handle = (async () => {
      let handle: fs.FileHandle;
      const base = this.options.base;
      if (base && base.length > 0) {
        // Copy only the requested prefix of the base object.
        const source = this.store.filePath(base.bucket ?? this.bucket, base.info.key);
        await fs.copyFile(source, this.temp).catch((e) => {
          throw (e as NodeJS.ErrnoException).code === 'ENOENT'
            ? notFound(base.info.key)
            : storeError('append', e);
        });
        // Pinned to the version the caller saw, as S3's copy is by its ETag: a file replaced since (a
        // resume racing another upload, a cp whose source was overwritten) fails the upload instead.
        // The temp file goes with the upload, as when the copy itself fails (complete() or abort()).
        if (!(await isVersion(source, base.info.key, base.info.etag).catch(() => false)))
          throw new GatewayError('PreconditionFailed', `${base.info.key} changed since it was opened`);
        await fs.truncate(this.temp, base.length);
        handle = await fs.open(this.temp, 'r+');
      } else {
        handle = await fs.open(this.temp, 'wx');
      }
      try {
        let offset = 0;
        for (const chunk of held) {
          for (let done = 0; done < chunk.length;) {
            done += (await handle.write(chunk, done, chunk.length - done, offset + done)).bytesWritten;
          }
          offset += chunk.length;
        }
      } catch (e) {
        await handle.close().catch(() => undefined);
        throw e;
      } finally {
        this.releaseHeld();
      }
      return handle;
    })();
    this.handle.catch(() => undefined);
  }

  private releaseHeld(): void {
    for (const release of this.releases.splice(0)) release();
  }
}

/** What an object's info is made of: a Stats, or the fields a commit on the event loop took. */
type WrittenStat = Pick<Stats, 'size' | 'mtime' | 'mtimeMs' | 'ino' | 'isDirectory'>;

/** Whether `file` is still the version `etag` names; a failed stat (the file gone) throws. */
async function isVersion(file: string, key: string, etag: string): Promise<boolean> {
  return infoOf(key, await fs.stat(file)).etag === etag;
}

function infoOf(key: string, st: WrittenStat): ObjectInfo {
  const size = st.isDirectory() ? 0 : st.size;
  return {
    key,
    size,
    lastModified: st.mtime,
    etag: `"${st.ino.toString(16)}-${size.toString(16)}-${Math.round(st.mtimeMs * 1000).toString(16)}"`,
  };
}

function isSafeSegment(s: string): boolean {
  return (
    s !== '' &&
    s !== '.' &&
    s !== '..' &&
    !s.includes('\0') &&
    !s.includes(path.sep) &&
    Buffer.byteLength(s) <= 255
  );
}

const SLASH = 0x2f;

/**
 * Segment-wise key order: `a/` and everything under it sort before `a-b`, as a folder walk yields them;
 * that is byte order with `/` below every other character. Within a segment S3 orders keys by their UTF-8
 * bytes, which is code point order: below the surrogates UTF-16 units compare the same, so only characters
 * from U+D800 up need their code points. Nothing is allocated: a listing compares every key it sorts.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (ca === SLASH) return -1;
    if (cb === SLASH) return 1;
    if (ca >= 0xd800 || cb >= 0xd800) return a.codePointAt(i)! - b.codePointAt(i)!;
    return ca - cb;
  }
  return a.length - b.length;
}

/**
 * The index of the folder's first entry after the token, or of the sub-folder the token lies inside
 * (a recursive walk resumes within it). A sub-folder's key is its name and `/`.
 */
function firstAfter(folder: FolderSnapshot, dirKey: string, after: string | undefined): number {
  if (after === undefined) return 0;
  const keyOf = (i: number) => dirKey + folder.names[i]! + (folder.kinds[i] === DIRECTORY ? '/' : '');
  let lo = 0;
  let hi = folder.names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(keyOf(mid), after) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && folder.kinds[lo - 1] === DIRECTORY && after.startsWith(keyOf(lo - 1)) ? lo - 1 : lo;
}

function cursorKey(bucket: string, prefix: string, token: string): string {
  return `${bucket}\0${prefix}\0${token}`;
}

async function mkdirp(dir: string, bucket: string, key: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true }).catch((e) => {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw fileInTheWay(bucket, key);
    throw storeError('mkdir', e);
  });
}

function noSuchBucket(bucket: string): GatewayError {
  return new GatewayError('NotFound', `no such bucket: ${bucket}`);
}

/** A file where `key` needs a folder (one of its parents). */
function fileInTheWay(bucket: string, key: string): GatewayError {
  return new GatewayError('NotADirectory', `a file is in the way of /${bucket}/${key}`);
}

/*
 * Unique without a random draw per upload (that was 3 % of a small put's CPU): a prefix drawn once per
 * process, then a counter. Replicas sharing the folder draw different prefixes; `wx` refuses a clash.
 */
const TEMP_PREFIX = `upload-${randomBytes(8).toString('hex')}-`;
let tempCount = 0;

function tempName(): string {
  tempCount += 1;
  return TEMP_PREFIX + tempCount.toString(36);
}

function storeError(operation: string, e: unknown): GatewayError {
  if (e instanceof GatewayError) return e;
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'EACCES' || err.code === 'EPERM') {
    return new GatewayError('PermissionDenied', `local store ${operation}: permission denied`, { cause: e });
  }
  if (err.code === 'ENOSPC')
    return new GatewayError('QuotaExceeded', `local store ${operation}: no space left`, { cause: e });
  return new GatewayError('Failure', `local store ${operation} failed: ${err.code ?? err.message}`, {
    cause: e,
  });
}

function openAsync(file: string): Promise<number> {
  return new Promise((resolve, reject) => open(file, 'r', (err, fd) => (err ? reject(err) : resolve(fd))));
}

function readAt(fd: number, target: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    read(fd, target, offset, length, position, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead))),
  );
}

/** close(2) through the thread pool, unawaited: a read-only descriptor has nothing to report. */
function closeInBackground(fd: number): void {
  close(fd, () => undefined);
}
