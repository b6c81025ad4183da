import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { GatewayError, unsupported } from '../errors.js';
import type { ObjectInfo, ObjectStore, ObjectWriter } from '../storage/object-store.js';
import type { StoreLocation } from './paths.js';
import type { CopySource, FileStat, SetAttributes, WriteHandle } from './types.js';

export interface WriteHandleOptions {
  path: string;
  store: ObjectStore;
  location: StoreLocation;
  /** The object being replaced when the open did not truncate it (resume, append, partial overwrite). */
  existing?: ObjectInfo;
  append: boolean;
  exclusive: boolean;
  keepPartial: boolean;
  /** Out-of-order data held in memory before it spills to the spool file. */
  reorderWindowBytes: number;
  spoolDir: string;
  spoolMaxBytes: number;
  /** Called once when the handle ends: bytes received, and how it ended. */
  onEnd?: (result: WriteEndResult) => void;
}

export interface WriteEndResult {
  bytes: number;
  outcome: 'completed' | 'aborted' | 'partial' | 'failed';
  error?: unknown;
}

const ZERO_CHUNK = 1024 * 1024;

/** A read handle's object as it was opened, for ObjectWriteHandle.copyWhole (types.ts CopySource). */
export class StoreCopySource implements CopySource {
  constructor(
    readonly path: string,
    readonly store: ObjectStore,
    readonly location: StoreLocation,
    readonly info: ObjectInfo,
  ) {}
}

interface Extent {
  offset: number;
  length: number;
}

/**
 * An upload seen as a file: writes arrive at offsets, the store takes one sequential stream. Writes at the
 * next expected offset stream straight through; later ones wait in a bounded in-memory window, then in a
 * bounded sparse spool file, and drain as soon as the gap before them fills. Gaps never written read as
 * zeros, as in a sparse POSIX file. Rewriting bytes already sent to the store is refused.
 */
export class ObjectWriteHandle implements WriteHandle {
  readonly kind = 'write' as const;
  readonly path: string;
  private writer: ObjectWriter | undefined;
  /** The next logical offset the store's stream expects. */
  private next = 0;
  /** Bytes [tailFrom, existing.size) of the replaced object still belong after the written data. */
  private tailFrom: number | undefined;
  private started = false;
  private truncated = false;
  private appendCursor = 0;
  private readonly window = new Map<number, Buffer>();
  private windowBytes = 0;
  private spool: { file: string; handle: fs.FileHandle; extents: Extent[]; bytes: number } | undefined;
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown;
  private received = 0;
  private ended = false;

  constructor(private readonly options: WriteHandleOptions) {
    this.path = options.path;
    this.appendCursor = options.existing?.size ?? 0;
    // Nothing to keep from an older object: the writer can start now, so the store's set-up (the local
    // store opens its temp file) overlaps the OPEN reply instead of delaying the first WRITE.
    if (!options.existing) this.start(0);
  }

  write(offset: number, data: Buffer): Promise<void> {
    if (this.ended) return Promise.reject(this.closedError());
    this.received += data.length;
    const at = this.options.append ? this.appendCursor : offset;
    if (this.options.append) this.appendCursor += data.length;
    return this.serial(() => this.apply(at, data));
  }

  copyWhole(source: CopySource): Promise<number | undefined> {
    if (this.ended) return Promise.reject(this.closedError());
    return this.serial(() => this.adopt(source));
  }

