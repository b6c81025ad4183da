/**
 * The dispatch table: one handler per request type, like OpenSSH's sftp-server.c. A handler decodes its
 * fields synchronously (a decoding error is a SftpProtocolError that ends the session), then returns the
 * reply packet as a promise; a rejection becomes a STATUS reply through status.ts. Handlers are called in
 * arrival order and must not await before issuing order-sensitive work (WRITE).
 */
import { GatewayError, unsupported } from '../../errors.js';
import type { Logger } from '../../observability/logger.js';
import type { ReadHandle, UserFileSystem } from '../../vfs/types.js';
import { attrsToSetAttributes, fileStatToAttrs, pflagsToOpenFlags } from './attrs.js';
import type { PacketCursor } from './codec.js';
import {
  MAX_OPEN_HANDLES,
  MAX_PACKET_LENGTH,
  MAX_READ_LENGTH,
  MAX_WRITE_LENGTH,
  PacketType,
  READDIR_PAGE_SIZE,
  StatusCode,
} from './constants.js';
import type { SftpEvent } from './events.js';
import {
  type HandleEntry,
  type HandleTable,
  invalidHandle,
  newEntry,
  track,
  type WriteEntry,
  whenIdle,
} from './handles.js';
import { copyData, sameFileRefused } from './copy-data.js';
import { formatLongname } from './longname.js';
import { bufferPool } from './buffer-pool.js';
import {
  attrsPacket,
  DATA_HEADER_BYTES,
  dataHeader,
  dataPacket,
  extendedReplyPacket,
  handlePacket,
  type NameEntry,
  namePacket,
  statusPacket,
} from './replies.js';
import { toStatus } from './status.js';

/** What handlers need from the session. */
export interface SessionContext {
  readonly fs: UserFileSystem;
  readonly handles: HandleTable;
  readonly logger: Logger;
  emit(event: SftpEvent): void;
  /** Counts `bytes` of WRITE data as pending until `promise` settles (input backpressure). */
  trackWrite(bytes: number, promise: Promise<void>): void;
  /** Adds an opened handle to the table, or releases it and throws when the session is closing. */
  register(entry: HandleEntry): Buffer;
}

/** One request being served; handlers fill in `name` (extensions) and `path` for the request log. */
export interface Request {
  readonly id: number;
  readonly type: number;
  name: string;
  path?: string;
  /** Bytes the reply may take (a READ's length), counted against the session's reply budget. */
  replyBytes?: number;
  /**
   * Replies to READs of one handle go out in request order: OpenSSH 9.2's scp (which writes in place)
   * truncates a download at the last in-order reply. The session sends this reply only after `previous`
   * settles and calls `sent` once it has.
   */
  order?: { previous: Promise<void>; sent: () => void };
}

export type Handler = (ctx: SessionContext, req: Request, r: PacketCursor) => Promise<Buffer>;

const ok = (id: number) => statusPacket(id, StatusCode.OK, 'Success');
const eof = (id: number) => statusPacket(id, StatusCode.EOF, 'End of file');
const wrongMode = (what: string) => new GatewayError('Failure', `file not open for ${what}`);
const reject = (err: unknown) => Promise.reject(err);

/** Runs an operation and reports it to the audit hook either way. */
async function audited<T>(
  ctx: SessionContext,
  event: (outcome: { ok: boolean; error?: string }) => SftpEvent,
  op: () => Promise<T>,
): Promise<T> {
  try {
    const result = await op();
    ctx.emit(event({ ok: true }));
    return result;
  } catch (err) {
    ctx.emit(event({ ok: false, error: toStatus(err).message }));
    throw err;
  }
}

/** Audit events name absolute paths, as the CLOSE of a handle does. */
function absolute(ctx: SessionContext, path: string): string {
  try {
    return ctx.fs.resolve(path);
  } catch {
    return path;
  }
}

