import { parseArgs } from 'node:util';
import { ConfigError, configPathFrom, loadConfig } from './config/load.js';
import { startGateway } from './gateway.js';
import { createLogger } from './observability/logger.js';

const USAGE = `usage: sftp-s3-gateway [--config FILE]

  --config FILE   the config file (default: $SFTP_GATEWAY_CONFIG, else config/gateway.yaml)
  --check         validate the config file and exit
`;

async function main(): Promise<number> {
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
  const logger = createLogger({ level: config.logging.level });
  const gateway = await startGateway(config, logger);

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
  process.on('SIGHUP', () => {
    try {
      config = loadConfig(file);
      gateway.reload(config);
      logger.info({ users: config.users.size }, 'config reloaded');
    } catch (e) {
      const problems = e instanceof ConfigError ? e.problems : [(e as Error).message];
      logger.error({ problems }, 'config reload failed: keeping the previous config');
    }
  });
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
