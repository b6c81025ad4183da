import type { Readable } from 'node:stream';
import { GetObjectCommand, type GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { GatewayError } from '../../errors.js';
import type { Release } from '../memory-budget.js';
import type { ObjectInfo, ObjectReader } from '../object-store.js';
import { headObject, objectInfo, type S3Context } from './context.js';
import { isConnectionError, isNotFound, mapS3Error, s3Status } from './errors.js';
import { destroyBody } from './multipart-writer.js';

/** Bytes [start, start + buf.length) of the object, as they arrived from a GET. */
interface Piece {
  start: number;
  buf: Buffer;
}

/** Budget held for the window up to `end` (absolute offset). */
interface Grant {
  end: number;
  release: Release;
}

interface Waiter {
  end: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Ranged GETs streamed one after the other from `pos` on, each `range` bytes, twice the previous one up
 * to MAX_RANGE_CHUNKS chunks. `dead` once the window was reset or the reader closed.
 */
interface Stream {
  ac: AbortController;
  dead: boolean;
  range: number;
  body?: Readable;
  /**
   * The current body has sat unread by the gateway's choice since its last bytes: paused for the window
   * or the budget, or prefetched and waiting its turn. Its socket may then have hit the S3 client's
   * socketTimeout (an inactivity timeout, which a paused body also counts) with the store in good health.
   */
  paused: boolean;
}

/**
 * The longest streamed GET, in chunks (64 MiB with 4 MiB chunks). A GET that is already streaming keeps
 * sending the version it started with after an overwrite; the next GET, pinned with If-Match, fails. So
 * this bounds how far a download goes on with the version it opened before it fails.
 */
const MAX_RANGE_CHUNKS = 16;

/**
 * A reader pinned to one version of an object. It is opened with one ranged GET of the first chunk
 * (`bytes=0-(chunk-1)`), whose response gives the size, ETag and date (no HEAD), and whose body is kept
 * as the start of the read window. Every later GET carries If-Match with that ETag, so an overwrite
 * during a download fails the read (PreconditionFailed) instead of mixing versions.
 *
 * Reads near the previous ones (SFTP clients keep many READs in flight, slightly out of order) are
 * served from a window filled by ranged GETs streamed one after the other (2 chunks, then twice as many
 * each time up to MAX_RANGE_CHUNKS): each body is cut into pieces as it arrives, a READ waits only for
 * its own bytes, and the stream is paused (TCP backpressure) once it runs `readAheadChunks` chunks ahead
 * of the reads or the memory
 * budget has nothing free. Memory is drawn from the budget one chunk at a time before bytes are taken
 * from the socket; read-ahead only takes what is free now, a waiting READ waits for it. Reads elsewhere
 * fetch exactly their range.
 */
export class S3ReadAheadReader implements ObjectReader {
  readonly info: ObjectInfo;
  readonly #ctx: S3Context;
  readonly #bucket: string;
  readonly #ac = new AbortController();
  readonly #chunkSize: number;
  /** Contiguous pieces covering [#base, #pos). */
  #pieces: Piece[] = [];
  #base = 0;
  #pos = 0;
  /** Budget grants, in order, covering the window up to #granted. */
  #grants: Grant[] = [];
  #granted = 0;
  #waiters: Waiter[] = [];
  /** Windowed reads in progress: their start offsets (the window is not trimmed above the lowest). */
  #pending: number[] = [];
  #stream?: Stream;
  #wake?: () => void;
  #expected = 0;
  #closed = false;

  /** GETs issued (the one at open included), for tests and metrics. */
  gets = 0;

  /**
   * Opens `key` with its first chunk; undefined when there is no such object. An empty object answers a
   * ranged GET with 416 (InvalidRange): then a HEAD tells an empty object from a missing one.
   */
  static async open(
    ctx: S3Context,
    bucket: string,
    key: string,
    speculative = false,
  ): Promise<S3ReadAheadReader | undefined> {
    const C = ctx.config.readAheadChunkSize;
    const where = `${bucket}/${key}`;
    // Taken before the request: the budget never waits while a response holds a socket. A speculative
    // open does not wait at all: it would queue ahead of clients' own reads.
    let release: Release | undefined = speculative ? ctx.budget.tryAcquire(C) : await ctx.budget.acquire(C);
    if (!release) throw new GatewayError('Failure', `no memory free to fetch ${where} ahead of the client`);
    let res: GetObjectCommandOutput | undefined;
    try {
      try {
        res = await ctx.client.send(
          new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=0-${C - 1}` }),
        );
      } catch (err) {
        if (isNotFound(err)) return undefined;
        if (s3Status(err) !== 416) throw mapS3Error('GetObject', err, where);
        const info = await headObject(ctx.client, bucket, key);
        if (!info) return undefined;
        const reader = new S3ReadAheadReader(ctx, bucket, info);
        reader.gets = 1;
        return reader;
      }
      const info = objectInfo(key, res, objectSize(res));
      const reader = new S3ReadAheadReader(ctx, bucket, info);
      reader.gets = 1;
      if ((res.ContentLength ?? 0) > C) {
        // The store ignored the Range and sends the whole object: read it through the window instead.
        destroyBody(res.Body);
        return reader;
      }
      const bytes = await res.Body!.transformToByteArray();
      res = undefined;
      const first = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      if (first.length > 0) {
        // Keep only what the chunk holds, when the budget can give it without waiting.
        const exact = first.length < C ? ctx.budget.tryAcquire(first.length) : undefined;
        if (exact) release();
        reader.#pieces.push({ start: 0, buf: first });
        reader.#grants.push({ end: first.length, release: exact ?? release });
        reader.#pos = reader.#granted = first.length;
        release = undefined;
      }
      return reader;
    } catch (err) {
      destroyBody(res?.Body);
      throw mapS3Error('GetObject', err, where);
    } finally {
      release?.();
    }
  }

  constructor(ctx: S3Context, bucket: string, info: ObjectInfo) {
    this.#ctx = ctx;
    this.#bucket = bucket;
    this.info = info;
    this.#chunkSize = ctx.config.readAheadChunkSize;
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.#read(offset, length);
  }

  /** As read(), but into the caller's buffer (an SFTP reply): the bytes are copied once, from the GET's body. */
  async readInto(offset: number, target: Buffer): Promise<number> {
    return (await this.#read(offset, target.length, target)).length;
  }

  /** Bytes [offset, offset + length), in `into` when given (then a view of it), else a view or a new buffer. */
  async #read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (this.#closed)
      throw new GatewayError('Failure', `read after close: ${this.#bucket}/${this.info.key}`);
    const size = this.info.size;
    if (offset >= size || length <= 0) return Buffer.alloc(0);
    const end = Math.min(size, offset + length);
    const window = this.#cap();
    // Tolerant of SFTP clients with many requests in flight, which arrive slightly out of order.
    const near = offset >= this.#expected - window && offset <= this.#expected + window;
    if (near && offset >= this.#base) return this.#windowed(offset, end, into);
    if (!near && this.#pending.length === 0) {
      // A seek: drop the window; reads continuing from here stream again.
      this.#reset(end);
      this.#expected = end;
    }
    const data = await this.#exact(offset, end);
    if (!into) return data;
    return into.subarray(0, data.copy(into));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const err = new GatewayError('Failure', 'reader closed');
    this.#ac.abort(err);
    this.#reset(this.#pos);
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  async #windowed(offset: number, end: number, into?: Buffer): Promise<Buffer> {
    this.#expected = Math.max(this.#expected, end);
    this.#pending.push(offset);
    try {
      if (end > this.#pos) {
        await new Promise<void>((resolve, reject) => {
          this.#waiters.push({ end, resolve, reject });
          this.#kick(true);
        });
      } else {
        this.#kick(true); // keep reading ahead
      }
      if (this.#closed) throw new GatewayError('Failure', `read after close: ${this.#bucket}/${this.info.key}`);
      return this.#slice(offset, end, into);
    } finally {
      this.#pending.splice(this.#pending.indexOf(offset), 1);
      this.#trim();
    }
  }

  /** Bytes [offset, end) of the window: copied into `into`, else a view when one piece holds them, else one copy. */
  #slice(offset: number, end: number, into?: Buffer): Buffer {
    const pieces = this.#pieces;
    let lo = 0;
    let hi = pieces.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (pieces[mid]!.start <= offset) lo = mid;
      else hi = mid - 1;
    }
    const first = pieces[lo]!;
    if (!into && first.start + first.buf.length >= end)
      return first.buf.subarray(offset - first.start, end - first.start);
    const out = into ? into.subarray(0, end - offset) : Buffer.allocUnsafe(end - offset);
    let filled = 0;
    for (let i = lo; filled < out.length; i++) {
      const p = pieces[i]!;
      const from = Math.max(0, offset + filled - p.start);
      filled += p.buf.copy(out, filled, from, Math.min(p.buf.length, end - p.start));
    }
    return out;
  }

  /** Drops pieces no pending read needs and that lie a chunk or more behind the furthest read. */
  #trim(): void {
    let to = Math.min(this.#pos, this.#expected - this.#chunkSize);
    for (const o of this.#pending) to = Math.min(to, o);
    let dropped = 0;
    while (dropped < this.#pieces.length) {
      const p = this.#pieces[dropped]!;
      if (p.start + p.buf.length > to) break;
      dropped++;
    }
    if (dropped === 0) return;
    this.#pieces.splice(0, dropped);
    this.#base = this.#pieces[0]?.start ?? this.#pos;
    let freed = 0;
    while (freed < this.#grants.length && this.#grants[freed]!.end <= this.#base) this.#grants[freed++]!.release();
    if (freed > 0) {
      this.#grants.splice(0, freed);
      this.#kick();
    }
  }

  /** Ends the stream, frees the window and starts a new, empty one at `at`. */
  #reset(at: number): void {
    if (this.#stream) {
      this.#stream.dead = true;
      this.#stream.ac.abort(new GatewayError('Failure', 'read window reset'));
      destroyBody(this.#stream.body);
      this.#stream = undefined;
    }
    for (const g of this.#grants.splice(0)) g.release();
    this.#pieces = [];
    this.#base = this.#pos = this.#granted = at;
    this.#kick();
  }

  /** Wakes a sleeping stream; with `start`, opens one when none runs and the window wants bytes. */
  #kick(start = false): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
    if (start && !this.#stream && !this.#closed && this.#pos < this.info.size && this.#wantsMore()) {
      const s: Stream = { ac: new AbortController(), dead: false, range: 2 * this.#chunkSize, paused: false };
      this.#stream = s;
      void this.#pump(s);
    }
  }

  #wantsMore(): boolean {
    return this.#waiters.length > 0 || this.#granted - this.#base < this.#cap();
  }

  #cap(): number {
    return this.#chunkSize * (this.#ctx.config.readAheadChunks + 1);
  }

  #sleep(s: Stream): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
      if (s.dead) resolve();
    });
  }

  /** Streams [#pos, size) into the window until the object ends, the stream dies, or an error. */
  async #pump(s: Stream): Promise<void> {
    const size = this.info.size;
    const where = `${this.#bucket}/${this.info.key}`;
    let failures = 0;
    // The GET after the current one, sent while the current body's last chunk arrives (no gap between).
    let next: { from: number; to: number; body: Promise<Readable> } | undefined;
    try {
      while (!s.dead && this.#pos < size) {
        // A GET is opened only with budget for its first chunk, not to sit paused on a full window.
        if (!(await this.#admit(s, 1))) return;
        const from = this.#pos;
        let range = next?.from === from ? next : undefined;
        if (next && !range) discard(next.body);
        next = undefined;
        // A prefetched body has waited unread while the one before it was read.
        s.paused = range !== undefined;
        range ??= this.#range(s, from);
        const { to } = range;
        const body = await range.body;
        if (s.dead) {
          destroyBody(body);
          return;
        }
        s.body = body;
        try {
          for await (const data of body as AsyncIterable<Buffer>) {
            s.paused = false;
            if (!(await this.#admit(s, data.length)) || s.dead) return;
            this.#pieces.push({ start: this.#pos, buf: data });
            this.#pos += data.length;
            this.#settle();
            if (!next && to < size && this.#pos + this.#chunkSize >= to) next = this.#range(s, to);
          }
          if (this.#pos < to) throw new Error(`the body ended at ${this.#pos}, not ${to}`);
        } catch (err) {
          if (s.dead) return;
          destroyBody(body);
          // A connection lost mid-body is resumed where it stopped, pinned as before (If-Match: a changed
          // object then fails with PreconditionFailed): at most 3 times when the store is to blame, and
          // without counting when the body had been left unread by the gateway (a slow SFTP client may
          // leave it paused for longer than the socket timeout). Neither loops without progress: a body
          // is paused only after bytes came from it, or when prefetched, and a resumed one is not.
          if ((s.paused && isConnectionError(err)) || (this.#pos > from && failures++ < 3)) continue;
          throw mapS3Error('GetObject', err, where);
        }
      }
    } catch (err) {
      if (s.dead) return;
      for (const w of this.#waiters.splice(0)) w.reject(err);
    } finally {
      if (next) discard(next.body);
      if (this.#stream === s) this.#stream = undefined;
    }
  }

  /** Sends the GET of the next range from `from`: `s.range` bytes, and the one after it twice as long. */
  #range(s: Stream, from: number): { from: number; to: number; body: Promise<Readable> } {
    const to = Math.min(this.info.size, from + s.range);
    s.range = Math.min(s.range * 2, this.#chunkSize * MAX_RANGE_CHUNKS);
    const body = this.#open(s, from, to);
    body.catch(() => undefined); // a prefetched GET may fail before it is awaited
    return { from, to, body };
  }

  async #open(s: Stream, from: number, to: number): Promise<Readable> {
    return (await this.#get(from, to, s.ac.signal)).Body as Readable;
  }

  /** A GET of [from, to) pinned to the opened version (If-Match), errors mapped. */
  async #get(from: number, to: number, signal: AbortSignal): Promise<GetObjectCommandOutput> {
    this.gets++;
    try {
      return await this.#ctx.client.send(
        new GetObjectCommand({
          Bucket: this.#bucket,
          Key: this.info.key,
          Range: `bytes=${from}-${to - 1}`,
          IfMatch: this.info.etag,
        }),
        { abortSignal: signal },
      );
    } catch (err) {
      throw mapS3Error('GetObject', err, `${this.#bucket}/${this.info.key}`);
    }
  }

  /**
   * Makes room for `n` more bytes in the window: budget one chunk at a time, waiting for it only when a
   * READ waits for these bytes; read-ahead beyond `readAheadChunks` chunks sleeps until reads catch up.
   */
  async #admit(s: Stream, n: number): Promise<boolean> {
    while (this.#pos + n > this.#granted) {
      if (s.dead) return false;
      this.#trim();
      const blockEnd = Math.min(this.info.size, this.#granted + this.#chunkSize);
      const demand = this.#waiters.length > 0;
      let release: Release | undefined;
      if (demand || this.#granted - this.#base < this.#cap()) {
        release = this.#ctx.budget.tryAcquire(blockEnd - this.#granted);
      }
      if (!release && demand) {
        s.paused = true;
        release = await this.#ctx.budget.acquire(blockEnd - this.#granted, s.ac.signal).catch(() => undefined);
      }
      if (s.dead) {
        release?.();
        return false;
      }
      if (!release) {
        s.paused = true;
        await this.#sleep(s);
        continue;
      }
      this.#grants.push({ end: blockEnd, release });
      this.#granted = blockEnd;
    }
    return true;
  }

  #settle(): void {
    const pos = this.#pos;
    if (this.#waiters.every((w) => w.end > pos)) return;
    const ready = this.#waiters.filter((w) => w.end <= pos);
    this.#waiters = this.#waiters.filter((w) => w.end > pos);
    for (const w of ready) w.resolve();
  }

  async #exact(start: number, end: number): Promise<Buffer> {
    const release = await this.#ctx.budget.acquire(end - start, this.#ac.signal);
    let body: GetObjectCommandOutput['Body'];
    try {
      body = (await this.#get(start, end, this.#ac.signal)).Body;
      const bytes = await body!.transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      destroyBody(body);
      throw mapS3Error('GetObject', err, `${this.#bucket}/${this.info.key}`);
    } finally {
      release();
    }
  }
}

/** Ends a GET nobody will read: its body once it arrives. */
function discard(body: Promise<Readable>): void {
  body.then(destroyBody, () => undefined);
}

/** The object's size from a ranged GET: the total of Content-Range, or the length of a whole-object 200. */
function objectSize(res: GetObjectCommandOutput): number {
  const total = /\/(\d+)\s*$/.exec(res.ContentRange ?? '');
  return total ? Number(total[1]) : (res.ContentLength ?? 0);
}
