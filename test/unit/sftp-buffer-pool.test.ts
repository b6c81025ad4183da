import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BufferPool } from '../../src/protocol/sftp/buffer-pool.js';

describe('BufferPool', () => {
  it('takes back a buffer through any view of it and hands it out again', () => {
    const pool = new BufferPool(1 << 20);
    const a = pool.take(1000);
    pool.release(a.subarray(13, 500));
    assert.equal(pool.pooledBytes, 1000);
    assert.equal(pool.take(1000), a);
    assert.equal(pool.pooledBytes, 0);
    assert.notEqual(pool.take(1000), a, 'a buffer is handed out once until released again');
  });

  it('ignores a second release, so one buffer never serves two replies', () => {
    const pool = new BufferPool(1 << 20);
    const a = pool.take(64);
    pool.release(a);
    pool.release(a.subarray(1));
    assert.equal(pool.pooledBytes, 64);
    const first = pool.take(64);
    const second = pool.take(64);
    assert.equal(first, a);
    assert.notEqual(second, a);
  });

  it('ignores buffers it did not allocate, including Node pool slices', () => {
    const pool = new BufferPool(1 << 20);
    pool.release(Buffer.allocUnsafe(64));
    pool.release(Buffer.alloc(4096));
    assert.equal(pool.pooledBytes, 0);
  });

  it('keeps at most its limit idle and matches sizes exactly', () => {
    const pool = new BufferPool(2048);
    const [a, b, c] = [pool.take(1024), pool.take(1024), pool.take(1024)];
    for (const x of [a, b, c]) pool.release(x);
    assert.equal(pool.pooledBytes, 2048);
    assert.notEqual(pool.take(512), a, 'another size is a fresh buffer');
    assert.equal(pool.take(1024).length, 1024);
  });
});
