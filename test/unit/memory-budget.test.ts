import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBudget } from '../../src/storage/memory-budget.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

describe('MemoryBudget', () => {
  it('grants at once while there is room and tracks inUse', async () => {
    const b = new MemoryBudget(100);
    const r1 = await b.acquire(40);
    const r2 = await b.acquire(60);
    assert.equal(b.inUse, 100);
    r1();
    r1(); // releasing twice must not give memory back twice
    assert.equal(b.inUse, 60);
    r2();
    assert.equal(b.inUse, 0);
  });

  it('waits while spent and resumes when memory is released', async () => {
    const b = new MemoryBudget(100);
    const r1 = await b.acquire(100);
    let granted = false;
    const p = b.acquire(10).then((r) => {
      granted = true;
      return r;
    });
    await tick();
    assert.equal(granted, false);
    assert.equal(b.waiting, 1);
    r1();
    const r2 = await p;
    assert.equal(granted, true);
    assert.equal(b.inUse, 10);
    r2();
  });

  it('serves waiters in FIFO order so a large request is not starved by small ones', async () => {
    const b = new MemoryBudget(100);
    const r1 = await b.acquire(60);
    const order: string[] = [];
    const big = b.acquire(80).then((r) => {
      order.push('big');
      return r;
    });
    // Would fit right now (60 + 10 <= 100) but must queue behind the big one.
    const small = b.acquire(10).then((r) => {
      order.push('small');
      return r;
    });
    assert.equal(b.tryAcquire(1), undefined);
    await tick();
    assert.deepEqual(order, []);
    r1();
    const rb = await big;
    const rs = await small;
    assert.deepEqual(order, ['big', 'small']);
    rb();
    rs();
    assert.equal(b.inUse, 0);
  });

  it('clamps a request larger than the whole budget so it proceeds alone', async () => {
    const b = new MemoryBudget(100);
    const r = await b.acquire(1000);
    assert.equal(b.inUse, 100);
    let second = false;
    const p = b.acquire(1).then((x) => {
      second = true;
      return x;
    });
    await tick();
    assert.equal(second, false);
    r();
    (await p)();
    assert.equal(b.inUse, 0);
  });

  it('tryAcquire grants only when immediately possible', () => {
    const b = new MemoryBudget(10);
    const r = b.tryAcquire(8);
    assert.ok(r);
    assert.equal(b.tryAcquire(5), undefined);
    r();
    assert.ok(b.tryAcquire(10));
  });

  it('an aborted waiter leaves the queue and unblocks those behind it', async () => {
    const b = new MemoryBudget(100);
    const r1 = await b.acquire(50);
    const ac = new AbortController();
    const big = b.acquire(100, ac.signal);
    const small = b.acquire(10);
    ac.abort(new Error('writer aborted'));
    await assert.rejects(big, /writer aborted/);
    const rs = await small;
    assert.equal(b.inUse, 60);
    rs();
    r1();
    assert.equal(b.waiting, 0);
  });

  it('many concurrent holders never exceed the limit', async () => {
    const b = new MemoryBudget(1000);
    let peak = 0;
    await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const release = await b.acquire(37 + (i % 5) * 50);
        peak = Math.max(peak, b.inUse);
        await tick();
        release();
      }),
    );
    assert.ok(peak <= 1000, `peak ${peak}`);
    assert.equal(b.inUse, 0);
  });
});
