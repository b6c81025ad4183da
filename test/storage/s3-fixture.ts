import { MemoryBudget } from '../../src/storage/memory-budget.js';
import type { S3StoreConfig } from '../../src/storage/s3/config.js';
import { S3Store } from '../../src/storage/s3/s3-store.js';
import { type S3TestServer, startS3 } from '../support/s3.js';
import type { ContractFixture } from './contract.js';

export interface S3Fixture extends ContractFixture {
  store: S3Store;
  server: S3TestServer;
  budget: MemoryBudget;
}

/** An S3Store against the test server of this process; `stop` of the server is left to the caller. */
export async function makeS3Store(
  compat: boolean,
  overrides: Partial<S3StoreConfig> = {},
  budget: MemoryBudget = new MemoryBudget(64 * 1024 * 1024),
): Promise<S3Fixture> {
  const server = await startS3({ compat });
  const store = new S3Store(
    {
      region: server.region,
      endpoint: server.endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
      ...(compat ? {} : { compatibility: 'generic' }),
      ...overrides,
    },
    { budget },
  );
  return { store, bucket: server.bucket, server, budget, cleanup: () => store.close() };
}
