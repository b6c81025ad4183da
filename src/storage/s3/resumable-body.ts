import { Readable } from 'node:stream';
import { isConnectionError, mapS3Error } from './errors.js';
import { destroyBody } from './multipart-writer.js';

/** Sends the GET of [from, the range's end), pinned with If-Match to the ETag the first GET had. */
export type ReopenBody = (from: number, signal: AbortSignal) => Promise<Readable>;

/** Resumes of a body that failed while it was being read (the store's fault), as the reader allows. */
const MAX_STORE_FAILURES = 3;

/**
 * The body of a ranged GET (S3Store.getStream) as a stream that outlives the S3 client's socketTimeout
 * while its consumer does not read. That timeout counts a paused body as inactive (see the S3Store
 * constructor), and a consumer may pause for long: copyTail feeds the tail of an object into an upload
 * that waits for memory or for its parts in flight.
 *
 * When the body fails with a connection error while this stream holds it paused (push() asked to stop
 * and the consumer has not asked for more since), the next read re-opens the range where it stopped,
 * pinned to the same ETag, so that a changed object fails with PreconditionFailed. A body that fails
 * while it is being read is the store's doing: resumed at once, at most 3 times and only after bytes
 * came from it, as the read-ahead reader does. Anything else, and a failed re-open (after the SDK's own
 * retries), ends the stream with a mapped GatewayError. A held body that fails is re-opened only when
 * the consumer reads again, so an abandoned stream sends no GETs; each re-open follows bytes read, so
 * none of this loops without progress.
 */
export class ResumableBody extends Readable {
  readonly #reopen: ReopenBody;
  readonly #where: string;
  /** Absolute end of the range (exclusive), when the first answer told it. */
  readonly #end: number | undefined;
  readonly #ac = new AbortController();
  #body: Readable | undefined;
  /** Absolute offset of the next byte, and where the current body began. */
  #pos: number;
  #bodyStart: number;
  /** push() asked to stop and the body is paused: the consumer is idle, not the store. */
  #held = false;
  /** The body failed while held: the next _read re-opens the range. */
  #broken = false;
  #failures = 0;

  constructor(
    body: Readable,
    range: { start: number; end: number | undefined; where: string },
    reopen: ReopenBody,
  ) {
    super();
    this.#reopen = reopen;
    this.#where = range.where;
    this.#end = range.end;
    this.#pos = this.#bodyStart = range.start;
    this.#attach(body);
  }

  override _read(): void {
    this.#held = false;
    if (this.#broken) {
      this.#broken = false;
      void this.#resume();
    } else {
      this.#body?.resume();
    }
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#ac.abort();
    destroyBody(this.#body);
    this.#body = undefined;
    callback(err);
  }

  #attach(body: Readable): void {
    this.#body = body;
    this.#bodyStart = this.#pos;
    body.on('data', (data: Buffer) => {
      if (this.#body !== body) return;
      this.#pos += data.length;
      if (!this.push(data)) {
        this.#held = true;
        body.pause();
      }
    });
    body.on('end', () => {
      if (this.#body !== body) return;
      if (this.#end !== undefined && this.#pos < this.#end) {
        this.#failed(body, new Error(`the body ended at ${this.#pos}, not ${this.#end}`));
      } else {
        this.#body = undefined;
        this.push(null);
      }
    });
    body.on('error', (err) => this.#failed(body, err));
  }

  #failed(body: Readable, err: unknown): void {
    if (this.#body !== body || this.destroyed) return;
    this.#body = undefined;
    destroyBody(body);
    if (this.#held && isConnectionError(err)) {
      this.#broken = true;
      return;
    }
    if (this.#pos > this.#bodyStart && this.#failures++ < MAX_STORE_FAILURES) {
      void this.#resume();
      return;
    }
    this.destroy(mapS3Error('GetObject', err, this.#where));
  }

  async #resume(): Promise<void> {
    if (this.#end !== undefined && this.#pos >= this.#end) {
      this.push(null);
      return;
    }
    try {
      const body = await this.#reopen(this.#pos, this.#ac.signal);
      if (this.destroyed) destroyBody(body);
      else this.#attach(body);
    } catch (err) {
      if (!this.destroyed) this.destroy(mapS3Error('GetObject', err, this.#where));
    }
  }
}
