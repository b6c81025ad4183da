import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { GatewayError } from '../../errors.js';
import type { S3Context } from './context.js';
import { isNotFound, s3Status } from './errors.js';

/**
 * Sends a server-side copy (CopyObject, UploadPartCopy) pinned to the source's ETag with
 * x-amz-copy-source-if-match. Swift's s3api evaluates that header against the Swift ETag of the
 * manifest, not the S3 ETag ("<md5>-<parts>") that HEAD and ListObjects report, so every pinned copy
 * of an object that was itself uploaded in parts fails with 412 although nothing changed. When a 412
 * comes back and a HEAD shows the same ETag, the copy is sent again without the condition and the
 * source's ETag is checked once more afterwards: not atomic, but a concurrent overwrite between the two
 * HEADs is still reported as PreconditionFailed instead of being copied silently.
 */
export async function pinnedCopy<T>(
  ctx: S3Context,
  source: { bucket: string; key: string; etag: string },
  send: (pinned: boolean) => Promise<T>,
): Promise<T> {
  try {
    return await send(true);
  } catch (err) {
    if (s3Status(err) !== 412 || (await currentEtag(ctx, source)) !== source.etag) throw err;
  }
  ctx.log.debug(
    { bucket: source.bucket, key: source.key },
    'store refused copy-source-if-match on an unchanged object; copying with a HEAD check instead',
  );
  const result = await send(false);
  if ((await currentEtag(ctx, source)) !== source.etag) {
    throw new GatewayError(
      'PreconditionFailed',
      `S3 copy of ${source.bucket}/${source.key} failed: the object changed during the copy`,
    );
  }
  return result;
}

async function currentEtag(
  ctx: S3Context,
  source: { bucket: string; key: string },
): Promise<string | undefined> {
  try {
    const r = await ctx.client.send(
      new HeadObjectCommand({ Bucket: source.bucket, Key: source.key }),
    );
    return r.ETag;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
