import { loadOrCreateHostKeys } from './auth/host-keys.js';
import type { GatewayConfig } from './config/load.js';
import { audit } from './observability/audit.js';
import { type ObservabilityServer, startObservabilityServer } from './observability/http.js';
import type { Logger } from './observability/logger.js';
import { GatewayMetrics, s3RequestObserver } from './observability/metrics.js';
import { auditSftpEvent } from './protocol/sftp-audit.js';
import { SshGateway } from './protocol/ssh-server.js';
import { createStore } from './storage/create-store.js';
import { configureSharedMemoryBudget } from './storage/memory-budget.js';
import { createUserFileSystem } from './vfs/factory.js';

export interface RunningGateway {
  sshPort: number;
  metricsPort?: number;
  /** Graceful stop: no new connections, transfers get `deadlineMs` to finish, the rest are aborted. */
  shutdown(deadlineMs: number): Promise<void>;
  /** Swaps in a new config for new logins (users, keys, policies). */
  reload(config: GatewayConfig): void;
}

/** Wires config -> store -> filesystem factory -> SSH server, plus metrics and health. */
export async function startGateway(initial: GatewayConfig, logger: Logger): Promise<RunningGateway> {
  let config = initial;
  const homeBuckets = [...config.users.values()].flatMap((u) => {
    const bucket = u.HomeDirectory?.split('/')[1];
    return bucket && !bucket.includes('$') ? [bucket] : [];
  });
  const budget = configureSharedMemoryBudget(config.memoryBudgetMiB * 1024 * 1024);
  const metrics = new GatewayMetrics();
  metrics.setMemoryBudgetSource(() => budget);
  const {
    store,
    spoolDir,
    hiddenPrefix,
    stop: stopStore,
  } = await createStore(config.storage, [...new Set(homeBuckets)], {
    keepPartial: config.keepPartialUploads,
    budget,
    logger,
    stateDir: config.stateDir,
    onS3Request: s3RequestObserver(metrics),
  });
  const hostKeys = loadOrCreateHostKeys(config.server.hostKeys);
  let accepting = true;

  const ssh = new SshGateway({
    hostKeys: hostKeys.map((k) => k.private),
    banner: config.server.banner,
    maxAuthTries: config.server.maxAuthTries,
    loginGraceTimeMs: config.server.loginGraceTimeSeconds * 1000,
    idleTimeoutMs: config.server.idleTimeoutSeconds * 1000,
    maxChannelsPerConnection: config.server.maxChannelsPerConnection,
    proxyProtocol: {
      enabled: config.server.proxyProtocol.enabled,
      trustedSources: config.server.proxyProtocol.trustedSources,
      timeoutMs: config.server.proxyProtocol.timeoutSeconds * 1000,
    },
    findUser: (name) => config.users.get(name),
    openFileSystem: async (user) => {
      const u = config.users.get(user.UserName);
      if (!u) throw new Error(`user ${user.UserName} no longer exists`);
      const fs = createUserFileSystem(u, store, {
        setStatOption: config.server.setStatOption,
        keepPartial: config.keepPartialUploads,
        spoolDir,
        spoolMaxBytes: config.spoolMaxMiB * 1024 * 1024,
        hiddenPrefix,
      });
      await fs.ensureHome();
      return fs;
    },
    logger,
    hooks: {
      connected: (s, n) => {
        metrics.sessionOpened();
        metrics.authAttempt('publickey', true);
        audit(s.logger, 'CONNECTED', {
          'source-port': s.sourcePort,
          method: 'publickey',
          'ssh-public-key-fingerprint': s.keyFingerprint,
          'ssh-public-key-type': s.keyType,
          kex: n?.kex,
          ciphers: n?.cipher,
          mac: n?.mac,
        });
      },
      authFailure: (d) => {
        metrics.authAttempt(d.method, false);
        audit(logger, 'AUTH_FAILURE', {
          user: d.user,
          'source-ip': d.sourceIp,
          method: d.method,
          message: d.reason,
        });
      },
      sftpEvent: (s, event) => auditSftpEvent(s.logger, metrics, event),
      disconnected: (s, reason) => {
        if (!s) return;
        metrics.sessionClosed();
        audit(s.logger, 'DISCONNECTED', { reason });
      },
    },
  });
  const sshPort = await ssh.listen(config.server.port, config.server.host);
  logger.info(
    { port: sshPort, host: config.server.host, storage: config.storage.type, users: config.users.size },
    'SFTP gateway listening',
  );

  let http: ObservabilityServer | undefined;
  if (config.metrics) {
    http = await startObservabilityServer({
      host: config.metrics.host,
      port: config.metrics.port,
      metrics,
      logger,
      readiness: async () => {
        const storeCheck = await store.check().then(
          () => ({ ok: true }),
          (e: Error) => ({ ok: false, message: e.message }),
        );
        const checks = { config: { ok: true }, store: storeCheck, accepting: { ok: accepting } };
        return { ready: Object.values(checks).every((c) => c.ok), checks };
      },
    });
  }

  return {
    sshPort,
    metricsPort: http?.port,
    reload(next) {
      config = next;
    },
    async shutdown(deadlineMs) {
      accepting = false;
      await ssh.stopAccepting();
      const drained = await ssh.drain(deadlineMs);
      if (!drained)
        logger.warn(
          { sessions: ssh.activeSessions },
          'shutdown deadline reached: aborting unfinished transfers',
        );
      await ssh.closeAll('server shutting down');
      await stopStore();
      await http?.close();
    },
  };
}
