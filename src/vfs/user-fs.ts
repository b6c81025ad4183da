import {
  alreadyExists,
  GatewayError,
  isADirectory,
  isGatewayError,
  notADirectory,
  notEmpty,
  notFound,
  permissionDenied,
  unsupported,
} from '../errors.js';
import type { KeyProbe, ListPage, ObjectInfo, ObjectStore, OpenedObject } from '../storage/object-store.js';
import type { AccessControl, FsAction } from './access.js';
import type { Namespace, Resolution } from './namespace.js';
import { baseName, dirPrefix, joinPath, normalizePath, parentOf, type StoreLocation } from './paths.js';
import type {
  DirEntry,
  DirHandle,
  FileStat,
  OpenFlags,
  ReadHandle,
  SetAttributes,
  StatFs,
  UserFileSystem,
  WriteHandle,
} from './types.js';
import { MAX_LEARNT_FILES, SequentialPrefetch } from './sequential-prefetch.js';
import { MAX_LEARNT_SUBDIRS, SubdirCache } from './subdir-cache.js';
import { ObjectWriteHandle, StoreCopySource, type WriteEndResult } from './write-handle.js';

export interface ObjectFileSystemOptions {
  store: ObjectStore;
  namespace: Namespace;
  access: AccessControl;
  /** ENABLE_NO_OP accepts and ignores mode, owner and times; DEFAULT refuses them (the managed service on S3). */
  setStatOption: 'ENABLE_NO_OP' | 'DEFAULT';
  keepPartial: boolean;
  spoolDir: string;
  spoolMaxBytes: number;
  reorderWindowBytes?: number;
  /** A top-level name in each bucket the store keeps for itself (S3 upload journal): invisible and off limits. */
  hiddenPrefix?: string;
  /** Concurrent copies while renaming a directory. */
  renameConcurrency?: number;
  /**
   * Small files of a listed directory fetched ahead while a client downloads them one by one (see
   * SequentialPrefetch); 0 or absent: none. For stores where an open is a network round trip.
   */
  prefetchFiles?: number;
  /** Metrics hook: a file fetched ahead was used by an OPEN, or dropped unused. */
  onPrefetchedFile?: (outcome: 'used' | 'unused') => void;
  /** Audit hook for each file handle that ends. */
  onWriteEnd?: (path: string, result: WriteEndResult) => void;
}

const DIR_PERMISSIONS = 0o744;
const FILE_PERMISSIONS = 0o644;
const EPOCH = new Date(0);
/**
 * A positive "this directory exists" answer is reused this long, to spare a request per small upload; so
 * is a STAT's answer for a file or for nothing there, for the OPEN that follows it (see recentStat).
 */
const DIR_CACHE_MS = 3000;
/** STAT answers remembered per session; a client stats one path before each upload, so few are live. */
const MAX_STAT_ANSWERS = 256;

type Located = { path: string; location: StoreLocation; fileOnly: boolean };

/**
 * A user's filesystem over an object store: paths are normalized and mapped (PATH or LOGICAL) and every
 * operation is checked before any store call. Directories are key prefixes, made explicit by a zero-byte
 * `dir/` marker that mkdir writes; a directory exists if its marker or any key below it does.
 */
export class ObjectFileSystem implements UserFileSystem {
  readonly home: string;
  private readonly store: ObjectStore;
  private readonly dirCache = new Map<string, number>();
  /** What this session's STATs found at paths that are not directories: the object, or nothing; and when. */
  private readonly statAnswers = new Map<string, { at: number; object: ObjectInfo | undefined }>();
  private readonly subdirs = new SubdirCache();
  private readonly prefetch: SequentialPrefetch | undefined;

  constructor(private readonly options: ObjectFileSystemOptions) {
    this.store = options.store;
    this.home = options.namespace.home;
    if (options.prefetchFiles)
      this.prefetch = new SequentialPrefetch(
        (path) => this.openAhead(path),
        options.prefetchFiles,
        options.onPrefetchedFile,
      );
  }

  /** Ends what the session left running: files fetched ahead and not opened. */
  async close(): Promise<void> {
    this.prefetch?.close();
  }

