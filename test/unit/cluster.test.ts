import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Counter, Gauge, Registry } from 'prom-client';
import { Channel } from '../../src/cluster/channel.js';
import { aggregateWorkerMetrics } from '../../src/cluster/metrics.js';
import { mergeReadiness } from '../../src/cluster/readiness.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { parsePrometheusText, sampleValue } from '../support/prom-parse.js';

/** Two channels wired to each other as the primary's and a worker's ends (delivered asynchronously, like IPC). */
function pair(): { a: Channel; b: Channel; sent: unknown[] } {
  const sent: unknown[] = [];
  const deliver = (to: () => Channel) => (m: unknown) => {
    sent.push(m);
    // Through JSON, as node:cluster's IPC serializes.
    const copy: unknown = JSON.parse(JSON.stringify(m));
    setImmediate(() => to().receive(copy));
  };
  const a: Channel = new Channel(deliver(() => b));
  const b: Channel = new Channel(deliver(() => a));
  return { a, b, sent };
}

describe('cluster channel', () => {
  test('a request gets the handler’s answer, or its error as a rejection', async () => {
    const { a, b } = pair();
    b.handle('double', (n) => (n as number) * 2).handle('fail', async () => {
      throw new Error('store unreachable');
    });
    assert.equal(await a.request<number>('double', 21, 1000), 42);
    await assert.rejects(a.request('fail', undefined, 1000), /store unreachable/);
    await assert.rejects(a.request('nobody', undefined, 1000), /no handler for nobody/);
  });

  test('no answer rejects after the timeout; close() rejects what is waiting', async () => {
    const silent = new Channel(() => undefined);
    await assert.rejects(silent.request('metrics', undefined, 50), /no answer to metrics within 50 ms/);
    const waiting = silent.request('readiness', undefined, 10_000);
    silent.close('worker 1 exited');
    await assert.rejects(waiting, /worker 1 exited/);
  });

  test('messages that are not ours are left for others', () => {
    const c = new Channel(() => assert.fail('nothing should be sent'));
    assert.equal(c.receive({ type: 'prom-client:getMetricsReq', requestId: 1 }), false);
    assert.equal(c.receive('NODE_CLUSTER'), false);
    assert.equal(c.receive(null), false);
  });
});

describe('cluster metrics', () => {
  async function workerRegistry(sessions: number, bytes: number, lag: number) {
    const r = new Registry();
    new Gauge({ name: 'sftp_gateway_sessions_active', help: 'h', registers: [r] }).set(sessions);
    new Counter({ name: 'sftp_gateway_bytes_in_total', help: 'h', registers: [r] }).inc(bytes);
    // The aggregator prom-client's default event-loop metrics carry.
    new Gauge({ name: 'nodejs_eventloop_lag_p99_seconds', help: 'h', registers: [r], aggregator: 'average' }).set(lag);
    new Gauge({ name: 'nodejs_eventloop_lag_min_seconds', help: 'h', registers: [r], aggregator: 'min' }).set(lag);
    return r.getMetricsAsJSON();
  }

  test('sums counters and gauges over the workers; event-loop lag is the worst worker’s', async () => {
    const merged = aggregateWorkerMetrics([await workerRegistry(3, 1000, 0.01), await workerRegistry(2, 500, 0.3)]);
    const families = parsePrometheusText(await merged.metrics());
    assert.equal(sampleValue(families, 'sftp_gateway_sessions_active', {}), 5);
    assert.equal(sampleValue(families, 'sftp_gateway_bytes_in_total', {}), 1500);
    assert.equal(sampleValue(families, 'nodejs_eventloop_lag_p99_seconds', {}), 0.3);
    assert.equal(sampleValue(families, 'nodejs_eventloop_lag_min_seconds', {}), 0.01);
  });
});

describe('cluster readiness', () => {
  const ok = { ready: true, checks: { config: { ok: true }, store: { ok: true }, accepting: { ok: true } } };

  test('ready when every worker runs and is ready', () => {
    const r = mergeReadiness([ok, ok]);
    assert.equal(r.ready, true);
    assert.deepEqual(Object.keys(r.checks).sort(), ['accepting', 'config', 'store', 'workers']);
  });

  test('a worker not running, not answering or not ready makes the container not ready, naming it', () => {
    const notRunning = mergeReadiness([ok, undefined]);
    assert.equal(notRunning.ready, false);
    assert.deepEqual(notRunning.checks['workers'], { ok: false, message: '1 of 2 workers running' });

    const storeDown = mergeReadiness([
      ok,
      { ready: false, checks: { ...ok.checks, store: { ok: false, message: 'connect ECONNREFUSED' } } },
    ]);
    assert.equal(storeDown.ready, false);
    assert.deepEqual(storeDown.checks['store'], { ok: false, message: 'worker 1: connect ECONNREFUSED' });
    assert.deepEqual(storeDown.checks['workers'], { ok: true });

    const silent = mergeReadiness([new Error('no answer to readiness within 4000 ms'), ok]);
    assert.equal(silent.ready, false);
    assert.match(silent.checks['answering']!.message!, /^worker 0: no answer/);
  });
});

describe('server.workers', () => {
  const s3 = (extra: string) =>
    `server:\n  workers: ${extra}\nstorage:\n  type: s3\n  region: eu-west-1\nusers: []\n`;

  test('1 by default; a count, or auto (one per CPU)', () => {
    assert.equal(parseConfig('users: []\n', 'f').server.workers, 1);
    assert.equal(parseConfig('server:\n  workers: 3\nusers: []\n', 'f').server.workers, 3);
    const auto = parseConfig('server:\n  workers: auto\nusers: []\n', 'f').server.workers;
    assert.ok(Number.isInteger(auto) && auto >= 1, String(auto));
  });

  test('0, fractions and words are refused at their line', () => {
    for (const bad of ['0', '1.5', 'many']) {
      assert.throws(
        () => parseConfig(`server:\n  workers: ${bad}\nusers: []\n`, '/etc/gw.yaml'),
        (e: unknown) => e instanceof ConfigError && /^\/etc\/gw\.yaml:2:\d+: server\.workers: /.test(e.problems[0]!),
      );
    }
  });

  test('on S3 each worker’s share of uploadMemoryMiB must hold one part', () => {
    const bigParts = 'storage:\n  type: s3\n  region: eu-west-1\n  partSizeMiB: 16\nuploadMemoryMiB: 8\nusers: []\n';
    assert.equal(parseConfig(bigParts, 'f').server.workers, 1, 'one process: loads as it always did');
    assert.equal(parseConfig(s3('4'), 'f').server.workers, 4); // 32 MiB / 4 = one 8 MiB part each
    assert.throws(
      () => parseConfig(s3('5'), 'f'),
      (e: unknown) =>
        e instanceof ConfigError &&
        /server\.workers: 5 workers share uploadMemoryMiB \(32\) to less than one 8 MiB part each/.test(e.problems[0]!) &&
        /raise uploadMemoryMiB to at least 40$/.test(e.problems[0]!),
    );
  });
});
