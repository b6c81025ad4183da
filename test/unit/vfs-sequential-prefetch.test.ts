import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OpenedObject } from '../../src/storage/object-store.js';
import { PREFETCH_MAX_AGE_MS, PREFETCH_MAX_BYTES, SequentialPrefetch } from '../../src/vfs/sequential-prefetch.js';

/** A prefetcher over fake opens: which paths were fetched, which fetched objects were closed, the outcomes. */
function harness(depth = 2, refuse: (path: string) => boolean = () => false) {
  const fetched: string[] = [];
  const closed: string[] = [];
  const outcomes: string[] = [];
  let now = 1_000;
  const open = (path: string) => {
    if (refuse(path)) return undefined;
    fetched.push(path);
    const object = {
      info: { key: path, size: 1, lastModified: new Date(0), etag: '"e"' },
      reader: { close: async () => void closed.push(path) },
    } as unknown as OpenedObject;
    return Promise.resolve(object);
  };
  const p = new SequentialPrefetch(open, depth, (o) => outcomes.push(o), () => now);
  const settle = () => new Promise((r) => setImmediate(r));
  return { p, fetched, closed, outcomes, settle, advance: (ms: number) => (now += ms) };
}

const names = ['a', 'b', 'c', 'd', 'e', 'f'];
const small = names.map(() => 100);

describe('SequentialPrefetch', () => {
  it('fetches nothing for the first OPEN, then the next `depth` files once OPENs follow the listing', async () => {
    const h = harness(2);
    h.p.learnListing('/d', names, small);
    assert.equal(h.p.take('/d/a'), undefined);
    assert.deepEqual(h.fetched, []);
    assert.equal(h.p.take('/d/b'), undefined);
    assert.deepEqual(h.fetched, ['/d/c', '/d/d']);
    const c = await h.p.take('/d/c');
    assert.equal(c?.info.key, '/d/c');
    assert.deepEqual(h.fetched, ['/d/c', '/d/d', '/d/e'], 'one more per OPEN in the steady state');
    await h.p.take('/d/d');
    await h.p.take('/d/e');
    await h.p.take('/d/f');
    assert.deepEqual(h.fetched, names.slice(2).map((n) => `/d/${n}`), 'nothing past the end');
    await h.settle();
    assert.deepEqual(h.outcomes, ['used', 'used', 'used', 'used']);
    assert.deepEqual(h.closed, [], 'what OPEN took is the handle\'s to close');
  });

  it('fetches nothing when OPENs skip around, or are outside the listed directory', () => {
    const h = harness(2);
    h.p.learnListing('/d', names, small);
    h.p.take('/d/a');
    h.p.take('/d/c');
    h.p.take('/other/d');
    h.p.take('/d/b');
    assert.deepEqual(h.fetched, []);
  });

  it('skips files over PREFETCH_MAX_BYTES and files OPEN would refuse', () => {
    const h = harness(3, (p) => p === '/d/e');
    h.p.learnListing('/d', names, [1, 1, 1, PREFETCH_MAX_BYTES + 1, 1, 1]);
    h.p.take('/d/a');
    h.p.take('/d/b');
    assert.deepEqual(h.fetched, ['/d/c']);
  });

  it('hands out nothing older than PREFETCH_MAX_AGE_MS, and closes what it drops', async () => {
    const h = harness(1);
    h.p.learnListing('/d', names, small);
    h.p.take('/d/a');
    h.p.take('/d/b');
    h.advance(PREFETCH_MAX_AGE_MS + 1);
    assert.equal(h.p.take('/d/c'), undefined);
    await h.settle();
    assert.deepEqual(h.closed, ['/d/c']);
    assert.deepEqual(h.outcomes, ['unused']);
    assert.deepEqual(h.fetched, ['/d/c', '/d/d'], 'the sequence goes on');
  });

  it('drops everything fetched when the session writes, and when it ends', async () => {
    const h = harness(2);
    h.p.learnListing('/d', names, small);
    h.p.take('/d/a');
    h.p.take('/d/b');
    h.p.invalidate();
    assert.equal(h.p.take('/d/c'), undefined);
    h.p.close();
    await h.settle();
    // c and d at the write; d and e, fetched again after it, at the end.
    assert.deepEqual(h.closed.sort(), ['/d/c', '/d/d', '/d/d', '/d/e']);
  });

  it('goes on with a directory after listing a sub-directory on the way (get -r of a tree)', async () => {
    const h = harness(1);
    h.p.learnListing('/d', names, small);
    h.p.take('/d/a');
    h.p.take('/d/b');
    h.p.learnListing('/d/sub', ['x', 'y', 'z'], [1, 1, 1]);
    h.p.take('/d/sub/x');
    h.p.take('/d/sub/y');
    assert.ok(await h.p.take('/d/c'));
    h.p.take('/d/d');
    assert.deepEqual(h.fetched, ['/d/c', '/d/sub/z', '/d/d', '/d/e']);
  });

  it('forgets a listing too large to hold', () => {
    const h = harness(2);
    const many = Array.from({ length: 10_001 }, (_, i) => `f${i}`);
    h.p.learnListing('/big', many, many.map(() => 1));
    h.p.take('/big/f0');
    h.p.take('/big/f1');
    assert.deepEqual(h.fetched, []);
  });
});
