import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { before, describe, it } from 'node:test';
import { isGatewayError } from '../../src/errors.js';
import { MiB } from '../../src/storage/s3/config.js';
import { captureEscapedErrors, storeOnFake } from '../support/fake-s3-store.js';
import { clearAwsEnv } from '../support/s3.js';

/*
 * The store answers an error (507 Insufficient Storage, as Swift does on a full disk) while the SDK is
 * still sending a request body, then keeps reading, resets the connection, half-closes or stops reading.
 * A bench run crashed on an unhandled EPIPE in exactly that situation (in its own SDK client, which uses
 * the same SDK and HTTP handler as S3Store). The gateway must survive it: the write fails with a typed
 * error, the multipart upload is aborted and nothing is completed.
 *
 * The S3 server here is a fake written on node:net, not the Swift test server: it must fail in precise
 * ways (answer after exactly N body bytes, then reset, FIN or stall the connection), which no real server
 * does on demand. It understands just the requests a multipart or single upload sends.
 */

type Then =
  /** Reads and discards the rest of the body, then serves further requests on the connection. */
  | 'keep-reading'
  /** Destroys the socket right after the answer: unread body bytes make the kernel send a RST. */
  | 'destroy'
  /** Ends its side (FIN) right after the answer, still reading and discarding what arrives. */
  | 'half-close'
  /**
   * Stops reading: the client's body write stalls until the connection is destroyed. Only with
   * `Connection: close`: without it, when the rest of the body fits in the kernel's socket buffers, Node
   * hands the socket back to the agent, the next request on it is never read, and with no socket timeout
   * configured it waits forever. That is a hang, not a crash, and a server that neither reads nor closes
   * breaks HTTP/1.1; it is left out here.
   */
  | 'stop-reading';

interface Misbehaviour {
  /** The request that fails: the UploadPart of part 2, or the PutObject of the object. */
  target: 'part' | 'put';
  /** Body bytes read before the answer; 0: right after the request's headers. */
  after: number;
  then: Then;
  /** Answers `Expect: 100-continue` with 100 Continue first, as a real server does before reading. */
  sendContinue?: boolean;
  /** The error answer carries `Connection: close`. */
  connectionClose?: boolean;
}

interface Seen {
  method: string;
  path: string;
  query: URLSearchParams;
}

const BUCKET = 'bucket';
const KEY = 'dir/big.bin';
const PART = 5 * MiB;

const ERROR_BODY =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InsufficientStorage</Code>' +
  '<Message>Insufficient storage: the disk is full.</Message><RequestId>fake-1</RequestId></Error>';

class FakeS3 {
  readonly requests: Seen[] = [];
  /** How many times the misbehaving request was answered with 507. */
  failures = 0;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #uploads = 0;

  constructor(readonly misbehaviour: Misbehaviour) {
    this.#server = net.createServer((s) => this.#serve(s));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as net.AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  seen(method: string, pred: (q: URLSearchParams, path: string) => boolean): Seen[] {
    return this.requests.filter((r) => r.method === method && pred(r.query, r.path));
  }

  #serve(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    // The client's RST or EPIPE on our side is expected in these scenarios.
    socket.on('error', () => undefined);
    let buf: Buffer = Buffer.alloc(0);
    let current: { seen: Seen; left: number; read: number; failing: boolean; answered: boolean } | undefined;
    let state: 'serving' | 'discarding' | 'dead' = 'serving';
    const m = this.misbehaviour;

    const answerError = (): boolean => {
      current!.answered = true;
      this.failures++;
      socket.write(response(507, 'Insufficient Storage', ERROR_BODY, m.connectionClose === true));
      switch (m.then) {
        case 'keep-reading':
          return true;
        case 'destroy':
          state = 'dead';
          socket.destroy();
          return false;
        case 'half-close':
          state = 'discarding';
          socket.end();
          return false;
        case 'stop-reading':
          state = 'dead';
          socket.pause();
          return false;
      }
    };