function lookup(ctx: SessionContext, req: Request, handle: Buffer): HandleEntry {
  const entry = ctx.handles.get(handle);
  if (entry === undefined) throw invalidHandle();
  req.path = entry.path;
  return entry;
}

const open: Handler = (ctx, req, r) => {
  const path = r.string();
  const flags = pflagsToOpenFlags(r.uint32());
  r.attrs(); // initial attributes of a new file: objects have none worth setting
  req.path = path;
  const abs = absolute(ctx, path);
  return (async () => {
    if (ctx.handles.full)
      throw new GatewayError('Failure', `too many open handles (limit ${MAX_OPEN_HANDLES})`);
    let mode: 'read' | 'write' = flags.write || flags.append ? 'write' : 'read';
    const entry = await audited(
      ctx,
      // No `...outcome`: object spread is slow on Node 20 (see newEntry), and every file opens once.
      (outcome) => ({ type: 'OPEN', path: abs, mode, flags, ok: outcome.ok, error: outcome.error }),
      async () => {
        const handle = await ctx.fs.open(path, flags);
        mode = handle.kind;
        return handle.kind === 'write'
          ? newEntry({ kind: 'write', handle })
          : newEntry({ kind: 'read', handle });
      },
    );
    return handlePacket(req.id, ctx.register(entry));
  })();
};

const opendir: Handler = (ctx, req, r) => {
  const path = r.string();
  req.path = path;
  return (async () => {
    if (ctx.handles.full)
      throw new GatewayError('Failure', `too many open handles (limit ${MAX_OPEN_HANDLES})`);
    const dir = await ctx.fs.openDir(path);
    return handlePacket(req.id, ctx.register(newEntry({ kind: 'dir', handle: dir })));
  })();
};

const close: Handler = (ctx, req, r) => {
  const handle = r.bytes();
  const entry = ctx.handles.remove(handle);
  if (entry === undefined) return reject(invalidHandle());
  req.path = entry.path;
  return (async () => {
    // Writes and reads already issued on this handle come first: a CLOSE overtaking a WRITE would
    // complete the upload without it.
    await whenIdle(entry);
    if (entry.kind === 'dir') {
      await entry.handle.close();
      return ok(req.id);
    }
    if (entry.kind === 'write' && entry.writeError !== undefined) {
      // The audit line says why: a write's error, or a copy-data refused or failed.
      await releaseEntry(ctx, entry, `upload discarded: ${toStatus(entry.writeError).message}`);
      throw entry.writeError;
    }
    await audited(
      ctx,
      (outcome) => closeEvent(entry, false, outcome),
      () => entry.handle.close(),
    );
    return ok(req.id);
  })();
};

function closeEvent(
  entry: Exclude<HandleEntry, { kind: 'dir' }>,
  aborted: boolean,
  outcome: { ok: boolean; error?: string },
): SftpEvent {
  return {
    type: 'CLOSE',
    path: entry.path,
    mode: entry.kind,
    bytesIn: entry.bytesIn,
    bytesOut: entry.bytesOut,
    durationMs: Math.round(performance.now() - entry.openedAt),
    aborted,
    ok: outcome.ok,
    error: outcome.error,
  };
}

/**
 * Lets go of a handle without completing it: an upload is aborted (the vfs decides whether keep-partial
 * mode keeps what arrived), a reader or listing is closed. Never throws.
 */
export async function releaseEntry(ctx: SessionContext, entry: HandleEntry, reason: string): Promise<void> {
  try {
    if (entry.kind === 'write') {
      // ok says whether the abort itself went through; the reason travels in `error` either way.
      await audited(
        ctx,
        (outcome) => closeEvent(entry, true, { ok: outcome.ok, error: outcome.error ?? reason }),
        () => entry.handle.abort(reason),
      );
    } else if (entry.kind === 'read') {
      await audited(
        ctx,
        (outcome) => closeEvent(entry, false, outcome),
        () => entry.handle.close(),
      );
    } else {
      await entry.handle.close();
    }
  } catch (err) {
    ctx.logger.warn({ err, path: entry.path }, 'releasing an SFTP handle failed');
  }
}

