import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { StorageConfig } from '../config/schema.js';
import { LocalStore } from './local/local-store.js';
import type { ObjectStore } from './object-store.js';

export interface CreatedStore {
  store: ObjectStore;
  /** Where upload spools live for this store. */
  spoolDir: string;
  /** Background work (the S3 multipart janitor) to stop at shutdown. */
  stop(): Promise<void>;
}

/**
 * @param buckets buckets the users' homes live in: the local store creates their folders, since a fresh
 *   machine has none and there is no other way to create a bucket.
 */
export async function createStore(config: StorageConfig, buckets: string[]): Promise<CreatedStore> {
  if (config.type === 'local') {
    const store = new LocalStore({ root: config.root, tempDir: config.tempDir });
    await store.init();
    await Promise.all(buckets.map((b) => mkdir(path.join(store.root, b), { recursive: true })));
    return {
      store,
      spoolDir: path.join(config.tempDir ?? path.join(config.root, '.sftp-gateway-tmp'), 'spool'),
      stop: () => store.close(),
    };
  }
  throw new Error('storage type s3 is not available in this build yet');
}
