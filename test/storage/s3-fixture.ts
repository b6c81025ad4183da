import { MemoryBudget } from '../../src/storage/memory-budget.js';
import type { S3StoreConfig } from '../../src/storage/s3/config.js';
import { S3Store } from '../../src/storage/s3/s3-store.js';
import { type S3TestServer, startS3 } from '../support/s3.js';
import type { ContractFixture } from './contract.js';

/** Called with the SDK command's name (e.g. `PutObjectCommand`). */
type CommandHook = (commandName: string) => void | Promise<void>;

export interface S3Fixture extends ContractFixture {
  store: S3Store;
  server: S3TestServer;
  budget: MemoryBudget;
  /**
   * Test hooks, run by middleware the fixture adds before the store's first request: the client caches
   * each command class's resolved stack, so middleware added later would not run for classes already sent.
   * `initialize` runs once per command, `finalizeRequest` once per attempt, just before it goes out.
   */
  hooks: { initialize: Set<CommandHook>; finalizeRequest: Set<CommandHook> };
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
  const hooks: S3Fixture['hooks'] = { initialize: new Set(), finalizeRequest: new Set() };
  const run = async (step: keyof S3Fixture['hooks'], context: { commandName?: string }) => {
    for (const hook of hooks[step]) await hook(String(context.commandName));
  };
  store.client.middlewareStack.add(
    (next, context) => async (args) => {
      await run('initialize', context);
      return next(args);
    },
    { step: 'initialize', name: 'testHooksInitialize' },
  );
  store.client.middlewareStack.add(
    (next, context) => async (args) => {
      await run('finalizeRequest', context);
      return next(args);
    },
    { step: 'finalizeRequest', name: 'testHooksFinalizeRequest' },
  );
  return { store, bucket: server.bucket, server, budget, hooks, cleanup: () => store.close() };
}
