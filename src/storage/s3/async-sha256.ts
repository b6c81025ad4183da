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
 *
 * That copy was still 17 % of the main thread's busy time in 512 MiB uploads to S3 (an 8 MiB copy per
 * part, each into fresh pages: ~45,000 page faults per upload). Upload parts are therefore allocated in
 * SharedArrayBuffers (part-pool.ts) and hashed in place: by the native addon native/sha256 on libuv's
 * thread pool, or, where it was not built, by one worker thread. Only a large input in ordinary memory
 * still takes the copying WebCrypto path.
 *
 * The worker thread is a whole Node environment: on Node 24 it held 12-27 MiB of RSS at the peak of 64
 * concurrent uploads over plain HTTP, which the addon does not (bench, 2026-12-05).
 */
import { createHash, createHmac, webcrypto } from 'node:crypto';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { HashReply, HashRequest } from './sha256-worker.js';

/** Below this many bytes the hash is computed on the calling thread. */
const OFF_THREAD_BYTES = 256 * 1024;

type SourceData = string | ArrayBuffer | ArrayBufferView;

function toBuffer(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

/**
 * Hashes views of SharedArrayBuffers on one worker thread, without copying them. The thread costs about
 * 18 MiB of RSS, so it starts with the first upload part and stops after `idleMs` without one.
 */
export class SharedMemoryHasher {
  #worker: Worker | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (d: Uint8Array) => void; reject: (e: Error) => void }>();
  /** Digests computed this way (tests check that parts take this path). */
  digests = 0;

  constructor(
    private readonly idleMs = 30_000,
    private readonly script = new URL('./sha256-worker.js', import.meta.url),
  ) {}

  get running(): boolean {
    return this.#worker !== undefined;
  }

  digest(view: Uint8Array): Promise<Uint8Array> {
    const worker = this.#start();
    const id = this.#nextId++;
    const request: HashRequest = {
      id,
      buffer: view.buffer as SharedArrayBuffer,
      offset: view.byteOffset,
      length: view.byteLength,
    };
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      // Referenced only while a digest is owed, so an idle hasher never keeps the process alive.
      if (this.#pending.size === 1) worker.ref();
      if (this.#idleTimer) clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
      worker.postMessage(request);
    });
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(this.script);
    worker.unref();
    worker.on('message', (m: HashReply) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (this.#pending.size === 0) {
        worker.unref();
        this.#idleTimer = setTimeout(() => this.#stop(worker), this.idleMs).unref();
      }
      if (m.digest) {
        this.digests++;
        p.resolve(m.digest);
      } else p.reject(new Error(`SHA-256 worker: ${m.error}`));
    });
    const fail = (err: Error) => {
      if (this.#worker === worker) this.#worker = undefined;
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`SHA-256 worker exited with code ${code}`)));
    this.#worker = worker;
    return worker;
  }

  #stop(worker: Worker): void {
    if (this.#worker !== worker || this.#pending.size > 0) return;
    this.#worker = undefined;
    void worker.terminate();
  }
}

/** The addon's interface (native/sha256/sha256.c). */
interface Sha256Addon {
  digest(view: Uint8Array): Promise<Uint8Array>;
}

/**
 * A queue that runs its tasks one at a time, each when the previous one settles: digests on libuv's thread
 * pool, whose 4 threads also serve file system calls and DNS lookups.
 */
function oneAtATime(): <T>(task: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (task) => {
    const run = tail.then(task);
    tail = run.catch(() => undefined);
    return run;
  };
}

/** native/sha256's build output, relative to this file in dist/src/storage/s3. */
const ADDON_PATH = '../../../../native/sha256/build/Release/sha256.node';

function loadAddon(path: string): Sha256Addon | undefined {
  try {
    return createRequire(import.meta.url)(path) as Sha256Addon;
  } catch {
    return undefined;
  }
}

/**
 * Hashes views of SharedArrayBuffers on libuv's thread pool with the native addon, in place. One digest
 * at a time: hashing 8 MiB takes ~5 ms (1.6 GB/s here), far less than sending it.
 */
export class NativeHasher {
  readonly #queue = oneAtATime();
  /** Digests computed this way (tests check that parts take this path). */
  digests = 0;

  constructor(private readonly addon: Sha256Addon) {}

  digest(view: Uint8Array): Promise<Uint8Array> {
    return this.#queue(() => this.addon.digest(view)).then((d) => {
      this.digests++;
      return d;
    });
  }
}

/** The native hasher when native/sha256 was built (npm ci builds it), else undefined. */
export function loadNativeHasher(path = ADDON_PATH): NativeHasher | undefined {
  const addon = loadAddon(path);
  return addon ? new NativeHasher(addon) : undefined;
}

/** What hashes upload parts in this process: the addon where it loads, else the worker thread. */
export const partHasher: NativeHasher | SharedMemoryHasher = loadNativeHasher() ?? new SharedMemoryHasher();

/** WebCrypto's digests of large inputs in ordinary memory. */
const webCryptoQueue = oneAtATime();

/** Shaped like the SDK's Checksum / Hash (`new Sha256(secret?)`, update, digest, reset). */
export class AsyncSha256 {
  /** Where shared-memory inputs are hashed (tests put a broken one here). */
  static sharedHasher: Pick<SharedMemoryHasher, 'digest'> = partHasher;
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
    if (chunks.length === 1 && chunks[0]!.buffer instanceof SharedArrayBuffer) {
      try {
        return await AsyncSha256.sharedHasher.digest(chunks[0]!);
      } catch {
        // A thread that cannot start or died, or an addon error. WebCrypto refuses shared memory: hash
        // here, as the SDK would.
        return createHash('sha256').update(chunks[0]!).digest();
      }
    }
    const data = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    return Buffer.from(await webCryptoQueue(() => webcrypto.subtle.digest('SHA-256', data)));
  }

  reset(): void {
    this.chunks = [];
    this.bytes = 0;
  }
}
