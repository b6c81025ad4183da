import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { SshCrypto } from './ssh-crypto.js';

/**
 * The gateway's Prometheus metrics, on a registry of its own (never prom-client's global one), so that
 * several gateways or tests in one process do not collide. Served by observability/http.ts.
 *
 * Names follow Prometheus conventions: base units (`_seconds`, `_bytes`), counters end in `_total`. Label
 * values come from small fixed sets (auth methods, S3 operations, S3 error codes, SFTP packet types) so
 * the series count stays bounded; user names, paths and addresses are never labels.
 */

export type TransferDirection = 'in' | 'out';
export type AuthMethod = 'publickey' | 'password' | 'keyboard-interactive' | 'hostbased' | 'none';
export type MultipartEvent = 'started' | 'completed' | 'aborted';
/**
 * How a transfer ended: `ok` (a complete file: counted in files_in/out), `partial` (the managed service's
 * PARTIAL_CLOSE: the session dropped or the upload was aborted) or `error`. Bytes are counted either way.
 */
export type TransferResult = 'ok' | 'partial' | 'error';

export interface TransferObservation {
  direction: TransferDirection;
  bytes: number;
  seconds: number;
  result?: TransferResult;
}

export interface MemoryBudgetSnapshot {
  inUse: number;
  limit: number;
  /** Requests waiting for memory, if the budget reports it. */
  waiting?: number;
}

/** Called at every scrape; a `MemoryBudget` instance itself fits (`() => budget`). */
export type MemoryBudgetSource = () => MemoryBudgetSnapshot;

/** 10 ms .. 1 h. */
export const TRANSFER_DURATION_BUCKETS = [
  0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
];
/** 5 ms .. 1 min (S3 latency; long multipart part uploads land in the upper buckets). */
export const S3_REQUEST_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const KNOWN_AUTH_METHODS: ReadonlySet<string> = new Set<AuthMethod>([
  'publickey',
  'password',
  'keyboard-interactive',
  'hostbased',
  'none',
]);

/** Label values are free text from callers; keep them short and printable so a bug cannot explode them. */
function labelValue(v: string): string {
  const clean = v.replace(/[^\w.:@/-]/g, '_');
  return clean.length > 64 ? clean.slice(0, 64) : clean;
}

export interface GatewayMetricsOptions {
  /** Collect prom-client's default process metrics (CPU, memory, event loop lag, GC, handles). Default true. */
  defaultMetrics?: boolean;
  /** Labels put on every series of this registry (e.g. `{instance_role: 'sftp'}`). */
  defaultLabels?: Record<string, string>;
}

export class GatewayMetrics {
  readonly registry: Registry;

  readonly #sessionsActive: Gauge;
  readonly #sessionsTotal: Counter;
  readonly #authAttempts: Counter<'method' | 'result'>;
  readonly #filesIn: Counter;
  readonly #filesOut: Counter;
  readonly #bytesIn: Counter;
  readonly #bytesOut: Counter;
  readonly #transfersIncomplete: Counter<'direction' | 'result'>;
  readonly #transferDuration: Histogram<'direction'>;
  readonly #s3Duration: Histogram<'operation'>;
  readonly #s3Errors: Counter<'operation' | 'code'>;
  readonly #multipart: Counter<'event'>;
  readonly #prefetched: Counter<'outcome'>;
  readonly #sftpRequests: Counter<'type' | 'status'>;
  readonly #pacingStops: Counter;
  readonly #sshCrypto: Gauge<'implementation'>;
  #memorySource: MemoryBudgetSource | undefined;
  #uploadMemorySource: MemoryBudgetSource | undefined;

  constructor(options: GatewayMetricsOptions = {}) {
    this.registry = new Registry();
    if (options.defaultLabels) this.registry.setDefaultLabels(options.defaultLabels);
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];

