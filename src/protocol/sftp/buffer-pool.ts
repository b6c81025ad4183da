/**
 * Reusable buffers for the bulk of a transfer: DATA replies the store reads straight into, and WRITE
 * packets joined from SSH packets.
 *
 * A download allocated two fresh 32 KiB buffers per READ (the store's read, then the reply it was copied
 * into), an upload one per WRITE. Node accounts Buffers as external memory and V8 starts a full
 * mark-compact every 64 MB of it: a 256 MiB download ran about 30 of them and spent a fifth of its time
 * in the collector. A reply goes back to the pool once ssh2 has copied it into SSH packets (the
 * channel.write callback), a WRITE packet once the vfs has taken its data (the write settled: the vfs
 * copies whatever it keeps longer), so a transfer keeps reusing the same few buffers.
 */

/** Bytes kept idle in the pool, across all sessions. */
const MAX_POOLED_BYTES = 8 * 1024 * 1024;

export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  /** Every buffer handed out, by its memory, so a reply's sub-view can be traced back to it. */
  private readonly owned = new WeakMap<ArrayBuffer, Buffer>();
  private readonly idle = new WeakSet<Buffer>();
  pooledBytes = 0;

  constructor(private readonly maxPooledBytes = MAX_POOLED_BYTES) {}

  /** A buffer of exactly `size` bytes, reused when one is free. */
  take(size: number): Buffer {
    const list = this.free.get(size);
    const reused = list?.pop();
    if (reused !== undefined) {
      this.idle.delete(reused);
      this.pooledBytes -= size;
      return reused;
    }
    // Its own ArrayBuffer (not a slice of Node's shared pool), so ownership is unambiguous.
    const buf = Buffer.allocUnsafeSlow(size);
    this.owned.set(buf.buffer as ArrayBuffer, buf);
    return buf;
  }

  /** Returns the pool buffer behind `view` (any sub-view of it); other buffers are ignored. */
  release(view: Buffer): void {
    const buf = this.owned.get(view.buffer as ArrayBuffer);
    // Released twice would hand one buffer to two replies: the second release is ignored.
    if (buf === undefined || this.idle.has(buf) || this.pooledBytes + buf.length > this.maxPooledBytes) return;
    let list = this.free.get(buf.length);
    if (list === undefined) {
      list = [];
      this.free.set(buf.length, list);
    }
    list.push(buf);
    this.idle.add(buf);
    this.pooledBytes += buf.length;
  }
}

export const bufferPool = new BufferPool();
