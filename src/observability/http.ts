import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './logger.js';

/**
 * The operations listener: Prometheus metrics and the health endpoints, on their own port, away from SSH.
 *
 *   GET /metrics  Prometheus text format
 *   GET /healthz  200 "ok" while the process is alive (liveness: no dependency is checked)
 *   GET /readyz   200 or 503 with a JSON body of the readiness checks (config loaded, store reachable,
 *                 accepting connections); a failing or hanging check makes it 503
 *
 * HEAD is answered like GET without a body; other methods get 405, other paths 404.
 */

/** The `metrics:` section of the gateway config. On by default at 127.0.0.1:9100. */
export interface MetricsListenConfig {
  host: string;
  port: number;
}

export const DEFAULT_METRICS_LISTEN: Readonly<MetricsListenConfig> = Object.freeze({
  host: '127.0.0.1',
  port: 9100,
});

export interface ReadinessCheck {
  ok: boolean;
  message?: string;
}

export interface Readiness {
  ready: boolean;
  checks: Record<string, ReadinessCheck>;
}

export type ReadinessProbe = () => Promise<Readiness>;

/** A registry's text exposition: one process's (GatewayMetrics) or every worker's, summed (src/cluster/). */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface ObservabilityServerOptions {
  host: string;
  /** 0 picks a free port (tests); the bound one is in the result. */
  port: number;
  metrics: MetricsSource;
  readiness: ReadinessProbe;
  logger: Logger;
  /** A readiness probe slower than this answers 503. Default 5000 ms (below a kubelet's usual probe timeout). */
  readinessTimeoutMs?: number;
}

export interface ObservabilityServer {
  host: string;
  port: number;
  /** Stop listening and drop open (keep-alive) connections. */
  close(): Promise<void>;
}

const PATHS = new Set(['/metrics', '/healthz', '/readyz']);

export async function startObservabilityServer(
  options: ObservabilityServerOptions,
): Promise<ObservabilityServer> {
  const { metrics, readiness, logger } = options;
  const readinessTimeoutMs = options.readinessTimeoutMs ?? 5000;
  const log = logger.child({ component: 'observability-http' });

  const send = (
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    contentType: string,
    body: string,
    extra: Record<string, string> = {},
  ) => {
    res.writeHead(status, {
      'Content-Type': contentType,
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
      ...extra,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (!PATHS.has(path)) {
      send(req, res, 404, 'text/plain; charset=utf-8', 'not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET, HEAD' });
      return;
    }
    if (path === '/healthz') {
      send(req, res, 200, 'text/plain; charset=utf-8', 'ok\n');
      return;
    }
    if (path === '/metrics') {
      try {
        send(req, res, 200, metrics.contentType, await metrics.metrics());
      } catch (err) {
        log.error({ err }, 'collecting metrics failed');
        send(req, res, 500, 'text/plain; charset=utf-8', 'collecting metrics failed\n');
      }
      return;
    }
    const result = await probeReadiness(readiness, readinessTimeoutMs);
    send(
      req,
      res,
      result.ready ? 200 : 503,
      'application/json; charset=utf-8',
      `${JSON.stringify(result)}\n`,
    );
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err }, 'observability request failed');
      if (!res.headersSent) send(req, res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  // Scrapers keep connections alive; a short timeout keeps idle sockets from piling up.
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.removeListener('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'observability listener error'));
  const address = server.address() as AddressInfo;
  log.info({ host: address.address, port: address.port }, 'metrics and health endpoints listening');

  let closing: Promise<void> | undefined;
  return {
    host: address.address,
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

/** Run the probe with a deadline; an exception or a timeout is "not ready" with the reason as a check. */
export async function probeReadiness(probe: ReadinessProbe, timeoutMs: number): Promise<Readiness> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<Readiness>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            ready: false,
            checks: { probe: { ok: false, message: `readiness checks took over ${timeoutMs} ms` } },
          }),
        timeoutMs,
      );
    });
    const result = await Promise.race([probe(), timeout]);
    // Never report ready while a check failed, whatever the probe said.
    const allOk = Object.values(result.checks).every((c) => c.ok);
    return { ready: result.ready && allOk, checks: result.checks };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { ready: false, checks: { probe: { ok: false, message } } };
  } finally {
    clearTimeout(timer);
  }
}
