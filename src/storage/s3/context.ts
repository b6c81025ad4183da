import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '../../observability/logger.js';
import type { MemoryBudget } from '../memory-budget.js';
import type { ObjectInfo } from '../object-store.js';
import type { ResolvedS3StoreConfig } from './config.js';
import { isNotFound, mapS3Error } from './errors.js';
import type { PartPool } from './part-pool.js';

/** What the S3Store shares with its writers, readers and janitor. */
export interface S3Context {
  client: S3Client;
  config: ResolvedS3StoreConfig;
  budget: MemoryBudget;
  /** Where upload part buffers come from: the budget itself, or a share of it (uploadMemoryMiB). */
  uploadBudget: MemoryBudget;
  /** Reused part buffers (see part-pool.ts). */
  parts: PartPool;
  log: Logger;
  /** Remembers a bucket this process started multipart uploads in, so the janitor scans it. */
  noteBucket(bucket: string): void;
}

/** `CopySource` is not encoded by the SDK; keys may hold any character. */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/** An object's info from the headers of a HEAD or GET; `size` for a ranged GET, whose length is a part. */
export function objectInfo(
  key: string,
  r: { ContentLength?: number; LastModified?: Date; ETag?: string },
  size = r.ContentLength ?? 0,
): ObjectInfo {
  return { key, size, lastModified: r.LastModified ?? new Date(0), etag: r.ETag ?? '' };
}

/** HEAD of `key`: its info, or undefined when there is no such object. */
export async function headObject(client: S3Client, bucket: string, key: string): Promise<ObjectInfo | undefined> {
  try {
    return objectInfo(key, await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw mapS3Error('HeadObject', err, `${bucket}/${key}`);
  }
}
