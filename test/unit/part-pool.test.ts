import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PartPool, partPoolFor } from '../../src/storage/s3/part-pool.js';

describe('PartPool', () => {
  it('hands returned buffers out again, by size, up to its limit', () => {
    const pool = new PartPool(3 * 1024);
    const a = pool.take(1024);
    const b = pool.take(1024);
    assert.notEqual(a, b);
    pool.give(a);
    assert.equal(pool.pooledBytes, 1024);
    assert.equal(pool.take(1024), a, 'the returned buffer is reused');
    assert.notEqual(pool.take(2048), b, 'other sizes are allocated');
    pool.give(a);
    pool.give(b);
    pool.give(Buffer.alloc(1024));
    pool.give(Buffer.alloc(1024)); // over the limit: dropped
    assert.equal(pool.pooledBytes, 3 * 1024);
    pool.trim();
    assert.equal(pool.pooledBytes, 0);
  });

  it('is shared per memory budget', () => {
    const budget = { limit: 1 };
    assert.equal(partPoolFor(budget), partPoolFor(budget));
    assert.notEqual(partPoolFor(budget), partPoolFor({ limit: 1 }));
  });
});
