import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayMetrics, s3ErrorCode } from '../../src/observability/metrics.js';
import { parsePrometheusText, sampleValue } from '../support/prom-parse.js';

async function scrape(m: GatewayMetrics) {
  return parsePrometheusText(await m.metrics());
}

describe('GatewayMetrics', () => {
  it('has its own registry: two instances coexist and count separately', async () => {
    const a = new GatewayMetrics();
    const b = new GatewayMetrics();
    a.sessionOpened();
    a.sessionOpened();
    b.sessionOpened();
    assert.equal(sampleValue(await scrape(a), 'sftp_gateway_sessions_active'), 2);
    assert.equal(sampleValue(await scrape(b), 'sftp_gateway_sessions_active'), 1);
  });

  it('exposes the default process metrics, unprefixed', async () => {
    const f = await scrape(new GatewayMetrics());
    for (const name of [
      'process_cpu_user_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
    ]) {
      assert.ok(f.has(name), `missing ${name}`);
    }
    const none = await scrape(new GatewayMetrics({ defaultMetrics: false }));
    assert.equal(none.has('process_cpu_user_seconds_total'), false);
  });

  it('every gateway family has help, a type and a conventional name', async () => {
    const m = new GatewayMetrics({ defaultMetrics: false });
    m.setMemoryBudgetSource(() => ({ inUse: 1, limit: 2, waiting: 0 }));
    const f = await scrape(m);
    const expected: Record<string, string> = {
      sftp_gateway_sessions_active: 'gauge',
      sftp_gateway_sessions_total: 'counter',
      sftp_gateway_auth_attempts_total: 'counter',
      sftp_gateway_files_in_total: 'counter',
      sftp_gateway_files_out_total: 'counter',
      sftp_gateway_bytes_in_total: 'counter',
      sftp_gateway_bytes_out_total: 'counter',
      sftp_gateway_transfers_incomplete_total: 'counter',
      sftp_gateway_transfer_duration_seconds: 'histogram',
      sftp_gateway_s3_request_duration_seconds: 'histogram',
      sftp_gateway_s3_request_errors_total: 'counter',
      sftp_gateway_multipart_uploads_total: 'counter',
      sftp_gateway_sftp_requests_total: 'counter',
      sftp_gateway_send_pacing_stops_total: 'counter',
      sftp_gateway_memory_budget_bytes: 'gauge',
      sftp_gateway_memory_budget_waiting_requests: 'gauge',
      sftp_gateway_upload_memory_bytes: 'gauge',
      sftp_gateway_upload_memory_waiting_requests: 'gauge',
    };
    for (const [name, type] of Object.entries(expected)) {
      const fam = f.get(name);
      assert.ok(fam, `missing ${name}`);
      assert.equal(fam.type, type, name);
      assert.ok(fam.help && fam.help.length > 10, `help of ${name}`);
    }
    for (const fam of f.values()) {
      assert.ok(fam.name.startsWith('sftp_gateway_'), fam.name);
      if (fam.type === 'counter') assert.ok(fam.name.endsWith('_total'), fam.name);
      if (fam.type === 'histogram') assert.ok(fam.name.endsWith('_seconds'), fam.name);
    }
    // Series present before any event.
    assert.equal(sampleValue(f, 'sftp_gateway_multipart_uploads_total', { event: 'aborted' }), 0);
    assert.equal(sampleValue(f, 'sftp_gateway_transfer_duration_seconds_count', { direction: 'in' }), 0);
    assert.equal(sampleValue(f, 'sftp_gateway_files_in_total'), 0);
    assert.equal(sampleValue(f, 'sftp_gateway_send_pacing_stops_total'), 0);
    m.sendPacingStopped();
    assert.equal(sampleValue(await scrape(m), 'sftp_gateway_send_pacing_stops_total'), 1);
  });

  it('counters move with sessions, auth, transfers, S3 requests and multipart uploads', async () => {
    const m = new GatewayMetrics({ defaultMetrics: false });
    m.sessionOpened();
    m.sessionOpened();
    m.sessionClosed();
    m.authAttempt('publickey', true);
    m.authAttempt('password', false);
    m.authAttempt('password', false);
    m.authAttempt('gssapi-with-mic', false);
    m.transfer({ direction: 'in', bytes: 1_048_576, seconds: 0.8 });
    m.transfer({ direction: 'in', bytes: 500, seconds: 0.02, result: 'partial' });
    m.transfer({ direction: 'out', bytes: 2048, seconds: 3 });
    m.transfer({ direction: 'out', bytes: -5, seconds: Number.NaN, result: 'error' });
    m.s3Request('PutObject', 0.03);
    m.s3Request('GetObject', 0.2, 'NoSuchKey');
    m.s3Request('GetObject', 0.004);
    m.multipart('started');
    m.multipart('started');
    m.multipart('completed');
    m.multipart('aborted');
    m.sftpRequest('OPEN', 'OK');
    m.sftpRequest('OPEN', 'NO_SUCH_FILE');
    m.sftpRequest('OPEN', 'OK');
    const f = await scrape(m);
    const v = (name: string, labels?: Record<string, string>) => sampleValue(f, name, labels);

    assert.equal(v('sftp_gateway_sessions_active'), 1);
    assert.equal(v('sftp_gateway_sessions_total'), 2);
    assert.equal(v('sftp_gateway_auth_attempts_total', { method: 'publickey', result: 'success' }), 1);
    assert.equal(v('sftp_gateway_auth_attempts_total', { method: 'password', result: 'failure' }), 2);
    assert.equal(v('sftp_gateway_auth_attempts_total', { method: 'other', result: 'failure' }), 1);
    assert.equal(v('sftp_gateway_files_in_total'), 1);
    assert.equal(v('sftp_gateway_bytes_in_total'), 1_048_576 + 500);
    assert.equal(v('sftp_gateway_files_out_total'), 1);
    assert.equal(v('sftp_gateway_bytes_out_total'), 2048);
    assert.equal(v('sftp_gateway_transfers_incomplete_total', { direction: 'in', result: 'partial' }), 1);
    assert.equal(v('sftp_gateway_transfers_incomplete_total', { direction: 'out', result: 'error' }), 1);
    assert.equal(v('sftp_gateway_transfer_duration_seconds_count', { direction: 'in' }), 2);
    assert.equal(v('sftp_gateway_transfer_duration_seconds_count', { direction: 'out' }), 1);
    assert.equal(v('sftp_gateway_transfer_duration_seconds_sum', { direction: 'out' }), 3);
    assert.equal(v('sftp_gateway_transfer_duration_seconds_bucket', { direction: 'in', le: '0.01' }), 0);
    assert.equal(v('sftp_gateway_transfer_duration_seconds_bucket', { direction: 'in', le: '0.05' }), 1);
    assert.equal(v('sftp_gateway_transfer_duration_seconds_bucket', { direction: 'in', le: '1' }), 2);
    assert.equal(v('sftp_gateway_transfer_duration_seconds_bucket', { direction: 'in', le: '3600' }), 2);
    assert.equal(v('sftp_gateway_transfer_duration_seconds_bucket', { direction: 'in', le: '+Inf' }), 2);
    assert.equal(v('sftp_gateway_s3_request_duration_seconds_count', { operation: 'GetObject' }), 2);
    assert.equal(
      v('sftp_gateway_s3_request_duration_seconds_bucket', { operation: 'GetObject', le: '0.005' }),
      1,
    );
    assert.equal(v('sftp_gateway_s3_request_errors_total', { operation: 'GetObject', code: 'NoSuchKey' }), 1);
    assert.equal(
      v('sftp_gateway_s3_request_errors_total', { operation: 'PutObject', code: 'NoSuchKey' }),
      undefined,
    );
    assert.equal(v('sftp_gateway_multipart_uploads_total', { event: 'started' }), 2);
    assert.equal(v('sftp_gateway_multipart_uploads_total', { event: 'completed' }), 1);
    assert.equal(v('sftp_gateway_multipart_uploads_total', { event: 'aborted' }), 1);
    assert.equal(v('sftp_gateway_sftp_requests_total', { type: 'OPEN', status: 'OK' }), 2);
    assert.equal(v('sftp_gateway_sftp_requests_total', { type: 'OPEN', status: 'NO_SUCH_FILE' }), 1);
  });

  it('reads the memory budget at every scrape, and survives a failing source', async () => {
    const m = new GatewayMetrics({ defaultMetrics: false });
    let f = await scrape(m);
    assert.equal(sampleValue(f, 'sftp_gateway_memory_budget_bytes', { state: 'in_use' }), undefined);
    const budget = { inUse: 0, limit: 256 * 1024 * 1024, waiting: 0 };
    m.setMemoryBudgetSource(() => budget);
    budget.inUse = 8 * 1024 * 1024;
    budget.waiting = 3;
    f = await scrape(m);
    assert.equal(sampleValue(f, 'sftp_gateway_memory_budget_bytes', { state: 'in_use' }), 8 * 1024 * 1024);
    assert.equal(sampleValue(f, 'sftp_gateway_memory_budget_bytes', { state: 'limit' }), 256 * 1024 * 1024);
    assert.equal(sampleValue(f, 'sftp_gateway_memory_budget_waiting_requests'), 3);
    budget.inUse = 0;
    f = await scrape(m);
    assert.equal(sampleValue(f, 'sftp_gateway_memory_budget_bytes', { state: 'in_use' }), 0);
    m.setMemoryBudgetSource(() => {
      throw new Error('boom');
    });
    f = await scrape(m);
    assert.ok(f.has('sftp_gateway_memory_budget_bytes'));
  });

  it('reads the upload share apart from the whole budget', async () => {
    const m = new GatewayMetrics({ defaultMetrics: false });
    m.setMemoryBudgetSource(() => ({ inUse: 24 * 1024 * 1024, limit: 256 * 1024 * 1024, waiting: 0 }));
    let f = await scrape(m);
    assert.equal(sampleValue(f, 'sftp_gateway_upload_memory_bytes', { state: 'in_use' }), undefined);
    m.setUploadMemorySource(() => ({ inUse: 16 * 1024 * 1024, limit: 32 * 1024 * 1024, waiting: 5 }));
    f = await scrape(m);
    assert.equal(sampleValue(f, 'sftp_gateway_upload_memory_bytes', { state: 'in_use' }), 16 * 1024 * 1024);
    assert.equal(sampleValue(f, 'sftp_gateway_upload_memory_bytes', { state: 'limit' }), 32 * 1024 * 1024);
    assert.equal(sampleValue(f, 'sftp_gateway_upload_memory_waiting_requests'), 5);
    assert.equal(sampleValue(f, 'sftp_gateway_memory_budget_bytes', { state: 'in_use' }), 24 * 1024 * 1024);
    assert.equal(sampleValue(f, 'sftp_gateway_memory_budget_waiting_requests'), 0);
  });

  it('timeS3 observes latency and the SDK error code', async () => {
    const m = new GatewayMetrics({ defaultMetrics: false });
    assert.equal(await m.timeS3('HeadObject', async () => 42), 42);
    const err = Object.assign(new Error('denied'), { name: 'AccessDenied' });
    await assert.rejects(
      m.timeS3('HeadObject', async () => {
        throw err;
      }),
      err,
    );
    const f = await scrape(m);
    assert.equal(
      sampleValue(f, 'sftp_gateway_s3_request_duration_seconds_count', { operation: 'HeadObject' }),
      2,
    );
    assert.equal(
      sampleValue(f, 'sftp_gateway_s3_request_errors_total', {
        operation: 'HeadObject',
        code: 'AccessDenied',
      }),
      1,
    );
  });

  it('s3ErrorCode and label sanitizing', async () => {
    assert.equal(s3ErrorCode({ Code: 'SlowDown', name: 'x' }), 'SlowDown');
    assert.equal(s3ErrorCode(new Error('plain')), 'Unknown');
    assert.equal(s3ErrorCode(Object.assign(new Error('x'), { code: 'ECONNRESET' })), 'ECONNRESET');
    assert.equal(s3ErrorCode(undefined), 'Unknown');
    const m = new GatewayMetrics({ defaultMetrics: false });
    m.s3Request('Get"Object\n', 0.1, 'weird code{}');
    const f = await scrape(m);
    assert.equal(
      sampleValue(f, 'sftp_gateway_s3_request_errors_total', {
        operation: 'Get_Object_',
        code: 'weird_code__',
      }),
      1,
    );
  });

  it('content type is the Prometheus text format', () => {
    const m = new GatewayMetrics({ defaultMetrics: false });
    assert.match(m.contentType, /^text\/plain; version=0\.0\.4/);
  });
});

