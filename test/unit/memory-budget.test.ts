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

  describe('a share of a budget', () => {
    it('grants within its own limit and takes the same bytes from its parent', async () => {
      const parent = new MemoryBudget(100);
      const share = new MemoryBudget(30, parent);
      const r1 = await share.acquire(20);
      assert.equal(share.inUse, 20);
      assert.equal(parent.inUse, 20);
      let granted = false;
      const p = share.acquire(20).then((r) => {
        granted = true;
        return r;
      });
      await tick();
      // The parent has 80 free, but the share has only 10: the second upload part waits for the share.
      assert.equal(granted, false);
      assert.equal(share.waiting, 1);
      assert.equal(parent.inUse, 20);
      // Other users of the parent (read-ahead) are not held up by the share's waiter.
      const other = await parent.acquire(50);
      assert.equal(parent.inUse, 70);
      r1();
      const r2 = await p;
      assert.equal(share.inUse, 20);
      assert.equal(parent.inUse, 70);
      r2();
      r2(); // twice gives nothing back twice, to either budget
      other();
      assert.equal(share.inUse, 0);
      assert.equal(parent.inUse, 0);
    });

    it('waits for the parent while holding its own grant, and gives that back if aborted there', async () => {
      const parent = new MemoryBudget(100);
      const share = new MemoryBudget(60, parent);
      const hog = await parent.acquire(90);
      const ac = new AbortController();
      const p = share.acquire(40, ac.signal);
      await tick();
      assert.equal(share.inUse, 40, 'the share is taken first, in its own order');
      assert.equal(parent.waiting, 1);
      ac.abort(new Error('session closed'));
      await assert.rejects(p, /session closed/);
      assert.equal(share.inUse, 0);
      assert.equal(parent.waiting, 0);
      hog();
      assert.equal(parent.inUse, 0);
    });

    it('tryAcquire needs room in both and keeps nothing when the parent is full', () => {
      const parent = new MemoryBudget(100);
      const share = new MemoryBudget(50, parent);
      const hog = parent.tryAcquire(80)!;
      assert.equal(share.tryAcquire(30), undefined);
      assert.equal(share.inUse, 0);
      const r = share.tryAcquire(20)!;
      assert.equal(share.inUse, 20);
      assert.equal(parent.inUse, 100);
      r();
      hog();
      assert.equal(parent.inUse, 0);
    });

    it('is never larger than its parent', async () => {
      const parent = new MemoryBudget(64);
      const share = new MemoryBudget(256, parent);
      assert.equal(share.limit, 64);
      // A request above the limit is clamped in both and proceeds alone.
      const r = await share.acquire(1000);
      assert.equal(parent.inUse, 64);
      r();
    });
  });
});
