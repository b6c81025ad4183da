import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { runHashPassword } from './cli/hash-password.js';
import { runImport } from './cli/import.js';
import { runPrimary } from './cluster/primary.js';
import { connectToPrimary, workerPlace } from './cluster/worker.js';
import { ConfigError, configPathFrom, loadConfig } from './config/load.js';
import { watchConfigFile } from './config/watch.js';
import { createLogger, type Logger, logProcessWarnings } from './observability/logger.js';

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
  const rootLogger = createLogger({ level: config.logging.level, writeIntervalMs: config.logging.writeIntervalMs });
  if (cluster.isPrimary && config.server.workers > 1) {
    logProcessWarnings(rootLogger);
    warnIfNodeFlagsMissing(rootLogger);
    return runPrimary(config, rootLogger);
  }
  const place = cluster.isWorker ? workerPlace(process.env) : undefined;
  const logger = place ? rootLogger.child({ worker: place.index }) : rootLogger;
  logProcessWarnings(logger);
  if (!place) warnIfNodeFlagsMissing(logger);
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
 * Node flags the gateway wants on the command line (v8.setFlagsFromString is too late for the first two), which
 * `npm start`, the image's CMD and the bench pass; say so at start when one is missing.
 *
 * --initial-heap-size=64: V8 sets the old generation's limit from the live heap, about 19 MiB here, and
 * then started incremental marking every ~1.5 MiB promoted: a 512 MiB S3 download ran ~50 full
 * collections. With the initial size as a floor under that limit, only Buffer (external) memory starts
 * them, about one per 64 MiB moved: a warm 512 MiB S3 get went from 2.5-3.8 to 1.9-2.4 CPU-s, a local
 * get's 2.0 to 1.2, and 64 concurrent uploads' 24.8 to 19.7, with peak RSS unchanged (267 -> 266 MiB), on
 * Node 20. Node 24's V8 gains less (warm S3 gets 2.0-2.5 -> 1.9-2.0 CPU-s) and its uploads' peak fell
 * (308-319 -> 298-299 MiB).
 *
 * --no-memory-reducer, on Node 20's V8 (11.3): after the process has been idle for ~20 s, its memory
 * reducer leaves the old generation's limit so low that the next burst of requests runs a full
 * collection per request. 1,000 small uploads to S3 after 20 idle seconds took 26 s and 31 CPU-s
 * instead of 14 s and 5 CPU-s; Node 24 measured the same either way.
 *
 * --no-allocation-site-pretenuring: V8 watches which allocation sites' objects survive a young-generation
 * collection and, once 85 % of one site's did, allocates that site's objects straight in the old
 * generation. One collection that lands in the middle of an S3 listing page's parse sees the page's
 * thousand entries alive and makes that call (`--trace-pretenuring`), and from then on every page is
 * garbage in the old generation until a full collection: an `ls -l` of 100,000 S3 entries promoted
 * 15 MB instead of 4 in 4 of 6 runs; RSS grew 19-23 MiB in 7 of 9 runs without the flag, 9-10 in all 5
 * with it (Node 20; Node 24 20-23 against 13-17), and transfers cost the same CPU (bench, 2 rounds each).
 * A gateway streams: what lives long (sessions, buffers) is allocated once.
 */
function warnIfNodeFlagsMissing(logger: Logger): void {
  const major = Number(process.versions.node.split('.')[0]);
  const flags = process.execArgv;
  if (!flags.some((f) => f.startsWith('--initial-heap-size'))) {
    logger.warn(
      { node: process.versions.node },
      'run the gateway with node --initial-heap-size=64 (npm start does): without it V8 runs a full garbage ' +
        'collection every few MiB of a transfer and downloads cost up to a third more CPU',
    );
  }
  if (!flags.includes('--no-allocation-site-pretenuring')) {
    logger.warn(
      { node: process.versions.node },
      'run the gateway with node --no-allocation-site-pretenuring (npm start does): without it V8 may start ' +
        'allocating the entries of S3 listings straight in the old generation, and RSS grows twice as much while listing',
    );
  }
  // Node 22 is not measured, so it is warned too (the flag costs nothing).
  if (major < 24 && !flags.includes('--no-memory-reducer')) {
    logger.warn(
      { node: process.versions.node },
      `on Node ${major} run the gateway with node --no-memory-reducer (npm start does): after idle periods V8 ` +
        'otherwise spends most of its time collecting garbage',
    );
  }
}
