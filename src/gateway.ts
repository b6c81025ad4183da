import { startUserApi } from './api/index.js';
import { loadOrCreateHostKeys } from './auth/host-keys.js';
import type { GatewayConfig, User } from './config/load.js';
import { isRefusedLoginName } from './config/users.js';
import { identityProviderFor } from './identity/provider.js';
import { sessionAccess } from './identity/session-access.js';
import { audit } from './observability/audit.js';
import type { Logger } from './observability/logger.js';
import { type ObservabilityServer, type Readiness, startObservabilityServer } from './observability/http.js';
import { GatewayMetrics, s3RequestObserver } from './observability/metrics.js';
import { type SshCrypto, warnIfJavaScriptCrypto } from './observability/ssh-crypto.js';
import { auditSftpEvent } from './protocol/sftp-audit.js';
import { SshGateway, sshNativeCrypto } from './protocol/ssh-server.js';
import { createStore } from './storage/create-store.js';
import { configureSharedMemoryBudget, MemoryBudget } from './storage/memory-budget.js';
import { createUserStore } from './users/create-user-store.js';
import { notifyingUserStore } from './users/notifying-store.js';
import { createUserFileSystem } from './vfs/factory.js';

export interface RunningGateway {
  sshPort: number;
  /** Whether ssh2's native crypto binding is loaded (see sshNativeCrypto()). */
  sshCrypto: SshCrypto;
  metricsPort?: number;
  /** Graceful stop: no new connections, transfers get `deadlineMs` to finish, the rest are aborted. */
  shutdown(deadlineMs: number): Promise<void>;
  /** Swaps in a new config for new logins (users, keys, policies). */
  reload(config: GatewayConfig): void;
  metrics: GatewayMetrics;
  /** What `/readyz` answers: config loaded, store reachable, accepting connections. */
  readiness(): Promise<Readiness>;
  /** Re-reads the API's user store now (another worker changed it). */
  refreshUsers(): Promise<void>;
}

/** One of `server.workers` processes (src/cluster/): the primary serves /metrics and /readyz for all. */
export interface WorkerRole {
  index: number;
  count: number;
  /** Called after the user API changed a user; resolves when every other worker has re-read the store. */
  usersChanged(): Promise<void>;
}

