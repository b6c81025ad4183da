import { type DestinationStream, type Logger, pino } from 'pino';

export type { Logger };

/**
 * One JSON object per line on stdout. Per-connection context (session id, user, client address) lives in
 * child loggers (`logger.child({ 'session-id': ..., user: ..., 'source-ip': ... })`) so that no call site
 * repeats it. Field names follow the managed service's log format (kebab-case) where one exists.
 */
export function createLogger(
  options: {
    level?: string;
    destination?: NodeJS.WritableStream;
    /**
     * stdout only: at most one write per this long while lines keep coming (BatchedDestination). Omitted,
     * the process's stdout keeps the interval it has (0 until one is given).
     */
    writeIntervalMs?: number;
  } = {},
): Logger {
  return pino(
    {
      level: options.level ?? process.env['LOG_LEVEL'] ?? 'info',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: ['password', '*.password', 'secretAccessKey', '*.secretAccessKey'],
        censor: '[redacted]',
      },
    },
    options.destination ?? stdout(options.writeIntervalMs),
  );
}

/**
 * Process warnings (Node's deprecations, MaxListenersExceededWarning, the AWS SDK's
 * NodeVersionSupportWarning on Node 20) become log lines like every other event. Node's default printer
 * writes them to stderr as several lines of text, which a log collector takes as unparsed records
 * without the time or level the JSON lines carry.
 */
export function logProcessWarnings(logger: Logger): void {
  // Node's printer is the one listener it installs (none with --no-warnings); ours replaces it.
  process.removeAllListeners('warning');
  process.on('warning', (warning: Error & { code?: string; detail?: string }) => {
    logger.warn({ warning: warning.name, code: warning.code, detail: warning.detail }, warning.message);
  });
}

/** A logger that drops everything, for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** Lines held before they are written anyway: a burst of logging does not grow a big string. */
const MAX_HELD_CHARS = 64 * 1024;

let stdoutDestination: BatchedDestination | undefined;

/** The process's one stdout destination (one exit hook, one buffer, whatever number of loggers). */
function stdout(intervalMs: number | undefined): BatchedDestination {
  stdoutDestination ??= new BatchedDestination(pino.destination({ fd: 1, sync: true }), 0);
  if (intervalMs !== undefined) stdoutDestination.intervalMs = intervalMs;
  return stdoutDestination;
}

/**
 * Lines are held and written together, synchronously, at most once per `intervalMs`
 * (logging.writeIntervalMs, 20 ms by default). A line after a quiet spell goes out at the end of its
 * event-loop turn (setImmediate: after the turn's replies, whose socket writes wait for the turn's end
 * too, see coalesced-writes.ts); the lines that follow go with the next write. A small download logs OPEN
 * and CLOSE, and a write(2) per line to the pipe behind stdout, waking its reader, took 6-12 % of the
 * gateway's CPU in 1,000 small gets.
 *
 * Lines are not dropped: `exit` handlers run on process.exit and after an uncaught exception, flush()
 * writes at once, and the write underneath (sonic-boom) retries a full pipe. What a SIGKILL or a native
 * crash can lose is what was logged in the last `intervalMs`; with 0, only the current turn's lines.
 */
export class BatchedDestination implements DestinationStream {
  #held = '';
  #scheduled = false;
  #lastWrite = -Infinity;
  readonly #flushSync = (): void => this.flushSync();

  constructor(
    private readonly target: { write(s: string): unknown },
    public intervalMs: number,
  ) {
    process.on('exit', this.#flushSync);
  }

  write(line: string): void {
    this.#held += line;
    if (this.#held.length >= MAX_HELD_CHARS) {
      this.flushSync();
      return;
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    const wait = this.#lastWrite + this.intervalMs - performance.now();
    if (wait <= 0) setImmediate(this.#flushSync);
    // Unref'd: the exit hook writes what is held if nothing else keeps the process alive.
    else setTimeout(this.#flushSync, wait).unref();
  }

  flushSync(): void {
    this.#scheduled = false;
    if (this.#held === '') return;
    const lines = this.#held;
    this.#held = '';
    this.#lastWrite = performance.now();
    this.target.write(lines);
  }

  /** Writes what is held and stops watching for the process's exit (tests make several). */
  close(): void {
    this.flushSync();
    process.off('exit', this.#flushSync);
  }

  /** pino's logger.flush(). */
  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    cb?.();
  }
}
