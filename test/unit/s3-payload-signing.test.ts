/**
 * Which uploads carry UNSIGNED-PAYLOAD. The requests are captured by a request handler standing in for the
 * network: an HTTPS S3 endpoint cannot run here (Swift over HTTP accepting UNSIGNED-PAYLOAD is tested in
 * test/storage/s3-specific.ts).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { CompleteMultipartUploadCommand, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { applyPayloadSigning, type PayloadSigning, unsignedPayloadFor } from '../../src/storage/s3/payload-signing.js';

interface SentRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
}

function clientFor(endpoint: string, mode: PayloadSigning, checksums: boolean) {
  const sent: SentRequest[] = [];
  const client = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    requestChecksumCalculation: checksums ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED',
    requestHandler: {
      handle: async (request: SentRequest) => {
        sent.push(request);
        const body = request.method === 'POST'
          ? '<CompleteMultipartUploadResult><ETag>"e"</ETag></CompleteMultipartUploadResult>'
          : '';
        return { response: { statusCode: 200, headers: { etag: '"e"' }, body: Readable.from([Buffer.from(body)]) } };
      },
    },
  });
  applyPayloadSigning(client, mode, checksums);
  return { client, sent };
}

const body = Buffer.alloc(64 * 1024, 7);
const bodyHash = createHash('sha256').update(body).digest('hex');

async function payloadHeaderOf(endpoint: string, mode: PayloadSigning, checksums: boolean) {
  const { client, sent } = clientFor(endpoint, mode, checksums);
  await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: body, ContentLength: body.length }));
  await client.send(
    new UploadPartCommand({ Bucket: 'b', Key: 'k', UploadId: 'u', PartNumber: 1, Body: body, ContentLength: body.length }),
  );
  await client.send(
    new CompleteMultipartUploadCommand({
      Bucket: 'b',
      Key: 'k',
      UploadId: 'u',
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"e"' }] },
    }),
  );
  for (const r of sent) assert.match(r.headers['authorization'] ?? '', /SignedHeaders=[^,]*x-amz-content-sha256/);
  return sent.map((r) => r.headers['x-amz-content-sha256']);
}

describe('payload signing of uploads', () => {
  it('auto: file data is UNSIGNED-PAYLOAD over HTTPS with checksums, signed otherwise; other bodies stay signed', async () => {
    const [put, part, complete] = await payloadHeaderOf('https://s3.example.test', 'auto', true);
    assert.equal(put, 'UNSIGNED-PAYLOAD');
    assert.equal(part, 'UNSIGNED-PAYLOAD');
    assert.match(complete!, /^[0-9a-f]{64}$/, 'CompleteMultipartUpload (small XML) stays signed');
    assert.deepEqual((await payloadHeaderOf('http://s3.example.test', 'auto', true)).slice(0, 2), [bodyHash, bodyHash]);
    assert.deepEqual(
      (await payloadHeaderOf('https://s3.example.test', 'auto', false)).slice(0, 2),
      [bodyHash, bodyHash],
      'without checksums the signature is the only end-to-end check',
    );
  });

  it('signed and unsigned do as they say, whatever the protocol', async () => {
    assert.deepEqual((await payloadHeaderOf('https://s3.example.test', 'signed', true)).slice(0, 2), [bodyHash, bodyHash]);
    assert.deepEqual((await payloadHeaderOf('http://s3.example.test', 'unsigned', false)).slice(0, 2), [
      'UNSIGNED-PAYLOAD',
      'UNSIGNED-PAYLOAD',
    ]);
    assert.equal(unsignedPayloadFor('auto', true, 'https:'), true);
    assert.equal(unsignedPayloadFor('auto', true, 'http:'), false);
  });
});
