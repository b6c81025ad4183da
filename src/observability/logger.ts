import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * One JSON object per line on stdout. Per-connection context (session id, user, client address) lives in
 * child loggers (`logger.child({ 'session-id': ..., user: ..., 'source-ip': ... })`) so that no call site
 * repeats it. Field names follow the managed service's log format (kebab-case) where one exists.
 */
export function createLogger(options: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
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
    // Synchronous: an audit line must reach stdout before the process can die, and a line is written per
    // event (file, session), not per packet, so the cost is small.
    options.destination ?? pino.destination({ fd: 1, sync: true }),
  );
}

/** A logger that drops everything, for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
