import assert from 'node:assert/strict';
import { createHash, createHmac, randomBytes, randomFillSync } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  AsyncSha256,
  loadNativeHasher,
  NativeHasher,
  partHasher,
  SharedMemoryHasher,
} from '../../src/storage/s3/async-sha256.js';
import { PartPool } from '../../src/storage/s3/part-pool.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('AsyncSha256 (SigV4 hashing off the event loop)', () => {
  it('matches node:crypto for small, large (off-thread) and multi-part inputs, strings included', async () => {
    for (const size of [0, 5, 64 * 1024, 256 * 1024, 3 * 1024 * 1024 + 7]) {
      const data = randomBytes(size);
      const h = new AsyncSha256();
      h.update(data.subarray(0, size >> 1));
      h.update(new Uint8Array(data.subarray(size >> 1)));
      assert.equal(hex(await h.digest()), createHash('sha256').update(data).digest('hex'), `size ${size}`);
    }
    const s = new AsyncSha256();
    s.update('AWS4-HMAC-SHA256\néè');
    assert.equal(hex(await s.digest()), createHash('sha256').update('AWS4-HMAC-SHA256\néè', 'utf8').digest('hex'));
  });

  it('computes an HMAC when constructed with a secret', async () => {
    const h = new AsyncSha256('AWS4secret');
    h.update('20261123');
    assert.equal(hex(await h.digest()), createHmac('sha256', 'AWS4secret').update('20261123').digest('hex'));
    const k = new AsyncSha256(Buffer.from([1, 2, 3]));
    k.update(Buffer.alloc(300 * 1024, 9));
    const want = createHmac('sha256', Buffer.from([1, 2, 3])).update(Buffer.alloc(300 * 1024, 9)).digest('hex');
    assert.equal(hex(await k.digest()), want);
  });

  it('gives each of many concurrent large digests its own result (they run one at a time)', async () => {
    const inputs = Array.from({ length: 6 }, (_, i) => Buffer.alloc(512 * 1024 + i, i + 1));
    const digests = await Promise.all(
      inputs.map((data) => {
        const h = new AsyncSha256();
        h.update(data);
        return h.digest();
      }),
    );
    digests.forEach((d, i) =>
      assert.equal(hex(d), createHash('sha256').update(inputs[i]!).digest('hex'), `input ${i}`),
    );
  });

  it('hashes upload parts with the native addon, which npm ci builds (native/sha256)', () => {
    assert.ok(
      partHasher instanceof NativeHasher,
      'native/sha256/build/Release/sha256.node did not load: run npm ci (its postinstall builds it)',
    );
    assert.equal(loadNativeHasher('./no-such-addon.node'), undefined, 'a missing addon is not an error');
  });

  for (const [name, make] of [
    ['the native addon', () => loadNativeHasher()!],
    ['the worker thread', () => new SharedMemoryHasher(50)],
  ] as const) {
    it(`${name} hashes views of shared memory at any offset, concurrently, each to its own result`, async () => {
      const hasher = make();
      const part = new PartPool(64 * 1024 * 1024).take(3 * 1024 * 1024);
      randomFillSync(part);
      const views = [part, part.subarray(1), part.subarray(5, 5), part.subarray(1000, 2 * 1024 * 1024 + 3)];
      const digests = await Promise.all(views.map((v) => hasher.digest(v)));
      views.forEach((v, i) => assert.equal(hex(digests[i]!), createHash('sha256').update(v).digest('hex'), `view ${i}`));
      assert.equal(hasher.digests, views.length);
    });
  }

  it('the native addon refuses anything but a Uint8Array, and the next digest still works', async () => {
    const hasher = loadNativeHasher()!;
    await assert.rejects(hasher.digest('text' as unknown as Uint8Array), /expects a Uint8Array/);
    await assert.rejects(hasher.digest(new Uint16Array(4) as unknown as Uint8Array), /expects a Uint8Array/);
    const part = new PartPool(64 * 1024 * 1024).take(1024 * 1024);
    assert.equal(hex(await hasher.digest(part)), createHash('sha256').update(part).digest('hex'));
  });

  it('hashes upload parts (shared memory) in place off the event loop; small views stay on the caller', async () => {
    const part = new PartPool(64 * 1024 * 1024).take(3 * 1024 * 1024);
    assert.ok(part.buffer instanceof SharedArrayBuffer, 'parts are allocated in shared memory');
    randomFillSync(part);
    const views = [part.subarray(0, 1024 * 1024 + 3), part.subarray(17, 2 * 1024 * 1024), part];
    const before = partHasher.digests;
    const digests = await Promise.all(
      views.map((v) => {
        const h = new AsyncSha256();
        h.update(v);
        return h.digest();
      }),
    );
    views.forEach((v, i) => assert.equal(hex(digests[i]!), createHash('sha256').update(v).digest('hex'), `view ${i}`));
    assert.equal(partHasher.digests - before, 3, 'each went off the event loop');
    const small = new AsyncSha256();
    small.update(part.subarray(0, 1000));
    assert.equal(hex(await small.digest()), createHash('sha256').update(part.subarray(0, 1000)).digest('hex'));
    assert.equal(partHasher.digests - before, 3, 'a small view is hashed synchronously');
  });

  it('stops its thread when idle and starts it again for the next part', async () => {
    const hasher = new SharedMemoryHasher(50);
    const part = new PartPool(64 * 1024 * 1024).take(1024 * 1024);
    randomFillSync(part);
    const want = createHash('sha256').update(part).digest('hex');
    assert.equal(hasher.running, false);
    assert.equal(hex(await hasher.digest(part)), want);
    assert.equal(hasher.running, true);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(hasher.running, false, 'stopped after 50 ms without work');
    assert.equal(hex(await hasher.digest(part)), want);
    assert.equal(hasher.digests, 2);
  });

  it('a hashing thread that cannot start fails its digests, and parts are then hashed on the calling thread', async () => {
    const broken = new SharedMemoryHasher(50, new URL('./no-such-worker.js', import.meta.url));
    const part = new PartPool(64 * 1024 * 1024).take(1024 * 1024);
    randomFillSync(part);
    await assert.rejects(broken.digest(part));
    await assert.rejects(broken.digest(part), 'and again, without hanging');
    const saved = AsyncSha256.sharedHasher;
    AsyncSha256.sharedHasher = broken;
    try {
      const h = new AsyncSha256();
      h.update(part);
      assert.equal(hex(await h.digest()), createHash('sha256').update(part).digest('hex'));
    } finally {
      AsyncSha256.sharedHasher = saved;
    }
  });

  it('starts over after digest and reset', async () => {
    const h = new AsyncSha256();
    h.update('a');
    await h.digest();
    h.update('b');
    assert.equal(hex(await h.digest()), createHash('sha256').update('b').digest('hex'));
    h.update('c');
    h.reset();
    assert.equal(hex(await h.digest()), createHash('sha256').update('').digest('hex'));
  });
});
