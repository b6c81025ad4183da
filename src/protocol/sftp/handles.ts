/**
 * Open handles of one session. A handle on the wire is an opaque 4-byte counter; each entry tracks the
 * requests still running on it so that CLOSE can wait for them, and the bytes moved for the audit event.
 */
import { GatewayError } from '../../errors.js';
import type { DirHandle, ReadHandle, WriteHandle } from '../../vfs/types.js';
import { MAX_OPEN_HANDLES } from './constants.js';

interface EntryBase {
  readonly path: string;
  readonly openedAt: number;
  bytesIn: number;
  bytesOut: number;
  /** Requests started on this handle and not yet settled. */
  pending: number;
  /** Resolvers waiting for `pending` to reach zero. */
  idleWaiters: Array<() => void>;
}

export interface ReadEntry extends EntryBase {
  readonly kind: 'read';
  readonly handle: ReadHandle;
  /** Settles when the latest READ's reply has been sent (see Request.order). */
  replyOrder: Promise<void>;
}

export interface WriteEntry extends EntryBase {
  readonly kind: 'write';
  readonly handle: WriteHandle;
  /** The first failed write: the upload has a hole, so CLOSE discards it instead of completing it. */
  writeError?: unknown;
}

export interface DirEntryHandle extends EntryBase {
  readonly kind: 'dir';
  readonly handle: DirHandle;
  /** READDIRs run one at a time: a listing cursor has no meaning for two concurrent pages. */
  queue: Promise<unknown>;
}

export type HandleEntry = ReadEntry | WriteEntry | DirEntryHandle;

export function newEntry(
  opened:
    | { kind: 'read'; handle: ReadHandle }
    | { kind: 'write'; handle: WriteHandle }
    | { kind: 'dir'; handle: DirHandle },
): HandleEntry {
  // Whole literals, no `{ ...base }`: Node 20's V8 runs object spread through the runtime, at 1-5 µs a
  // copy, and every small file opens one handle.
  const path = opened.handle.path;
  const openedAt = performance.now();
  if (opened.kind === 'dir') {
    return {
      kind: 'dir', handle: opened.handle, path, openedAt, bytesIn: 0, bytesOut: 0, pending: 0,
      idleWaiters: [], queue: Promise.resolve(),
    };
  }
  if (opened.kind === 'write') {
    return {
      kind: 'write', handle: opened.handle, path, openedAt, bytesIn: 0, bytesOut: 0, pending: 0,
      idleWaiters: [],
    };
  }
  return {
    kind: 'read', handle: opened.handle, path, openedAt, bytesIn: 0, bytesOut: 0, pending: 0,
    idleWaiters: [], replyOrder: Promise.resolve(),
  };
}

export function invalidHandle(): GatewayError {
  return new GatewayError('Failure', 'invalid handle');
}

/** Counts `promise` as running on the entry until it settles. */
export function track<T>(entry: HandleEntry, promise: Promise<T>): Promise<T> {
  entry.pending++;
  const done = () => {
    entry.pending--;
    if (entry.pending === 0) for (const wake of entry.idleWaiters.splice(0)) wake();
  };
  promise.then(done, done);
  return promise;
}

/** Resolves once no request is running on the entry. */
export function whenIdle(entry: HandleEntry): Promise<void> {
  if (entry.pending === 0) return Promise.resolve();
  return new Promise((resolve) => entry.idleWaiters.push(resolve));
}

export class HandleTable {
  private nextId = 1;
  private readonly entries = new Map<number, HandleEntry>();

  constructor(private readonly maxOpen: number = MAX_OPEN_HANDLES) {}

  get size(): number {
    return this.entries.size;
  }

  get full(): boolean {
    return this.entries.size >= this.maxOpen;
  }

  add(entry: HandleEntry): Buffer {
    const id = this.nextId;
    // Wrapping after 2^32 handles in one session is theoretical; skipping live ids keeps handles unique.
    do this.nextId = (this.nextId + 1) >>> 0 || 1;
    while (this.entries.has(this.nextId));
    this.entries.set(id, entry);
    return encodeHandle(id);
  }

  get(handle: Buffer): HandleEntry | undefined {
    const id = decodeHandle(handle);
    return id === undefined ? undefined : this.entries.get(id);
  }

  /** Takes the entry out of the table: later requests naming it get "invalid handle". */
  remove(handle: Buffer): HandleEntry | undefined {
    const id = decodeHandle(handle);
    if (id === undefined) return undefined;
    const entry = this.entries.get(id);
    this.entries.delete(id);
    return entry;
  }

  /** Empties the table (session end). */
  removeAll(): HandleEntry[] {
    const all = [...this.entries.values()];
    this.entries.clear();
    return all;
  }
}

function encodeHandle(id: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(id, 0);
  return b;
}

function decodeHandle(handle: Buffer): number | undefined {
  return handle.length === 4 ? handle.readUInt32BE(0) : undefined;
}
