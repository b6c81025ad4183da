/**
 * End to end on the S3 store, plain-store lane: Swift's S3 API as Debian ships it (S3_COMPAT=0: no
 * flexible checksums, DeleteObjects only with Content-MD5, no conditional writes) and the gateway with
 * `compatibility: generic`. The real OpenSSH `sftp`/`scp` clients against the real gateway process.
 */
import assert from 'node:assert/strict';
import { truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { makeFile, sha256File, tempDir } from '../support/gateway.js';
import { clearAwsEnv, type S3TestServer, startS3 } from '../support/s3.js';
import {
  listKeys,
  MiB,
  objectSha256,
  objectSize,
  proxyLogCount,
  type S3Gateway,
  sdkClient,
  startS3Gateway,
  stopS3Lane,
} from '../support/s3-e2e.js';

clearAwsEnv();

describe('OpenSSH sftp and scp against the gateway on a plain S3 store (compatibility: generic)', () => {
  let s3: S3TestServer;
  let client: S3Client;
  let g: S3Gateway;
  let work: string;
  const k = (name: string) => `${g.prefix}/${name}`;

  before(async () => {
    s3 = await startS3({ compat: false });
    client = sdkClient(s3, { compat: false });
    g = await startS3Gateway(s3, { storage: { compatibility: 'generic' } });
    work = await tempDir('s3-plain');
  });
  after(() => stopS3Lane({ g, client, s3 }));

  const ok = (commands: string) => g.sftpOk(commands);

  test('writes nothing to stderr: process warnings, the AWS SDK\'s among them, are JSON log lines', async () => {
    await ok('pwd\n');
    assert.equal(g.gw.stderr(), '');
    // The SDK warns from its client's constructor on Node < 22 (NodeVersionSupportWarning).
    if (Number(process.versions.node.split('.')[0]) < 22) {
      const line = await g.gw.waitForLog((l) => /NodeVersionSupportWarning/.test(String(l['msg'])));
      assert.equal(line['level'], 'warn');
      assert.equal(line['warning'], 'Warning');
    }
  });

  const fails = async (commands: string, pattern: RegExp) => {
    const r = await g.sftp(commands);
    assert.notEqual(
      r.code,
      0,
      `sftp should have failed:\n${commands}\n${r.stdout}`,
    );
    assert.match(r.stderr, pattern);
  };

  for (const size of [0, 1, 20 * MiB]) {
    test(`a file of ${size} bytes round-trips with sftp and scp`, async () => {
      const src = path.join(work, `src-${size}`);
      await makeFile(src, size);
      const expected = await sha256File(src);
      await ok(`put ${src} f-${size}\nget f-${size} ${src}.sftp\n`);
      assert.equal(await sha256File(`${src}.sftp`), expected);
      assert.equal(
        await objectSha256(client, s3.bucket, k(`f-${size}`)),
        expected,
      );
      const up = await g.scp(src, `alice@127.0.0.1:scp-${size}`);
      assert.equal(up.code, 0, up.stderr);
      const down = await g.scp(`alice@127.0.0.1:scp-${size}`, `${src}.scp`);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(await sha256File(`${src}.scp`), expected);
    });
  }

  test('mkdir, rmdir, rename of files and directories, delete', async () => {
    await writeFile(path.join(work, 'a'), 'aaa');
    const big = path.join(work, 'big');
    await makeFile(big, 12 * MiB + 1);
    await ok(
      `mkdir d\nput ${work}/a d/a\nput ${big} d/big\nmkdir d/sub\nput ${work}/a d/sub/b\n`,
    );
    assert.equal(
      await objectSize(client, s3.bucket, k('d/')),
      0,
      'mkdir writes a marker',
    );
    await fails('rmdir d\n', /Failure|not empty/i);
    await fails('mkdir d\n', /Failure|exists/i);
    // A multipart object renamed: the copy must work although the store cannot pin it by S3 ETag.
    await ok('rename d/big d/big2\nrename d/a d/a2\nrename d d2\n');
    assert.deepEqual(
      (await listKeys(client, s3.bucket, k(''))).filter((x) =>
        x.startsWith(k('d')),
      ),
      [k('d2/'), k('d2/a2'), k('d2/big2'), k('d2/sub/'), k('d2/sub/b')],
    );
    assert.equal(
      await objectSha256(client, s3.bucket, k('d2/big2')),
      await sha256File(big),
    );
    await ok(`get d2/sub/b ${work}/b.back\nget d2/big2 ${big}.back\n`);
    assert.equal(await sha256File(`${big}.back`), await sha256File(big));
    assert.equal(
      await sha256File(`${work}/b.back`),
      await sha256File(`${work}/a`),
    );
    await ok('rm d2/a2\nrm d2/big2\nrm d2/sub/b\nrmdir d2/sub\nrmdir d2\n');
    assert.deepEqual(
      (await listKeys(client, s3.bucket, k(''))).filter((x) =>
        x.startsWith(k('d')),
      ),
      [],
      'delete and rmdir removed every key (DeleteObjects with Content-MD5)',
    );
    await fails('rm d2/a2\n', /not found|No such file/i);
  });

  test('reput of a 20 MiB file over a 12 MiB prefix gives the right bytes via UploadPartCopy', async () => {
    const src = path.join(work, 'resume');
    await makeFile(src, 20 * MiB);
    const partial = path.join(work, 'resume-part');
    await makeFile(partial, 20 * MiB);
    await truncate(partial, 12 * MiB);
    await ok(`put ${partial} resume\n`);
    const before = await proxyLogCount(s3, k('resume'), 'UploadPartCopy');
    await ok(`reput ${src} resume\n`);
    assert.equal(
      await objectSha256(client, s3.bucket, k('resume')),
      await sha256File(src),
    );
    assert.ok(
      (await proxyLogCount(s3, k('resume'), 'UploadPartCopy')) > before,
      'UploadPartCopy was used',
    );
  });
});
