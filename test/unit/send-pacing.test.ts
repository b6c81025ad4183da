/**
 * Send pacing (src/protocol/send-pacing.ts) on ssh2's own Channel class: the pacer works by lowering
 * ssh2's view of the client's window, so the tests drive the real _write (packet slicing, waiting for a
 * refill) and mirror ssh2's refill handler. The client is simulated: when it consumes, when it refills
 * the window, with a clock the test controls.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { type PacedChannel, paceChannel } from '../../src/protocol/send-pacing.js';

const require = createRequire(import.meta.url);
const { Channel } = require('ssh2/lib/Channel.js') as {
  Channel: new (client: unknown, info: unknown, opts: { server: boolean }) => PacedChannel & NodeJS.WritableStream;
};

const WINDOW = 2 * 1024 * 1024;
const PACKET = 32 * 1024;
const FLOOR = 512 * 1024;

/** A server-side channel whose packets are collected; the client's window starts at `window`. */
function channel(window = WINDOW) {
  const packets: Buffer[] = [];
  const protocol = {
    channelData: (_id: number, data: Buffer) => packets.push(Buffer.from(data)),
    channelEOF: () => undefined,
    channelClose: () => undefined,
  };
  const info = {
    type: 'session',
    incoming: { id: 0, window: WINDOW, packetSize: PACKET, state: 'open' },
    outgoing: { id: 1, window, packetSize: PACKET, state: 'open' },
  };
  const ch = new Channel({ _protocol: protocol }, info, { server: true });
  return { ch, packets, sent: () => packets.reduce((n, p) => n + p.length, 0) };
}

/** ssh2 1.17 lib/server.js:783-791: the client granted `amount` more bytes. */
function refill(ch: PacedChannel, amount: number): void {
  ch.outgoing.window += amount;
  if (ch._waitWindow) {
    ch._waitWindow = false;
    if (ch._chunk) ch._write(ch._chunk, null, ch._chunkcb!);
    else if (ch._chunkcb) ch._chunkcb();
  }
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Writes `count` buffers of random sizes and bytes, the first one small (an SFTP session starts with a
 * short VERSION reply: the pacer's first delay, and so its smallest, is not a random write's); returns
 * what was written.
 */
function writeMany(ch: NodeJS.WritableStream, count: number, max = 300 * 1024): Buffer {
  const all: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const b = randomBytes(i === 0 ? 4096 : 1 + Math.floor(Math.random() * max));
    all.push(b);
    ch.write(b);
  }
  return Buffer.concat(all);
}