  resolve(path: string): string {
    return normalizePath(path, this.home);
  }

  async realpath(path: string): Promise<string> {
    return this.resolve(path);
  }

  /**
   * Creates the home directory's marker when the home does not exist yet (its bucket must), so that a new
   * user lands somewhere real. Does nothing for LOGICAL homes, whose root is virtual.
   */
  async ensureHome(): Promise<void> {
    const r = this.options.namespace.resolve(this.home);
    if (r.kind !== 'store' || r.location.key === '') return;
    const located = { path: this.home, location: r.location, fileOnly: false };
    const exists = await this.statLocated(located).then(
      () => true,
      (e) => (isGatewayError(e, 'NotFound') ? false : Promise.reject(e)),
    );
    if (!exists) await this.store.put(r.location.bucket, `${r.location.key}/`, Buffer.alloc(0));
  }

  async stat(path: string): Promise<FileStat> {
    const p = this.resolve(path);
    const r = this.options.namespace.resolve(p);
    if (r.kind === 'none') throw notFound(p);
    if (r.kind === 'virtual') return dirStat(EPOCH);
    const located = { path: p, location: r.location, fileOnly: r.fileOnly };
    this.check('stat', located);
    return this.statLocated(located, true);
  }

  async openDir(path: string): Promise<DirHandle> {
    const p = this.resolve(path);
    const r = this.options.namespace.resolve(p);
    if (r.kind === 'none') throw notFound(p);
    if (r.kind === 'virtual') return this.virtualDir(p, r.entries);
    if (r.fileOnly) throw notADirectory(p);
    const located = { path: p, location: r.location, fileOnly: false };
    this.check('list', located);
    const prefetch = this.prefetch;
    const listing = new PrefixDirHandle(
      p,
      this.store,
      r.location,
      this.options.hiddenPrefix,
      (names, at) => this.subdirs.learn(r.location, names, at),
      prefetch && ((names, sizes) => prefetch.learnListing(p, names, sizes)),
    );
    // A directory seen moments ago (the client's stat before its OPENDIR, as `ls` sends them) is trusted,
    // as uploads trust it: on S3 that spares a HEAD and a LIST racing the first page on the same server.
    if (this.recentlySeenDirectory(r.location)) return listing;
    // The first page is asked for alongside the stat, not after it: on S3 that saves one round trip.
    const st = await this.statLocated(located).catch(async (e: unknown) => {
      await listing.close();
      throw e;
    });
    if (st.type !== 'directory') {
      await listing.close();
      throw notADirectory(p);
    }
    return listing;
  }

  async open(path: string, flags: OpenFlags): Promise<ReadHandle | WriteHandle> {
    const located = this.locate(path);
    if (flags.read && flags.write) {
      throw unsupported(`${located.path}: opening a file for reading and writing at once is not supported`);
    }
    if (!flags.write) return this.openRead(located, flags);
    return this.openWrite(located, flags);
  }

  private async openRead(located: Located, flags: OpenFlags): Promise<ReadHandle> {
    this.check('read', located);
    const { bucket, key } = located.location;
    // O_EXCL only asks whether the object exists; otherwise the open and the first chunk are one request.
    const excl = flags.create && flags.exclusive;
    let object: OpenedObject | undefined;
    let info: ObjectInfo | undefined;
    if (key !== '') {
      if (excl) info = await this.store.head(bucket, key);
      else {
        const ahead = this.prefetch?.take(located.path);
        object = (ahead && (await ahead.catch(() => undefined))) || (await this.store.openObject(bucket, key));
      }
    }
    // open(O_RDONLY | O_CREAT [| O_EXCL]) keeps its POSIX meaning.
    if (info && excl) throw alreadyExists(located.path);
    if (!object && flags.create && key !== '' && !(await this.isDirectory(located))) {
      this.check('write', located);
      if ((await this.parentStat(located))?.type !== 'directory') throw notFound(parentOf(located.path));
      info = await this.store.put(bucket, key, Buffer.alloc(0), { ifNoneMatch: flags.exclusive });
      object = { info, reader: await this.store.openReader(bucket, key, info) };
    }
    if (!object) {
      if ((await this.statLocated(located).catch(() => undefined))?.type === 'directory')
        throw isADirectory(located.path);
      throw notFound(located.path);
    }
    const { info: opened, reader } = object;
    const handle: ReadHandle = {
      kind: 'read',
      path: located.path,
      read: (offset, length) => reader.read(offset, length),
      stat: async () => fileStat(opened),
      close: () => reader.close(),
      copySource: new StoreCopySource(located.path, this.store, located.location, opened),
    };
    // Assigned, not spread in: object spread is slow on Node 20, and every download opens a handle.
    if (reader.readInto) handle.readInto = reader.readInto.bind(reader);
    return handle;
  }

