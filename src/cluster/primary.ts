import cluster, { type Worker } from 'node:cluster';
import { Gauge, Registry } from 'prom-client';
import { loadOrCreateHostKeys } from '../auth/host-keys.js';
import type { GatewayConfig } from '../config/load.js';
import { type ObservabilityServer, type Readiness, startObservabilityServer } from '../observability/http.js';
import type { Logger } from '../observability/logger.js';
import { type SshCrypto, warnIfJavaScriptCrypto } from '../observability/ssh-crypto.js';
import { Channel } from './channel.js';
import { aggregateWorkerMetrics, type WorkerMetrics } from './metrics.js';
import { mergeReadiness } from './readiness.js';
import { WORKER_COUNT_ENV, WORKER_INDEX_ENV } from './worker.js';

/** How long a worker has to answer a metrics, readiness or refresh request. */
const ASK_TIMEOUT_MS = 4000;
/** A worker that exits sooner than this after starting counts as crash-looping: its restart is delayed. */
const STABLE_MS = 10_000;
const MAX_RESTART_DELAY_MS = 30_000;

interface Slot {
  worker: Worker;
  channel: Channel;
  listening: boolean;
  sshCrypto?: SshCrypto;
  startedAt: number;
}

/**
 * The primary of `server.workers` > 1: it serves no SSH itself. It forks the workers (which share the SSH
 * port through node:cluster, each with its own event loop), restarts one that dies, serves /metrics
 * (summed over the workers) and /readyz (ready when every worker is), has the other workers re-read the
 * user store when the API's worker changed it, and forwards SIGTERM/SIGINT (graceful stop) and SIGHUP.
 * Resolves with the process's exit code once every worker has exited.
 */
export async function runPrimary(config: GatewayConfig, logger: Logger): Promise<number> {
  const log = logger.child({ component: 'supervisor' });
  const count = config.server.workers;
  // Created here, once, so that the workers do not race to generate them.
  loadOrCreateHostKeys(config.server.hostKeys);

  const slots: (Slot | undefined)[] = new Array<Slot | undefined>(count).fill(undefined);
  const restartDelay = new Array<number>(count).fill(0);
  let stopping = false;
  let booted = false;
  let exitCode = 0;
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => {
    finish = resolve;
  });

  const own = new Registry();
  new Gauge({
    name: 'sftp_gateway_workers',
    help: 'Worker processes (server.workers), by state (configured, running).',
    labelNames: ['state'] as const,
    registers: [own],
    collect() {
      this.set({ state: 'configured' }, count);
      this.set({ state: 'running' }, slots.filter((s) => s?.listening).length);
    },
  });

  const askAll = <T>(kind: string): Promise<(T | Error | undefined)[]> =>
    Promise.all(
      slots.map((s) =>
        s?.listening ? s.channel.request<T>(kind, undefined, ASK_TIMEOUT_MS).catch((e: Error) => e) : undefined,
      ),
    );

  const fork = (index: number) => {
    const worker = cluster.fork({ [WORKER_INDEX_ENV]: String(index), [WORKER_COUNT_ENV]: String(count) });
    const channel = new Channel((m) => worker.send(m));
    const slot: Slot = { worker, channel, listening: false, startedAt: Date.now() };
    slots[index] = slot;
    channel
      .handle('listening', (body) => {
        const { sshPort, sshCrypto } = body as { sshPort: number; sshCrypto: SshCrypto };
        slot.listening = true;
        slot.sshCrypto = sshCrypto;
        if (!booted && slots.every((s) => s?.listening)) {
          booted = true;
          // One line for all the workers: javascript if any of them runs it.
          const crypto = slots.some((s) => s?.sshCrypto === 'javascript') ? 'javascript' : 'native';
          log.info({ port: sshPort, host: config.server.host, workers: count, sshCrypto: crypto }, 'SFTP gateway listening');
          warnIfJavaScriptCrypto(log, crypto);
        } else if (booted) log.info({ worker: index, pid: worker.process.pid, sshCrypto }, 'worker restarted');
        return undefined;
      })
      .handle('users-changed', async () => {
        // Read-your-writes across workers: the API answers once every other worker has the change.
        const others = slots.filter((s) => s?.listening && s !== slot) as Slot[];
        const results = await Promise.allSettled(
          others.map((s) => s.channel.request('refresh-users', undefined, ASK_TIMEOUT_MS)),
        );
        for (const r of results)
          if (r.status === 'rejected') log.warn({ err: r.reason as Error }, 'a worker did not re-read the users');
        return undefined;
      });
    worker.on('message', (m: unknown) => channel.receive(m));
    worker.on('exit', (code, signal) => {
      channel.close(`worker ${index} exited`);
      if (slots[index] === slot) slots[index] = undefined;
      if (stopping) {
        if (slots.every((s) => s === undefined)) finish(exitCode);
        return;
      }
      if (!booted) {
        // A worker that cannot start (port taken, store misconfigured) fails the whole container at once.
        log.error({ worker: index, code, signal }, 'a worker failed to start: stopping');
        exitCode = 1;
        stop('worker failed to start');
        return;
      }
      const ranMs = Date.now() - slot.startedAt;
      restartDelay[index] =
        ranMs < STABLE_MS ? Math.min(MAX_RESTART_DELAY_MS, Math.max(1000, restartDelay[index]! * 2)) : 0;
      log.error(
        { worker: index, pid: worker.process.pid, code, signal, restartInMs: restartDelay[index] },
        'worker exited: starting another',
      );
      setTimeout(() => {
        if (!stopping) fork(index);
      }, restartDelay[index]).unref();
    });
  };

  let http: ObservabilityServer | undefined;
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    const live = slots.filter((s) => s !== undefined);
    log.info({ reason: why, workers: live.length }, 'stopping the workers');
    for (const s of live) s.worker.process.kill('SIGTERM');
    // Each worker has shutdownDeadlineSeconds for its transfers; one that outlives it by far is stuck.
    const killAfterMs = config.server.shutdownDeadlineSeconds * 1000 + 15_000;
    setTimeout(() => {
      for (const s of slots) s?.worker.process.kill('SIGKILL');
    }, killAfterMs).unref();
    if (live.length === 0) finish(exitCode);
  };

  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    for (const s of slots) s?.worker.process.kill('SIGHUP');
  });

  for (let i = 0; i < count; i++) fork(i);

  if (config.metrics) {
    http = await startObservabilityServer({
      host: config.metrics.host,
      port: config.metrics.port,
      logger,
      metrics: {
        contentType: own.contentType,
        async metrics() {
          const perWorker = (await askAll<WorkerMetrics>('metrics')).filter(
            (m): m is WorkerMetrics => Array.isArray(m),
          );
          return aggregateWorkerMetrics([...perWorker, await own.getMetricsAsJSON()]).metrics();
        },
      },
      readiness: async () => {
        if (stopping) return { ready: false, checks: { accepting: { ok: false, message: 'stopping' } } };
        return mergeReadiness(await askAll<Readiness>('readiness'));
      },
    });
  }

  const code = await finished;
  await http?.close();
  log.info({ code }, 'all workers stopped');
  return code;
}
