/**
 * End to end on the S3 store: the S3 server (a Swift of its own) stops in the middle of an upload and
 * comes back. Its own file so that it can run beside the other S3 files.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { makeFile, sha256File, tempDir } from '../support/gateway.js';
import { clearAwsEnv, type S3TestServer, startDedicatedS3 } from '../support/s3.js';
import {
  journalMarksFor,
  killGroup,
  MiB,
  multipartUploads,
  objectSha256,
  objectSize,
  type S3Gateway,
  sdkClient,
  spawnSftp,
  startS3Gateway,
  waitFor,
} from '../support/s3-e2e.js';

clearAwsEnv();

describe('stopping the S3 server mid-upload (a Swift of its own)', () => {
  let s3: S3TestServer;
  let client: S3Client;
  let g: S3Gateway;
  let work: string;

  before(async () => {
    s3 = await startDedicatedS3({ compat: true });
    client = sdkClient(s3);
    g = await startS3Gateway(s3);
    work = await tempDir('s3-stop');
  });
  after(async () => {
    await g?.gw.stop();
    client?.destroy();
    await s3?.stop();
  });

  test('the client gets an SFTP error; after restart nothing is visible and the janitor clears the upload', async (t) => {
    const src = path.join(work, 'halted');
    await makeFile(src, 64 * MiB);
    const key = `${g.prefix}/halted`;
    const p = spawnSftp(g, ['-l', '16000'], `put ${src} halted\n`);
    try {
      await waitFor(
        'the multipart upload to start',
        async () => (await multipartUploads(client, s3.bucket, key)).length > 0,
        60_000,
      );
      await s3.halt();
    } catch (err) {
      killGroup(p.child);
      throw err;
    }
    const code = await p.exited;
    const { stderr } = p.output();
    assert.notEqual(code, 0, 'sftp reports the failed upload');
    assert.match(stderr, /Failure|Couldn't write|unavailable|S3/i, stderr);
    t.diagnostic(
      `sftp said: ${stderr.trim().split('\n').slice(-2).join(' | ')}`,
    );

    await s3.resume();
    assert.equal(
      await objectSize(client, s3.bucket, key),
      undefined,
      'no object is visible',
    );
    const left = await multipartUploads(client, s3.bucket, key);
    const marks = await journalMarksFor(client, s3.bucket, key);
    t.diagnostic(
      `after restart: ${left.length} multipart upload(s), ${marks.length} journal mark(s) left`,
    );
    // The abort could not reach the stopped store; what is left must carry the gateway's mark so that
    // its janitor aborts it once it is older than multipartMaxAgeHours. A gateway starting with a tiny
    // maximum age does that at once.
    assert.equal(
      marks.length,
      left.length,
      'every upload left behind is marked for the janitor',
    );
    if (left.length > 0) {
      await new Promise((r) => setTimeout(r, 1500));
      const janitor = await startS3Gateway(s3, {
        storage: { multipartMaxAgeHours: 0.0002 },
      });
      try {
        await waitFor(
          'the janitor to abort the upload',
          async () =>
            (await multipartUploads(client, s3.bucket, key)).length === 0,
          30_000,
        );
        await waitFor(
          'the janitor to remove the mark',
          async () =>
            (await journalMarksFor(client, s3.bucket, key)).length === 0,
          30_000,
        );
      } finally {
        await janitor.gw.stop();
      }
    }
    assert.equal(await objectSize(client, s3.bucket, key), undefined);
    // The gateway is still usable after the store came back.
    const r = await g.sftp(`put ${src} after\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      await objectSha256(client, s3.bucket, `${g.prefix}/after`),
      await sha256File(src),
    );
  });
});