  private async openWrite(located: Located, flags: OpenFlags): Promise<WriteHandle> {
    this.check('write', located);
    const { bucket, key } = located.location;
    if (key === '') throw isADirectory(located.path);
    // At most one parallel round trip: the object, whether a directory of that name exists, and the
    // parent. A new file replacing whatever is there (sftp put) skips the first two when this session
    // knows the directory's subdirectories, so that a small upload costs the store a single request, or
    // when the client's STAT has just answered them (OpenSSH's put and scp ask before each upload); a
    // file found there also answers for the parent, and needs no request at all when it is replaced.
    const recent = this.recentStat(located.location);
    const noDirectory = located.fileOnly || this.knownNotADirectory(located) || recent !== undefined;
    const replaces = flags.create && flags.truncate && !flags.exclusive;
    const stillThere = replaces ? recent?.object : undefined;
    let probed: Promise<KeyProbe>;
    if (stillThere) probed = Promise.resolve({ object: stillThere });
    else if (!noDirectory) probed = this.probe(located.location);
    else if (replaces) probed = Promise.resolve({});
    else probed = this.store.head(bucket, key).then((object) => ({ object }));
    const [{ object: existing, folder: directoryBelow }, parent] = await Promise.all([
      probed,
      located.fileOnly || recent?.object
        ? Promise.resolve<FileStat | undefined>(dirStat(EPOCH))
        : this.parentStat(located),
    ]);
    if (!existing) {
      if (directoryBelow) throw isADirectory(located.path);
      if (!flags.create) throw notFound(located.path);
      if (parent?.type !== 'directory') throw notFound(parentOf(located.path));
    } else if (flags.exclusive && flags.create) {
      throw alreadyExists(located.path);
    }
    return new ObjectWriteHandle({
      path: located.path,
      store: this.store,
      location: located.location,
      existing: existing && !flags.truncate ? existing : undefined,
      append: flags.append,
      exclusive: flags.exclusive && flags.create,
      keepPartial: this.options.keepPartial,
      reorderWindowBytes: this.options.reorderWindowBytes ?? 8 * 1024 * 1024,
      spoolDir: this.options.spoolDir,
      spoolMaxBytes: this.options.spoolMaxBytes,
      onEnd: (result) => {
        // What was fetched ahead before or while the upload ran may be older than what it published.
        this.prefetch?.invalidate();
        this.options.onWriteEnd?.(located.path, result);
      },
    });
  }

  async mkdir(path: string): Promise<void> {
    const located = this.locate(path);
    if (located.fileOnly || located.location.key === '') throw alreadyExists(located.path);
    this.check('mkdir', located);
    const [self, parent] = await Promise.all([
      this.statLocated(located).catch((e) => (isGatewayError(e, 'NotFound') ? undefined : Promise.reject(e))),
      this.parentStat(located),
    ]);
    if (self) throw alreadyExists(located.path);
    if (parent?.type !== 'directory') throw notFound(parentOf(located.path));
    const { bucket, key } = located.location;
    const at = Date.now();
    this.statAnswers.clear();
    await this.store.put(bucket, `${key}/`, Buffer.alloc(0));
    this.markDirectory(located.location, at);
    this.subdirs.learn(located.location, [], at);
    this.noteSubdirectory(located);
  }

