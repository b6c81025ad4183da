import type { S3Client } from '@aws-sdk/client-s3';
import type { Logger } from '../../observability/logger.js';
import type { MemoryBudget } from '../memory-budget.js';
import type { ResolvedS3StoreConfig } from './config.js';
import type { PartPool } from './part-pool.js';

/** What the S3Store shares with its writers, readers and janitor. */
export interface S3Context {
  client: S3Client;
  config: ResolvedS3StoreConfig;
  budget: MemoryBudget;
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