    this.#sessionsActive = new Gauge({
      name: 'sftp_gateway_sessions_active',
      help: 'Authenticated SSH sessions currently open.',
      registers,
    });
    this.#sessionsTotal = new Counter({
      name: 'sftp_gateway_sessions_total',
      help: 'SSH sessions authenticated since start (failed logins are in auth_attempts_total).',
      registers,
    });
    this.#authAttempts = new Counter({
      name: 'sftp_gateway_auth_attempts_total',
      help: 'Authentication attempts by method (publickey, password, keyboard-interactive, none, other) and result (success, failure).',
      labelNames: ['method', 'result'] as const,
      registers,
    });
    this.#filesIn = new Counter({
      name: 'sftp_gateway_files_in_total',
      help: 'Files uploaded completely (the managed service FilesIn).',
      registers,
    });
    this.#filesOut = new Counter({
      name: 'sftp_gateway_files_out_total',
      help: 'Files downloaded completely (the managed service FilesOut).',
      registers,
    });
    this.#bytesIn = new Counter({
      name: 'sftp_gateway_bytes_in_total',
      help: 'Bytes received from SFTP clients in file writes (the managed service BytesIn).',
      registers,
    });
    this.#bytesOut = new Counter({
      name: 'sftp_gateway_bytes_out_total',
      help: 'Bytes sent to SFTP clients in file reads (the managed service BytesOut).',
      registers,
    });
    this.#transfersIncomplete = new Counter({
      name: 'sftp_gateway_transfers_incomplete_total',
      help: 'Transfers that did not end in a complete file, by direction and result (partial, error).',
      labelNames: ['direction', 'result'] as const,
      registers,
    });
    this.#transferDuration = new Histogram({
      name: 'sftp_gateway_transfer_duration_seconds',
      help: 'Time from OPEN to CLOSE of a file handle that transferred data, by direction (in, out).',
      labelNames: ['direction'] as const,
      buckets: TRANSFER_DURATION_BUCKETS,
      registers,
    });
    this.#s3Duration = new Histogram({
      name: 'sftp_gateway_s3_request_duration_seconds',
      help: 'Latency of object store requests by operation (HeadObject, GetObject, PutObject, UploadPart, ...), failed ones included.',
      labelNames: ['operation'] as const,
      buckets: S3_REQUEST_DURATION_BUCKETS,
      registers,
    });
    this.#s3Errors = new Counter({
      name: 'sftp_gateway_s3_request_errors_total',
      help: 'Failed object store requests by operation and error code (NoSuchKey, AccessDenied, SlowDown, ...).',
      labelNames: ['operation', 'code'] as const,
      registers,
    });
    this.#multipart = new Counter({
      name: 'sftp_gateway_multipart_uploads_total',
      help: 'Multipart uploads by event (started, completed, aborted).',
      labelNames: ['event'] as const,
      registers,
    });
    this.#prefetched = new Counter({
      name: 'sftp_gateway_prefetched_files_total',
      help: 'Small files fetched ahead while a client downloads a directory, by outcome: used (an OPEN took it) or unused (dropped: too old, the session wrote, or it ended).',
      labelNames: ['outcome'] as const,
      registers,
    });
    this.#pacingStops = new Counter({
      name: 'sftp_gateway_send_pacing_stops_total',
      help: 'SFTP channels whose send pacing was turned off: the client waited to refill its window while the gateway held data back under the refill mark (src/protocol/send-pacing.ts). Such a channel then sends as much as the window allows.',
      registers,
    });
    this.#sftpRequests = new Counter({
      name: 'sftp_gateway_sftp_requests_total',
      help: 'SFTP requests by packet type (OPEN, READ, WRITE, ...) and reply status (OK, EOF, NO_SUCH_FILE, ...).',
      labelNames: ['type', 'status'] as const,
      registers,
    });
    this.#sshCrypto = new Gauge({
      name: 'sftp_gateway_ssh_crypto_info',
      help: 'Always 1; implementation is native when ssh2 runs its ciphers through its compiled binding, ' +
        'javascript when it fell back (about twice the CPU per byte for chacha20-poly1305).',
      labelNames: ['implementation'] as const,
      // With server.workers the primary sums the workers' series; an info series stays 1.
      aggregator: 'max',
      registers,
    });

    memoryGauges(
      registers,
      'sftp_gateway_memory_budget',
      'the global buffer budget for upload parts and read-ahead (memoryBudgetMiB)',
      () => snapshotOf(this.#memorySource),
    );
    memoryGauges(
      registers,
      'sftp_gateway_upload_memory',
      'the upload parts\' share of the memory budget (uploadMemoryMiB)',
      () => snapshotOf(this.#uploadMemorySource),
    );

    // Series that exist from the start, so rate() and absent() work before the first event.
    for (const event of ['started', 'completed', 'aborted'] as const) this.#multipart.inc({ event }, 0);
    for (const direction of ['in', 'out'] as const) this.#transferDuration.zero({ direction });
  }

  /** The `Content-Type` of `metrics()` output (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text exposition of every metric of this registry. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  sessionOpened(): void {
    this.#sessionsActive.inc();
    this.#sessionsTotal.inc();
  }

  sessionClosed(): void {
    this.#sessionsActive.dec();
  }

  /** Unknown method names are counted as `other`. */
  authAttempt(method: AuthMethod | string, ok: boolean): void {
    this.#authAttempts.inc({
      method: KNOWN_AUTH_METHODS.has(method) ? method : 'other',
      result: ok ? 'success' : 'failure',
    });
  }

  /** One finished file handle (CLOSE or PARTIAL_CLOSE). */
  transfer(t: TransferObservation): void {
    const result = t.result ?? 'ok';
    const bytes = Number.isFinite(t.bytes) && t.bytes > 0 ? t.bytes : 0;
    if (t.direction === 'in') {
      this.#bytesIn.inc(bytes);
      if (result === 'ok') this.#filesIn.inc();
    } else {
      this.#bytesOut.inc(bytes);
      if (result === 'ok') this.#filesOut.inc();
    }
    if (result !== 'ok') this.#transfersIncomplete.inc({ direction: t.direction, result });
    if (Number.isFinite(t.seconds) && t.seconds >= 0) {
      this.#transferDuration.observe({ direction: t.direction }, t.seconds);
    }
  }

  /**
   * One object store request. `errorCode` (the S3 error code or the error's name) marks it failed; it is
   * counted in s3_request_errors_total as well as in the latency histogram.
   */
  s3Request(operation: string, seconds: number, errorCode?: string): void {
    const op = labelValue(operation);
    if (Number.isFinite(seconds) && seconds >= 0) this.#s3Duration.observe({ operation: op }, seconds);
    if (errorCode !== undefined)
      this.#s3Errors.inc({ operation: op, code: labelValue(errorCode || 'Unknown') });
  }

  /** Time an async object store call: observes its latency, and its error code if it throws. */
  async timeS3<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    const start = process.hrtime.bigint();
    try {
      const value = await fn();
      this.s3Request(operation, Number(process.hrtime.bigint() - start) / 1e9);
      return value;
    } catch (err) {
      this.s3Request(operation, Number(process.hrtime.bigint() - start) / 1e9, s3ErrorCode(err));
      throw err;
    }
  }

  multipart(event: MultipartEvent): void {
    this.#multipart.inc({ event });
  }

  /** A file fetched ahead of a directory download: an OPEN took it (`used`), or it was dropped. */
  prefetchedFile(outcome: 'used' | 'unused'): void {
    this.#prefetched.inc({ outcome });
  }

  /** Which ssh2 cipher implementation this process runs (see sshNativeCrypto()). */
  sshCryptoImplementation(implementation: SshCrypto): void {
    this.#sshCrypto.reset();
    this.#sshCrypto.set({ implementation }, 1);
  }

  /** A channel's send pacing was turned off because its client waited for held-back data. */
  sendPacingStopped(): void {
    this.#pacingStops.inc();
  }

  /** `type` an SFTP packet name (OPEN, READ, ...), `status` the reply's status name (OK, EOF, ...). */
  sftpRequest(type: string, status: string): void {
    this.#sftpRequests.inc({ type: labelValue(type), status: labelValue(status) });
  }

  /** Where the memory budget gauges read from, at every scrape. Until set they have no series. */
  setMemoryBudgetSource(source: MemoryBudgetSource | undefined): void {
    this.#memorySource = source;
  }

  /** Where the upload share's gauges read from (sftp_gateway_upload_memory_*). Until set they have no series. */
  setUploadMemorySource(source: MemoryBudgetSource | undefined): void {
    this.#uploadMemorySource = source;
  }
}

