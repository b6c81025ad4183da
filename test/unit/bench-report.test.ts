/**
 * The bench's targets table (bench/lib/report.ts): which rows it judges and against which anchor rows,
 * and the S3 request log it reads Swift's time from (bench/lib/s3log.ts). Rows are synthetic; the bench
 * writes them the same way (bench/run.ts). The log lines are copied from Swift 2.30's proxy.log.
 */
import assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { describeFileSystem, type Row, targets } from '../../bench/lib/report.js';
import { formatCounts, type S3Activity, S3RequestLog, unionSeconds } from '../../bench/lib/s3log.js';

const CIPHER = 'aes128-gcm@openssh.com';

/** A row of 1,000 small files, as the bench writes it: a get unless `direction` says put. */
function small(
  server: string,
  seconds: number,
  pass = '',
  { direction = 'get', s3 }: { direction?: 'get' | 'put'; s3?: S3Activity } = {},
): Row {
  return {
    workload: `${direction} 1000 small files${pass}`,
    direction,
    // The SDK anchor has no SSH cipher.
    cipher: server === 'direct SDK' ? '-' : CIPHER,
    server,
    seconds,
    files: 1000,
    bytes: 1000 * 4096,
    s3,
  };
}

const targetRows = (rows: Row[]) =>
  targets(rows)
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| target'));

describe('bench targets', () => {
  it('judges only the last pass of the small-file workloads, against the anchor’s last pass', () => {
    const rows = [
      small('OpenSSH sshd', 1.0, ', pass 1 of 3'),
      small('OpenSSH sshd', 1.0, ', pass 2 of 3'),
      small('OpenSSH sshd', 1.0),
      small('gateway, local store', 2.0, ', pass 1 of 3'),
      small('gateway, local store', 1.6, ', pass 2 of 3'),
      small('gateway, local store', 1.25),
    ];
    assert.deepEqual(targetRows(rows), [
      `| local get 1000 small files, ${CIPHER} vs OpenSSH | 0.80× | ≥ 0.8× | met |`,
    ]);
  });

  it('pairs the S3 servers’ passes by their own count, apart from the local ones', () => {
    const rows = [
      small('OpenSSH sshd', 1.0, ', pass 1 of 3'),
      small('OpenSSH sshd', 1.0),
      small('direct SDK', 10.0, ', pass 1 of 2'),
      small('direct SDK', 8.0),
      small('gateway, S3', 20.0, ', pass 1 of 2'),
      small('gateway, S3', 10.0),
    ];
    assert.deepEqual(targetRows(rows), [`| S3 get 1000 small files, ${CIPHER} vs direct SDK | 0.80× | ≥ 0.9× | **missed** |`]);
  });

  it('still judges a run written before the passes were numbered (one unnamed pass)', () => {
    const rows = [small('OpenSSH sshd', 1.0), small('gateway, local store', 0.9)];
    assert.deepEqual(targetRows(rows), [
      `| local get 1000 small files, ${CIPHER} vs OpenSSH | 1.11× | ≥ 0.8× | met |`,
    ]);
  });
});

/** Swift's time for `n` sequential requests of one kind, `ms` each. */
function activity(op: string, n: number, ms: number): S3Activity {
  return { counts: new Map([[op, n]]), serving: (n * ms) / 1000, mean: new Map([[op, ms / 1000]]) };
}

describe('bench targets: what Swift’s own time allows', () => {
  const put = (server: string, seconds: number, s3?: S3Activity) => small(server, seconds, '', { direction: 'put', s3 });

  it('says a missed small-file target is out of reach when Swift served the SDK’s same requests too slowly', () => {
    const rows = [
      put('rclone serve sftp (S3)', 18.0),
      put('direct SDK', 14.0, activity('PutObject', 1000, 13)),
      put('gateway, S3', 14.5),
    ];
    // 1.5× rclone needs 12 s; Swift alone took 13 s on the SDK's 1,000 PutObjects: 18 / 13 = 1.38×.
    assert.deepEqual(targetRows(rows), [
      `| S3 put 1000 small files, ${CIPHER} vs direct SDK | 0.97× | ≥ 0.9× | met |`,
      `| S3 put 1000 small files, ${CIPHER} vs rclone | 1.24× | ≥ 1.5× | **missed**; out of reach here: Swift's 13.00 s serving the 1000 requests the direct SDK (the gateway's S3 client) made for the same 1000 files caps it at 1.38× |`,
    ]);
  });

  it('does not cap small downloads, which a server may fetch ahead several at once', () => {
    const get = (server: string, seconds: number, s3?: S3Activity) => small(server, seconds, '', { s3 });
    const rows = [
      get('rclone serve sftp (S3)', 9.0),
      get('direct SDK', 8.0, activity('GetObject', 1000, 7)),
      get('gateway, S3', 7.5),
    ];
    assert.deepEqual(targetRows(rows), [
      `| S3 get 1000 small files, ${CIPHER} vs direct SDK | 1.07× | ≥ 0.9× | met |`,
      `| S3 get 1000 small files, ${CIPHER} vs rclone | 1.20× | ≥ 1.5× | **missed** |`,
    ]);
  });

  it('leaves a miss unexplained when Swift left room, and bulk rows without a cap', () => {
    const rows = [
      put('rclone serve sftp (S3)', 18.0),
      put('direct SDK', 12.0, activity('PutObject', 1000, 8)),
      put('gateway, S3', 14.5),
      { ...put('direct SDK', 3.0, activity('GetObject', 12, 250)), workload: 'get 1 file', files: undefined, bytes: 512 * 2 ** 20 },
      { ...put('gateway, S3', 4.0), workload: 'get 1 file', files: undefined, bytes: 512 * 2 ** 20 },
    ];
    assert.deepEqual(targetRows(rows), [
      `| S3 put 1000 small files, ${CIPHER} vs direct SDK | 0.83× | ≥ 0.9× | **missed** |`,
      `| S3 put 1000 small files, ${CIPHER} vs rclone | 1.24× | ≥ 1.5× | **missed** |`,
      `| S3 get 1 file, ${CIPHER} vs direct SDK | 0.75× | ≥ 0.9× | **missed** |`,
    ]);
  });
});

