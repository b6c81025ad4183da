/**
 * Replies to the channel with backpressure: packets go straight to the channel while it accepts them;
 * once channel.write() returns false they wait here until 'drain'. The session watches `queuedBytes` to
 * stop reading requests, so slow downloads cannot grow this queue without bound.
 */
import type { Writable } from 'node:stream';
import { bufferPool } from './buffer-pool.js';

export class ReplyQueue {
  private readonly queue: Buffer[] = [];
  private waitingForDrain = false;
  private closed = false;
  queuedBytes = 0;

  constructor(
    private readonly channel: Writable,
    /** Called after the queue shrank, so the session can resume reading. */
    private readonly onDrained: () => void,
  ) {}

  send(packet: Buffer): void {
    if (this.closed) return;
    if (this.waitingForDrain) {
      this.queue.push(packet);
      this.queuedBytes += packet.length;
      return;
    }
    this.writeOrWait(packet);
  }

  /** Drops queued replies; later sends are ignored (the channel is going away). */
  close(): void {
    this.closed = true;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.channel.off('drain', this.flush);
  }

  private writeOrWait(packet: Buffer): void {
    if (!this.channel.writable) return;
    // Without an error the callback runs once ssh2 has copied the packet into SSH packets: a pooled reply
    // is free again. After an error ssh2 may still hold it, so it is left to the garbage collector.
    if (!this.channel.write(packet, (err) => err || bufferPool.release(packet))) {
      this.waitingForDrain = true;
      this.channel.once('drain', this.flush);
    }
  }

  private readonly flush = (): void => {
    this.waitingForDrain = false;
    while (!this.waitingForDrain && !this.closed) {
      const packet = this.queue.shift();
      if (packet === undefined) break;
      this.queuedBytes -= packet.length;
      this.writeOrWait(packet);
    }
    this.onDrained();
  };
}