function snapshotOf(source: MemoryBudgetSource | undefined): MemoryBudgetSnapshot | undefined {
  if (!source) return undefined;
  try {
    return source();
  } catch {
    return undefined;
  }
}

/** `<prefix>_bytes{state=in_use|limit}` and `<prefix>_waiting_requests` of `what` (a noun phrase), read at each scrape. */
function memoryGauges(
  registers: Registry[],
  prefix: string,
  what: string,
  snapshot: () => MemoryBudgetSnapshot | undefined,
): void {
  new Gauge({
    name: `${prefix}_bytes`,
    help: `Bytes of ${what}, by state (in_use, limit).`,
    labelNames: ['state'] as const,
    registers,
    collect() {
      const snap = snapshot();
      if (!snap) return;
      this.set({ state: 'in_use' }, snap.inUse);
      this.set({ state: 'limit' }, snap.limit);
    },
  });
  new Gauge({
    name: `${prefix}_waiting_requests`,
    help: `Buffer requests waiting for ${what} (above zero: memory is the bottleneck).`,
    registers,
    collect() {
      const snap = snapshot();
      if (snap?.waiting !== undefined) this.set(snap.waiting);
    },
  });
}

/** The S3 error code of an SDK v3 error (`Code` / `name`), or a generic name for anything else. */
export function s3ErrorCode(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { Code?: unknown; code?: unknown; name?: unknown };
    for (const v of [e.Code, e.name, e.code]) {
      if (typeof v === 'string' && v !== '' && v !== 'Error') return v;
    }
  }
  return 'Unknown';
}

/**
 * The observer to hand to the S3 store (`S3StoreDeps.onRequest`): every request goes to the latency
 * histogram and the error counter, and the multipart lifecycle requests that succeeded also count as
 * multipart uploads started (CreateMultipartUpload), completed (CompleteMultipartUpload) and aborted
 * (AbortMultipartUpload, the janitor's clean-up of orphans included).
 */
export function s3RequestObserver(
  metrics: GatewayMetrics,
): (operation: string, seconds: number, errorCode?: string) => void {
  return (operation, seconds, errorCode) => {
    metrics.s3Request(operation, seconds, errorCode);
    if (errorCode !== undefined) return;
    const event = MULTIPART_OPERATIONS.get(operation);
    if (event) metrics.multipart(event);
  };
}

const MULTIPART_OPERATIONS: ReadonlyMap<string, MultipartEvent> = new Map([
  ['CreateMultipartUpload', 'started'],
  ['CompleteMultipartUpload', 'completed'],
  ['AbortMultipartUpload', 'aborted'],
]);
