import type { RunningGateway, WorkerRole } from '../gateway.js';
import type { Logger } from '../observability/logger.js';
import { Channel } from './channel.js';

export const WORKER_INDEX_ENV = 'SFTP_GATEWAY_WORKER';
export const WORKER_COUNT_ENV = 'SFTP_GATEWAY_WORKERS';

/** This process's place among the workers, from what the primary put in its environment. */
export function workerPlace(env: NodeJS.ProcessEnv): { index: number; count: number } {
  const index = Number(env[WORKER_INDEX_ENV]);
  const count = Number(env[WORKER_COUNT_ENV]);
  if (!Number.isInteger(index) || !Number.isInteger(count) || index < 0 || index >= count)
    throw new Error(`${WORKER_INDEX_ENV}/${WORKER_COUNT_ENV} are not a worker's place: ${index}/${count}`);
  return { index, count };
}

/**
 * A worker's side of the primary's channel. `role` goes to startGateway; `serve` answers the primary's
 * requests for the started gateway and tells the primary it is listening.
 */
export function connectToPrimary(
  place: { index: number; count: number },
  logger: Logger,
): { role: WorkerRole; serve(gateway: RunningGateway): Promise<void> } {
  const channel = new Channel((m) => process.send?.(m));
  process.on('message', (m: unknown) => channel.receive(m));
  const role: WorkerRole = {
    ...place,
    usersChanged: () =>
      channel.request('users-changed', undefined, 10_000).then(
        () => undefined,
        (e: Error) => logger.warn({ err: e.message }, 'could not have the other workers re-read the users'),
      ),
  };
  return {
    role,
    async serve(gateway) {
      channel
        .handle('metrics', () => gateway.metrics.registry.getMetricsAsJSON())
        .handle('readiness', () => gateway.readiness())
        .handle('refresh-users', () => gateway.refreshUsers());
      // Not fatal: a primary that is gone disconnects the channel, and that stops this worker (main.ts).
      await channel
        .request('listening', { sshPort: gateway.sshPort, sshCrypto: gateway.sshCrypto }, 10_000)
        .catch((e: Error) => logger.warn({ err: e.message }, 'could not tell the primary this worker listens'));
    },
  };
}
