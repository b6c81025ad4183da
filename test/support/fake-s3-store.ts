import { after, before } from 'node:test';
import { MemoryBudget } from '../../src/storage/memory-budget.js';
import { MiB, type S3StoreConfig } from '../../src/storage/s3/config.js';
import { S3Store } from '../../src/storage/s3/s3-store.js';

/**
 * An S3Store on a test's own fake S3 endpoint, as createStore builds one for an S3-compatible endpoint
 * (generic unless `config` says otherwise; no janitor, which would list uploads), with fake credentials
 * and a 64 MiB memory budget of its own.
 */
export function storeOnFake(
  endpoint: string,
  config: Partial<S3StoreConfig> = {},
): { store: S3Store; budget: MemoryBudget } {
  const budget = new MemoryBudget(64 * MiB);
  const store = new S3Store(
    {
      region: 'us-east-1',
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDFAKE', secretAccessKey: 'fake-secret' },
      compatibility: 'generic',
      ...config,
    },
    { budget },
  );
  return { store, budget };
}

/**
 * Errors that escape to the process (uncaught exceptions, unhandled rejections) while the tests of the
 * calling file or suite run: a test fails when any appeared during it. The listeners are added by a
 * before() hook and removed by an after() hook of the caller's suite.
 */
export function captureEscapedErrors(): unknown[] {
  const escaped: unknown[] = [];
  const onEscape = (err: unknown) => escaped.push(err);
  before(() => {
    process.on('uncaughtException', onEscape);
    process.on('unhandledRejection', onEscape);
  });
  after(() => {
    process.off('uncaughtException', onEscape);
    process.off('unhandledRejection', onEscape);
  });
  return escaped;
}
