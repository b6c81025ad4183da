/**
 * Send pacing for an SFTP channel: how much of the client's window the gateway fills.
 *
 * SSH flow control lets a server send as much as the client's window allows (2 MiB for OpenSSH), and
 * ssh2 always fills it. When the client consumes slower than the server produces (a download from a
 * server that reads its disk faster than the client decrypts and writes), the whole window then waits
 * in the client's socket and buffers, and the client's copies of it miss the CPU cache (`perf`: three
 * times the samples in memmove and in the kernel's copy from user memory). OpenSSH's `sftp` and `ssh`
 * spent 1.20-1.29 CPU-s receiving 512 MiB from the gateway on loopback, and 0.65-0.78 with this pacer;
 * the get took 1.63-1.80 s against 1.17-1.53 (4 alternating rounds; sshd 1.23-1.96 s). sshd does not
 * fill the window there: its sftp-server hands it data through a pipe at about the client's pace.
 *
 * A smaller window only costs throughput when the path needs it: a byte the client consumes `d` seconds
 * after it left (network round trip, the client's own processing, and its wait until it refills the
 * window) caps a channel at (data in flight) / d. So the pacer measures d for the data it sends, keeps its
 * smallest value (the path with no queue), measures the rate the client consumes, and holds the data in
 * flight to `gain` × rate × d, never under `floor`. A client that waits in a queue of its own data makes
 * rate × d smaller than what is in flight, and the pacer trims the queue; where the path needs more, the
 * pacer opens the window up to all of it. Paths longer than `maxDelayMs` (a client across the internet)
 * are not paced at all.
 *
 * A client that refills its window only when most of it is used could wait forever for data held back
 * under that mark: when the channel has waited `stallMs` for a refill with data held back, the pacer
 * stops pacing it for good.
 */

/** The parts of an ssh2 channel the pacer works with (ssh2 1.17 lib/Channel.js, server.js). */
export interface PacedChannel {
  outgoing: { window: number };
  /** ssh2 sends as much of `data` as `outgoing.window` allows and keeps the rest until a refill. */
  _write(data: Buffer, encoding: unknown, cb: (err?: Error | null) => void): void;
  /** Set when the window ran out with data left; a refill then calls _write with `_chunk`. */
  _waitWindow: boolean;
  _chunk?: Buffer;
  _chunkcb?: (err?: Error | null) => void;
}

export interface PacingOptions {
  /** Bytes in flight the pacer never goes under. */
  floor: number;
  /** Multiple of rate × delay to keep in flight. */
  gain: number;
  /** A wait for a refill this long with data held back ends pacing on the channel. */
  stallMs: number;
  /** Shortest interval a consumption rate is measured over. */
  rateIntervalMs: number;
  /**
   * Paths whose smallest delay is longer are not paced. The delay is kept as the smallest ever measured,
   * so a session whose path got longer mid-transfer (a new route) would be held to the old path's needs;
   * a path that starts this short is a LAN or the same host, where that does not happen.
   */
  maxDelayMs: number;
  now: () => number;
  /** Called when a stall ends pacing on the channel, with what the pacer had measured. */
  onStop?: (state: PacingState) => void;
}

export const DEFAULT_PACING: PacingOptions = {
  floor: 512 * 1024,
  gain: 2,
  stallMs: 100,
  rateIntervalMs: 10,
  maxDelayMs: 10,
  now: () => performance.now(),
};

/** What a pacer measured, for tests and debugging. */
export interface PacingState {
  sent: number;
  consumed: number;
  /** Smallest delay between sending a byte and the refill that followed its consumption, ms. */
  minDelayMs: number;
  /** Bytes per ms the client consumed over the last measured interval. */
  rate: number;
  /** Bytes allowed in flight now (Infinity while unmeasured or off). */
  cap: number;
  /** Bytes of the client's window held back now. */
  held: number;
  stopped: boolean;
}

/** Paces what ssh2 sends on `channel`. Returns the pacer's state, for tests; stop() ends pacing. */
export function paceChannel(
  channel: PacedChannel,
  options: Partial<PacingOptions> = {},
): { state: () => PacingState; stop: () => void } {
  const o = { ...DEFAULT_PACING, ...options };
  const out = channel.outgoing;
  const send = channel._write;
  /** The client's window when pacing started: sent - consumed never exceeds it. */
  const initial = out.window;
  let sent = 0;
  let consumed = 0;
  let held = 0;
  let seen = out.window;
  let minDelay = Infinity;
  let rate = 0;
  let rateAt = o.now();
  let rateFrom = 0;
  let cap = Infinity;
  let stopped = false;
  let lastRefill = rateAt;
  let timer: NodeJS.Timeout | undefined;
  // Offsets (total bytes sent) at the end of each write and when it was made, oldest first; `head`
  // indexes the oldest not yet consumed.
  const ends: number[] = [];
  const times: number[] = [];
  let head = 0;

  const refilled = (amount: number, now: number) => {
    consumed += amount;
    lastRefill = now;
    let at = -1;
    while (head < ends.length && ends[head]! <= consumed) at = times[head++]!;
    if (head > 1024 && head * 2 > ends.length) {
      ends.splice(0, head);
      times.splice(0, head);
      head = 0;
    }
    if (at >= 0 && now - at < minDelay) minDelay = Math.max(now - at, 0.001);
    if (now - rateAt >= o.rateIntervalMs) {
      rate = (consumed - rateFrom) / (now - rateAt);
      rateAt = now;
      rateFrom = consumed;
      // Whole bytes: ssh2 slices the data by the window.
      if (minDelay <= o.maxDelayMs) cap = Math.max(o.floor, Math.floor(o.gain * rate * minDelay));
    }
  };

  const stop = () => {
    if (stopped) return;
    stopped = true;
    cap = Infinity;
    if (timer) clearTimeout(timer);
    channel._write = send;
    out.window += held;
    held = 0;
    // As ssh2's refill handler does for a channel waiting on its window.
    if (channel._waitWindow && channel._chunk && out.window > 0) {
      channel._waitWindow = false;
      send.call(channel, channel._chunk, null, channel._chunkcb!);
    }
  };

  const onStall = () => {
    timer = undefined;
    if (stopped || !channel._waitWindow || held === 0) return;
    const waited = o.now() - lastRefill;
    if (waited >= o.stallMs) {
      o.onStop?.(snapshot());
      stop();
    } else timer = setTimeout(onStall, o.stallMs - waited).unref();
  };

  // What changed ssh2's window since `seen`: a rise is a refill (only ssh2's refill handler raises it), a
  // fall is data sent. Called before and after every send, and inside its callback: ssh2 calls the
  // callback once the data is out, and the stream may write its next chunk from there (a nested _write).
  const account = (now: number) => {
    const d = out.window - seen;
    if (d > 0) refilled(d, now);
    else if (d < 0) {
      sent -= d;
      ends.push(sent);
      times.push(now);
    }
    seen = out.window;
  };

  channel._write = function paced(data, encoding, cb) {
    const now = o.now();
    account(now);
    const window = out.window + held;
    const allowed = Math.max(0, Math.min(window, Math.min(initial, cap) - (sent - consumed)));
    held = window - allowed;
    out.window = seen = allowed;
    let inside = true;
    send.call(this, data, encoding, (err) => {
      if (inside) account(now);
      cb(err);
    });
    inside = false;
    account(now);
    if (held > 0 && channel._waitWindow && !timer) timer = setTimeout(onStall, o.stallMs).unref();
  };

  const snapshot = (): PacingState => ({ sent, consumed, minDelayMs: minDelay, rate, cap, held, stopped });
  return { state: snapshot, stop };
}
