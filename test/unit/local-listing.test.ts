import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DIRECTORY, FILE, type ListingCursor, ListingCursors } from '../../src/storage/local/listing-cursors.js';
import { compareKeys } from '../../src/storage/local/local-store.js';

/** The order as first written: split into segments, compare segment by segment as UTF-8 bytes. */
function referenceOrder(a: string, b: string): number {
  const sa = a.split('/');
  const sb = b.split('/');
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    if (sa[i] !== sb[i]) return Buffer.compare(Buffer.from(sa[i]!), Buffer.from(sb[i]!));
  }
  return sa.length - sb.length;
}

describe('compareKeys (segment-wise, UTF-8 byte order within a segment)', () => {
  it('puts a folder and everything below it before a sibling that extends its name', () => {
    const sorted = ['a-b', 'a/x', 'a', 'a/', 'a.txt', 'ab', 'a/b/c', 'a!'].sort(compareKeys);
    assert.deepEqual(sorted, ['a', 'a/', 'a/b/c', 'a/x', 'a!', 'a-b', 'a.txt', 'ab']);
  });

  it('orders characters beyond U+FFFF after the rest of the BMP, as their UTF-8 bytes do', () => {
    const sorted = ['😀', '\uffff', '\ue000', 'é', 'z'].sort(compareKeys);
    assert.deepEqual(sorted, ['z', 'é', '\ue000', '\uffff', '😀']);
  });

  it('agrees in sign with the segment-splitting reference on 20,000 random pairs', () => {
    const alphabet = ['a', 'b', '/', '-', '.', ' ', '!', 'é', '\ue000', '😀', '𝄞', 'Z', '0'];
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const key = () => Array.from({ length: 1 + rand(6) }, () => alphabet[rand(alphabet.length)]).join('');
    for (let i = 0; i < 20_000; i++) {
      const a = key();
      const b = rand(4) === 0 ? a + key() : key();
      assert.equal(Math.sign(compareKeys(a, b)), Math.sign(referenceOrder(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
  });
});

describe('ListingCursors', () => {
  const cursor = (n: number, index = 0): ListingCursor => ({
    folder: { names: Array.from({ length: n }, (_, i) => `f${i}`), kinds: new Uint8Array(n).fill(FILE) },
    index,
  });

  it('hands a cursor out once: the page it resumes stores the next one', () => {
    const c = new ListingCursors();
    const stored = cursor(3, 2);
    c.put('k', stored);
    assert.equal(c.take('k'), stored);
    assert.equal(c.take('k'), undefined);
    assert.equal(c.size, 0);
  });

  it('forgets a cursor older than its time to live', () => {
    let now = 0;
    const c = new ListingCursors(100, 1_000, () => now);
    c.put('old', cursor(1));
    now = 999;
    c.put('young', cursor(1));
    now = 1_000;
    assert.equal(c.take('old'), undefined);
    assert.ok(c.take('young'));
  });

  it('evicts the oldest cursors beyond its entry budget, and keeps no folder larger than the budget', () => {
    const c = new ListingCursors(10);
    c.put('a', cursor(4));
    c.put('b', cursor(4));
    c.put('c', cursor(4));
    assert.equal(c.take('a'), undefined);
    assert.ok(c.take('b'));
    assert.ok(c.take('c'));
    c.put('huge', cursor(11));
    assert.equal(c.size, 0);
  });

  it('drops expired cursors when a new one is stored', () => {
    let now = 0;
    const c = new ListingCursors(100, 10, () => now);
    c.put('a', cursor(1));
    c.put('b', cursor(1));
    now = 20;
    c.put('c', { folder: { names: ['d'], kinds: Uint8Array.of(DIRECTORY) }, index: 0 });
    assert.equal(c.size, 1);
  });
});