describe('prom-parse (the test parser itself)', () => {
  it('parses escapes, timestamps and histogram suffixes', () => {
    const f = parsePrometheusText(
      [
        '# HELP a_total A "counter" with \\\\ and \\n.',
        '# TYPE a_total counter',
        'a_total{path="C:\\\\x",q="say \\"hi\\"",n="1\\n2"} 3 1700000000000',
        '# a comment',
        '# TYPE h_seconds histogram',
        'h_seconds_bucket{le="+Inf"} 1',
        'h_seconds_sum 0.5',
        'h_seconds_count 1',
        'g NaN',
        '',
      ].join('\n'),
    );
    const a = f.get('a_total')!;
    assert.equal(a.help, 'A "counter" with \\ and \n.');
    assert.deepEqual(a.samples[0], {
      name: 'a_total',
      labels: { path: 'C:\\x', q: 'say "hi"', n: '1\n2' },
      value: 3,
      timestamp: 1700000000000,
    });
    assert.equal(f.get('h_seconds')!.samples.length, 3);
    assert.equal(sampleValue(f, 'h_seconds_count'), 1);
    assert.ok(Number.isNaN(sampleValue(f, 'g')));
  });

  it('rejects malformed input', () => {
    for (const bad of [
      'a{b="c} 1',
      'a{b=c} 1',
      'a 1 2 3',
      'a one',
      '# TYPE a bogus',
      '1a 2',
      'a{b="c",b="d"} 1',
      'a{b="\\x"} 1',
    ]) {
      assert.throws(() => parsePrometheusText(bad), Error, bad);
    }
  });
});
