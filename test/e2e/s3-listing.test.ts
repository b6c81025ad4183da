/**
 * End to end on the S3 store: a directory of 10,000 objects listed completely through the gateway
 * (ListObjectsV2 paging behind SFTP READDIR). Its own file so that it can run beside the other S3 files.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { clearAwsEnv, type S3TestServer, startS3 } from '../support/s3.js';
import { listKeys, type S3Gateway, sdkClient, startS3Gateway, stopS3Lane } from '../support/s3-e2e.js';

clearAwsEnv();

describe('OpenSSH sftp listing a large directory on S3 (AWS-like lane)', () => {
  let s3: S3TestServer;
  let client: S3Client;
  let g: S3Gateway;
  const bucket = () => s3.bucket;
  const k = (name: string) => `${g.prefix}/${name}`;

  before(async () => {
    s3 = await startS3({ compat: true });
    client = sdkClient(s3);
    g = await startS3Gateway(s3);
  });
  after(() => stopS3Lane({ g, client, s3 }));

  const ok = (commands: string) => g.sftpOk(commands);

  test('a directory of 10,000 entries lists completely with ls -1', async (t) => {
    const n = 10_000;
    const names = Array.from(
      { length: n },
      (_, i) => `f${String(i).padStart(5, '0')}`,
    );
    // Without flexible checksums: empty objects, and the fewer bytes Swift must check, the sooner.
    const bulk = sdkClient(s3, { compat: false });
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const name = names[next++]!;
        await bulk.send(
          new PutObjectCommand({
            Bucket: bucket(),
            Key: k(`many/${name}`),
            Body: new Uint8Array(0),
          }),
        );
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 32 }, worker));
    bulk.destroy();
    t.diagnostic(
      `created ${n} objects with the SDK in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    // The store itself lists them all: a shortfall below is the gateway's.
    assert.equal((await listKeys(client, bucket(), k('many/'))).length, n, 'ListObjectsV2 lists all objects');
    const r = await ok('ls -1 many\n');
    const listed = r.stdout
      .split('\n')
      .filter((l) => /^f\d{5}$/.test(l.trim().replace(/^many\//, '')));
    assert.equal(
      listed.length,
      n,
      `ls -1 listed ${listed.length} of ${n} entries`,
    );
    assert.equal(new Set(listed).size, n, 'no entry twice');
  });
});
