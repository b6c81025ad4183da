/**
 * SHA-256 for the S3 client's SigV4 signing, hashing large payloads off the event loop.
 *
 * SigV4 signs the SHA-256 of every request body. The SDK's default hash runs on the main thread, so for
 * each 8 MiB part the gateway stopped serving SSH for the time of hashing it: 10% of the gateway's busy
 * time in a 256 MiB upload to S3 (bench profile), on the same thread that decrypts the client's data.
 * WebCrypto's digest runs on libuv's thread pool. Small inputs (the canonical request, string to sign)
 * and HMACs (keyed, small) stay synchronous, where a thread hop would cost more than it saves.
 *
 * Node copies a digest's input before handing it to the thread pool, so every hash waiting for a thread
 * held a second copy of its part: 4 copies (32 MiB of native memory) at the peak of 64 concurrent
 * uploads (heaptrack). Off-thread digests therefore run one at a time and copy only when they start:
 * hashing 8 MiB takes a few ms, far less than sending it, so one at a time costs no throughput.
 */
import { createHash, createHmac, webcrypto } from 'node:crypto';

/** Below this many bytes the hash is computed on the calling thread. */
const OFF_THREAD_BYTES = 256 * 1024;

type SourceData = string | ArrayBuffer | ArrayBufferView;

function toBuffer(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/** The last off-thread digest queued: the next one starts when it settles. */
let offThreadTail: Promise<unknown> = Promise.resolve();

/** Shaped like the SDK's Checksum / Hash (`new Sha256(secret?)`, update, digest, reset). */
export class AsyncSha256 {
  readonly digestLength = 32;
  private chunks: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly secret?: SourceData) {}

  update(data: SourceData): void {
    const chunk = toBuffer(data);
    this.chunks.push(chunk);
    this.bytes += chunk.length;
  }

  async digest(): Promise<Uint8Array> {
    const { chunks, bytes } = this;
    this.reset();
    if (this.secret !== undefined) {
      const hmac = createHmac('sha256', toBuffer(this.secret));
      for (const c of chunks) hmac.update(c);
      return hmac.digest();
    }
    if (bytes < OFF_THREAD_BYTES) {
      const hash = createHash('sha256');
      for (const c of chunks) hash.update(c);
      return hash.digest();
    }
    const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    const run = offThreadTail.then(() => webcrypto.subtle.digest('SHA-256', data));
    offThreadTail = run.catch(() => undefined);
    return Buffer.from(await run);
  }

  reset(): void {
    this.chunks = [];
    this.bytes = 0;
  }
}
