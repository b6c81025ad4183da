/**
 * One process-wide pool of bytes that every upload part buffer and every read-ahead buffer draws from,
 * so that memory is bounded globally and not per file: 100 concurrent uploads wait for each other instead
 * of taking the process down. Waiting is the backpressure; a request is never refused for being busy.
 * Upload part buffers draw on a share of it (a budget with this one as its parent, uploadMemoryMiB), so
 * that half-filled parts of slow uploaders cannot take what downloads' read-ahead needs.
 */
export type Release = () => void;

export const DEFAULT_MEMORY_BUDGET = 256 * 1024 * 1024;

interface Waiter {
  bytes: number;
  resolve: (release: Release) => void;
  reject: (err: unknown) => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class MemoryBudget {
  #limit: number;
  #inUse = 0;
  #queue: Waiter[] = [];
  readonly #parent: MemoryBudget | undefined;

  /**
   * With a `parent`, this budget is a share of it: a grant needs room in both, taken here first (in this
   * budget's order), then in the parent. Holders of a share never wait on each other through the parent,
   * since the parent's other holders (read-ahead, other shares) release what they hold without waiting
   * for this share.
   */
  constructor(limit: number = DEFAULT_MEMORY_BUDGET, parent?: MemoryBudget) {
    if (!Number.isFinite(limit) || limit <= 0)
      throw new RangeError(`memory budget must be positive: ${limit}`);
    this.#limit = Math.floor(Math.min(limit, parent?.limit ?? limit));
    this.#parent = parent;
  }

  get limit(): number {
    return this.#limit;
  }

  get inUse(): number {
    return this.#inUse;
  }

  /** Requests currently waiting for memory (a metric for "the budget is the bottleneck"). */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Resolves with a release function once `bytes` fit. Waiters are served strictly in arrival order, so a
   * large request is not starved by a stream of small ones. A request larger than the whole budget is
   * clamped to it: it proceeds alone rather than waiting forever.
   */
  acquire(bytes: number, signal?: AbortSignal): Promise<Release> {
    const parent = this.#parent;
    if (parent === undefined) return this.#acquireOwn(bytes, signal);
    return this.#acquireOwn(bytes, signal).then(async (own) => {
      try {
        const fromParent = await parent.acquire(bytes, signal);
        return both(own, fromParent);
      } catch (err) {
        own();
        throw err;
      }
    });
  }

  #acquireOwn(bytes: number, signal?: AbortSignal): Promise<Release> {
    const n = this.#clamp(bytes);
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
    if (this.#queue.length === 0 && this.#inUse + n <= this.#limit) {
      return Promise.resolve(this.#grant(n));
    }
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = { bytes: n, resolve, reject };
      if (signal) {
        waiter.signal = signal;
        waiter.onAbort = () => {
          const i = this.#queue.indexOf(waiter);
          if (i >= 0) this.#queue.splice(i, 1);
          reject(signal.reason ?? new Error('aborted'));
          // Removing a large waiter at the head may unblock smaller ones behind it.
          this.#drain();
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#queue.push(waiter);
    });
  }

  /** Grants at once or not at all; never jumps the queue. For optional work such as read-ahead. */
  tryAcquire(bytes: number): Release | undefined {
    const n = this.#clamp(bytes);
    if (this.#queue.length !== 0 || this.#inUse + n > this.#limit) return undefined;
    const own = this.#grant(n);
    if (this.#parent === undefined) return own;
    const fromParent = this.#parent.tryAcquire(bytes);
    if (fromParent === undefined) {
      own();
      return undefined;
    }
    return both(own, fromParent);
  }

  #clamp(bytes: number): number {
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`invalid byte count: ${bytes}`);
    return Math.min(Math.ceil(bytes), this.#limit);
  }

  #grant(n: number): Release {
    this.#inUse += n;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inUse -= n;
      this.#drain();
    };
  }

  #drain(): void {
    while (this.#queue.length > 0) {
      const head = this.#queue[0]!;
      if (this.#inUse + head.bytes > this.#limit) return;
      this.#queue.shift();
      if (head.signal && head.onAbort) head.signal.removeEventListener('abort', head.onAbort);
      head.resolve(this.#grant(head.bytes));
    }
  }
}

function both(a: Release, b: Release): Release {
  return () => {
    b();
    a();
  };
}

let shared: MemoryBudget | undefined;

/** The process-wide budget. Configure it once at startup, before the first store is created. */
export function sharedMemoryBudget(): MemoryBudget {
  shared ??= new MemoryBudget();
  return shared;
}

export function configureSharedMemoryBudget(limit: number): MemoryBudget {
  if (shared && shared.inUse > 0) throw new Error('the memory budget cannot be replaced while in use');
  shared = new MemoryBudget(limit);
  return shared;
}
