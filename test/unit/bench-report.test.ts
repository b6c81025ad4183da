/**
 * The bench's targets table (bench/lib/report.ts): which rows it judges and against which anchor rows.
 * Rows are synthetic; the bench writes them the same way (bench/run.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Row, targets } from '../../bench/lib/report.js';

const CIPHER = 'aes128-gcm@openssh.com';

function small(server: string, seconds: number, pass = ''): Row {
  return {
    workload: `get 1000 small files${pass}`,
    direction: 'get',
    // The SDK anchor has no SSH cipher.
    cipher: server === 'direct SDK' ? '-' : CIPHER,
    server,
    seconds,
    files: 1000,
    bytes: 1000 * 4096,
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
