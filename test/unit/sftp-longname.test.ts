import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatLongname, formatTime, modeString } from '../../src/protocol/sftp/longname.js';

const now = new Date('2026-03-01T12:00:00Z');

describe('formatLongname', () => {
  it('formats a recent directory with the time of day', () => {
    const stat = {
      type: 'directory',
      size: 0,
      mtime: new Date('2026-01-23T08:05:00Z'),
      permissions: 0o744,
    } as const;
    assert.equal(
      formatLongname('input', stat, now),
      'drwxr--r--   1 -        -               0 Jan 23 08:05 input',
    );
  });

  it('formats an old file with the year', () => {
    const stat = {
      type: 'file',
      size: 1234,
      mtime: new Date('2024-03-01T10:00:00Z'),
      permissions: 0o644,
    } as const;
    assert.equal(
      formatLongname('file.txt', stat, now),
      '-rw-r--r--   1 -        -            1234 Mar  1  2024 file.txt',
    );
  });

  it('lets sizes wider than the column push the date right, like ls', () => {
    const stat = {
      type: 'file',
      size: 123456789012,
      mtime: new Date('2026-02-28T23:59:00Z'),
      permissions: 0o600,
    } as const;
    assert.equal(
      formatLongname('big', stat, now),
      '-rw-------   1 -        -        123456789012 Feb 28 23:59 big',
    );
  });
});

describe('modeString', () => {
  it('renders every permission bit', () => {
    assert.equal(modeString({ type: 'file', permissions: 0o777 }), '-rwxrwxrwx');
    assert.equal(modeString({ type: 'directory', permissions: 0o750 }), 'drwxr-x---');
    assert.equal(modeString({ type: 'file', permissions: 0 }), '----------');
  });
});

describe('formatTime', () => {
  it('switches to the year beyond six months either side of now', () => {
    assert.equal(formatTime(new Date('2025-09-02T00:00:00Z'), now), 'Sep  2 00:00');
    assert.equal(formatTime(new Date('2025-08-01T00:00:00Z'), now), 'Aug  1  2025');
    assert.equal(formatTime(new Date('2026-05-01T09:30:00Z'), now), 'May  1 09:30');
    assert.equal(formatTime(new Date('2027-01-01T00:00:00Z'), now), 'Jan  1  2027');
  });

  it('survives an invalid date', () => {
    assert.equal(formatTime(new Date(Number.NaN), now), 'Jan  1  1970');
  });
});
