import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { isGatewayError } from '../../src/errors.js';
import { MemoryBudget } from '../../src/storage/memory-budget.js';
import { MiB } from '../../src/storage/s3/config.js';
import { partPoolFor } from '../../src/storage/s3/part-pool.js';
import { partHasher } from '../../src/storage/s3/async-sha256.js';
import type { ListPage } from '../../src/storage/object-store.js';
import { journalKey } from '../../src/storage/s3/journal.js';
import { listParsing } from '../../src/storage/s3/list-objects.js';
import type { S3ReadAheadReader } from '../../src/storage/s3/read-ahead-reader.js';
import { S3Store } from '../../src/storage/s3/s3-store.js';
import { readAll } from './contract.js';
import { makeS3Store, type S3Fixture } from './s3-fixture.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Records the SDK commands a store sends, to prove e.g. that an append used UploadPartCopy. */
function recordCommands(f: S3Fixture): string[] {
  const names: string[] = [];
  f.hooks.initialize.add((name) => {
    names.push(name);
  });
  return names;
}

async function uploadsFor(f: S3Fixture, key: string) {
  const r = await f.store.client.send(new ListMultipartUploadsCommand({ Bucket: f.bucket, Prefix: key }));
  return (r.Uploads ?? []).filter((u) => u.Key === key);
}

async function writeAll(w: { write(b: Buffer): Promise<void> }, data: Buffer, chunk = 256 * 1024) {
  for (let off = 0; off < data.length; off += chunk) await w.write(data.subarray(off, off + chunk));
}