const read: Handler = (ctx, req, r) => {
  const handle = r.bytes();
  const offset = r.uint64();
  const length = Math.min(r.uint32(), MAX_READ_LENGTH);
  const entry = lookup(ctx, req, handle);
  if (entry.kind !== 'read') return reject(entry.kind === 'write' ? wrongMode('reading') : invalidHandle());
  req.replyBytes = length;
  const previous = entry.replyOrder;
  let sent!: () => void;
  entry.replyOrder = new Promise((resolve) => {
    sent = resolve;
  });
  req.order = { previous, sent };
  return track(entry, readReply(entry.handle, req.id, offset, length)).then(
    (reply) => {
      if (reply === undefined) return eof(req.id);
      entry.bytesOut += reply.length - DATA_HEADER_BYTES;
      return reply;
    },
    (err: unknown) => {
      ctx.emit({ type: 'ERROR', operation: 'READ', path: entry.path, message: toStatus(err).message });
      throw err;
    },
  );
};

/** The DATA reply for a READ, or undefined at end of file. */
async function readReply(handle: ReadHandle, id: number, offset: number, length: number): Promise<Buffer | undefined> {
  if (handle.readInto === undefined) {
    const data = await handle.read(offset, length);
    return data.length === 0 ? undefined : dataPacket(id, data);
  }
  // The store reads straight into the reply, behind its header; the buffer returns to the pool once sent.
  const buf = bufferPool.take(DATA_HEADER_BYTES + length);
  let count: number;
  try {
    count = await handle.readInto(offset, buf.subarray(DATA_HEADER_BYTES));
  } catch (err) {
    bufferPool.release(buf);
    throw err;
  }
  if (count === 0) {
    bufferPool.release(buf);
    return undefined;
  }
  return dataHeader(buf, id, count);
}

const write: Handler = (ctx, req, r) => {
  const handle = r.bytes();
  const offset = r.uint64();
  const data = r.bytes();
  const entry = lookup(ctx, req, handle);
  if (entry.kind !== 'write') return reject(entry.kind === 'read' ? wrongMode('writing') : invalidHandle());
  // Issued now, before any await, so the vfs sees writes in arrival order.
  const pending = issueWrite(entry, offset, data);
  ctx.trackWrite(data.length, pending);
  // The vfs does not keep `data` past the write (it copies what it holds longer): the packet is free.
  const release = () => bufferPool.release(data);
  pending.then(release, release);
  return track(entry, pending).then(
    () => {
      entry.bytesIn += data.length;
      return ok(req.id);
    },
    (err: unknown) => {
      entry.writeError ??= err;
      ctx.emit({ type: 'ERROR', operation: 'WRITE', path: entry.path, message: toStatus(err).message });
      throw err;
    },
  );
};

function issueWrite(entry: WriteEntry, offset: number, data: Buffer): Promise<void> {
  try {
    return entry.handle.write(offset, data);
  } catch (err) {
    return Promise.reject(err);
  }
}

const stat: Handler = (ctx, req, r) => {
  const path = r.string();
  req.path = path;
  return ctx.fs.stat(path).then((s) => attrsPacket(req.id, fileStatToAttrs(s)));
};

const fstat: Handler = (ctx, req, r) => {
  const entry = lookup(ctx, req, r.bytes());
  const s = entry.kind === 'dir' ? ctx.fs.stat(entry.path) : track(entry, entry.handle.stat());
  return s.then((st) => attrsPacket(req.id, fileStatToAttrs(st)));
};

const setstat: Handler = (ctx, req, r) => {
  const path = r.string();
  const attrs = attrsToSetAttributes(r.attrs());
  req.path = path;
  return audited(
    ctx,
    (outcome) => ({ type: 'SETSTAT', path: absolute(ctx, path), attrs, ...outcome }),
    () => ctx.fs.setstat(path, attrs),
  ).then(() => ok(req.id));
};

