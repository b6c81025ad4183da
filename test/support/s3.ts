import { execFile } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Starts the project's S3 test server (test/support/s3-server.sh: Swift + s3api on loopback) once per
 * test process and compat mode. A missing server is a test failure, not a skip, unless SKIP_S3_TESTS=1
 * says the environment cannot run one.
 */
export interface S3TestServer {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  bucket: string;
  /** Seconds the script took (install excluded when already installed). */
  startSeconds: number;
  /** The script's DATA_DIR: Swift's logs are in `log/` (the proxy's access log is `log/proxy.log`). */
  dataDir: string;
  /** Stops the server processes and removes the data. */
  stop(): Promise<void>;
  /** Stops the server processes but keeps the data (the script's stop action), for fault tests. */
  halt(): Promise<void>;
  /** Starts the server again after halt(), on the same port with the same data. */
  resume(): Promise<void>;
}

/** The reason to skip S3 tests, or undefined when they must run. */
export function s3SkipReason(): string | undefined {
  return process.env['SKIP_S3_TESTS'] === '1'
    ? 'SKIP_S3_TESTS=1: no S3 test server in this environment'
    : undefined;
}

export function s3Available(): boolean {
  return s3SkipReason() === undefined;
}

const SCRIPT = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'test',
  'support',
  's3-server.sh',
);

const started = new Map<boolean, Promise<S3TestServer>>();

export function startS3(options: { compat: boolean }): Promise<S3TestServer> {
  let p = started.get(options.compat);
  if (!p) {
    p = launch(options.compat);
    started.set(options.compat, p);
  }
  return p;
}

/**
 * The SDK reads AWS_* variables (profiles, CA bundles, regions, endpoints) from the environment; tests
 * pass everything explicitly and must not depend on the machine they run on.
 */
export function clearAwsEnv(): void {
  for (const k of Object.keys(process.env)) if (k.startsWith('AWS_')) delete process.env[k];
}

/**
 * A server of its own, not shared with the rest of the test process: for tests that stop and restart it.
 * The caller stops it.
 */
export function startDedicatedS3(options: { compat: boolean }): Promise<S3TestServer> {
  return launch(options.compat);
}

async function launch(compat: boolean): Promise<S3TestServer> {
  clearAwsEnv();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `sftp-gw-s3-${compat ? 'compat' : 'plain'}-`));
  const port = await freePortRange(5);
  const env = {
    ...process.env,
    S3_COMPAT: compat ? '1' : '0',
    S3_PROXY_WORKERS: '1',
    S3_OBJECT_WORKERS: '1',
    // Objects (and Swift's sqlite DBs) on tmpfs: no fsync per object on a busy CI disk. S3_RAM=0 opts out.
    S3_RAM: process.env['S3_RAM'] ?? '1',
  };
  const t0 = performance.now();
  const stdout = await run([dataDir, String(port), 'start'], env);
  const startSeconds = (performance.now() - t0) / 1000;
  const line = stdout.trim().split('\n').pop() ?? '';
  const fields = Object.fromEntries(line.split(' ').map((kv) => kv.split('=', 2) as [string, string]));
  if (!fields['S3_ENDPOINT']) throw new Error(`s3-server.sh printed no endpoint: ${stdout}`);
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= run([dataDir, String(port), 'stop'], env).then(() => {
      // srv/d1 may be a link to the objects in /dev/shm (S3_RAM=1 or a DATA_DIR without user xattrs).
      let device: string | undefined;
      try {
        device = realpathSync(path.join(dataDir, 'srv', 'd1'));
      } catch {
        device = undefined;
      }
      if (device?.startsWith('/dev/shm/s3real-')) rmSync(path.dirname(device), { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    });
    return stopped;
  };
  const halt = async () => {
    await run([dataDir, String(port), 'stop'], env);
  };
  const resume = async () => {
    // A loaded machine may take long to bring five Python servers up again: more than the default 90 s.
    await run([dataDir, String(port), 'start'], { ...env, S3_READY_TIMEOUT: '180' });
  };
  return {
    endpoint: fields['S3_ENDPOINT'],
    accessKeyId: fields['S3_ACCESS_KEY']!,
    secretAccessKey: fields['S3_SECRET_KEY']!,
    region: 'us-east-1',
    bucket: 'test',
    startSeconds,
    dataDir,
    stop,
    halt,
    resume,
  };
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      SCRIPT,
      args,
      { env, timeout: 15 * 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`s3-server.sh ${args.join(' ')} failed: ${err.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
  });
}

/** A port P such that P..P+n-1 are all free on 127.0.0.1 (the script uses P+1..P+4 for Swift's backends). */
async function freePortRange(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below Linux's ephemeral range (32768+), so outgoing connections of other tests cannot take it meanwhile.
    const base = 20000 + Math.floor(Math.random() * 12000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = await portFree(base + i);
    if (ok) return base;
  }
  throw new Error('no free port range found');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