describe('send pacing', () => {
  it('keeps the bytes and their order, never exceeds the client’s window, and holds a nearby client to the floor', async () => {
    let now = 0;
    const { ch, packets, sent } = channel();
    const pacer = paceChannel(ch, { now: () => now, floor: FLOOR, rateIntervalMs: 10 });
    const written = writeMany(ch, 300);
    // The client consumes 64 KiB per ms and refills every 96 KiB, as OpenSSH does (channels.c,
    // channel_check_window: more than 3 packets consumed).
    let adjusted = 0;
    let consumed = 0;
    const inFlight: number[] = [];
    while (sent() < written.length || consumed < written.length) {
      now += 1;
      assert.ok(now < 20_000, `stalled: ${JSON.stringify(pacer.state())}`);
      consumed = Math.min(sent(), consumed + 64 * 1024);
      if (consumed - adjusted >= 3 * PACKET || (consumed === sent() && consumed > adjusted)) {
        refill(ch, consumed - adjusted);
        adjusted = consumed;
      }
      await tick();
      assert.ok(sent() - adjusted <= WINDOW, `sent ${sent()} with only ${adjusted} of the window refilled`);
      inFlight.push(sent() - adjusted);
    }
    assert.ok(packets.every((p) => Number.isInteger(p.length) && p.length > 0 && p.length <= PACKET));
    assert.ok(Buffer.concat(packets).equals(written), 'the client received exactly what was written, in order');
    const state = pacer.state();
    assert.equal(state.cap, FLOOR, `rate × delay is far under the floor here: ${JSON.stringify(state)}`);
    const late = inFlight.slice(inFlight.length / 2);
    assert.ok(Math.max(...late) <= FLOOR, `in flight ${Math.max(...late)} after pacing settled`);
    assert.ok(Math.max(...inFlight) > FLOOR, 'before its first measurement the pacer filled the window');
  });

  /**
   * A client that consumes `perMs` bytes per ms, refills every 96 KiB, and whose refills reach the server
   * `delayMs` later. Returns what the pacer ended with and the data in flight over the second half.
   */
  async function delayedClient(delayMs: number, perMs: number) {
    let now = 0;
    const { ch, packets, sent } = channel();
    const pacer = paceChannel(ch, { now: () => now, floor: FLOOR, rateIntervalMs: 10 });
    const written = writeMany(ch, 300);
    const pending: Array<{ at: number; amount: number }> = [];
    let consumed = 0;
    let granted = 0;
    let adjusted = 0;
    const inFlight: number[] = [];
    while (adjusted < written.length) {
      now += 1;
      assert.ok(now < 20_000, `stalled: ${JSON.stringify(pacer.state())}`);
      consumed = Math.min(sent(), consumed + perMs);
      if (consumed - granted >= 3 * PACKET || (consumed === written.length && consumed > granted)) {
        pending.push({ at: now + delayMs, amount: consumed - granted });
        granted = consumed;
      }
      while (pending.length && pending[0]!.at <= now) {
        const { amount } = pending.shift()!;
        adjusted += amount;
        refill(ch, amount);
      }
      await tick();
      inFlight.push(sent() - adjusted);
    }
    assert.ok(packets.every((p) => p.length > 0 && p.length <= PACKET));
    assert.ok(Buffer.concat(packets).equals(written), 'the client received exactly what was written, in order');
    const late = inFlight.slice(inFlight.length / 2, -(delayMs + 20));
    return { state: pacer.state(), most: Math.max(...late) };
  }

  it('keeps gain × rate × delay in flight on a path between, in whole bytes', async () => {
    // 100,000 bytes per ms, 3 ms: 2 × rate × delay is over the floor and under the window, and not a whole
    // number of bytes (ssh2 slicing by a fractional window corrupted the stream).
    const { state, most } = await delayedClient(3, 100_000);
    assert.ok(state.cap > FLOOR && state.cap < WINDOW, `cap ${state.cap} between the floor and the window`);
    assert.ok(most <= state.cap * 1.5 && most > FLOOR, `in flight up to ${most}, cap ${state.cap}`);
  });

  it('opens the whole window where the path needs it, and does not pace a long path', async () => {
    // A fast client 8 ms away needs more than the window.
    const near = await delayedClient(8, 1024 * 1024);
    assert.ok(near.state.cap >= WINDOW && Number.isFinite(near.state.cap), JSON.stringify(near.state));
    assert.ok(near.most >= WINDOW - 96 * 1024, `in flight at most ${near.most}`);
    // 50 ms away (a client across the internet): never paced, whatever it consumes.
    const far = await delayedClient(50, 64 * 1024);
    assert.equal(far.state.cap, Infinity, JSON.stringify(far.state));
    assert.ok(far.most >= WINDOW - 96 * 1024, `in flight at most ${far.most}`);
  });

  it('stops pacing a client that refills only when most of its window is used, and the transfer completes', async () => {
    let now = 0;
    const { ch, packets, sent } = channel();
    const stops: unknown[] = [];
    const pacer = paceChannel(ch, {
      now: () => now,
      floor: FLOOR,
      rateIntervalMs: 10,
      stallMs: 30,
      onStop: (state) => stops.push(state),
    });
    const written = writeMany(ch, 100);
    // The client consumes 64 KiB per ms. For its first 4 MiB it refills every 96 KiB, which sets the pacer
    // to the floor; then it refills like ssh2's own client (lib/Channel.js windowAdjust), only once half
    // of its window is used, which the data the pacer lets out never reaches.
    let consumed = 0;
    let adjusted = 0;
    const deadline = Date.now() + 10_000;
    while (adjusted < written.length) {
      assert.ok(Date.now() < deadline, `stalled: ${JSON.stringify(pacer.state())}`);
      now += 1;
      consumed = Math.min(sent(), consumed + 64 * 1024);
      const done = sent() === written.length && consumed === sent();
      const due = adjusted < 4 * 1024 * 1024 ? consumed - adjusted >= 3 * PACKET : sent() - adjusted >= WINDOW / 2;
      if ((due || done) && consumed > adjusted) {
        refill(ch, consumed - adjusted);
        adjusted = consumed;
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    assert.ok(Buffer.concat(packets).equals(written));
    assert.equal(pacer.state().stopped, true, JSON.stringify(pacer.state()));
    assert.equal(pacer.state().held, 0);
    assert.equal(stops.length, 1, 'onStop called once, with the state before the stop');
    assert.ok((stops[0] as { held: number }).held > 0);
    assert.ok(written.length > 8 * 1024 * 1024, 'enough data for both phases');
  });
});
