import { GetObjectCommand } from '@aws-sdk/client-s3';
import { GatewayError } from '../../errors.js';
import type { Release } from '../memory-budget.js';
import type { ObjectInfo, ObjectReader } from '../object-store.js';
import type { S3Context } from './context.js';
import { mapS3Error } from './errors.js';
import { destroyBody } from './multipart-writer.js';

interface Chunk {
  data: Promise<Buffer>;
  release?: Release;
  evicted: boolean;
}

/**
 * A reader pinned to one version of an object: every ranged GET carries If-Match with the ETag from
 * open, so an overwrite during a download fails the read (PreconditionFailed) instead of mixing versions.
 * Reads near the previous one are served from fixed-size chunks fetched ahead (several GETs in flight,
 * only as far as the memory budget allows without waiting); reads elsewhere fetch exactly their range.
 */
export class S3ReadAheadReader implements ObjectReader {
  readonly #ctx: S3Context;
  readonly #bucket: string;
  readonly #info: ObjectInfo;
  readonly #ac = new AbortController();
  readonly #chunkSize: number;
  readonly #chunks = new Map<number, Chunk>();
  #expected = 0;
  #closed = false;

  /** Ranged GETs issued, for tests and metrics. */
  gets = 0;

  constructor(ctx: S3Context, bucket: string, info: ObjectInfo) {
    this.#ctx = ctx;
    this.#bucket = bucket;
    this.#info = info;
    this.#chunkSize = ctx.config.readAheadChunkSize;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (this.#closed)
      throw new GatewayError('Failure', `read after close: ${this.#bucket}/${this.#info.key}`);
    const size = this.#info.size;
    if (offset >= size || length <= 0) return Buffer.alloc(0);
    const end = Math.min(size, offset + length);
    const window = this.#chunkSize * (this.#ctx.config.readAheadChunks + 1);
    // Tolerant of SFTP clients with many requests in flight, which arrive slightly out of order.
    const sequential = offset >= this.#expected - window && offset <= this.#expected + window;
    this.#expected = Math.max(this.#expected, end);
    if (!sequential || this.#ctx.config.readAheadChunks === 0) {
      this.#evictBelow(Number.POSITIVE_INFINITY);
      this.#expected = end;
      const release = await this.#ctx.budget.acquire(end - offset, this.#ac.signal);
      try {
        return await this.#get(offset, end);
      } finally {
        release();
      }
    }
    const C = this.#chunkSize;
    const first = Math.floor(offset / C);
    const last = Math.floor((end - 1) / C);
    this.#evictBelow(first - 1);
    const needed: Promise<Buffer>[] = [];
    for (let i = first; i <= last; i++) needed.push(this.#chunk(i, true)!.data);
    const lastChunk = Math.floor((size - 1) / C);
    for (let i = last + 1; i <= Math.min(lastChunk, last + this.#ctx.config.readAheadChunks); i++) {
      if (!this.#chunk(i, false)) break;
    }
    const bufs = await Promise.all(needed);
    const startInFirst = offset - first * C;
    if (bufs.length === 1) return bufs[0]!.subarray(startInFirst, startInFirst + (end - offset));
    return Buffer.concat(bufs).subarray(startInFirst, startInFirst + (end - offset));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#ac.abort(new GatewayError('Failure', 'reader closed'));
    this.#evictBelow(Number.POSITIVE_INFINITY);
  }

  #chunk(i: number, required: boolean): Chunk | undefined {
    const existing = this.#chunks.get(i);
    if (existing) return existing;
    const start = i * this.#chunkSize;
    const end = Math.min(this.#info.size, start + this.#chunkSize);
    let chunk: Chunk;
    if (required) {
      chunk = { evicted: false, data: Promise.resolve(Buffer.alloc(0)) };
      chunk.data = (async () => {
        const release = await this.#ctx.budget.acquire(end - start, this.#ac.signal);
        if (chunk.evicted) {
          release();
          throw new GatewayError('Failure', 'read-ahead chunk evicted');
        }
        chunk.release = release;
        return this.#get(start, end);
      })();
    } else {
      // Read-ahead is optional: only with memory that is free right now, never by waiting for it.
      const release = this.#ctx.budget.tryAcquire(end - start);
      if (!release) return undefined;
      chunk = { evicted: false, release, data: this.#get(start, end) };
    }
    // A prefetched chunk may fail before anyone awaits it; its error surfaces when it is read.
    chunk.data.catch(() => undefined);
    this.#chunks.set(i, chunk);
    return chunk;
  }

  #evictBelow(index: number): void {
    for (const [i, chunk] of this.#chunks) {
      if (i >= index) continue;
      chunk.evicted = true;
      chunk.release?.();
      this.#chunks.delete(i);
    }
  }

  async #get(start: number, end: number): Promise<Buffer> {
    const { client } = this.#ctx;
    const key = this.#info.key;
    this.gets++;
    let body: unknown;
    try {
      const res = await client.send(
        new GetObjectCommand({
          Bucket: this.#bucket,
          Key: key,
          Range: `bytes=${start}-${end - 1}`,
          IfMatch: this.#info.etag,
        }),
        { abortSignal: this.#ac.signal },
      );
      body = res.Body;
      const bytes = await res.Body!.transformToByteArray();
      body = undefined;
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      destroyBody(body);
      throw mapS3Error('GetObject', err, `${this.#bucket}/${key}`);
    }
  }
}
