import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import type { StorageConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { LocalStore } from './local/local-store.js';
import type { MemoryBudget } from './memory-budget.js';
import type { ObjectStore } from './object-store.js';
import { NativeHasher, partHasher } from './s3/async-sha256.js';
import { MiB } from './s3/config.js';
import { S3Store } from './s3/index.js';
import { unsignedPayloadFor } from './s3/payload-signing.js';
import type { S3RequestObserver } from './s3/request-metrics.js';

export interface CreatedStore {
  store: ObjectStore;
  /** Where upload spools live for this store. */
  spoolDir: string;
  /** A top-level name in every bucket that the store uses for itself and users must not see. */
  hiddenPrefix?: string;
  /** Background work (the S3 multipart janitor) to stop at shutdown. */
  stop(): Promise<void>;
  /** S3 only: the same store acting with other credentials (a session's assumed role); close it at session end. */
  forCredentials?(credentials: AwsCredentialIdentityProvider): { store: ObjectStore; close(): Promise<void> };
}

/**
 * @param buckets buckets the users' homes live in: the local store creates their folders, since a fresh
 *   machine has none and there is no other way to create a bucket.
 */
export async function createStore(
  config: StorageConfig,
  buckets: string[],
  options: {
    keepPartial: boolean;
    budget: MemoryBudget;
    /** Upload part buffers' share of `budget`; default: all of it. */
    uploadBudget?: MemoryBudget;
    logger: Logger;
    stateDir: string;
    /** Observes every S3 request (metrics); S3 stores only. */
    onS3Request?: S3RequestObserver;
  },
): Promise<CreatedStore> {
  if (config.type === 'local') {
    const store = new LocalStore({
      root: config.root,
      tempDir: config.tempDir,
      memory: options.uploadBudget ?? options.budget,
      readMemory: options.budget,
      logger: options.logger,
    });
    await store.init();
    await Promise.all(buckets.map((b) => mkdir(path.join(store.root, b), { recursive: true })));
    return {
      store,
      spoolDir: path.join(config.tempDir ?? path.join(config.root, '.sftp-gateway-tmp'), 'spool'),
      stop: () => store.close(),
    };
  }
  const storeDeps = {
    budget: options.budget,
    uploadBudget: options.uploadBudget,
    logger: options.logger,
    onRequest: options.onS3Request,
  };
  const store = new S3Store(
    {
      region: config.region,
      endpoint: config.endpoint,
      forcePathStyle: config.forcePathStyle,
      credentials: config.credentials,
      partSize: config.partSizeMiB * MiB,
      uploadConcurrency: config.uploadConcurrency,
      copyPartThreshold: config.copyPartThresholdMiB * MiB,
      readAheadChunkSize: Math.round(config.readAheadChunkMiB * MiB),
      readAheadChunks: config.readAheadChunks,
      keepPartial: options.keepPartial,
      multipartMaxAge: config.multipartMaxAgeHours * 3600_000,
      janitorBuckets: buckets,
      compatibility: config.compatibility,
      checksums: config.checksums,
      checksumAlgorithm: config.checksumAlgorithm,
      payloadSigning: config.payloadSigning,
      conditionalWrites: config.conditionalWrites,
      deleteMode: config.deleteMode,
      maxSockets: config.maxSockets,
      socketTimeout: config.socketTimeoutSeconds * 1000,
      checkBucket: config.checkBucket ?? buckets[0],
    },
    storeDeps,
  );
  store.startJanitor();
  const { endpoint, payloadSigning, checksums } = store.config;
  const protocol = endpoint ? new URL(endpoint).protocol : 'https:';
  if (!(partHasher instanceof NativeHasher) && !unsignedPayloadFor(payloadSigning, checksums, protocol)) {
    options.logger.warn(
      'native/sha256 is not built (npm ci builds it with a C compiler): upload parts are signed with a SHA-256 ' +
        'computed on a worker thread, about 20 MiB more memory',
    );
  }
  return {
    store,
    spoolDir: path.join(options.stateDir, 'spool'),
    hiddenPrefix: store.config.journalPrefix.split('/')[0] ?? undefined,
    stop: () => store.close(),
    forCredentials: (credentials) => {
      // The same settings with a session's own credentials (STS AssumeRole); no janitor of its own.
      const own = new S3Store(
        { ...store.config, credentials, janitorBuckets: [] },
        storeDeps,
      );
      return { store: own, close: () => own.close() };
    },
  };
}