const fsetstat: Handler = (ctx, req, r) => {
  const entry = lookup(ctx, req, r.bytes());
  const attrs = attrsToSetAttributes(r.attrs());
  const apply = (): Promise<void> => {
    if (entry.kind === 'write') return track(entry, entry.handle.setstat(attrs));
    if (entry.kind === 'dir') return ctx.fs.setstat(entry.path, attrs);
    // A reader cannot truncate (ftruncate on a read-only descriptor fails too); times and mode are
    // accepted and ignored, because clients set them after downloads and a failure aborts the transfer.
    if (attrs.size !== undefined) return Promise.reject(wrongMode('writing'));
    return Promise.resolve();
  };
  return audited(ctx, (outcome) => ({ type: 'SETSTAT', path: entry.path, attrs, ...outcome }), apply).then(
    () => ok(req.id),
  );
};

const readdir: Handler = (ctx, req, r) => {
  const entry = lookup(ctx, req, r.bytes());
  if (entry.kind !== 'dir') return reject(invalidHandle());
  const page = entry.queue.then(async () => {
    // A page can come back empty before the end (a store page holding only the directory marker);
    // an empty NAME confuses some clients, so ask again.
    for (;;) {
      const batch = await entry.handle.next(READDIR_PAGE_SIZE);
      if (batch === undefined) return eof(req.id);
      if (batch.length === 0) continue;
      const now = new Date();
      const names: NameEntry[] = batch.map((e) => ({
        filename: e.name,
        longname: formatLongname(e.name, e.stat, now),
        attrs: fileStatToAttrs(e.stat),
      }));
      return namePacket(req.id, names);
    }
  });
  entry.queue = page.catch(() => undefined);
  return track(entry, page);
};

const remove: Handler = (ctx, req, r) => {
  const path = r.string();
  req.path = path;
  return audited(
    ctx,
    (o) => ({ type: 'DELETE', path: absolute(ctx, path), ...o }),
    () => ctx.fs.remove(path),
  ).then(() => ok(req.id));
};

const mkdir: Handler = (ctx, req, r) => {
  const path = r.string();
  r.attrs(); // a directory is a key prefix: there is no mode to give it
  req.path = path;
  return audited(
    ctx,
    (o) => ({ type: 'MKDIR', path: absolute(ctx, path), ...o }),
    () => ctx.fs.mkdir(path),
  ).then(() => ok(req.id));
};

const rmdir: Handler = (ctx, req, r) => {
  const path = r.string();
  req.path = path;
  return audited(
    ctx,
    (o) => ({ type: 'RMDIR', path: absolute(ctx, path), ...o }),
    () => ctx.fs.rmdir(path),
  ).then(() => ok(req.id));
};

const realpath: Handler = (ctx, req, r) => {
  const path = r.string();
  req.path = path;
  // v3 clients only use the filename; OpenSSH also sends empty attributes here.
  return ctx.fs.realpath(path).then((p) => namePacket(req.id, [{ filename: p, longname: p, attrs: {} }]));
};

function renameWith(overwrite: boolean): Handler {
  return (ctx, req, r) => {
    const from = r.string();
    const to = r.string();
    req.path = from;
    return audited(
      ctx,
      (o) => ({ type: 'RENAME', path: absolute(ctx, from), newPath: absolute(ctx, to), overwrite, ...o }),
      () => ctx.fs.rename(from, to, overwrite),
    ).then(() => ok(req.id));
  };
}

const symlinksUnsupported = () => unsupported('symbolic links are not supported');

const readlink: Handler = (_ctx, req, r) => {
  req.path = r.string();
  return reject(symlinksUnsupported());
};

const symlink: Handler = (_ctx, req, r) => {
  req.path = r.string();
  r.string();
  return reject(symlinksUnsupported());
};