    const pump = (): void => {
      while (state === 'serving') {
        if (!current) {
          const end = buf.indexOf('\r\n\r\n');
          if (end < 0) return;
          const [line, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
          buf = buf.subarray(end + 4);
          const [method, target] = line!.split(' ') as [string, string];
          const headers = new Map(
            lines.map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
          );
          assert.ok(!headers.has('transfer-encoding'), 'the fake reads Content-Length bodies only');
          const url = new URL(target, 'http://fake');
          const seen = { method, path: decodeURIComponent(url.pathname), query: url.searchParams };
          this.requests.push(seen);
          const failing =
            seen.path === `/${BUCKET}/${KEY}` &&
            method === 'PUT' &&
            (m.target === 'part' ? seen.query.get('partNumber') === '2' : !seen.query.has('partNumber'));
          current = { seen, left: Number(headers.get('content-length') ?? 0), read: 0, failing, answered: false };
          if (failing && m.sendContinue && headers.get('expect')?.toLowerCase() === '100-continue') {
            socket.write('HTTP/1.1 100 Continue\r\n\r\n');
          }
          if (failing && m.after === 0 && !answerError()) return;
        }
        const take = Math.min(current.left, buf.length);
        current.read += take;
        current.left -= take;
        buf = buf.subarray(take);
        if (current.failing && !current.answered && current.read >= m.after && !answerError()) return;
        if (current.left > 0) return;
        const done = current;
        current = undefined;
        if (done.answered) {
          if (m.connectionClose) {
            state = 'dead';
            socket.end();
            return;
          }
        } else {
          socket.write(this.#answer(done.seen));
        }
      }
    };

    socket.on('data', (d: Buffer) => {
      if (state === 'dead') return;
      if (state === 'discarding') return;
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      pump();
    });
  }

  #answer(r: Seen): string {
    const { method, query } = r;
    if (method === 'POST' && query.has('uploads')) {
      const id = `upload-${++this.#uploads}`;
      return response(
        200,
        'OK',
        `<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult><Bucket>${BUCKET}</Bucket>` +
          `<Key>${KEY}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
      );
    }
    if (method === 'POST' && query.has('uploadId')) {
      return response(
        200,
        'OK',
        `<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult><Bucket>${BUCKET}</Bucket>` +
          `<Key>${KEY}</Key><ETag>"done"</ETag></CompleteMultipartUploadResult>`,
      );
    }
    if (method === 'PUT') return response(200, 'OK', '', false, { ETag: `"${randomBytes(8).toString('hex')}"` });
    if (method === 'DELETE') return response(204, 'No Content', '');
    if (method === 'HEAD') return response(404, 'Not Found', '');
    return response(400, 'Bad Request', '');
  }
}

function response(
  status: number,
  reason: string,
  body: string,
  close = false,
  extra: Record<string, string> = {},
): string {
  const headers = {
    'x-amz-request-id': 'fake',
    ...(body ? { 'Content-Type': 'application/xml' } : {}),
    'Content-Length': String(Buffer.byteLength(body)),
    ...(close ? { Connection: 'close' } : {}),
    ...extra,
  };
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
  return `HTTP/1.1 ${status} ${reason}\r\n${lines.join('')}\r\n${body}`;
}

/** Errors that escaped to the process: each must fail the variant that was running. */
const escaped = captureEscapedErrors();

async function runVariant(m: Misbehaviour, compatibility: 'generic' | 'aws' = 'generic'): Promise<void> {
  const fake = new FakeS3(m);
  const endpoint = await fake.listen();
  const { store, budget } = storeOnFake(endpoint, { partSize: PART, uploadConcurrency: 4, compatibility });
  const before = escaped.length;
  try {
    // Streamed in 256 KiB writes as an SFTP session does: 3 parts, or one PutObject of 4 MiB.
    const total = m.target === 'part' ? 3 * PART : 4 * MiB;
    const chunk = randomBytes(256 * 1024);
    const w = store.createWriter(BUCKET, KEY);
    let failure: unknown;
    try {
      for (let off = 0; off < total; off += chunk.length) await w.write(chunk);
      await w.complete();
    } catch (err) {
      failure = err;
      // What the vfs does when a write or the close fails.
      await w.abort(String(err));
    }

    assert.ok(fake.failures > 0, 'the fake answered 507 to the request it was told to fail');
    assert.ok(failure !== undefined, 'the upload failed');
    assert.ok(
      isGatewayError(failure, 'StoreUnavailable'),
      `a typed StoreUnavailable error, not ${String(failure)}`,
    );
    const op = m.target === 'part' ? 'UploadPart' : 'PutObject';
    assert.match(failure.message, new RegExp(`^S3 ${op} failed for ${BUCKET}/${KEY}: `));
    assert.deepEqual(fake.seen('POST', (q) => q.has('uploadId')), [], 'no CompleteMultipartUpload');
    if (m.target === 'part') {
      const created = fake.seen('POST', (q) => q.has('uploads'));
      assert.equal(created.length, 1);
      const aborted = fake.seen('DELETE', (q, p) => p === `/${BUCKET}/${KEY}` && q.get('uploadId') === 'upload-1');
      assert.equal(aborted.length, 1, 'AbortMultipartUpload of upload-1');
    } else {
      assert.deepEqual(fake.seen('POST', (q) => q.has('uploads')), [], 'a small object is a single PutObject');
    }
    assert.equal(budget.inUse, 0, 'every part buffer went back to the budget');
  } finally {
    await store.close();
    await fake.close();
    // A socket's late 'error' is emitted on a later tick: let them all come out before judging.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.deepEqual(escaped.slice(before).map(String), [], 'no error escaped to the process');
}

describe('S3Store when the store answers 507 while a request body is being sent', () => {
  before(() => clearAwsEnv());

  const variants: Array<[string, Omit<Misbehaviour, 'target'>]> = [
    ['before any body, keeps reading', { after: 0, then: 'keep-reading' }],
    ['before any body, resets the connection', { after: 0, then: 'destroy' }],
    ['before any body, half-closes', { after: 0, then: 'half-close' }],
    ['before any body, stops reading, Connection: close', { after: 0, then: 'stop-reading', connectionClose: true }],
    ['after 1 MiB, keeps reading', { after: MiB, then: 'keep-reading' }],
    ['after 1 MiB, keeps reading, Connection: close', { after: MiB, then: 'keep-reading', connectionClose: true }],
    ['after 1 MiB, resets the connection', { after: MiB, then: 'destroy' }],
    ['after 1 MiB, resets the connection, Connection: close', { after: MiB, then: 'destroy', connectionClose: true }],
    ['after 1 MiB, half-closes', { after: MiB, then: 'half-close' }],
    ['after 1 MiB, half-closes, Connection: close', { after: MiB, then: 'half-close', connectionClose: true }],
    ['after 1 MiB, stops reading, Connection: close', { after: MiB, then: 'stop-reading', connectionClose: true }],
    ['after 100 Continue and 1 MiB, resets the connection', { after: MiB, then: 'destroy', sendContinue: true }],
    ['after 100 Continue and 1 MiB, half-closes', { after: MiB, then: 'half-close', sendContinue: true }],
  ];
  for (const target of ['part', 'put'] as const) {
    for (const [name, m] of variants) {
      it(`${target === 'part' ? 'UploadPart 2 of 3' : 'PutObject of 4 MiB'}: ${name}`, () =>
        runVariant({ target, ...m }));
    }
  }
  it('AWS settings (header checksums): UploadPart, after 1 MiB, resets the connection', () =>
    runVariant({ target: 'part', after: MiB, then: 'destroy' }, 'aws'));
  it('AWS settings (header checksums): PutObject, before any body, half-closes', () =>
    runVariant({ target: 'put', after: 0, then: 'half-close' }, 'aws'));
});