  async rmdir(path: string): Promise<void> {
    const located = this.locate(path);
    const { bucket, key } = located.location;
    if (key === '' || located.fileOnly) throw permissionDenied(`cannot remove ${located.path}`);
    this.check('rmdir', located);
    const st = await this.statLocated(located);
    if (st.type !== 'directory') throw notADirectory(located.path);
    const page = await this.store.list(bucket, { prefix: `${key}/`, delimiter: '/', maxKeys: 2 });
    if (page.prefixes.length > 0 || page.objects.some((o) => o.key !== `${key}/`))
      throw notEmpty(located.path);
    await this.store.delete(bucket, [`${key}/`]);
    this.dirCache.clear();
    this.statAnswers.clear();
  }

  async remove(path: string): Promise<void> {
    const located = this.locate(path);
    const { bucket, key } = located.location;
    if (key === '') throw isADirectory(located.path);
    this.check('delete', located);
    const info = await this.store.head(bucket, key);
    if (!info) {
      if (await this.isDirectory(located)) throw isADirectory(located.path);
      throw notFound(located.path);
    }
    await this.store.delete(bucket, [key]);
    this.prefetch?.invalidate();
    // On S3 a directory without a marker vanishes with its last key.
    this.dirCache.clear();
    this.statAnswers.clear();
  }

  async rename(from: string, to: string, overwrite: boolean): Promise<void> {
    // A file fetched ahead while the copy ran may be the one it replaced.
    try {
      await this.renamePaths(from, to, overwrite);
    } finally {
      this.prefetch?.invalidate();
    }
  }

  private async renamePaths(from: string, to: string, overwrite: boolean): Promise<void> {
    const source = this.locate(from);
    const target = this.locate(to);
    if (source.path === target.path) return;
    if (source.location.key === '' || target.location.key === '') {
      throw permissionDenied(
        `cannot rename ${source.path} to ${target.path}: bucket roots cannot be renamed`,
      );
    }
    if (target.path.startsWith(`${source.path}/`)) {
      throw new GatewayError('InvalidPath', `cannot move ${source.path} into itself`);
    }
    this.check('read', source);
    this.check('delete', source);
    this.check('write', target);
    // The target is about to exist, perhaps as a directory.
    this.statAnswers.clear();
    const [srcStat, dstStat, dstParent] = await Promise.all([
      this.statLocated(source),
      this.statLocated(target).catch((e) => (isGatewayError(e, 'NotFound') ? undefined : Promise.reject(e))),
      this.parentStat(target),
    ]);
    if (dstParent?.type !== 'directory') throw notFound(parentOf(target.path));
    if (srcStat.type === 'file') {
      if (dstStat?.type === 'directory') throw isADirectory(target.path);
      if (dstStat && !overwrite) throw alreadyExists(target.path);
      const info = await this.store.head(source.location.bucket, source.location.key);
      if (!info) throw notFound(source.path);
      await this.store.copy(
        { bucket: source.location.bucket, key: source.location.key, etag: info.etag },
        target.location,
      );
      await this.store.delete(source.location.bucket, [source.location.key]);
      return;
    }
    if (dstStat) throw alreadyExists(target.path);
    if (this.options.access.checksEachKey) await this.checkEachKey(source, target);
    await this.renameDirectory(source.location, target.location);
    this.noteSubdirectory(target);
    this.dirCache.clear();
  }

  /**
   * A directory rename is a copy and a delete of every key below it: under policies each key is checked
   * (read + delete at the source, write at the target) before anything is copied.
   */
  private async checkEachKey(source: Located, target: Located): Promise<void> {
    const srcPrefix = `${source.location.key}/`;
    let token: string | undefined;
    do {
      const page = await this.store.list(source.location.bucket, { prefix: srcPrefix, continuationToken: token });
      for (const o of page.objects) {
        const suffix = o.key.slice(srcPrefix.length);
        const name = suffix.replace(/\/$/, '');
        const at = (l: Located, key: string): Located => ({
          path: name === '' ? l.path : joinPath(l.path, name),
          location: { bucket: l.location.bucket, key },
          fileOnly: false,
        });
        const from = at(source, o.key);
        this.check('read', from);
        this.check('delete', from);
        this.check('write', at(target, `${target.location.key}/${suffix}`));
      }
      token = page.nextToken;
    } while (token);
  }

