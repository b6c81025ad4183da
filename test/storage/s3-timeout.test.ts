import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isGatewayError } from '../../src/errors.js';
import { MemoryBudget } from '../../src/storage/memory-budget.js';
import { MiB, type S3StoreConfig } from '../../src/storage/s3/config.js';
import type { S3ReadAheadReader } from '../../src/storage/s3/read-ahead-reader.js';
import { S3Store } from '../../src/storage/s3/s3-store.js';
import { captureEscapedErrors, storeOnFake } from '../support/fake-s3-store.js';
import { clearAwsEnv } from '../support/s3.js';

/*
 * The S3 client's socket timeout (S3StoreConfig.socketTimeout): a store that accepts a request and then
 * goes silent must fail it, not hang it; and a download the gateway itself leaves paused for longer than
 * the timeout (its SFTP client stopped reading) must still complete.
 *
 * The S3 server here is a fake on node:http, over real sockets, not the Swift test server: it must go
 * silent at precise points (after a request's body, without reading it, after N bytes of a GET's body),
 * keep a CompleteMultipartUpload alive with whitespace, or change an object between two GETs of one
 * download, which Swift cannot be made to do. It understands just the requests these tests send.
 */

/** The socket timeout of every store here; each test's own deadline is far above it. */
const T = 300;
const BUCKET = 'bucket';
const KEY = 'dir/file.bin';

interface Seen {
  method: string;
  key: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
}

interface FakeOptions {
  /** Never answers this request: 'unread' leaves its body unread, 'read' reads it first. */
  stall?: (r: Seen) => 'unread' | 'read' | undefined;
  /** Answers this GET (of the range from `from`) with its headers and this many bytes, then goes silent. */
  cutGet?: (r: Seen, from: number) => number | undefined;
  /** CompleteMultipartUpload: 200 at once, then a space every `every` ms for `total` ms, then the result. */
  slowComplete?: { every: number; total: number };
}

class FakeS3 {
  readonly requests: Seen[] = [];
  readonly objects = new Map<string, { data: Buffer; etag: string }>();
  readonly #server: http.Server;
  readonly #timers = new Set<NodeJS.Timeout>();
  #uploads = 0;