  /**
   * Runs `op` after everything queued before it, in call order. The chain keeps going after a failure so
   * that later calls report it instead of hanging.
   */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const step = this.chain.then(op);
    this.chain = step.then(
      () => undefined,
      (e) => {
        this.failure ??= e;
      },
    );
    return step;
  }

  private closedError(): GatewayError {
    return new GatewayError('Failure', `${this.path} is closed`);
  }

  /**
   * The store's writer starts over with the whole source as its base, the way a resume keeps an older
   * object: S3 copies it with UploadPartCopy at CLOSE (a source under 5 MiB is read back once), the local
   * store with fs.copyFile. Only for a file that has nothing yet and keeps nothing of an older one.
   */
  private async adopt(source: CopySource): Promise<number | undefined> {
    if (!(source instanceof StoreCopySource) || source.store !== this.options.store) return undefined;
    if (this.failure) throw this.failure;
    const keepsOlder = this.options.existing !== undefined && !this.truncated;
    const touched = this.received > 0 || this.next > 0 || this.window.size > 0 || this.spool !== undefined;
    if (keepsOlder || touched || this.options.append) return undefined;
    const { info, location } = source;
    if (info.size === 0) return 0;
    // Nothing was written, so there is nothing to lose: the writer the OPEN started is dropped.
    await this.writer?.abort('replaced by a copy inside the store');
    this.started = true;
    this.next = info.size;
    this.received = info.size;
    this.writer = this.options.store.createWriter(this.options.location.bucket, this.options.location.key, {
      base: { info, length: info.size, bucket: location.bucket },
      ifNoneMatch: this.options.exclusive,
    });
    return info.size;
  }

  async stat(): Promise<FileStat> {
    let size = Math.max(this.next, this.tailFrom !== undefined ? (this.options.existing?.size ?? 0) : 0);
    for (const [offset, buf] of this.window) size = Math.max(size, offset + buf.length);
    for (const e of this.spool?.extents ?? []) size = Math.max(size, e.offset + e.length);
    if (!this.started && this.options.existing && !this.truncated) size = this.options.existing.size;
    return { type: 'file', size, mtime: new Date(), permissions: 0o644 };
  }

  async setstat(attrs: SetAttributes): Promise<void> {
    if (attrs.size === undefined) return;
    const current = (await this.stat()).size;
    if (attrs.size === current) return;
    if (attrs.size === 0 && !this.started) {
      this.truncated = true;
      return;
    }
    throw unsupported(`cannot change the size of ${this.path} to ${attrs.size} during an upload`);
  }

  async close(): Promise<void> {
    await this.chain;
    if (this.ended) throw this.closedError();
    if (this.failure) {
      await this.finish('failed', this.failure);
      throw this.failure;
    }
    try {
      if (!this.started && this.options.existing && !this.truncated) {
        // Opened without truncation and never written: the object stays as it was.
        this.ended = true;
        this.options.onEnd?.({ bytes: 0, outcome: 'completed' });
        return;
      }
      this.start(0);
      await this.fillGapsAndDrain();
      await this.copyTail();
      await this.writer!.complete();
      await this.finish('completed');
    } catch (e) {
      await this.finish('failed', e);
      throw e;
    }
  }

  async abort(reason: string): Promise<void> {
    await this.chain;
    if (this.ended) return;
    if (this.options.keepPartial && this.writer?.completePartial && !this.failure) {
      try {
        await this.writer.completePartial();
        await this.finish('partial');
        return;
      } catch (e) {
        await this.finish('failed', e);
        return;
      }
    }
    await this.finish('aborted', new GatewayError('Failure', reason));
  }

  private async finish(
    outcome: 'completed' | 'aborted' | 'partial' | 'failed',
    error?: unknown,
  ): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (outcome === 'aborted' || outcome === 'failed')
      await this.writer?.abort(String(error ?? outcome)).catch(() => undefined);
    this.window.clear();
    this.windowBytes = 0;
    if (this.spool) {
      await this.spool.handle.close().catch(() => undefined);
      await fs.rm(this.spool.file, { force: true });
      this.spool = undefined;
    }
    this.options.onEnd?.({ bytes: this.received, outcome, error });
  }

  /**
   * The first write decides what the object starts with: a resume or append at (or past) the end of the
   * replaced object keeps all of it (copied inside the store); a write inside it keeps the bytes before it
   * and, at close, the bytes after the last write.
   */
  private start(firstOffset: number): void {
    if (this.started) return;
    this.started = true;
    const existing = this.truncated ? undefined : this.options.existing;
    let baseLength = 0;
    if (existing) {
      baseLength = Math.min(firstOffset, existing.size);
      if (baseLength < existing.size) this.tailFrom = baseLength;
    }
    this.next = baseLength;
    const { store, location } = this.options;
    this.writer = store.createWriter(location.bucket, location.key, {
      base: existing && baseLength > 0 ? { info: existing, length: baseLength } : undefined,
      ifNoneMatch: this.options.exclusive,
    });
  }

  private async apply(offset: number, data: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    this.start(offset);
    if (data.length === 0) return;
    if (offset < this.next) {
      throw unsupported(
        `${this.path}: rewriting bytes already uploaded is not supported (write at ${offset}, uploaded up to ${this.next})`,
      );
    }
    if (offset > this.next) {
      await this.hold(offset, data);
      return;
    }
    await this.send(data);
    await this.drain();
  }

  private async send(data: Buffer): Promise<void> {
    await this.writer!.write(data);
    this.next += data.length;
    // Data past the replaced object's end leaves no tail to keep.
    if (this.tailFrom !== undefined && this.options.existing && this.next >= this.options.existing.size) {
      this.tailFrom = undefined;
    }
  }

  private async hold(offset: number, data: Buffer): Promise<void> {
    if (this.windowBytes + data.length <= this.options.reorderWindowBytes) {
      // Copy: the protocol layer's buffer may be reused once the reply goes out.
      this.window.set(offset, Buffer.from(data));
      this.windowBytes += data.length;
      return;
    }
    const spool = await this.openSpool();
    if (spool.bytes + data.length > this.options.spoolMaxBytes) {
      throw new GatewayError(
        'QuotaExceeded',
        `${this.path}: too much out-of-order data (spool limit ${this.options.spoolMaxBytes} bytes)`,
      );
    }
    await spool.handle.write(data, 0, data.length, offset);
    spool.extents.push({ offset, length: data.length });
    spool.extents.sort((a, b) => a.offset - b.offset);
    spool.bytes += data.length;
  }

  private async openSpool() {
    if (!this.spool) {
      await fs.mkdir(this.options.spoolDir, { recursive: true });
      const file = path.join(this.options.spoolDir, `spool-${randomBytes(8).toString('hex')}`);
      this.spool = { file, handle: await fs.open(file, 'w+'), extents: [], bytes: 0 };
    }
    return this.spool;
  }

  /** Sends every held piece that now starts at (or overlaps) the next expected offset. */
  private async drain(): Promise<void> {
    for (;;) {
      const fromWindow = this.window.get(this.next);
      if (fromWindow) {
        this.window.delete(this.next);
        this.windowBytes -= fromWindow.length;
        await this.send(fromWindow);
        continue;
      }
      const overlapping = [...this.window.keys()].find((o) => o < this.next);
      if (overlapping !== undefined) {
        const buf = this.window.get(overlapping)!;
        this.window.delete(overlapping);
        this.windowBytes -= buf.length;
        if (overlapping + buf.length > this.next) {
          throw unsupported(`${this.path}: overlapping writes at offset ${overlapping} are not supported`);
        }
        throw unsupported(
          `${this.path}: rewriting bytes already uploaded is not supported (offset ${overlapping})`,
        );
      }
      const extent = this.spool?.extents[0];
      if (extent && extent.offset <= this.next) {
        this.spool!.extents.shift();
        if (extent.offset < this.next) {
          throw unsupported(
            `${this.path}: rewriting bytes already uploaded is not supported (offset ${extent.offset})`,
          );
        }
        for (let done = 0; done < extent.length;) {
          const n = Math.min(ZERO_CHUNK, extent.length - done);
          const buf = Buffer.allocUnsafe(n);
          const { bytesRead } = await this.spool!.handle.read(buf, 0, n, extent.offset + done);
          if (bytesRead !== n) throw new GatewayError('Failure', `${this.path}: spool file read short`);
          await this.send(buf);
          done += n;
        }
        continue;
      }
      return;
    }
  }

  /** At close, gaps nobody wrote become zeros so that every held piece can follow. */
  private async fillGapsAndDrain(): Promise<void> {
    await this.drain();
    for (;;) {
      const candidates = [...this.window.keys()];
      if (this.spool?.extents[0]) candidates.push(this.spool.extents[0].offset);
      if (candidates.length === 0) return;
      const target = Math.min(...candidates);
      while (this.next < target) await this.send(Buffer.alloc(Math.min(ZERO_CHUNK, target - this.next)));
      await this.drain();
    }
  }

  /** A write inside the replaced object keeps the bytes after it, streamed from the pinned version. */
  private async copyTail(): Promise<void> {
    const existing = this.options.existing;
    if (this.tailFrom === undefined || !existing || this.truncated) return;
    const from = this.next;
    if (from >= existing.size) return;
    const { store, location } = this.options;
    const stream = await store.getStream(location.bucket, location.key, {
      start: from,
      end: existing.size,
      etag: existing.etag,
    });
    try {
      for await (const chunk of stream) await this.send(chunk as Buffer);
    } finally {
      stream.destroy();
    }
  }
}
