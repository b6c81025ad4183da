/**
 * Part buffers for reuse. Uploads allocate a whole part (8 MiB and up) at a time; allocating a fresh one
 * for every part leaves the process's memory to the garbage collector's timing, and 64 concurrent uploads
 * peaked at 831 MiB of RSS with a 256 MiB budget (bench, 2026-11-23). Reusing buffers keeps RSS near
 * what the budget allows. The budget still decides how many buffers are in use; the pool only holds
 * returned ones, up to `limit` bytes, and empties itself after a quiet minute.
 */
const IDLE_MS = 60_000;

export class PartPool {
  private readonly free = new Map<number, Buffer[]>();
  private bytes = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly limit: number) {}

  take(size: number): Buffer {
    const list = this.free.get(size);
    const buffer = list?.pop();
    if (buffer) {
      this.bytes -= size;
      return buffer;
    }
    // Shared memory, so that the SigV4 hash reads the part on another thread without a copy
    // (async-sha256.ts). Zero pages until written, like an unsafe allocation of this size.
    return Buffer.from(new SharedArrayBuffer(size));
  }

  /** The caller must not touch `buffer` afterwards. */
  give(buffer: Buffer): void {
    if (this.bytes + buffer.length > this.limit) return;
    const list = this.free.get(buffer.length) ?? [];
    list.push(buffer);
    this.free.set(buffer.length, list);
    this.bytes += buffer.length;
    this.idleTimer ??= setTimeout(() => this.trim(), IDLE_MS).unref();
    this.idleTimer.refresh();
  }

  get pooledBytes(): number {
    return this.bytes;
  }

  trim(): void {
    this.free.clear();
    this.bytes = 0;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }
}

const pools = new WeakMap<object, PartPool>();

/** One pool per memory budget, shared by every store drawing from it (sessions with assumed roles too). */
export function partPoolFor(budget: { limit: number }): PartPool {
  let pool = pools.get(budget);
  if (!pool) {
    pool = new PartPool(budget.limit);
    pools.set(budget, pool);
  }
  return pool;
}