  /** Copies every key under the prefix with bounded concurrency, then deletes the originals. */
  private async renameDirectory(from: StoreLocation, to: StoreLocation): Promise<void> {
    const concurrency = this.options.renameConcurrency ?? 8;
    const srcPrefix = `${from.key}/`;
    const dstPrefix = `${to.key}/`;
    const copied: string[] = [];
    let token: string | undefined;
    let sawMarker = false;
    do {
      const page = await this.store.list(from.bucket, { prefix: srcPrefix, continuationToken: token });
      const queue = [...page.objects];
      const worker = async () => {
        for (let o = queue.shift(); o; o = queue.shift()) {
          const suffix = o.key.slice(srcPrefix.length);
          if (suffix === '') sawMarker = true;
          if (o.key.endsWith('/')) await this.store.put(to.bucket, dstPrefix + suffix, Buffer.alloc(0));
          // Not pinned to the listed ETag: some stores list another ETag than HEAD reports (Swift, for a
          // copy of a multipart object), and copy() pins the version it HEADs anyway.
          else
            await this.store.copy(
              { bucket: from.bucket, key: o.key },
              { bucket: to.bucket, key: dstPrefix + suffix },
            );
          copied.push(o.key);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      token = page.nextToken;
    } while (token);
    if (!sawMarker) await this.store.put(to.bucket, dstPrefix, Buffer.alloc(0));
    // Children before their folders, so that a local store's folders are empty when their marker goes.
    copied.sort((a, b) => b.length - a.length);
    for (let i = 0; i < copied.length; i += 1000)
      await this.store.delete(from.bucket, copied.slice(i, i + 1000));
  }

  async setstat(path: string, attrs: SetAttributes): Promise<void> {
    const located = this.locate(path);
    const st = await this.statLocated(located);
    const changesMetadata =
      attrs.permissions !== undefined ||
      attrs.uid !== undefined ||
      attrs.mtime !== undefined ||
      attrs.atime !== undefined;
    if (changesMetadata && this.options.setStatOption === 'DEFAULT') {
      throw unsupported(`${located.path}: changing mode, owner or times is not supported on object storage`);
    }
    if (attrs.size !== undefined && attrs.size !== st.size) {
      if (st.type === 'directory') throw isADirectory(located.path);
      if (attrs.size !== 0) throw unsupported(`${located.path}: only truncation to size 0 is supported`);
      this.check('write', located);
      await this.store.put(located.location.bucket, located.location.key, Buffer.alloc(0));
    }
  }

  async statfs(path: string): Promise<StatFs> {
    const p = this.resolve(path);
    const r = this.options.namespace.resolve(p);
    const bucket = r.kind === 'store' ? r.location.bucket : undefined;
    const s = bucket ? await this.store.statfs(bucket) : await this.store.statfs('');
    return {
      blockSize: s.blockSize,
      fragmentSize: s.blockSize,
      blocks: s.totalBlocks,
      freeBlocks: s.freeBlocks,
      availableBlocks: s.freeBlocks,
      files: s.totalFiles,
      freeFiles: s.freeFiles,
      availableFiles: s.freeFiles,
      nameMax: s.nameMax,
    };
  }

  private locate(path: string): Located {
    const p = this.resolve(path);
    const r: Resolution = this.options.namespace.resolve(p);
    if (r.kind === 'none') throw notFound(p);
    if (r.kind === 'virtual') throw permissionDenied(`${p} is a read-only virtual directory`);
    return { path: p, location: r.location, fileOnly: r.fileOnly };
  }

  private check(action: FsAction, located: Located): void {
    const hidden = this.options.hiddenPrefix;
    const key = located.location.key;
    if (hidden && (key === hidden || key.startsWith(`${hidden}/`))) {
      throw permissionDenied(`permission denied: ${located.path} is reserved for the gateway`);
    }
    this.options.access.check(action, located.location, located.path);
  }

  /** OPEN's read of `path` for SequentialPrefetch, or undefined where OPEN would refuse it. */
  private openAhead(path: string): Promise<OpenedObject | undefined> | undefined {
    let located: Located;
    try {
      located = this.locate(path);
      this.check('read', located);
    } catch {
      return undefined;
    }
    const { bucket, key } = located.location;
    return key === '' ? undefined : this.store.openObject(bucket, key, { speculative: true });
  }

  /** `remember`: keep a file's or nothing's answer for the OPEN that may follow (a client's own STAT). */
  private async statLocated(located: Located, remember = false): Promise<FileStat> {
    const { bucket, key } = located.location;
    if (key === '') {
      if (await this.store.bucketExists(bucket)) return dirStat(EPOCH);
      throw notFound(located.path);
    }
    if (located.fileOnly) {
      const info = await this.store.head(bucket, key);
      if (!info) throw notFound(located.path);
      return fileStat(info);
    }
    const found = await this.probe(located.location);
    if (found.object) {
      if (remember) this.noteStat(located.location, found.object);
      return fileStat(found.object);
    }
    if (found.folder) {
      this.markDirectory(located.location);
      return dirStat(found.folder.marker?.lastModified ?? EPOCH);
    }
    if (remember) this.noteStat(located.location, undefined);
    throw notFound(located.path);
  }

  /**
   * The object at the key and whether a folder of that name exists: one store request where the store
   * answers both at once, otherwise head and the first key below, in parallel (one round trip).
   */
  private async probe(location: StoreLocation): Promise<KeyProbe> {
    const { bucket, key } = location;
    if (this.store.probe) return this.store.probe(bucket, key);
    const [object, below] = await Promise.all([this.store.head(bucket, key), this.firstBelow(location)]);
    const first = below.objects[0];
    if (!first && below.prefixes.length === 0) return { object };
    return { object, folder: { marker: first?.key === `${key}/` ? first : undefined } };
  }

  /** The first key below `key/` (its marker sorts first); a missing bucket lists as empty. */
  private firstBelow(location: StoreLocation): Promise<ListPage> {
    return this.store.list(location.bucket, { prefix: `${location.key}/`, maxKeys: 1 }).catch((e) => {
      if (isGatewayError(e, 'NotFound')) return { objects: [], prefixes: [] };
      throw e;
    });
  }

  /** The store directory holding `located` and its name there, when it is a plain child of its parent. */
  private parentLocation(located: Located): { dir: StoreLocation; name: string } | undefined {
    const r = this.options.namespace.resolve(parentOf(located.path));
    if (r.kind !== 'store' || r.fileOnly) return undefined;
    const name = baseName(located.path);
    const { bucket, key } = located.location;
    if (r.location.bucket !== bucket || dirPrefix(r.location.key) + name !== key) return undefined;
    return { dir: r.location, name };
  }

  private knownNotADirectory(located: Located): boolean {
    const p = this.parentLocation(located);
    return p !== undefined && this.subdirs.knownNotADirectory(p.dir, p.name);
  }

  private noteSubdirectory(located: Located): void {
    const p = this.parentLocation(located);
    if (p) this.subdirs.added(p.dir, p.name);
  }

  private async isDirectory(located: Located): Promise<boolean> {
    return (await this.statLocated(located).catch(() => undefined))?.type === 'directory';
  }

  /** The parent's stat, or undefined when it does not exist; virtual parents count as directories. */
  private async parentStat(located: Located): Promise<FileStat | undefined> {
    const parentPath = parentOf(located.path);
    const r = this.options.namespace.resolve(parentPath);
    if (r.kind === 'virtual') return dirStat(EPOCH);
    if (r.kind === 'none') return undefined;
    if (this.recentlySeenDirectory(r.location)) return dirStat(EPOCH);
    const st = await this.statLocated({ path: parentPath, location: r.location, fileOnly: r.fileOnly }).catch(
      (e) => (isGatewayError(e, 'NotFound') ? undefined : Promise.reject(e)),
    );
    if (st?.type === 'directory') this.markDirectory(r.location);
    return st;
  }

  /**
   * Once, what this session's STAT found at a path under DIR_CACHE_MS ago, when it was a file or nothing:
   * the OPEN that follows need not ask again whether a directory of that name exists (on S3 a HEAD and a
   * LIST), nor, for a file it replaces, whether the parent does. Another session's change in between is
   * missed, as SubdirCache misses it: at worst a file and a directory of one name, which object storage
   * allows. This session's own mkdir, rename, remove and rmdir forget every answer.
   */
  private recentStat(location: StoreLocation): { object: ObjectInfo | undefined } | undefined {
    const k = dirCacheKey(location);
    const answer = this.statAnswers.get(k);
    if (answer === undefined) return undefined;
    this.statAnswers.delete(k);
    return Date.now() - answer.at < DIR_CACHE_MS ? answer : undefined;
  }

  private noteStat(location: StoreLocation, object: ObjectInfo | undefined): void {
    const k = dirCacheKey(location);
    this.statAnswers.delete(k);
    if (this.statAnswers.size >= MAX_STAT_ANSWERS) {
      const oldest = this.statAnswers.keys().next().value;
      if (oldest !== undefined) this.statAnswers.delete(oldest);
    }
    this.statAnswers.set(k, { at: Date.now(), object });
  }

  private recentlySeenDirectory(location: StoreLocation): boolean {
    const seen = this.dirCache.get(dirCacheKey(location));
    return seen !== undefined && Date.now() - seen < DIR_CACHE_MS;
  }

  /** `location` was seen to be a directory at `at`: parentStat and openDir trust that for DIR_CACHE_MS. */
  private markDirectory(location: StoreLocation, at: number = Date.now()): void {
    this.dirCache.set(dirCacheKey(location), at);
  }

  private virtualDir(path: string, names: string[]): DirHandle {
    let done = false;
    return {
      path,
      next: async () => {
        if (done) return undefined;
        done = true;
        const entries: DirEntry[] = [];
        for (const name of names) {
          const st = await this.stat(joinPath(path, name)).catch(() => undefined);
          if (st) entries.push({ name, stat: st });
        }
        return entries;
      },
      close: async () => {},
    };
  }
}

/**
 * A directory listing read one store page at a time, handing out at most `max` entries per call. The
 * next page is always being fetched while the client reads the current one, so the store's latency
 * overlaps the SFTP round trips instead of adding to them; at most two pages are held.
 *
 * A page is made compact (a name and two numbers per entry) as soon as it arrives, and the entries READDIR
 * sends are built when it asks for them. A page waits across ~10 READDIR round trips, long enough for
 * V8's young-generation collections to promote what it holds into the old generation, where it stays
 * until a full collection. Held as ObjectInfo and DirEntry objects (five per entry), a 100,000-key listing
 * promoted 13-30 MiB beyond start-up (`--trace-gc-nvp`, 2 runs); compact, 11-13 MiB (3 runs).
 */
class PrefixDirHandle implements DirHandle {
  private page: CompactPage | undefined;
  private cursor = 0;
  private pending: Promise<CompactPage & { nextToken?: string }> | undefined;
  private exhausted = false;
  private closed = false;
  private readonly prefix: string;
  private readonly startedAt = Date.now();
  private subdirNames: string[] | undefined = [];
  private files: { names: string[]; sizes: number[] } | undefined;

  constructor(
    readonly path: string,
    private readonly store: ObjectStore,
    private readonly location: StoreLocation,
    private readonly hiddenPrefix?: string,
    /** Told the subdirectories' names once the whole listing has been read, and when it started. */
    private readonly onComplete?: (subdirs: string[], startedAt: number) => void,
    /** Told the files' names and sizes, in listing order, once the whole listing has been read. */
    private readonly onFiles?: (names: string[], sizes: number[]) => void,
  ) {
    this.prefix = dirPrefix(location.key);
    if (onFiles) this.files = { names: [], sizes: [] };
    this.fetch(undefined);
  }

  private fetch(token: string | undefined): void {
    const hide = this.prefix === '' ? this.hiddenPrefix : undefined;
    this.pending = this.store
      .list(this.location.bucket, { prefix: this.prefix, delimiter: '/', continuationToken: token })
      .then((page) => ({ ...compactPage(page, this.prefix, hide), nextToken: page.nextToken }));
    // Read (and its error reported) by next(); a listing closed early never reads it.
    this.pending.catch(() => undefined);
  }

  async next(max: number): Promise<DirEntry[] | undefined> {
    while ((!this.page || this.cursor >= this.page.names.length) && !this.exhausted && !this.closed) {
      const page = await this.pending!;
      if (this.closed) break;
      this.exhausted = !page.nextToken;
      this.pending = undefined;
      if (!this.exhausted) this.fetch(page.nextToken);
      this.page = page;
      this.cursor = 0;
      if (this.subdirNames) {
        for (let i = 0; i < page.names.length; i++) if (page.sizes[i]! < 0) this.subdirNames.push(page.names[i]!);
        if (this.subdirNames.length > MAX_LEARNT_SUBDIRS) this.subdirNames = undefined;
      }
      if (this.files) {
        for (let i = 0; i < page.names.length; i++) {
          if (page.sizes[i]! < 0) continue;
          this.files.names.push(page.names[i]!);
          this.files.sizes.push(page.sizes[i]!);
        }
        if (this.files.names.length > MAX_LEARNT_FILES) this.files = undefined;
      }
      if (this.exhausted && this.subdirNames) this.onComplete?.(this.subdirNames, this.startedAt);
      if (this.exhausted && this.files) this.onFiles?.(this.files.names, this.files.sizes);
    }
    const page = this.page;
    if (this.closed || !page || this.cursor >= page.names.length) return undefined;
    const end = Math.min(page.names.length, this.cursor + max);
    const entries: DirEntry[] = [];
    for (let i = this.cursor; i < end; i++) {
      const size = page.sizes[i]!;
      entries.push({
        name: page.names[i]!,
        stat:
          size < 0
            ? dirStat(EPOCH)
            : { type: 'file', size, mtime: new Date(page.mtimes[i]!), permissions: FILE_PERMISSIONS },
      });
    }
    this.cursor = end;
    return entries;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.page = undefined;
    this.pending = undefined;
  }
}

function dirCacheKey(location: StoreLocation): string {
  return `${location.bucket}/${location.key}`;
}

/** A page's entries in name order: parallel arrays, size -1 for a directory, mtime in ms. */
interface CompactPage {
  names: string[];
  sizes: number[];
  mtimes: number[];
}

/**
 * The entries of a listing page below `prefix`, subdirectories and files together in name order; the
 * directory's own marker and `hide` (the hidden prefix, at the top of a bucket) are not entries.
 */
function compactPage(page: ListPage, prefix: string, hide: string | undefined): CompactPage {
  const names: string[] = [];
  const sizes: number[] = [];
  const mtimes: number[] = [];
  for (const p of page.prefixes) {
    names.push(baseName(p.slice(0, -1)));
    sizes.push(-1);
    mtimes.push(0);
  }
  for (const o of page.objects) {
    if (o.key === prefix || o.key.endsWith('/')) continue;
    names.push(o.key.slice(prefix.length));
    sizes.push(o.size);
    mtimes.push(o.lastModified.getTime());
  }
  const order = names.map((_, i) => i).filter((i) => names[i] !== hide);
  order.sort((a, b) => (names[a]! < names[b]! ? -1 : names[a]! > names[b]! ? 1 : 0));
  return {
    names: order.map((i) => names[i]!),
    sizes: order.map((i) => sizes[i]!),
    mtimes: order.map((i) => mtimes[i]!),
  };
}

function fileStat(info: ObjectInfo): FileStat {
  return { type: 'file', size: info.size, mtime: info.lastModified, permissions: FILE_PERMISSIONS };
}

function dirStat(mtime: Date): FileStat {
  return { type: 'directory', size: 0, mtime, permissions: DIR_PERMISSIONS };
}
