/**
 * Upload data that sessions have read from their channels and the filesystem has not taken yet, counted
 * across all sessions. Each session already stops reading its channel above its own limit, but 64
 * sessions times that limit is more memory than the storage layer's whole budget: when a shared budget
 * makes every writer wait, data must stop being accepted everywhere, not pile up per session.
 */
export class WriteBacklog {
  private bytes = 0;
  private readonly waiters = new Set<() => void>();

  constructor(readonly limit: number) {}

  get over(): boolean {
    return this.bytes > this.limit;
  }

  get size(): number {
    return this.bytes;
  }

  add(bytes: number): void {
    this.bytes += bytes;
  }

  release(bytes: number): void {
    const wasOver = this.over;
    this.bytes -= bytes;
    if (wasOver && !this.over) for (const wake of [...this.waiters]) wake();
  }

  /** Calls `wake` whenever the backlog drops back under its limit; returns the unsubscribe function. */
  onBelowLimit(wake: () => void): () => void {
    this.waiters.add(wake);
    return () => this.waiters.delete(wake);
  }
}
