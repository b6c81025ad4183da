/**
 * /metrics of the real gateway process on the S3 store: it parses with a strict Prometheus text-format
 * parser, and its counters move with a transfer (sessions, auth, files, bytes, durations, S3 requests,
 * multipart uploads); /healthz and /readyz answer on the same listener.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  makeFile,
  makeKey,
  publicKey,
  sha256File,
  startGateway,
  type TestGateway,
  tempDir,
} from '../support/gateway.js';
import type { MetricFamily } from '../support/prom-parse.js';
import { type S3TestServer, s3SkipReason, startS3 } from '../support/s3.js';
import { s3Storage, scrape, sum, value, waitFor } from './ops-support.js';

const MiB = 1024 * 1024;

describe('/metrics end to end (S3 store)', { skip: s3SkipReason() }, () => {
  let server: S3TestServer;
  let gw: TestGateway;
  let key: string;
  let work: string;

  before(async () => {
    server = await startS3({ compat: true });
    work = await tempDir('metrics');
    key = await makeKey(work, 'alice');
    gw = await startGateway({
      config: { storage: s3Storage(server), memoryBudgetMiB: 64 },
      users: [
        {
          UserName: 'alice',
          HomeDirectory: `/${server.bucket}/metrics/alice`,
          SshPublicKeys: [await publicKey(key)],
        },
      ],
    });
    assert.ok(gw.metricsPort, 'the metrics listener logged its port');
  });
  after(async () => {
    if (gw) assert.equal(await gw.stop(), 0);
    await server?.stop();
  });

  test('/healthz and /readyz', async () => {
    const health = await fetch(`http://127.0.0.1:${gw.metricsPort}/healthz`);
    assert.equal(health.status, 200);
    const ready = await fetch(`http://127.0.0.1:${gw.metricsPort}/readyz`);
    const body = (await ready.json()) as { ready: boolean; checks: Record<string, { ok: boolean }> };
    assert.equal(ready.status, 200, JSON.stringify(body));
    assert.equal(body.ready, true);
    assert.equal(body.checks['store']?.ok, true);
  });

  test('counters move with an upload and a download', async () => {
    const size = 12 * MiB + 3; // three parts of 5 MiB: a multipart upload
    const src = path.join(work, 'payload');
    await makeFile(src, size);
    const before = await scrape(gw.metricsPort!);
    assert.equal(value(before, 'sftp_gateway_sessions_active'), 0);
    assert.equal(value(before, 'sftp_gateway_memory_budget_bytes', { state: 'limit' }), 64 * MiB);
    for (const event of ['started', 'completed', 'aborted']) {
      assert.equal(value(before, 'sftp_gateway_multipart_uploads_total', { event }), 0, event);
    }
    assert.ok(before.has('process_cpu_seconds_total'), 'default process metrics');
    assert.ok(before.has('nodejs_eventloop_lag_seconds'), 'default Node.js metrics');

    const r = await gw.sftp(`put ${src} payload\nget payload ${src}.back\nget missing ${src}.missing\n`, {
      key,
    });
    assert.notEqual(r.code, 0, 'the last get fails: the file does not exist');
    assert.equal(await sha256File(`${src}.back`), await sha256File(src));
    await waitFor(
      async () => value(await scrape(gw.metricsPort!), 'sftp_gateway_sessions_active') === 0,
      5000,
      'the session to end',
    );
    const after = await scrape(gw.metricsPort!);
    const delta = (name: string, labels: Record<string, string> = {}) =>
      sum(after, name, labels) - sum(before, name, labels);

    assert.equal(delta('sftp_gateway_sessions_total'), 1);
    assert.equal(delta('sftp_gateway_auth_attempts_total', { method: 'publickey', result: 'success' }), 1);
    assert.equal(delta('sftp_gateway_files_in_total'), 1);
    assert.equal(delta('sftp_gateway_files_out_total'), 1);
    assert.equal(delta('sftp_gateway_bytes_in_total'), size);
    assert.equal(delta('sftp_gateway_bytes_out_total'), size);
    assert.equal(delta('sftp_gateway_transfer_duration_seconds_count', { direction: 'in' }), 1);
    assert.equal(delta('sftp_gateway_transfer_duration_seconds_count', { direction: 'out' }), 1);
    assert.equal(delta('sftp_gateway_multipart_uploads_total', { event: 'started' }), 1);
    assert.equal(delta('sftp_gateway_multipart_uploads_total', { event: 'completed' }), 1);
    assert.equal(delta('sftp_gateway_multipart_uploads_total', { event: 'aborted' }), 0);
    // 12 MiB in 261,120-byte WRITEs and READs (the sizes OpenSSH uses after limits@openssh.com).
    assert.equal(delta('sftp_gateway_sftp_requests_total', { type: 'OPEN', status: 'HANDLE' }), 2);
    assert.ok(delta('sftp_gateway_sftp_requests_total', { type: 'WRITE', status: 'OK' }) >= Math.ceil(size / 261120));
    assert.ok(delta('sftp_gateway_sftp_requests_total', { type: 'READ', status: 'DATA' }) >= Math.ceil(size / 261120));
    const s3 = (op: string) => delta('sftp_gateway_s3_request_duration_seconds_count', { operation: op });
    assert.equal(s3('CreateMultipartUpload'), 1);
    assert.equal(s3('UploadPart'), 3);
    assert.equal(s3('CompleteMultipartUpload'), 1);
    assert.ok(s3('GetObject') >= 1, 'ranged reads');
    assert.ok(s3('HeadObject') >= 1, 'stats');
    // The missing file: a HeadObject answered 404, counted by operation and code.
    assert.ok(
      delta('sftp_gateway_s3_request_errors_total', { operation: 'HeadObject', code: 'NotFound' }) >= 1,
      errorsOf(after),
    );
    // Every S3 latency histogram is consistent: +Inf bucket == count.
    for (const s of after.get('sftp_gateway_s3_request_duration_seconds')!.samples) {
      if (s.name.endsWith('_bucket') && s.labels['le'] === '+Inf') {
        assert.equal(
          s.value,
          value(after, 'sftp_gateway_s3_request_duration_seconds_count', {
            operation: s.labels['operation']!,
          }),
        );
      }
    }
  });

  test('an OpenSSH put asks S3 about its target once: the OPEN after the STAT sends no HEAD of its own', async () => {
    const src = path.join(work, 'small');
    await makeFile(src, 1000);
    const heads = async () =>
      sum(await scrape(gw.metricsPort!), 'sftp_gateway_s3_request_duration_seconds_count', {
        operation: 'HeadObject',
      });
    // One session each: a new file, then the same name again. Each session stats its home once (the
    // directory's own object and its first key below; the home then counts as seen for the OPEN), and
    // `put` STATs the target before it OPENs it: 2 HEADs per session, where the OPEN used to send a third.
    for (const what of ['new file', 'overwrite']) {
      const before = await heads();
      const r = await gw.sftp(`put ${src} once.bin\n`, { key });
      assert.equal(r.code, 0, r.stderr);
      await waitFor(
        async () => value(await scrape(gw.metricsPort!), 'sftp_gateway_sessions_active') === 0,
        5000,
        'the session to end',
      );
      assert.equal((await heads()) - before, 2, what);
    }
  });
});

function errorsOf(families: Map<string, MetricFamily>): string {
  return JSON.stringify(families.get('sftp_gateway_s3_request_errors_total')?.samples ?? []);
}
