import { createHash } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';

/**
 * Marks of the gateway's own multipart uploads. ListMultipartUploads returns neither metadata nor tags,
 * so the janitor could not tell our uploads from other writers' by anything set on the upload itself;
 * a tiny object per upload, named after the upload id, is a mark it can see. It exists only while the
 * upload is in progress (removed at complete/abort; the janitor removes the leftovers of crashes).
 */
export const GATEWAY_MARK_METADATA = 'sftp-gateway';

export function journalKey(prefix: string, uploadId: string): string {
  return prefix + createHash('sha256').update(uploadId).digest('hex');
}

export async function markUpload(
  client: S3Client,
  prefix: string,
  bucket: string,
  key: string,
  uploadId: string,
): Promise<void> {
  await client.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: journalKey(prefix, uploadId),
      Body: JSON.stringify({ key, uploadId, started: new Date().toISOString() }),
      ContentType: 'application/json',
      Metadata: { [GATEWAY_MARK_METADATA]: 'multipart-journal' },
    }),
  );
}

export async function unmarkUpload(
  client: S3Client,
  prefix: string,
  bucket: string,
  uploadId: string,
): Promise<void> {
  await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: journalKey(prefix, uploadId) }));
}
