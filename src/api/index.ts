import ssh2 from 'ssh2';
import { fingerprintOf } from '../auth/public-keys.js';
import type { GatewayConfig } from '../config/load.js';
import type { Logger } from '../observability/logger.js';
import type { UserStore } from '../users/store.js';
import { TransferOperations } from './operations.js';
import { type ApiServer, startApiServer } from './server.js';

export type { ApiServer } from './server.js';

/** The placeholder `server.serverId` default: not a real deployment id. */
const PLACEHOLDER_SERVER_ID = 's-00000000000000000';

/**
 * The deployment's ServerId: `server.serverId` from the config when set to a real value, else the one kept
 * with the user store (created at first start: `<stateDir>/server-id`, or `<prefix>server-id` in the bucket
 * that replicas share), so that it stays the same across restarts and replicas.
 */
export async function resolveServerId(config: GatewayConfig, users: UserStore): Promise<string> {
  const configured = (config.server as { serverId?: string }).serverId;
  if (configured && configured !== PLACEHOLDER_SERVER_ID) return configured;
  return users.serverId();
}

function hostKeyFingerprint(hostKeys: Buffer[]): string | undefined {
  const first = hostKeys[0];
  if (!first) return undefined;
  const parsed = ssh2.utils.parseKey(first);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) return undefined;
  return fingerprintOf(key.getPublicSSH());
}

/** Starts the user API listener when `api:` is configured; undefined otherwise. */
export async function startUserApi(options: {
  config: () => GatewayConfig;
  users: UserStore;
  hostKeys: Buffer[];
  logger: Logger;
}): Promise<ApiServer | undefined> {
  const initial = options.config();
  if (!initial.api) return undefined;
  const api = initial.api;
  const serverId = await resolveServerId(initial, options.users);
  const fingerprint = hostKeyFingerprint(options.hostKeys);
  const operations = new TransferOperations({
    serverId,
    region: api.region,
    accountId: api.accountId,
    store: options.users,
    configUsers: () => options.config().users,
    configFile: () => options.config().file,
    server: () => {
      const c = options.config();
      return {
        hostKeyFingerprint: fingerprint,
        banner: c.server.banner,
        setStatOption: c.server.setStatOption,
        identityProviderType:
          (c as { identityProvider?: { type?: string } }).identityProvider?.type ?? 'SERVICE_MANAGED',
      };
    },
    logger: options.logger.child({ component: 'user-api' }),
  });
  return startApiServer({
    host: api.host,
    port: api.port,
    accessKeys: () => options.config().api?.accessKeys ?? [],
    operations,
    logger: options.logger,
  });
}