export function s3SpecificTests(name: string, compat: boolean, skip: string | undefined) {
  describe(`S3Store specifics: ${name}`, { skip: skip ?? false }, () => {
    let f: S3Fixture;
    const prefix = `s3spec-${Date.now()}-${randomBytes(3).toString('hex')}/`;
    before(async () => {
      f = await makeS3Store(compat, {
        partSize: 5 * MiB,
        uploadConcurrency: 2,
        copyPartThreshold: 5 * MiB,
        copyPartSize: 5 * MiB,
        readAheadChunkSize: 1 * MiB,
        readAheadChunks: 3,
      });
    });
    after(async () => {
      await f?.cleanup();
    });

    it('reads listing pages with its own parser, exactly as the SDK reads them', async () => {
      const dir = `${prefix}names/`;
      const names = ['a&b', '<tag>', 'say "hi"', 'it\'s', 'é😀', 'sp ace', '100%', 'tab\there', 'sub/x'];
      for (const n of names) {
        await f.store.client.send(new PutObjectCommand({ Bucket: f.bucket, Key: dir + n, Body: n }));
      }
      const before = { ...listParsing };
      const ours: ListPage[] = [];
      let token: string | undefined;
      do {
        const page = await f.store.list(f.bucket, { prefix: dir, delimiter: '/', maxKeys: 3, continuationToken: token });
        ours.push(page);
        token = page.nextToken;
      } while (token);
      assert.ok(listParsing.ours - before.ours >= ours.length, 'every page went through our parser');
      assert.equal(listParsing.sdk, before.sdk, 'no page was given back to the SDK');
      // The same pages through the SDK's own parser (a plain command has no parser middleware).
      const sdk: ListPage[] = [];
      token = undefined;
      do {
        const r: ListObjectsV2CommandOutput = await f.store.client.send(
          new ListObjectsV2Command({ Bucket: f.bucket, Prefix: dir, Delimiter: '/', MaxKeys: 3, ContinuationToken: token }),
        );
        sdk.push({
          objects: (r.Contents ?? []).map((o) => ({ key: o.Key!, size: o.Size!, lastModified: o.LastModified!, etag: o.ETag! })),
          prefixes: (r.CommonPrefixes ?? []).map((p) => p.Prefix!),
          ...(r.IsTruncated && r.NextContinuationToken ? { nextToken: r.NextContinuationToken } : {}),
        });
        token = r.NextContinuationToken;
      } while (token);
      assert.deepEqual(ours, sdk);
      const listed = ours.flatMap((p) => [...p.objects.map((o) => o.key), ...p.prefixes]).map((k) => k.slice(dir.length));
      assert.deepEqual(listed.sort(), [...names.filter((n) => !n.includes('/')), 'sub/'].sort());
    });

    it('uploads 20 MiB as a multipart upload with 5 MiB parts, marked while in progress', async () => {
      const key = `${prefix}mp.bin`;
      const data = randomBytes(20 * MiB + 12345);
      const w = f.store.createWriter(f.bucket, key);
      await writeAll(w, data.subarray(0, 11 * MiB));
      const uploads = await uploadsFor(f, key);
      assert.equal(uploads.length, 1, 'a multipart upload is in progress');
      const mark = journalKey(f.store.config.journalPrefix, uploads[0]!.UploadId!);
      assert.ok(await f.store.head(f.bucket, mark), 'the upload carries the gateway mark');
      assert.equal(await f.store.head(f.bucket, key), undefined);
      await writeAll(w, data.subarray(11 * MiB));
      const info = await w.complete();
      assert.equal(info.size, data.length);
      assert.match(info.etag, /-5"?$/, 'four 5 MiB parts and a short last one');
      const back = await readAll(await f.store.getStream(f.bucket, key, { start: 0 }));
      assert.equal(sha(back), sha(data));
      assert.deepEqual(await uploadsFor(f, key), []);
      assert.equal(await f.store.head(f.bucket, mark), undefined, 'the mark is gone after complete');
      assert.equal(f.budget.inUse, 0);
    });

    it('a file that fits one part is a single PutObject', async () => {
      const names = recordCommands(f);
      const w = f.store.createWriter(f.bucket, `${prefix}one-part`);
      await writeAll(w, randomBytes(5 * MiB));
      await w.complete();
      assert.ok(names.includes('PutObjectCommand'));
      assert.ok(!names.includes('CreateMultipartUploadCommand'));
    });

    it('a single-PutObject upload gives its part buffer back for the next one, not before its request settles', async () => {
      const pool = partPoolFor(f.budget);
      pool.trim();
      const keys = [`${prefix}pool-a`, `${prefix}pool-b`];
      const bodies = [randomBytes(4096), randomBytes(4096)];
      const first = f.store.createWriter(f.bucket, keys[0]!);
      await first.write(bodies[0]!);
      // An abort racing the PutObject (a session dropped during CLOSE) must not hand the buffer out while
      // the request may still read it.
      let pooledDuringPut: number | undefined;
      const abortDuringPut = async (commandName: string) => {
        if (commandName === 'PutObjectCommand' && pooledDuringPut === undefined) {
          await first.abort('client went away');
          pooledDuringPut = pool.pooledBytes;
        }
      };
      f.hooks.finalizeRequest.add(abortDuringPut);
      try {
        await first.complete();
      } finally {
        f.hooks.finalizeRequest.delete(abortDuringPut);
      }
      assert.equal(pooledDuringPut, 0, 'the part stays with its request');
      assert.equal(pool.pooledBytes, 5 * MiB, 'the part is back in the pool once the PutObject settled');
      const second = f.store.createWriter(f.bucket, keys[1]!);
      await second.write(bodies[1]!);
      assert.equal(pool.pooledBytes, 0, 'the next upload takes it');
      await second.complete();
      assert.equal(pool.pooledBytes, 5 * MiB);
      for (const [i, key] of keys.entries()) {
        const back = await readAll(await f.store.getStream(f.bucket, key, { start: 0 }));
        assert.equal(sha(back), sha(bodies[i]!), key);
      }
      assert.equal(f.budget.inUse, 0);
    });

    it('payloadSigning: signed bodies are hashed in place; an unsigned store hashes none and the store accepts it', async () => {
      const data = randomBytes(12 * MiB + 5);
      const before = partHasher.digests;
      const signedKey = `${prefix}signed.bin`;
      const w = f.store.createWriter(f.bucket, signedKey);
      await writeAll(w, data);
      await w.complete();
      assert.ok(partHasher.digests - before >= 3, 'auto over HTTP: three parts hashed off the event loop');
      const g = await makeS3Store(compat, { partSize: 5 * MiB, payloadSigning: 'unsigned' });
      try {
        const mid = partHasher.digests;
        for (const [key, body] of [
          [`${prefix}unsigned.bin`, data],
          [`${prefix}unsigned-small`, data.subarray(0, 4096)],
        ] as const) {
          const u = g.store.createWriter(g.bucket, key);
          await writeAll(u, body);
          await u.complete();
          const back = await readAll(await g.store.getStream(g.bucket, key, { start: 0 }));
          assert.equal(sha(back), sha(body), key);
        }
        assert.equal(partHasher.digests, mid, 'no part was hashed');
      } finally {
        await g.cleanup();
      }
      const back = await readAll(await f.store.getStream(f.bucket, signedKey, { start: 0 }));
      assert.equal(sha(back), sha(data));
    });

    it('abort leaves no multipart upload and no mark behind', async () => {
      const key = `${prefix}aborted.bin`;
      const w = f.store.createWriter(f.bucket, key);
      await writeAll(w, randomBytes(16 * MiB));
      const [u] = await uploadsFor(f, key);
      assert.ok(u);
      await w.abort('client went away');
      assert.deepEqual(await uploadsFor(f, key), []);
      assert.equal(await f.store.head(f.bucket, key), undefined);
      assert.equal(
        await f.store.head(f.bucket, journalKey(f.store.config.journalPrefix, u.UploadId!)),
        undefined,
      );
      assert.equal(f.budget.inUse, 0);
    });

    it('the janitor aborts only the gateway’s own old uploads', async () => {
      const ours = `${prefix}janitor-ours`;
      const theirs = `${prefix}janitor-theirs`;
      const w = f.store.createWriter(f.bucket, ours);
      await writeAll(w, randomBytes(6 * MiB)); // a second part began: the upload exists
      const other = await f.store.client.send(
        new CreateMultipartUploadCommand({ Bucket: f.bucket, Key: theirs }),
      );
      try {
        const young = await f.store.janitor.runOnce(f.bucket);
        assert.equal(young.aborted, 0, 'young uploads are left alone');
        const later = new Date(Date.now() + f.store.config.multipartMaxAge + 60_000);
        const r = await f.store.janitor.runOnce(f.bucket, later);
        assert.equal(r.aborted, 1);
        assert.deepEqual(await uploadsFor(f, ours), []);
        assert.equal((await uploadsFor(f, theirs)).length, 1, 'the other writer’s upload is untouched');
      } finally {
        await f.store.client.send(
          new AbortMultipartUploadCommand({ Bucket: f.bucket, Key: theirs, UploadId: other.UploadId }),
        );
        await w.abort();
      }
    });

    it('append over a 12 MiB prefix copies it inside the store (UploadPartCopy)', async () => {
      const key = `${prefix}append.bin`;
      const prefixData = randomBytes(12 * MiB);
      const tail = randomBytes(8 * MiB);
      await f.store.put(f.bucket, key, prefixData);
      const h = (await f.store.head(f.bucket, key))!;
      const names = recordCommands(f);
      const w = f.store.createWriter(f.bucket, key, { base: { info: h, length: prefixData.length } });
      await writeAll(w, tail);
      const info = await w.complete();
      assert.equal(info.size, 20 * MiB);
      assert.ok(names.includes('UploadPartCopyCommand'), names.join());
      assert.ok(!names.includes('GetObjectCommand'), 'the prefix is not read through the gateway');
      const back = await readAll(await f.store.getStream(f.bucket, key, { start: 0 }));
      assert.equal(sha(back), sha(Buffer.concat([prefixData, tail])));
    });

    it('append over a small prefix re-reads it', async () => {
      const key = `${prefix}append-small`;
      await f.store.put(f.bucket, key, Buffer.from('abc'));
      const h = (await f.store.head(f.bucket, key))!;
      const w = f.store.createWriter(f.bucket, key, { base: { info: h, length: 3 } });
      const more = randomBytes(7 * MiB);
      await writeAll(w, more);
      await w.complete();
      const back = await readAll(await f.store.getStream(f.bucket, key, { start: 0 }));
      assert.equal(sha(back), sha(Buffer.concat([Buffer.from('abc'), more])));
    });

    it('copies above copyPartThreshold with multipart UploadPartCopy', async () => {
      const data = randomBytes(12 * MiB + 7);
      await f.store.put(f.bucket, `${prefix}big-src`, data, { metadata: { who: 'copy-test' } });
      const names = recordCommands(f);
      const info = await f.store.copy(
        { bucket: f.bucket, key: `${prefix}big-src` },
        { bucket: f.bucket, key: `${prefix}big-dst` },
      );
      assert.equal(info.size, data.length);
      assert.equal(names.filter((n) => n === 'UploadPartCopyCommand').length, 2);
      assert.ok(!names.includes('CopyObjectCommand'));
      const back = await readAll(await f.store.getStream(f.bucket, `${prefix}big-dst`, { start: 0 }));
      assert.equal(sha(back), sha(data));
    });

    it('an exclusive multipart upload refuses an existing key and creates a new one', async () => {
      const key = `${prefix}excl`;
      const w = f.store.createWriter(f.bucket, key, { ifNoneMatch: true });
      await writeAll(w, randomBytes(6 * MiB));
      await w.complete();
      const w2 = f.store.createWriter(f.bucket, key, { ifNoneMatch: true });
      await writeAll(w2, randomBytes(6 * MiB));
      await assert.rejects(w2.complete(), (e) => isGatewayError(e, 'AlreadyExists'));
      assert.deepEqual(await uploadsFor(f, key), []);
    });

    it('sequential readers stream growing ranges; random readers fetch exact ranges', async () => {
      const key = `${prefix}read.bin`;
      const data = randomBytes(8 * MiB);
      await f.store.put(f.bucket, key, data);
      const h = (await f.store.head(f.bucket, key))!;
      const r = (await f.store.openReader(f.bucket, key, h)) as S3ReadAheadReader;
      const got: Buffer[] = [];
      for (let off = 0; off < data.length; off += 256 * 1024) got.push(await r.read(off, 256 * 1024));
      assert.equal(sha(Buffer.concat(got)), sha(data));
      assert.equal(r.gets, 3, 'GETs of 2, 4 and 2 (the rest) MiB, not one per chunk or per read');
      await r.close();
      assert.equal(f.budget.inUse, 0, 'read-ahead memory returns to the budget on close');
      const r2 = (await f.store.openReader(f.bucket, key, h)) as S3ReadAheadReader;
      assert.deepEqual(await r2.read(7 * MiB, 100), data.subarray(7 * MiB, 7 * MiB + 100));
      assert.deepEqual(await r2.read(1000, 100), data.subarray(1000, 1100));
      await r2.close();
    });

    it('openObject: a small object is one GetObject, no HeadObject', async () => {
      const key = `${prefix}small.txt`;
      const data = randomBytes(4096);
      const put = await f.store.put(f.bucket, key, data);
      const names = recordCommands(f);
      const o = (await f.store.openObject(f.bucket, key))!;
      assert.equal(o.info.size, 4096);
      assert.equal(o.info.etag, put.etag);
      assert.ok(o.info.lastModified.getTime() > 0);
      assert.deepEqual(await o.reader.read(0, 32768), data);
      assert.equal((await o.reader.read(4096, 32768)).length, 0);
      await o.reader.close();
      assert.deepEqual(names, ['GetObjectCommand']);
      assert.equal(f.budget.inUse, 0);
      names.length = 0;
      assert.equal(await f.store.openObject(f.bucket, `${prefix}no-such-object`), undefined);
      assert.deepEqual(names, ['GetObjectCommand'], 'a missing object is one GET (404) too');
    });

    it('openObject speculative: fails at once when its chunk would wait for memory, opens when free', async () => {
      const key = `${prefix}speculative.txt`;
      const data = randomBytes(1000);
      await f.store.put(f.bucket, key, data);
      const names = recordCommands(f);
      // Leave less than one read-ahead chunk free: a client's open would wait, a speculative one must not.
      const hold = await f.budget.acquire(f.budget.limit - f.budget.inUse - 1024);
      try {
        await assert.rejects(f.store.openObject(f.bucket, key, { speculative: true }), /ahead of the client/);
        assert.deepEqual(names, [], 'no request sent');
      } finally {
        hold();
      }
      const o = (await f.store.openObject(f.bucket, key, { speculative: true }))!;
      assert.deepEqual(await o.reader.read(0, 32768), data);
      await o.reader.close();
      assert.equal(f.budget.inUse, 0);
    });

    it('openObject: an empty object (416 on a ranged GET) opens and reads EOF', async () => {
      const key = `${prefix}empty`;
      const put = await f.store.put(f.bucket, key, Buffer.alloc(0));
      const o = (await f.store.openObject(f.bucket, key))!;
      assert.equal(o.info.size, 0);
      assert.equal(o.info.etag, put.etag);
      assert.equal((await o.reader.read(0, 1024)).length, 0);
      await o.reader.close();
      assert.equal(f.budget.inUse, 0);
    });

    it('openObject: a sequential download with READs in flight is a few GETs, within its memory', async () => {
      const key = `${prefix}seq.bin`;
      const data = randomBytes(20 * MiB + 12345);
      await f.store.put(f.bucket, key, data);
      const o = (await f.store.openObject(f.bucket, key))!;
      const r = o.reader as S3ReadAheadReader;
      const got = Buffer.alloc(data.length);
      let peak = 0;
      const timer = setInterval(() => (peak = Math.max(peak, f.budget.inUse)), 2);
      try {
        // As OpenSSH: up to 16 READs of 255 KiB outstanding, answered as they complete.
        const len = 261120;
        let next = 0;
        await Promise.all(
          Array.from({ length: 16 }, async () => {
            while (next < data.length) {
              const off = next;
              next += len;
              // Half the READs as the SFTP layer issues them: into its reply buffer.
              if ((off / len) % 2 === 0) (await r.read(off, len)).copy(got, off);
              else {
                const reply = Buffer.alloc(len + 13);
                const n = await r.readInto(off, reply.subarray(13));
                assert.equal(n, Math.min(len, data.length - off));
                reply.copy(got, off, 13, 13 + n);
              }
            }
          }),
        );
      } finally {
        clearInterval(timer);
      }
      assert.equal(sha(got), sha(data));
      // 1 MiB at open, then ranges of 2, 4, 8 and 16 MiB (the last one cut at the end).
      assert.equal(r.gets, 5);
      // Chunks of 1 MiB, 3 ahead: the window plus what the outstanding READs wait for.
      assert.ok(peak <= 10 * MiB, `peak ${peak}`);
      await r.close();
      assert.equal(f.budget.inUse, 0, 'the window returns to the budget on close');
    });

    it('openObject: an overwrite during a download fails the next GET with PreconditionFailed', async () => {
      const key = `${prefix}ow.bin`;
      const data = randomBytes(24 * MiB);
      await f.store.put(f.bucket, key, data);
      const o = (await f.store.openObject(f.bucket, key))!;
      try {
        assert.deepEqual(await o.reader.read(0, 1000), data.subarray(0, 1000));
        await f.store.put(f.bucket, key, Buffer.alloc(24 * MiB, 0xab));
        // What was already streaming is the version opened (read-ahead stops at 4 chunks of 1 MiB); the
        // GETs after it are pinned to that version and fail.
        await assert.rejects(
          (async () => {
            for (let off = 0; off < data.length; off += 256 * 1024) {
              const b = await o.reader.read(off, 256 * 1024);
              assert.deepEqual(b, data.subarray(off, off + 256 * 1024), 'never a byte of the new version');
            }
          })(),
          (e) => isGatewayError(e, 'PreconditionFailed'),
        );
      } finally {
        await o.reader.close();
      }
      assert.equal(f.budget.inUse, 0);
    });

    it('a seek far away is an exact GET; reading on from there streams again', async () => {
      const key = `${prefix}seek.bin`;
      const data = randomBytes(12 * MiB);
      await f.store.put(f.bucket, key, data);
      const o = (await f.store.openObject(f.bucket, key))!;
      const r = o.reader as S3ReadAheadReader;
      assert.deepEqual(await r.read(11 * MiB, 100), data.subarray(11 * MiB, 11 * MiB + 100));
      assert.equal(r.gets, 2);
      const rest: Buffer[] = [];
      for (let off = 11 * MiB + 100; off < data.length; off += 100_000) rest.push(await r.read(off, 100_000));
      assert.deepEqual(Buffer.concat(rest), data.subarray(11 * MiB + 100));
      assert.equal(r.gets, 3, 'one streamed GET for the rest');
      assert.deepEqual(await r.read(5, 10), data.subarray(5, 15), 'the first chunk was dropped: an exact GET');
      await r.close();
      assert.equal(f.budget.inUse, 0);
    });

    it('many concurrent writers stay within the memory budget and all complete', async () => {
      const budget = new MemoryBudget(24 * MiB);
      const g = await makeS3Store(compat, { partSize: 5 * MiB, uploadConcurrency: 2 }, budget);
      let peak = 0;
      let sawWaiting = false;
      const timer = setInterval(() => {
        peak = Math.max(peak, budget.inUse);
        if (budget.waiting > 0) sawWaiting = true;
      }, 5);
      try {
        const files = Array.from({ length: 8 }, () => randomBytes(11 * MiB));
        await Promise.all(
          files.map(async (data, i) => {
            const w = g.store.createWriter(g.bucket, `${prefix}conc-${i}`);
            await writeAll(w, data, 128 * 1024);
            await w.complete();
          }),
        );
        assert.ok(peak <= budget.limit, `peak ${peak}`);
        assert.ok(sawWaiting, 'writers waited for memory (backpressure) instead of failing');
        for (let i = 0; i < files.length; i++) {
          const back = await readAll(await g.store.getStream(g.bucket, `${prefix}conc-${i}`, { start: 0 }));
          assert.equal(sha(back), sha(files[i]!));
        }
        assert.equal(budget.inUse, 0);
      } finally {
        clearInterval(timer);
        await g.cleanup();
      }
    });

    it('an unreachable store is StoreUnavailable, fast, with a message naming the operation', async () => {
      const dead = new S3Store({
        region: 'us-east-1',
        endpoint: 'http://127.0.0.1:9',
        forcePathStyle: true,
        credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
        maxAttempts: 1,
        checkTimeout: 2000,
      });
      const t0 = Date.now();
      await assert.rejects(
        dead.check(),
        (e) => isGatewayError(e, 'StoreUnavailable') && /ListBuckets/.test(e.message),
      );
      await assert.rejects(
        dead.head('b', 'k'),
        (e) => isGatewayError(e, 'StoreUnavailable') && /HeadObject/.test(e.message),
      );
      assert.ok(Date.now() - t0 < 5000);
      await dead.close();
    });

    if (!compat) {
      it('plain Swift needs the compatibility switches (what they are for)', async () => {
        const raw = await makeS3Store(false, { compatibility: 'aws' });
        try {
          await raw.store.put(raw.bucket, `${prefix}raw`, Buffer.from('x'));
          await assert.rejects(raw.store.delete(raw.bucket, [`${prefix}raw`]), /Content-MD5/);
          await assert.rejects(
            raw.store.put(raw.bucket, `${prefix}raw2`, Buffer.from('x'), { ifNoneMatch: true }),
            /NotImplemented/,
          );
          // Header checksums on buffered bodies are accepted (ignored) by plain Swift.
          await raw.store.client.send(
            new PutObjectCommand({
              Bucket: raw.bucket,
              Key: `${prefix}raw3`,
              Body: Buffer.from('x'),
              ChecksumAlgorithm: 'CRC32C',
            }),
          );
        } finally {
          await raw.cleanup();
          await f.store.delete(f.bucket, [`${prefix}raw`, `${prefix}raw3`]);
        }
      });
    }
  });
}
