import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { isGatewayError } from '../../src/errors.js';
import type { ObjectStore } from '../../src/storage/object-store.js';

export interface ContractFixture {
  store: ObjectStore;
  bucket: string;
  cleanup: () => Promise<void>;
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

const isCode = (code: Parameters<typeof isGatewayError>[1]) => (e: unknown) => {
  assert.ok(isGatewayError(e, code), `expected ${code}, got ${String(e)}`);
  return true;
};

/** The guarantees every ObjectStore gives (src/storage/object-store.ts), for LocalStore and S3Store alike. */
/**
 * Differences a store declares instead of hiding (rclone-style features): the suite checks the weaker
 * guarantee for them.
 */
export interface ContractQuirks {
  /** Filesystem directories appear as `dir/` entries whether or not a marker was written (LocalStore). */
  implicitDirectories?: boolean;
  /** A pinned reader keeps reading the version it opened instead of failing after an overwrite (LocalStore). */
  snapshotReads?: boolean;
}

export function objectStoreContract(
  name: string,
  makeStore: () => Promise<ContractFixture>,
  opts: { skip?: string; quirks?: ContractQuirks } = {},
) {
  const quirks = opts.quirks ?? {};
  /** Keys as the suite wrote them: implicit directory entries of a filesystem store are left out. */
  const written = (keys: string[], explicit: string[] = []) =>
    quirks.implicitDirectories ? keys.filter((key) => !key.endsWith('/') || explicit.includes(key)) : keys;
  describe(`ObjectStore contract: ${name}`, { skip: opts.skip ?? false }, () => {
    let f: ContractFixture;
    let store: ObjectStore;
    let bucket: string;
    let n = 0;
    const base = `contract-${Date.now()}-${randomBytes(3).toString('hex')}/`;
    const k = (s: string) => `${base}${n}/${s}`;

    before(async () => {
      f = await makeStore();
      store = f.store;
      bucket = f.bucket;
    });
    after(async () => {
      await f?.cleanup();
    });

    it('bucketExists', async () => {
      n++;
      assert.equal(await store.bucketExists(bucket), true);
      assert.equal(await store.bucketExists(`no-such-bucket-${randomBytes(4).toString('hex')}`), false);
    });

    it('put then head; a missing key is undefined', async () => {
      n++;
      const info = await store.put(bucket, k('a.txt'), Buffer.from('hello'));
      assert.equal(info.size, 5);
      const h = await store.head(bucket, k('a.txt'));
      assert.ok(h);
      assert.equal(h.size, 5);
      assert.equal(h.key, k('a.txt'));
      assert.equal(h.etag, info.etag);
      assert.ok(h.lastModified instanceof Date);
      assert.equal(await store.head(bucket, k('missing')), undefined);
      const empty = await store.put(bucket, k('empty/'), Buffer.alloc(0));
      assert.equal(empty.size, 0);
      assert.equal((await store.head(bucket, k('empty/')))?.size, 0);
    });

    it('lists with delimiter: objects, the directory marker, common prefixes', async () => {
      n++;
      for (const key of ['d/', 'd/1', 'd/2', 'd/sub/3', 'd/sub/4', 'd/t/5', 'e']) {
        await store.put(bucket, k(key), Buffer.from(key));
      }
      const page = await store.list(bucket, { prefix: k('d/'), delimiter: '/' });
      assert.deepEqual(
        written(
          page.objects.map((o) => o.key),
          [k('d/')],
        ),
        [k('d/'), k('d/1'), k('d/2')],
      );
      assert.deepEqual(page.prefixes, [k('d/sub/'), k('d/t/')]);
      assert.equal(page.nextToken, undefined);
      assert.equal(page.objects[1]!.size, 3);
      const flat = await store.list(bucket, { prefix: k('') });
      assert.deepEqual(
        written(
          flat.objects.map((o) => o.key),
          [k('d/')],
        ),
        ['d/', 'd/1', 'd/2', 'd/sub/3', 'd/sub/4', 'd/t/5', 'e'].map(k),
      );
      assert.deepEqual(flat.prefixes, []);
    });

    it('lists page by page with continuation tokens', async () => {
      n++;
      const keys = Array.from({ length: 7 }, (_, i) => k(`p/${String(i).padStart(2, '0')}`));
      for (const key of keys) await store.put(bucket, key, Buffer.from('x'));
      await store.put(bucket, k('p/zz/inner'), Buffer.from('x'));
      const seenObjects: string[] = [];
      const seenPrefixes: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const page = await store.list(bucket, {
          prefix: k('p/'),
          delimiter: '/',
          maxKeys: 3,
          ...(token ? { continuationToken: token } : {}),
        });
        assert.ok(page.objects.length + page.prefixes.length <= 3);
        seenObjects.push(...page.objects.map((o) => o.key));
        seenPrefixes.push(...page.prefixes);
        token = page.nextToken;
        pages++;
      } while (token && pages < 10);
      assert.deepEqual(written(seenObjects), keys);
      assert.deepEqual(seenPrefixes, [k('p/zz/')]);
      assert.equal(pages, 3);
    });

    it('ranged reads through openReader and getStream', async () => {
      n++;
      const data = randomBytes(300_000);
      const info = await store.put(bucket, k('r.bin'), data);
      const h = (await store.head(bucket, k('r.bin')))!;
      assert.equal(h.etag, info.etag);
      const r = await store.openReader(bucket, k('r.bin'), h);
      try {
        assert.deepEqual(await r.read(0, 10), data.subarray(0, 10));
        assert.deepEqual(await r.read(10, 100_000), data.subarray(10, 100_010));
        assert.deepEqual(await r.read(250_000, 100_000), data.subarray(250_000));
        assert.equal((await r.read(300_000, 10)).length, 0);
        assert.equal((await r.read(400_000, 10)).length, 0);
        assert.deepEqual(await r.read(123_456, 7), data.subarray(123_456, 123_463));
        // Concurrent sequential reads, as SFTP clients issue them.
        const parts = await Promise.all(Array.from({ length: 10 }, (_, i) => r.read(i * 30_000, 30_000)));
        assert.deepEqual(Buffer.concat(parts), data);
      } finally {
        await r.close();
      }
      assert.deepEqual(
        await readAll(await store.getStream(bucket, k('r.bin'), { start: 5, end: 15 })),
        data.subarray(5, 15),
      );
      assert.deepEqual(
        await readAll(await store.getStream(bucket, k('r.bin'), { start: 299_990 })),
        data.subarray(299_990),
      );
      assert.deepEqual(
        await readAll(await store.getStream(bucket, k('r.bin'), { start: 0, etag: h.etag })),
        data,
      );
      await store.put(bucket, k('empty'), Buffer.alloc(0));
      assert.equal((await readAll(await store.getStream(bucket, k('empty'), { start: 0 }))).length, 0);
    });

    it('a writer makes nothing visible before complete, then the whole object', async () => {
      n++;
      const w = store.createWriter(bucket, k('w.bin'), { metadata: { origin: 'contract' } });
      const chunks = Array.from({ length: 20 }, () => randomBytes(32 * 1024));
      for (const c of chunks) await w.write(c);
      assert.equal(w.size, 20 * 32 * 1024);
      assert.equal(await store.head(bucket, k('w.bin')), undefined);
      assert.deepEqual((await store.list(bucket, { prefix: k('') })).objects, []);
      const info = await w.complete();
      assert.equal(info.size, 20 * 32 * 1024);
      const h = (await store.head(bucket, k('w.bin')))!;
      assert.equal(h.size, info.size);
      assert.deepEqual(
        await readAll(await store.getStream(bucket, k('w.bin'), { start: 0 })),
        Buffer.concat(chunks),
      );
    });

    it('an empty writer completes to an empty object', async () => {
      n++;
      const w = store.createWriter(bucket, k('zero'));
      const info = await w.complete();
      assert.equal(info.size, 0);
      assert.equal((await store.head(bucket, k('zero')))?.size, 0);
    });

    it('abort leaves nothing visible, is idempotent, and keeps an existing object', async () => {
      n++;
      const w = store.createWriter(bucket, k('ab.bin'));
      await w.write(randomBytes(100_000));
      await w.abort('test');
      await w.abort('again');
      assert.equal(await store.head(bucket, k('ab.bin')), undefined);
      await assert.rejects(w.write(Buffer.from('x')));
      await store.put(bucket, k('keep'), Buffer.from('old'));
      const w2 = store.createWriter(bucket, k('keep'));
      await w2.write(Buffer.from('new content'));
      await w2.abort();
      assert.deepEqual(
        await readAll(await store.getStream(bucket, k('keep'), { start: 0 })),
        Buffer.from('old'),
      );
    });

    it('append: a writer with a base starts with the existing bytes', async () => {
      n++;
      await store.put(bucket, k('app'), Buffer.from('hello'));
      const h = (await store.head(bucket, k('app')))!;
      const w = store.createWriter(bucket, k('app'), { base: { info: h, length: 5 } });
      assert.equal(w.size, 5);
      await w.write(Buffer.from(' world'));
      assert.equal(w.size, 11);
      await w.complete();
      assert.deepEqual(
        await readAll(await store.getStream(bucket, k('app'), { start: 0 })),
        Buffer.from('hello world'),
      );
      // Resume after a shorter prefix than the object holds.
      const h2 = (await store.head(bucket, k('app')))!;
      const w2 = store.createWriter(bucket, k('app'), { base: { info: h2, length: 4 } });
      await w2.write(Buffer.from('!'));
      await w2.complete();
      assert.deepEqual(
        await readAll(await store.getStream(bucket, k('app'), { start: 0 })),
        Buffer.from('hell!'),
      );
    });

    it('a writer whose base is another object starts with a copy of it (copy-data), small or in parts', async () => {
      n++;
      for (const size of [3, 6 * 1024 * 1024 + 1]) {
        const body = Buffer.alloc(size, size % 251);
        await store.put(bucket, k(`src-${size}`), body);
        const h = (await store.head(bucket, k(`src-${size}`)))!;
        const w = store.createWriter(bucket, k(`dst-${size}`), { base: { info: h, length: size, bucket } });
        assert.equal(w.size, size);
        await w.write(Buffer.from('+tail'));
        await w.complete();
        const copied = await readAll(await store.getStream(bucket, k(`dst-${size}`), { start: 0 }));
        assert.equal(copied.length, size + 5);
        assert.ok(copied.equals(Buffer.concat([body, Buffer.from('+tail')])), `${size} bytes`);
        assert.ok((await readAll(await store.getStream(bucket, k(`src-${size}`), { start: 0 }))).equals(body));
      }
    });

    it('a writer whose base was replaced after it was read fails, and leaves no object', async () => {
      n++;
      for (const size of [3, 6 * 1024 * 1024 + 1]) {
        await store.put(bucket, k(`v-${size}`), Buffer.alloc(size, 1));
        const seen = (await store.head(bucket, k(`v-${size}`)))!;
        // Another version of the same size: only the store's version marker tells them apart.
        await new Promise((resolve) => setTimeout(resolve, 20));
        await store.put(bucket, k(`v-${size}`), Buffer.alloc(size, 2));
        const w = store.createWriter(bucket, k(`v-copy-${size}`), { base: { info: seen, length: size } });
        await assert.rejects(async () => {
          await w.write(Buffer.from('+'));
          await w.complete();
        }, `${size} bytes`);
        await w.abort().catch(() => undefined);
        assert.equal(await store.head(bucket, k(`v-copy-${size}`)), undefined);
      }
    });

    it('ifNoneMatch refuses an existing key with AlreadyExists', async () => {
      n++;
      await store.put(bucket, k('x'), Buffer.from('1'), { ifNoneMatch: true });
      await assert.rejects(
        store.put(bucket, k('x'), Buffer.from('2'), { ifNoneMatch: true }),
        isCode('AlreadyExists'),
      );
      const w = store.createWriter(bucket, k('x'), { ifNoneMatch: true });
      await w.write(Buffer.from('3'));
      await assert.rejects(w.complete(), isCode('AlreadyExists'));
      assert.deepEqual(await readAll(await store.getStream(bucket, k('x'), { start: 0 })), Buffer.from('1'));
      const w2 = store.createWriter(bucket, k('y'), { ifNoneMatch: true });
      await w2.write(Buffer.from('4'));
      await w2.complete();
      assert.equal((await store.head(bucket, k('y')))?.size, 1);
    });

    it('copy, pinned to an etag', async () => {
      n++;
      const data = randomBytes(50_000);
      const info = await store.put(bucket, k('src'), data);
      const c = await store.copy({ bucket, key: k('src'), etag: info.etag }, { bucket, key: k('dst') });
      assert.equal(c.size, data.length);
      assert.deepEqual(await readAll(await store.getStream(bucket, k('dst'), { start: 0 })), data);
      await store.put(bucket, k('src'), Buffer.from('changed'));
      await assert.rejects(
        store.copy({ bucket, key: k('src'), etag: info.etag }, { bucket, key: k('dst2') }),
        isCode('PreconditionFailed'),
      );
      await assert.rejects(
        store.copy({ bucket, key: k('nope') }, { bucket, key: k('dst3') }),
        isCode('NotFound'),
      );
    });

    it('delete in batches ignores missing keys', async () => {
      n++;
      const keys = Array.from({ length: 30 }, (_, i) => k(`del/${i}`));
      for (const key of keys) await store.put(bucket, key, Buffer.from('x'));
      await store.delete(bucket, [...keys, k('del/missing')]);
      assert.deepEqual(
        written((await store.list(bucket, { prefix: k('del/') })).objects.map((o) => o.key)),
        [],
      );
      await store.delete(bucket, []);
    });

    it('NotFound from reads of missing objects', async () => {
      n++;
      await assert.rejects(store.getStream(bucket, k('missing'), { start: 0 }), isCode('NotFound'));
      const ghost = {
        key: k('missing'),
        size: 10,
        lastModified: new Date(),
        etag: '"0123456789abcdef0123456789abcdef"',
      };
      // A store may notice at open or at the first read.
      await assert.rejects(
        store.openReader(bucket, k('missing'), ghost).then(async (r) => {
          try {
            await r.read(0, 10);
          } finally {
            await r.close();
          }
        }),
        (e) => isGatewayError(e, 'NotFound') || isGatewayError(e, 'PreconditionFailed'),
      );
    });

    it('a pinned reader fails with PreconditionFailed after an overwrite', async () => {
      n++;
      const first = randomBytes(100_000);
      await store.put(bucket, k('pin'), first);
      const h = (await store.head(bucket, k('pin')))!;
      const r = await store.openReader(bucket, k('pin'), h);
      try {
        await store.put(bucket, k('pin'), randomBytes(100_000));
        if (quirks.snapshotReads) {
          // The weaker guarantee: never a byte of the new version.
          assert.deepEqual(await r.read(0, 100_000), first);
        } else {
          await assert.rejects(r.read(0, 1000), isCode('PreconditionFailed'));
        }
      } finally {
        await r.close();
      }
      await assert.rejects(
        store.getStream(bucket, k('pin'), { start: 0, etag: h.etag }).then(readAll),
        isCode('PreconditionFailed'),
      );
    });

    it('statfs and check', async () => {
      n++;
      const s = await store.statfs(bucket);
      assert.ok(s.blockSize > 0 && s.freeBlocks > 0 && s.nameMax >= 255);
      await store.check();
    });
  });
}