/** Wires config -> store -> filesystem factory -> SSH server, plus metrics and health. */
export async function startGateway(
  initial: GatewayConfig,
  logger: Logger,
  worker?: WorkerRole,
): Promise<RunningGateway> {
  let config = initial;
  // The budgets are the container's: each worker gets its share.
  const share = worker?.count ?? 1;
  const homeBuckets = [...config.users.values()].flatMap((u) => {
    const bucket = u.HomeDirectory?.split('/')[1];
    return bucket && !bucket.includes('$') ? [bucket] : [];
  });
  const budget = configureSharedMemoryBudget(Math.floor((config.memoryBudgetMiB * 1024 * 1024) / share));
  const uploadBudget = new MemoryBudget(Math.floor((config.uploadMemoryMiB * 1024 * 1024) / share), budget);
  const metrics = new GatewayMetrics();
  metrics.setMemoryBudgetSource(() => budget);
  metrics.setUploadMemorySource(() => uploadBudget);
  const {
    store,
    spoolDir,
    hiddenPrefix,
    stop: stopStore,
    forCredentials,
  } = await createStore(config.storage, [...new Set(homeBuckets)], {
    keepPartial: config.keepPartialUploads,
    budget,
    uploadBudget,
    logger,
    stateDir: config.stateDir,
    onS3Request: s3RequestObserver(metrics),
  });
  const hostKeys = loadOrCreateHostKeys(config.server.hostKeys);
  /** Users created through the user API (config users first; see findUser). */
  const apiUsers = createUserStore(config.userStore, {
    stateDir: config.stateDir,
    configFile: config.file,
    store,
    logger,
    // With workers, worker 0 alone polls a bucket store and has the others re-read it when it changed.
    poll: worker && {
      enabled: worker.index === 0,
      onChange: worker.index === 0 ? () => void worker.usersChanged() : undefined,
    },
  });
  await apiUsers.start();
  let accepting = true;
  let identity = identityProviderFor(config, logger);
  /** Per-session stores (assumed roles), closed when their connection ends. */
  const sessionClosers = new Map<string, (() => Promise<void>)[]>();

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
    findUser: async (username, login) =>
      (await identity.lookup({ username, ...login })) ??
      (identity.kind === 'SERVICE_MANAGED' && !isRefusedLoginName(username)
        ? apiUsers.find(username)
        : undefined),
    passwordLogin: (username, password, login) => identity.passwordLogin({ username, password, ...login }),
    authMethods: () => effectiveAuthMethods(config, identity.kind),
    openFileSystem: async (user, info) => {
      // The user as found at login (config or identity provider), with its role and policies.
      const u = user as User;
      const granted = sessionAccess(u, config, { store, forCredentials }, info);
      if (granted.close)
        sessionClosers.set(info.sessionId, [...(sessionClosers.get(info.sessionId) ?? []), granted.close]);
      info.logger.debug({ access: granted.mode, role: u.Role }, 'access for this session');
      const fs = createUserFileSystem(
        u,
        granted.store,
        {
          setStatOption: config.server.setStatOption,
          keepPartial: config.keepPartialUploads,
          spoolDir,
          spoolMaxBytes: config.spoolMaxMiB * 1024 * 1024,
          hiddenPrefix,
          prefetchFiles: config.storage.type === 's3' ? config.storage.prefetchFiles : 0,
          onPrefetchedFile: (outcome) => metrics.prefetchedFile(outcome),
        },
        granted.access,
      );
      await fs.ensureHome();
      return fs;
    },
    logger,
    hooks: {
      connected: (s, n) => {
        metrics.sessionOpened();
        metrics.authAttempt(s.method, true);
        audit(s.logger, 'CONNECTED', {
          'source-port': s.sourcePort,
          method: s.method,
          'ssh-public-key-fingerprint': s.keyFingerprint || undefined,
          'ssh-public-key-type': s.keyType || undefined,
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
      sftpReply: (type, status) => metrics.sftpRequest(type, status),
      pacingStopped: () => metrics.sendPacingStopped(),
      disconnected: (s, reason) => {
        if (!s) return;
        for (const close of sessionClosers.get(s.sessionId) ?? []) void close().catch(() => undefined);
        sessionClosers.delete(s.sessionId);
        metrics.sessionClosed();
        audit(s.logger, 'DISCONNECTED', { reason });
      },
    },
  });
  const sshPort = await ssh.listen(config.server.port, config.server.host);
  const sshCrypto: SshCrypto = sshNativeCrypto() ? 'native' : 'javascript';
  metrics.sshCryptoImplementation(sshCrypto);
  // With workers, the primary warns once for all of them (they report it when they listen).
  if (!worker) warnIfJavaScriptCrypto(logger, sshCrypto);
  logger.info(
    {
      port: sshPort,
      host: config.server.host,
      storage: config.storage.type,
      users: config.users.size,
      sshCrypto,
      ...(worker && { pid: process.pid }),
    },
    // With workers, the primary says "SFTP gateway listening" once they all are.
    worker ? 'worker listening' : 'SFTP gateway listening',
  );

  const readiness = async (): Promise<Readiness> => {
    const storeCheck = await store.check().then(
      () => ({ ok: true }),
      (e: Error) => ({ ok: false, message: e.message }),
    );
    const checks = { config: { ok: true }, store: storeCheck, accepting: { ok: accepting } };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  };
  let http: ObservabilityServer | undefined;
  if (config.metrics && !worker) {
    http = await startObservabilityServer({
      host: config.metrics.host,
      port: config.metrics.port,
      metrics,
      logger,
      readiness,
    });
  }

  // One worker serves the user API, so that its changes are made one at a time.
  const api =
    worker && worker.index !== 0
      ? undefined
      : await startUserApi({
          config: () => config,
          users: worker ? notifyingUserStore(apiUsers, worker.usersChanged) : apiUsers,
          hostKeys: hostKeys.map((k) => k.private),
          logger,
        });

  return {
    sshPort,
    sshCrypto,
    metricsPort: http?.port,
    metrics,
    readiness,
    refreshUsers: () => apiUsers.refresh(),
    reload(next) {
      config = next;
      identity = identityProviderFor(config, logger);
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
      await api?.close();
      await apiUsers.stop();
      await stopStore();
      await http?.close();
    },
  };
}

/**
 * The default, PUBLIC_KEY_OR_PASSWORD, offers passwords only where one could succeed: a user with a
 * PasswordHash or a custom identity provider. Otherwise clients are told "publickey" alone, as the
 * managed service does for key-only users, instead of being invited to try passwords that cannot work.
 */
function effectiveAuthMethods(config: GatewayConfig, identityKind: string): GatewayConfig['server']['sftpAuthenticationMethods'] {
  const methods = config.server.sftpAuthenticationMethods;
  if (methods !== 'PUBLIC_KEY_OR_PASSWORD' || identityKind !== 'SERVICE_MANAGED') return methods;
  const anyPassword = [...config.users.values()].some((u) => Boolean(u.PasswordHash));
  return anyPassword ? methods : 'PUBLIC_KEY';
}
