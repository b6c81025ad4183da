import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import {
  DEFAULT_METRICS_LISTEN,
  type ObservabilityServer,
  type Readiness,
  startObservabilityServer,
} from '../../src/observability/http.js';
import { silentLogger } from '../../src/observability/logger.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';
import { parsePrometheusText, sampleValue } from '../support/prom-parse.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(port: number, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('observability HTTP server', () => {
  const metrics = new GatewayMetrics();
  let readiness: () => Promise<Readiness> = async () => ({
    ready: true,
    checks: { config: { ok: true }, store: { ok: true }, accepting: { ok: true } },
  });
  let server: ObservabilityServer;

  before(async () => {
    server = await startObservabilityServer({
      host: '127.0.0.1',
      port: 0,
      metrics,
      readiness: () => readiness(),
      logger: silentLogger(),
      readinessTimeoutMs: 200,
    });
  });
  after(() => server.close());

  it('defaults to 127.0.0.1:9100', () => {
    assert.deepEqual({ ...DEFAULT_METRICS_LISTEN }, { host: '127.0.0.1', port: 9100 });
  });

  it('binds the asked host and reports the chosen port', () => {
    assert.equal(server.host, '127.0.0.1');
    assert.ok(server.port > 0);
  });

  it('GET /metrics serves parseable text whose counters move between scrapes', async () => {
    const first = await call(server.port, '/metrics');
    assert.equal(first.status, 200);
    assert.match(String(first.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const f1 = parsePrometheusText(first.body);
    assert.ok(f1.has('process_cpu_user_seconds_total'));
    assert.equal(sampleValue(f1, 'sftp_gateway_files_in_total'), 0);

    metrics.sessionOpened();
    metrics.transfer({ direction: 'in', bytes: 12345, seconds: 0.5 });
    metrics.transfer({ direction: 'out', bytes: 777, seconds: 0.1 });
    metrics.s3Request('PutObject', 0.05);

    const f2 = parsePrometheusText((await call(server.port, '/metrics?x=1')).body);
    assert.equal(sampleValue(f2, 'sftp_gateway_sessions_active'), 1);
    assert.equal(sampleValue(f2, 'sftp_gateway_files_in_total'), 1);
    assert.equal(sampleValue(f2, 'sftp_gateway_bytes_in_total'), 12345);
    assert.equal(sampleValue(f2, 'sftp_gateway_bytes_out_total'), 777);
    assert.equal(
      sampleValue(f2, 'sftp_gateway_s3_request_duration_seconds_count', { operation: 'PutObject' }),
      1,
    );
  });

  it('GET /healthz is 200 ok', async () => {
    const r = await call(server.port, '/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok\n');
    assert.equal(r.headers['cache-control'], 'no-store');
  });

  it('GET /readyz is 200 with the checks when ready', async () => {
    const r = await call(server.port, '/readyz');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(r.body), {
      ready: true,
      checks: { config: { ok: true }, store: { ok: true }, accepting: { ok: true } },
    });
  });

  it('GET /readyz is 503 when a check fails, even if the probe claims ready', async () => {
    readiness = async () => ({
      ready: true,
      checks: { config: { ok: true }, store: { ok: false, message: 'HeadBucket: connect ECONNREFUSED' } },
    });
    const r = await call(server.port, '/readyz');
    assert.equal(r.status, 503);
    const body = JSON.parse(r.body) as Readiness;
    assert.equal(body.ready, false);
    assert.equal(body.checks['store']?.message, 'HeadBucket: connect ECONNREFUSED');
  });

  it('GET /readyz is 503 when the probe throws or hangs', async () => {
    readiness = async () => {
      throw new Error('shutting down');
    };
    let r = await call(server.port, '/readyz');
    assert.equal(r.status, 503);
    assert.deepEqual(JSON.parse(r.body), {
      ready: false,
      checks: { probe: { ok: false, message: 'shutting down' } },
    });

    readiness = () => new Promise(() => {});
    const started = Date.now();
    r = await call(server.port, '/readyz');
    assert.equal(r.status, 503);
    assert.ok(Date.now() - started < 2000);
    assert.match(JSON.parse(r.body).checks.probe.message, /took over 200 ms/);
  });

  it('HEAD answers without a body; other methods 405; other paths 404', async () => {
    const head = await call(server.port, '/healthz', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    const post = await call(server.port, '/metrics', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers['allow'], 'GET, HEAD');
    for (const path of ['/', '/metrics/', '/health', '/readyz/extra']) {
      assert.equal((await call(server.port, path)).status, 404, path);
    }
  });
});

describe('observability HTTP server lifecycle', () => {
  it('rejects when the port is taken, and close() drops keep-alive connections', async () => {
    const opts = {
      host: '127.0.0.1',
      port: 0,
      metrics: new GatewayMetrics({ defaultMetrics: false }),
      readiness: async () => ({ ready: true, checks: {} }),
      logger: silentLogger(),
    };
    const a = await startObservabilityServer(opts);
    await assert.rejects(startObservabilityServer({ ...opts, port: a.port }), /EADDRINUSE/);

    // A keep-alive client (like fetch/undici) must not keep close() waiting.
    const res = await fetch(`http://127.0.0.1:${a.port}/healthz`);
    assert.equal(await res.text(), 'ok\n');
    const started = Date.now();
    await a.close();
    await a.close();
    assert.ok(Date.now() - started < 1000);
    await assert.rejects(fetch(`http://127.0.0.1:${a.port}/healthz`));
  });
});