describe('bench targets: what the machine’s cores allow', () => {
  const bulk = (server: string, seconds: number, cpu?: Row['cpu']): Row => ({
    workload: 'get 1 file',
    direction: 'get',
    cipher: server === 'direct SDK' ? '-' : CIPHER,
    server,
    seconds,
    bytes: 512 * 2 ** 20,
    cpu,
  });

  it('says a missed bulk target is out of reach when the row’s measured CPU work does not fit the time it allows', () => {
    // 0.9× the SDK allows 3.33 s, 6.67 core-seconds on 2 cores; the row kept them busy for 7.5.
    const rows = [bulk('direct SDK', 3.0, { server: 2.3, machine: 5.1 }), bulk('gateway, S3', 4.0, { server: 2.7, machine: 7.5 })];
    assert.deepEqual(targets(rows, 2).split('\n').slice(2), [
      `| S3 get 1 file, ${CIPHER} vs direct SDK | 0.75× | ≥ 0.9× | **missed**; out of reach here: the row's 7.50 busy core-seconds (the gateway's 2.70) on 2 cores caps it at 0.80× |`,
    ]);
  });

  it('leaves the miss unexplained when the cores had room, or with twice the cores', () => {
    const rows = [bulk('direct SDK', 3.0, { machine: 5.1 }), bulk('gateway, S3', 4.0, { server: 2.7, machine: 5.5 })];
    assert.deepEqual(targets(rows, 2).split('\n').slice(2), [
      `| S3 get 1 file, ${CIPHER} vs direct SDK | 0.75× | ≥ 0.9× | **missed** |`,
    ]);
    const busy = [rows[0]!, bulk('gateway, S3', 4.0, { server: 2.7, machine: 7.5 })];
    assert.deepEqual(targets(busy, 4).split('\n').slice(2), [
      `| S3 get 1 file, ${CIPHER} vs direct SDK | 0.75× | ≥ 0.9× | **missed** |`,
    ]);
  });
});

describe('bench S3 request log', () => {
  it('counts the bucket’s requests by operation and measures the time Swift spent on them', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 's3log-'));
    try {
      const file = path.join(dir, 'proxy.log');
      await writeFile(file, 'proxy-server: earlier line, not this row\n');
      const log = new S3RequestLog(file, 'test');
      const mark = await log.mark();
      const line = (method: string, p: string, status: number, start: number, end: number) =>
        `proxy-server: 127.0.0.1 127.0.0.1 05/Dec/2026/14/21/51 ${method} ${p} HTTP/1.0 ${status} - aws-sdk-js/3.1168.0%20ua/2.1 - - 247 - txbaa19aac034e419ab70c7-006b141dff - ${(end - start).toFixed(4)} - - ${start.toFixed(9)} ${end.toFixed(9)} -`;
      const t = 1796480511;
      await writeFile(
        file,
        [
          line('PUT', '/test/a/f1', 200, t, t + 0.01),
          // Overlaps the first: the union counts [t, t + 0.02] once.
          line('PUT', '/test/a/f2', 200, t + 0.005, t + 0.02),
          line('HEAD', '/test/a/f3', 404, t + 0.1, t + 0.103),
          line('GET', '/test/%3Flist-type%3D2%26prefix%3Da%252F', 200, t + 0.2, t + 0.25),
          // Swift's own subrequests (its native API) and other buckets are not the row's.
          line('HEAD', '/v1/AUTH_test/test', 204, t + 0.3, t + 0.4),
          line('GET', '/other/key', 200, t + 0.5, t + 0.6),
          'proxy-server: SIGTERM received (25255)',
          '',
        ].join('\n'),
        { flag: 'a' },
      );
      const got = await log.since(mark);
      assert.deepEqual(Object.fromEntries(got.counts), { PutObject: 2, 'HeadObject (404)': 1, ListObjectsV2: 1 });
      assert.ok(Math.abs(got.serving - (0.02 + 0.003 + 0.05)) < 1e-6, `serving ${got.serving}`);
      assert.ok(Math.abs(got.mean.get('PutObject')! - 0.0125) < 1e-6);
      assert.equal(
        formatCounts(got, 2),
        'PutObject 2 (1.00/file, 12.5 ms), HeadObject (404) 1 (0.50/file, 3.0 ms), ListObjectsV2 1 (0.50/file, 50.0 ms)',
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('measures the union of overlapping, nested and disjoint intervals', () => {
    assert.equal(unionSeconds([]), 0);
    assert.equal(unionSeconds([[5, 6], [1, 4], [2, 3], [3.5, 4.5]]), 4.5);
  });
});

describe('bench machine description', () => {
  it('names the file system of the data folder, from the nearest folder that exists', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-fs-'));
    try {
      const described = await describeFileSystem(path.join(dir, 'not', 'yet'));
      // The folder's own mount, as /proc/self/mounts gives it, with the folder resolved.
      assert.match(described, /^\S+( \((with a|no) journal\))? on \S+, mounted at \/\S* \(/);
      assert.ok(described.endsWith(`(${realpathSync(dir)})`), described);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
