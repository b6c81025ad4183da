import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { runHashPassword } from './cli/hash-password.js';
import { runImport } from './cli/import.js';
import { runPrimary } from './cluster/primary.js';
import { connectToPrimary, workerPlace } from './cluster/worker.js';
import { ConfigError, configPathFrom, loadConfig } from './config/load.js';
import { watchConfigFile } from './config/watch.js';
import { createLogger, type Logger } from './observability/logger.js';

const USAGE = `usage: sftp-s3-gateway [--config FILE]
       sftp-s3-gateway import describe-user.json [more.json ...] > users.yaml
       sftp-s3-gateway hash-password < password.txt

  --config FILE   the config file (default: $SFTP_GATEWAY_CONFIG, else config/gateway.yaml)
  --check         validate the config file and exit
`;

async function main(): Promise<number> {
  const [command, ...rest] = process.argv.slice(2);
  if (command === 'import') return runImport(rest, process.stdout, process.stderr);
  if (command === 'hash-password') return runHashPassword(process.stdin, process.stdout, process.stderr);
  let args: ReturnType<typeof parseFlags>;
  try {
    args = parseFlags();
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const file = configPathFrom(args.values, process.env);
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(file);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`${e.message}\nconfig not loaded: ${e.problems.length} problem(s)\n`);
      return 2;
    }
    throw e;
  }
  if (args.values.check) {
    process.stdout.write(`${file}: ok (${config.users.size} users)\n`);
    return 0;
  }
  const rootLogger = createLogger({ level: config.logging.level });
  if (cluster.isPrimary && config.server.workers > 1) {
    warnIfMemoryReducerOn(rootLogger);
    return runPrimary(config, rootLogger);
  }
  const place = cluster.isWorker ? workerPlace(process.env) : undefined;
  const logger = place ? rootLogger.child({ worker: place.index }) : rootLogger;
  if (!place) warnIfMemoryReducerOn(logger);
  const primary = place && connectToPrimary(place, logger);
  // Loaded here, not at the top: a primary (server.workers > 1) never needs the SSH and S3 stacks.
  const { startGateway } = await import('./gateway.js');
  const gateway = await startGateway(config, logger, primary?.role);
  await primary?.serve(gateway);

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    const deadlineMs = config.server.shutdownDeadlineSeconds * 1000;
    logger.info({ signal, deadlineMs }, 'shutting down: no new connections, waiting for transfers');
    gateway.shutdown(deadlineMs).then(
      () => {
        logger.info('shutdown complete');
        logger.flush();
        process.exit(0);
      },
      (e) => {
        logger.error({ err: e }, 'shutdown failed');
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // A worker whose primary is gone would serve on unsupervised: it stops like on SIGTERM.
  if (place) process.on('disconnect', () => stop('primary exited'));
  const reload = (why: string) => {
    try {
      config = loadConfig(file);
      gateway.reload(config);
      logger.info({ users: config.users.size, trigger: why }, 'config reloaded');
    } catch (e) {
      const problems = e instanceof ConfigError ? e.problems : [(e as Error).message];
      for (const problem of problems) logger.error({ problem, trigger: why }, `config problem: ${problem}`);
      logger.error({ problems }, 'config reload failed: keeping the previous config');
    }
  };
  process.on('SIGHUP', () => reload('SIGHUP'));
  if (config.watchConfig) watchConfigFile(file, () => reload('file changed'));
  return -1;
}

function parseFlags() {
  return parseArgs({
    options: {
      config: { type: 'string', short: 'c' },
      check: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  });
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (e) => {
    process.stderr.write(`sftp-s3-gateway: ${(e as Error).message}\n`);
    process.exit(1);
  },
);

/**
 * Node 20's V8 (11.3): after the process has been idle for ~20 s, its memory reducer leaves the old
 * generation's limit so low that the next burst of requests runs a full collection per request. 1,000
 * small uploads to S3 after 20 idle seconds took 26 s and 31 CPU-s instead of 14 s and 5 CPU-s; Node 24
 * measured the same either way. The flag only works on the command line (v8.setFlagsFromString is too
 * late), so `npm start` and the bench pass it; say so when it is missing.
 */
function warnIfMemoryReducerOn(logger: Logger): void {
  const major = Number(process.versions.node.split('.')[0]);
  // Node 24 is measured unaffected; Node 22 is not measured, so it is warned too (the flag costs nothing).
  if (major >= 24 || process.execArgv.includes('--no-memory-reducer')) return;
  logger.warn(
    { node: process.versions.node },
    `on Node ${major} run the gateway with node --no-memory-reducer (npm start does): after idle periods V8 ` +
      'otherwise spends most of its time collecting garbage',
  );
}