const statvfsReply = (id: number, s: Awaited<ReturnType<UserFileSystem['statfs']>>) =>
  // f_bsize, f_frsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, f_favail, f_fsid, f_flag, f_namemax
  extendedReplyPacket(id, [
    s.blockSize,
    s.fragmentSize,
    s.blocks,
    s.freeBlocks,
    s.availableBlocks,
    s.files,
    s.freeFiles,
    s.availableFiles,
    0,
    0,
    s.nameMax,
  ]);

const extensions: Record<string, Handler> = {
  'posix-rename@openssh.com': renameWith(true),
  'statvfs@openssh.com': (ctx, req, r) => {
    const path = r.string();
    req.path = path;
    return ctx.fs.statfs(path).then((s) => statvfsReply(req.id, s));
  },
  'fstatvfs@openssh.com': (ctx, req, r) => {
    const entry = lookup(ctx, req, r.bytes());
    return ctx.fs.statfs(entry.path).then((s) => statvfsReply(req.id, s));
  },
  'limits@openssh.com': (_ctx, req) =>
    Promise.resolve(
      extendedReplyPacket(req.id, [MAX_PACKET_LENGTH, MAX_READ_LENGTH, MAX_WRITE_LENGTH, MAX_OPEN_HANDLES]),
    ),
  // Durability comes at CLOSE, when the object is completed; there is nothing to flush before that.
  'fsync@openssh.com': (ctx, req, r) => {
    lookup(ctx, req, r.bytes());
    return Promise.resolve(ok(req.id));
  },
  'copy-data': (ctx, req, r) => {
    const from = lookup(ctx, req, r.bytes());
    const readOffset = r.uint64();
    const length = r.uint64();
    const to = lookup(ctx, req, r.bytes());
    const writeOffset = r.uint64();
    if (from.kind !== 'read') return reject(from.kind === 'write' ? wrongMode('reading') : invalidHandle());
    if (to.kind !== 'write') return reject(to.kind === 'read' ? wrongMode('writing') : invalidHandle());
    // Refused as by OpenSSH's sftp-server. `cp f f` opened f for writing with truncation before asking:
    // the upload is marked failed so that its CLOSE discards it and f keeps its content.
    if (from.path === to.path) {
      to.writeError ??= sameFileRefused(to.path);
      return reject(to.writeError);
    }
    const copy = copyData(from, to, { readOffset, length, writeOffset });
    return track(from, track(to, copy)).then(
      (end) => (end === 'eof' ? eof(req.id) : ok(req.id)),
      (err: unknown) => {
        ctx.emit({ type: 'ERROR', operation: 'COPY_DATA', path: to.path, message: toStatus(err).message });
        throw err;
      },
    );
  },
};

const extended: Handler = (ctx, req, r) => {
  const name = r.string();
  req.name = name;
  const handler = extensions[name];
  if (handler === undefined) return reject(unsupported(`unsupported extension: ${name}`));
  return handler(ctx, req, r);
};

export const unsupportedRequest: Handler = (_ctx, req) =>
  reject(unsupported(`unsupported request type ${req.type}`));

/** Packet type -> handler. INIT is handled by the session, before any of these. */
export const handlers: ReadonlyMap<number, Handler> = new Map<number, Handler>([
  [PacketType.OPEN, open],
  [PacketType.CLOSE, close],
  [PacketType.READ, read],
  [PacketType.WRITE, write],
  [PacketType.LSTAT, stat], // no symlinks, so LSTAT and STAT agree
  [PacketType.FSTAT, fstat],
  [PacketType.SETSTAT, setstat],
  [PacketType.FSETSTAT, fsetstat],
  [PacketType.OPENDIR, opendir],
  [PacketType.READDIR, readdir],
  [PacketType.REMOVE, remove],
  [PacketType.MKDIR, mkdir],
  [PacketType.RMDIR, rmdir],
  [PacketType.REALPATH, realpath],
  [PacketType.STAT, stat],
  [PacketType.RENAME, renameWith(false)],
  [PacketType.READLINK, readlink],
  [PacketType.SYMLINK, symlink],
  [PacketType.EXTENDED, extended],
]);