  constructor(readonly options: FakeOptions = {}) {
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  put(key: string, data: Buffer): string {
    const etag = `"${createHash('md5').update(data).digest('hex')}"`;
    this.objects.set(key, { data, etag });
    return etag;
  }

  seen(method: string, pred: (r: Seen) => boolean = () => true): Seen[] {
    return this.requests.filter((r) => r.method === method && pred(r));
  }

  /** The GETs of `key`: where each began, and its If-Match. */
  gets(key = KEY): Array<{ from: number; range: string; ifMatch: string | undefined }> {
    return this.seen('GET', (r) => r.key === key).map((r) => ({
      from: Number(/^bytes=(\d+)-/.exec(r.headers.range ?? '')?.[1] ?? 0),
      range: r.headers.range ?? '',
      ifMatch: r.headers['if-match'],
    }));
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = decodeURIComponent(url.pathname);
    const seen: Seen = {
      method: req.method ?? '',
      key: path.startsWith(`/${BUCKET}/`) ? path.slice(BUCKET.length + 2) : '',
      query: url.searchParams,
      headers: req.headers,
    };
    this.requests.push(seen);
    const stall = this.options.stall?.(seen);
    if (stall === 'unread') {
      req.pause();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    if (stall === 'read') return;
    const { method, key, query } = seen;
    if (method === 'GET') return this.#get(seen, res);
    if (method === 'HEAD') {
      const o = this.objects.get(key);
      if (!o) return send(res, 404, '');
      return send(res, 200, '', { ETag: o.etag, 'Last-Modified': new Date().toUTCString() }, o.data.length);
    }
    if (method === 'POST' && query.has('uploads')) {
      const id = `upload-${++this.#uploads}`;
      return send(res, 200, xml('InitiateMultipartUploadResult', `<Bucket>${BUCKET}</Bucket><UploadId>${id}</UploadId>`));
    }
    if (method === 'POST' && query.has('uploadId')) {
      const result = xml('CompleteMultipartUploadResult', `<Bucket>${BUCKET}</Bucket><ETag>"done-2"</ETag>`);
      const slow = this.options.slowComplete;
      if (!slow) return send(res, 200, result);
      // As S3 does while it assembles a large object: the status at once, then whitespace.
      res.writeHead(200, { 'Content-Type': 'application/xml', 'x-amz-request-id': 'fake' });
      const started = Date.now();
      const timer = setInterval(() => {
        if (Date.now() - started < slow.total) {
          res.write(' ');
          return;
        }
        clearInterval(timer);
        this.#timers.delete(timer);
        res.end(result);
      }, slow.every);
      this.#timers.add(timer);
      return;
    }
    if (method === 'PUT') {
      const etag = query.has('partNumber') ? `"${randomBytes(8).toString('hex')}"` : this.put(key, body);
      return send(res, 200, '', { ETag: etag });
    }
    if (method === 'DELETE') return send(res, 204, '');
    return send(res, 400, xml('Error', '<Code>BadRequest</Code>'));
  }

  #get(r: Seen, res: http.ServerResponse): void {
    const o = this.objects.get(r.key);
    if (!o) return send(res, 404, xml('Error', '<Code>NoSuchKey</Code><Message>no such key</Message>'));
    const ifMatch = r.headers['if-match'];
    if (ifMatch && ifMatch !== o.etag) {
      const message = 'At least one of the pre-conditions you specified did not hold';
      return send(res, 412, xml('Error', `<Code>PreconditionFailed</Code><Message>${message}</Message>`));
    }
    const size = o.data.length;
    const m = /^bytes=(\d+)-(\d*)$/.exec(r.headers.range ?? '');
    const from = m ? Number(m[1]) : 0;
    const to = m?.[2] ? Math.min(size, Number(m[2]) + 1) : size;
    if (from >= size) return send(res, 416, xml('Error', '<Code>InvalidRange</Code>'));
    res.writeHead(m ? 206 : 200, {
      'Content-Length': String(to - from),
      ...(m ? { 'Content-Range': `bytes ${from}-${to - 1}/${size}` } : {}),
      ETag: o.etag,
      'Last-Modified': new Date().toUTCString(),
      'x-amz-request-id': 'fake',
    });
    const cut = this.options.cutGet?.(r, from);
    if (cut !== undefined) {
      res.write(o.data.subarray(from, Math.min(to, from + cut)));
      return; // and never another byte, nor the end
    }
    res.end(o.data.subarray(from, to));
  }
}

function xml(root: string, inner: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root}>${inner}<RequestId>fake</RequestId></${root}>`;
}

function send(
  res: http.ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
  length = Buffer.byteLength(body),
): void {
  res.writeHead(status, {
    'x-amz-request-id': 'fake',
    ...(body ? { 'Content-Type': 'application/xml' } : {}),
    'Content-Length': String(length),
    ...headers,
  });
  res.end(body);
}

interface Setup {
  fake: FakeS3;
  store: S3Store;
  budget: MemoryBudget;
}

/**
 * Fakes and stores still open. A test that hangs (what these tests catch) fails on its timeout; then
 * afterEach closes what it left open, or the file's process would never exit. The fake goes first: its
 * connections reset, the hung requests fail, and the store can then close.
 */
const open = new Set<() => Promise<void>>();
afterEach(async () => {
  for (const close of open) await close();
  open.clear();
});

/** Errors that escaped to the process: each fails the test that was running. */
const escaped = captureEscapedErrors();

/** Runs `fn` against a fresh fake and store (generic settings, as for Ceph or Swift; socketTimeout T). */
async function withStore(
  options: FakeOptions,
  config: Partial<S3StoreConfig>,
  fn: (s: Setup) => Promise<void>,
): Promise<void> {
  const fake = new FakeS3(options);
  const endpoint = await fake.listen();
  const { store, budget } = storeOnFake(endpoint, { socketTimeout: T, ...config });
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await fake.close();
      await store.close();
    })());
  open.add(close);
  const before = escaped.length;
  try {
    await fn({ fake, store, budget });
  } finally {
    open.delete(close);
    await close();
    await sleep(20);
  }
  assert.deepEqual(escaped.slice(before).map(String), [], 'no error escaped to the process');
}

/** Awaits `p`, which must fail; returns its error and how long it took. */
async function failure(p: Promise<unknown>): Promise<{ err: Error; ms: number }> {
  const t0 = performance.now();
  try {
    await p;
  } catch (err) {
    return { err: err as Error, ms: performance.now() - t0 };
  }
  assert.fail('expected a failure');
}

function assertTimedOut(err: Error, op: string): void {
  assert.ok(isGatewayError(err, 'StoreUnavailable'), `a StoreUnavailable GatewayError, not ${String(err)}`);
  assert.match(err.message, new RegExp(`^S3 ${op} failed for ${BUCKET}/${KEY}: TimeoutError: .*${T} ms of inactivity`));
}

async function writeAll(w: { write(b: Buffer): Promise<void> }, data: Buffer): Promise<void> {
  for (let off = 0; off < data.length; off += 256 * 1024) await w.write(data.subarray(off, off + 256 * 1024));
}

/** Every byte of a reader, `step` at a time, sleeping `pause` ms after the reads that start at `pauseAt`. */
async function readThrough(
  reader: { read(offset: number, length: number): Promise<Buffer> },
  size: number,
  step: number,
  pauseAt: number[] = [],
  pause = 0,
): Promise<Buffer> {
  const out: Buffer[] = [];
  for (let off = 0; off < size; off += step) {
    out.push(Buffer.from(await reader.read(off, step)));
    if (pauseAt.includes(off)) await sleep(pause);
  }
  return Buffer.concat(out);
}

/** A stream's bytes; sleeps `pause` ms once the consumer has `pauseAfter` bytes (each offset once). */
async function consume(stream: Readable, pauseAfter: number[] = [], pause = 0): Promise<{ data: Buffer; at: number[] }> {
  const out: Buffer[] = [];
  let got = 0;
  const at: number[] = [];
  const left = [...pauseAfter];
  for await (const c of stream) {
    out.push(c as Buffer);
    got += (c as Buffer).length;
    if (left.length > 0 && got >= left[0]!) {
      left.shift();
      at.push(got);
      await sleep(pause);
    }
  }
  return { data: Buffer.concat(out), at };
}

const TEST = { timeout: 30_000 };

before(() => clearAwsEnv());

describe('S3 socket timeout: a store that goes silent', () => {
  it('PutObject read, never answered: StoreUnavailable after about the timeout', TEST, () =>
    withStore(
      { stall: (r) => (r.method === 'PUT' && r.key === KEY ? 'read' : undefined) },
      { maxAttempts: 1 },
      async ({ fake, store, budget }) => {
        const w = store.createWriter(BUCKET, KEY);
        await writeAll(w, randomBytes(MiB));
        const { err, ms } = await failure(w.complete());
        assertTimedOut(err, 'PutObject');
        // Not before the timeout, and not long after it (the bound is loose: the machine may be busy).
        assert.ok(ms >= T - 20 && ms < T + 4000, `failed after ${Math.round(ms)} ms, the timeout is ${T} ms`);
        assert.equal(fake.seen('PUT', (r) => r.key === KEY).length, 1);
        assert.equal(budget.inUse, 0, 'the part buffer went back to the budget');
      },
    ));

  it('UploadPart 2 of 3 never read: the SDK retries it, then StoreUnavailable and AbortMultipartUpload', TEST, () =>
    withStore(
      { stall: (r) => (r.method === 'PUT' && r.query.get('partNumber') === '2' ? 'unread' : undefined) },
      { partSize: 5 * MiB, uploadConcurrency: 4, maxAttempts: 3 },
      async ({ fake, store, budget }) => {
        const w = store.createWriter(BUCKET, KEY);
        const { err, ms } = await failure(
          (async () => {
            try {
              await writeAll(w, randomBytes(15 * MiB));
              await w.complete();
            } catch (e) {
              await w.abort(String(e)); // what the vfs does when a write or the close fails
              throw e;
            }
          })(),
        );
        assertTimedOut(err, 'UploadPart');
        // Three attempts of about T each, and the SDK's backoff between them (well under a second each).
        assert.ok(ms >= 3 * (T - 20) && ms < 3 * T + 6000, `failed after ${Math.round(ms)} ms`);
        assert.equal(fake.seen('PUT', (r) => r.query.get('partNumber') === '2').length, 3, '3 attempts of part 2');
        assert.deepEqual(fake.seen('POST', (r) => r.query.has('uploadId')), [], 'no CompleteMultipartUpload');
        const aborted = fake.seen('DELETE', (r) => r.key === KEY && r.query.get('uploadId') === 'upload-1');
        assert.equal(aborted.length, 1, 'AbortMultipartUpload of upload-1');
        assert.equal(budget.inUse, 0, 'every part buffer went back to the budget');
      },
    ));

  it('CompleteMultipartUpload never answered: StoreUnavailable, and the upload is aborted', TEST, () =>
    withStore(
      { stall: (r) => (r.method === 'POST' && r.query.has('uploadId') ? 'read' : undefined) },
      { partSize: 5 * MiB, maxAttempts: 1 },
      async ({ fake, store, budget }) => {
        const w = store.createWriter(BUCKET, KEY);
        await writeAll(w, randomBytes(6 * MiB));
        const { err } = await failure(w.complete());
        assertTimedOut(err, 'CompleteMultipartUpload');
        const aborted = fake.seen('DELETE', (r) => r.key === KEY && r.query.get('uploadId') === 'upload-1');
        assert.equal(aborted.length, 1, 'AbortMultipartUpload of upload-1');
        assert.equal(budget.inUse, 0);
      },
    ));

  it('CompleteMultipartUpload kept alive with whitespace for 4x the timeout succeeds: inactivity, not duration', TEST, () =>
    withStore(
      { slowComplete: { every: T / 3, total: 4 * T } },
      { partSize: 5 * MiB, maxAttempts: 1 },
      async ({ store }) => {
        const w = store.createWriter(BUCKET, KEY);
        await writeAll(w, randomBytes(6 * MiB));
        const t0 = performance.now();
        const info = await w.complete();
        assert.ok(performance.now() - t0 >= 4 * T, 'the store took longer than the timeout');
        assert.equal(info.etag, '"done-2"');
        assert.equal(info.size, 6 * MiB);
      },
    ));

  it('GetObject at open: headers and 10 KiB of the first chunk, then silence: StoreUnavailable, not a hang', TEST, () =>
    withStore({ cutGet: () => 10 * 1024 }, { readAheadChunkSize: 64 * 1024 }, async ({ fake, store }) => {
      fake.put(KEY, randomBytes(MiB));
      const { err, ms } = await failure(store.openObject(BUCKET, KEY));
      assertTimedOut(err, 'GetObject');
      assert.ok(ms >= T - 20 && ms < T + 4000, `failed after ${Math.round(ms)} ms`);
    }));

  it('read-ahead GETs that each send 16 KiB, then go silent: resumed 3 times, then StoreUnavailable', TEST, () =>
    withStore(
      { cutGet: (_r, from) => (from > 0 ? 16 * 1024 : undefined) },
      { readAheadChunkSize: 64 * 1024, readAheadChunks: 2 },
      async ({ fake, store }) => {
        const data = randomBytes(MiB);
        const etag = fake.put(KEY, data);
        const opened = await store.openObject(BUCKET, KEY);
        assert.ok(opened);
        const { err } = await failure(readThrough(opened.reader, data.length, 32 * 1024));
        assertTimedOut(err, 'GetObject');
        const gets = fake.gets();
        // The open, the first streamed GET, and its 3 resumes, each from where the one before stopped.
        assert.equal(gets.length, 5, JSON.stringify(gets));
        for (let i = 2; i < gets.length; i++) assert.equal(gets[i]!.from, gets[i - 1]!.from + 16 * 1024);
        for (const g of gets.slice(1)) assert.equal(g.ifMatch, etag);
        await opened.reader.close();
      },
    ));

  it('getStream read at once: a body that goes silent after 16 KiB, every time, fails with StoreUnavailable', TEST, () =>
    withStore({ cutGet: () => 16 * 1024 }, {}, async ({ fake, store }) => {
      const etag = fake.put(KEY, randomBytes(MiB));
      const { err } = await failure(consume(await store.getStream(BUCKET, KEY, { start: 0 })));
      assertTimedOut(err, 'GetObject');
      const gets = fake.gets();
      assert.equal(gets.length, 4, 'the GET and 3 resumes');
      for (const g of gets.slice(1)) assert.equal(g.ifMatch, etag, 'resumes pinned to the first answer');
    }));
});

describe('S3 socket timeout: downloads the gateway leaves paused for longer than the timeout', () => {
  const chunk = 64 * 1024;
  const size = MiB;
  const reads = 32 * 1024;
  // The SFTP side stops reading for 3x the timeout, at 5 places: one where the next GET has been sent
  // and waits unread (its headers in, its body idle), others in the middle of a streamed GET.
  const pauseAt = [128 * 1024, 256 * 1024, 512 * 1024, 640 * 1024, 800 * 1024];

  it('a reader completes with the right bytes; its re-GETs are pinned with If-Match, from where it stopped', TEST, async () => {
    const data = randomBytes(size);
    const config = { readAheadChunkSize: chunk, readAheadChunks: 1 };
    let baseline: number[] = [];
    await withStore({}, config, async ({ fake, store }) => {
      fake.put(KEY, data);
      const opened = await store.openObject(BUCKET, KEY);
      assert.ok(opened);
      assert.ok((await readThrough(opened.reader, size, reads)).equals(data));
      baseline = fake.gets().map((g) => g.from);
      await opened.reader.close();
    });
    await withStore({}, config, async ({ fake, store, budget }) => {
      const etag = fake.put(KEY, data);
      const opened = await store.openObject(BUCKET, KEY);
      assert.ok(opened);
      const back = await readThrough(opened.reader, size, reads, pauseAt, 3 * T);
      // Right only if each re-GET began exactly where its GET stopped: the reader appends what arrives
      // at the offset it had reached, whatever the Range it asked for.
      assert.ok(back.equals(data), 'the bytes of the object');
      const gets = fake.gets();
      assert.equal((opened.reader as S3ReadAheadReader).gets, gets.length);
      // The pauses cost GETs the same reads without pauses did not send: resumes, at offsets that are
      // not where a streamed GET begins.
      const resumes = gets.filter((g) => !baseline.includes(g.from));
      assert.ok(gets.length > baseline.length && resumes.length > 0, `${JSON.stringify(gets)} vs ${baseline}`);
      for (const g of gets.slice(1)) assert.equal(g.ifMatch, etag, `${g.range} pinned to the version opened`);
      await opened.reader.close();
      assert.equal(budget.inUse, 0);
    });
  });

  it('a reader whose object changed while it was paused fails with PreconditionFailed', TEST, () =>
    withStore({}, { readAheadChunkSize: chunk, readAheadChunks: 1 }, async ({ fake, store }) => {
      const data = randomBytes(size);
      fake.put(KEY, data);
      const opened = await store.openObject(BUCKET, KEY);
      assert.ok(opened);
      const reading = readThrough(opened.reader, size, reads, [256 * 1024], 3 * T);
      await sleep(T);
      fake.put(KEY, randomBytes(size));
      const { err } = await failure(reading);
      assert.ok(isGatewayError(err, 'PreconditionFailed'), `PreconditionFailed, not ${String(err)}`);
      await opened.reader.close();
    }));

  it('getStream completes with the right bytes; each re-GET starts where it stopped, pinned to the first ETag', TEST, () =>
    withStore({}, {}, async ({ fake, store }) => {
      const data = randomBytes(size);
      const etag = fake.put(KEY, data);
      // No ETag given: the stream pins its re-GETs to the one of the first answer.
      const stream = await store.getStream(BUCKET, KEY, { start: 0 });
      const { data: back, at } = await consume(stream, [100 * 1024, 600 * 1024], 3 * T);
      assert.ok(back.equals(data), 'the bytes of the object');
      const gets = fake.gets();
      assert.equal(gets[0]!.ifMatch, undefined);
      assert.equal(gets.length, 3, `a re-GET after each pause: ${JSON.stringify(gets)}`);
      for (const [i, g] of gets.slice(1).entries()) {
        assert.equal(g.ifMatch, etag);
        assert.match(g.range, /^bytes=\d+-$/);
        // What the consumer had, plus what the stream had buffered for it.
        assert.ok(g.from >= at[i]! && g.from < at[i]! + 256 * 1024, `${g.range} after ${at[i]} bytes`);
      }
    }));

  it('getStream of a part of an object, pinned by the caller, changed while paused: PreconditionFailed', TEST, () =>
    withStore({}, {}, async ({ fake, store }) => {
      const etag = fake.put(KEY, randomBytes(size));
      const stream = await store.getStream(BUCKET, KEY, { start: 1000, end: size - 1000, etag });
      const reading = consume(stream, [100 * 1024], 3 * T);
      await sleep(T);
      fake.put(KEY, randomBytes(size));
      const { err } = await failure(reading);
      assert.ok(isGatewayError(err, 'PreconditionFailed'), `PreconditionFailed, not ${String(err)}`);
      const gets = fake.gets();
      assert.equal(gets.length, 2);
      assert.match(gets[1]!.range, new RegExp(`^bytes=\\d+-${size - 1001}$`));
    }));
});
