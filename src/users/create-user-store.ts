import path from 'node:path';
import type { UserStoreConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { ObjectStore } from '../storage/object-store.js';
import { FileUserStore } from './file-store.js';
import { ObjectUserStore } from './object-store.js';
import type { UserStore } from './store.js';

/** Builds the configured user store (not started). `configFile` anchors a relative `path`. */
export function createUserStore(
  config: UserStoreConfig | undefined,
  options: {
    stateDir: string;
    configFile: string;
    store: ObjectStore;
    logger: Logger;
    /** A bucket store's polling (see ObjectUserStore); a file store always watches its file (a stat). */
    poll?: { enabled: boolean; onChange?: () => void };
  },
): UserStore {
  const logger = options.logger.child({ component: 'user-store' });
  if (config?.type === 's3') {
    const prefix = config.prefix === '' || config.prefix.endsWith('/') ? config.prefix : `${config.prefix}/`;
    return new ObjectUserStore(options.store, config.bucket, prefix, logger, config.pollIntervalMs, {
      poll: options.poll?.enabled ?? true,
      onChange: options.poll?.onChange,
    });
  }
  const file = config?.path
    ? path.resolve(path.dirname(options.configFile), config.path)
    : path.join(options.stateDir, 'users.json');
  return new FileUserStore(file, logger);
}
