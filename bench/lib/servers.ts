import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { START_NODE_FLAGS } from '../../test/support/gateway.js';
import { freePort, mustExec, sleep, stopChild, waitForPort } from './proc.js';

/** The repository root, from dist/bench/lib/. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const WORK = path.join(ROOT, 'bench', 'work');

let dataRoot = WORK;
/**
 * Where sshd's root and the local store go (`--data-dir`; default bench/work): the file system they are on
 * decides what creating and renaming a file costs, so a run can be made on the disk a deployment will use.
 */
export function serverDataDir(): string {
  return dataRoot;
}
export function setServerDataDir(dir: string): void {
  dataRoot = path.resolve(dir);
}
const S3_SCRIPT = path.join(ROOT, 'test', 'support', 's3-server.sh');

// The same client options the end-to-end tests use.
export { SSH_OPTS } from '../../test/support/gateway.js';

/** One ed25519 key that logs in everywhere; created once under bench/work/keys. */
export async function benchKey(): Promise<{ key: string; pub: string }> {
  const dir = path.join(WORK, 'keys');
  await mkdir(dir, { recursive: true });
  const key = path.join(dir, 'bench_key');
  if (!existsSync(key))
    await mustExec('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-C',
      'bench',
      '-f',
      key,
    ]);
  return { key, pub: (await readFile(`${key}.pub`, 'utf8')).trim() };
}

export interface S3Server {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  bucket: string;
  stop(): Promise<void>;
}

/**
 * Swift's S3 API on loopback (test/support/s3-server.sh) with its data kept under bench/work/s3, so the
 * 100,000 listing objects are created once, not on every run.
 */
export async function startS3(workers: number): Promise<S3Server> {
  for (const k of Object.keys(process.env))
    if (k.startsWith('AWS_')) delete process.env[k];
  const dataDir = path.join(WORK, 's3');
  await mkdir(dataDir, { recursive: true });
  const portFile = path.join(dataDir, 'bench-port');
  const env = {
    ...process.env,
    S3_COMPAT: '1',
    S3_PROXY_WORKERS: String(workers),
    S3_OBJECT_WORKERS: String(workers),
  };
  // The same port as last time: if this data dir's server is still running (another bench run with
  // --keep-s3), the script only checks it; a new port would make the script restart it under that run.
  let port = Number(await readFile(portFile, 'utf8').catch(() => '0'));
  let out: string | undefined;
  if (port) out = await script([dataDir, String(port), 'start'], env).catch(() => undefined);
  if (out === undefined) {
    port = await freeRange(5);
    out = await script([dataDir, String(port), 'start'], env);
  }
  await writeFile(portFile, String(port));
  const line = out.trim().split('\n').pop() ?? '';
  const f = Object.fromEntries(
    line.split(' ').map((kv) => kv.split('=', 2) as [string, string]),
  );
  if (!f['S3_ENDPOINT'])
    throw new Error(`s3-server.sh printed no endpoint: ${out}`);
  return {
    endpoint: f['S3_ENDPOINT'],
    accessKeyId: f['S3_ACCESS_KEY']!,
    secretAccessKey: f['S3_SECRET_KEY']!,
    region: 'us-east-1',
    bucket: 'test',
    stop: async () => {
      await script([dataDir, String(port), 'stop'], env);
    },
  };
}

function script(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      S3_SCRIPT,
      args,
      { env, timeout: 15 * 60_000, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err)
          reject(
            new Error(
              `s3-server.sh ${args.join(' ')}: ${err.message}\n${stderr}`,
            ),
          );
        else resolve(stdout);
      },
    );
  });
}

async function rangeFree(base: number, n: number): Promise<boolean> {
  for (let i = 0; i < n; i++) {
    const free = await new Promise<boolean>((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen(base + i, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (!free) return false;
  }
  return true;
}

async function freeRange(n: number): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = 20000 + Math.floor(Math.random() * 40000);
    if (await rangeFree(base, n)) return base;
  }
  throw new Error('no free port range');
}

/** An SFTP server the `sftp` client talks to. `root` is the remote folder the bench may use. */
export interface SftpServer {
  id: 'openssh' | 'gw-local' | 'gw-s3' | 'rclone';
  label: string;
  port: number;
  user: string;
  /** Remote folder for this server's workload files. */
  root: string;
  /** Remote folder holding the prepared listing folders (`list-N`). */
  listRoot: string;
  /** The process whose RSS is sampled, when there is exactly one. */
  pid?: number;
  stop(): Promise<void>;
}

/** OpenSSH's sshd with internal-sftp, logging in as the current user (root here) with the bench key. */
export async function startSshd(
  pub: string,
): Promise<SftpServer & { dataDir: string }> {
  const dir = path.join(WORK, 'sshd');
  const dataDir = path.join(dataRoot, 'openssh-root');
  await mkdir(dir, { recursive: true });
  await mkdir(dataDir, { recursive: true });
  await mkdir('/run/sshd', { recursive: true });
  const hostKey = path.join(dir, 'host_ed25519');
  if (!existsSync(hostKey))
    await mustExec('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-f',
      hostKey,
    ]);
  const authorized = path.join(dir, 'authorized_keys');
  await writeFile(authorized, `${pub}\n`, { mode: 0o600 });
  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  await writeFile(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `AuthorizedKeysFile ${authorized}`,
      'PermitRootLogin yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'MaxStartups 200:30:300',
      'MaxSessions 100',
      'LogLevel ERROR',
      `PidFile ${path.join(dir, 'sshd.pid')}`,
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  const child = spawn('/usr/sbin/sshd', ['-f', config, '-D', '-e'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await waitForPort(port, 10_000, child);
  return {
    id: 'openssh',
    label: 'OpenSSH sshd',
    port,
    user: (await mustExec('id', ['-un'])).stdout.trim(),
    root: path.join(dataDir, 'w'),
    listRoot: dataDir,
    dataDir,
    stop: () => stopChild(child),
  };
}

/** `rclone serve sftp` over `bucket/bench` on the same S3 server (a peer sharing the gateway's objects). */
export async function startRclone(
  s3: S3Server,
  pub: string,
): Promise<SftpServer> {
  const dir = path.join(WORK, 'rclone');
  await mkdir(dir, { recursive: true });
  const authorized = path.join(dir, 'authorized_keys');
  await writeFile(authorized, `${pub}\n`);
  const hostKey = path.join(dir, 'host_ed25519');
  if (!existsSync(hostKey))
    await mustExec('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-f',
      hostKey,
    ]);
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('AWS_')) env[k] = v;
  Object.assign(env, {
    RCLONE_CONFIG: path.join(dir, 'rclone.conf'),
    RCLONE_CONFIG_BENCHS3_TYPE: 's3',
    RCLONE_CONFIG_BENCHS3_PROVIDER: 'Other',
    RCLONE_CONFIG_BENCHS3_ENDPOINT: s3.endpoint,
    RCLONE_CONFIG_BENCHS3_ACCESS_KEY_ID: s3.accessKeyId,
    RCLONE_CONFIG_BENCHS3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    RCLONE_CONFIG_BENCHS3_REGION: s3.region,
    RCLONE_CONFIG_BENCHS3_FORCE_PATH_STYLE: 'true',
  });
  await writeFile(env['RCLONE_CONFIG']!, '');
  const child = spawn(
    'rclone',
    [
      'serve',
      'sftp',
      `benchs3:${s3.bucket}/bench`,
      '--addr',
      `127.0.0.1:${port}`,
      '--authorized-keys',
      authorized,
      '--key',
      hostKey,
      // Modification times from the listing instead of one HEAD per object (rclone's default for S3).
      '--use-server-modtime',
      '--log-level',
      'ERROR',
    ],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  child.stderr!.on('data', (d) => {
    err += d;
  });
  await waitForPort(port, 20_000, child).catch((e) => {
    throw new Error(`${(e as Error).message}: ${err}`);
  });
  return {
    id: 'rclone',
    label: 'rclone serve sftp (S3)',
    port,
    user: 'bench',
    root: 'w-rclone',
    listRoot: '.',
    pid: child.pid,
    stop: () => stopChild(child),
  };
}

export interface BenchGateway {
  process: ChildProcess;
  port: number;
  logs(): string;
  /** SIGTERM (a graceful exit writes the CPU profile), SIGKILL after 20 s; the exit code. */
  stop(): Promise<number | null>;
}

export interface GatewayServer extends SftpServer {
  gateway: BenchGateway;
}

/**
 * Node flags of `npm start`, read from package.json as the tests read them (the container image's CMD has
 * all but --no-memory-reducer, which its Node 24 does not need): the bench measures the same. Why each:
 * warnIfNodeFlagsMissing in src/main.ts; without --no-memory-reducer, a gateway that waited while other
 * servers ran took 2x as long for small S3 uploads.
 */
const GATEWAY_NODE_FLAGS = START_NODE_FLAGS;

/** Starts dist/src/main.js with `nodeArgs` (node's own flags, e.g. --cpu-prof) in a fresh folder. */
async function launchGateway(
  config: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  nodeArgs: string[],
): Promise<BenchGateway> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sftpgw-bench-'));
  const configFile = path.join(dir, 'gateway.yaml');
  await writeFile(configFile, stringify(config));
  const child = spawn(
    process.execPath,
    [...GATEWAY_NODE_FLAGS, ...nodeArgs, path.join(ROOT, 'dist/src/main.js'), '--config', configFile],
    {
      cwd: dir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  // Only the start is needed; later lines are read and dropped so a busy log does not cost memory here.
  child.stdout!.on('data', (d) => {
    if (out.length < 1 << 20) out += d;
  });
  child.stderr!.on('data', (d) => {
    if (err.length < 1 << 20) err += d;
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  const until = Date.now() + 30_000;
  let port: number | undefined;
  while (port === undefined) {
    const m = /"port":(\d+)[^\n]*"msg":"SFTP gateway listening"/.exec(out);
    if (m) port = Number(m[1]);
    else if (child.exitCode !== null || Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(
        `gateway did not start (exit ${child.exitCode}):\n${err}\n${out}`,
      );
    } else await sleep(50);
  }
  return {
    process: child,
    port,
    logs: () => out + err,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      await rm(dir, { recursive: true, force: true });
      return code;
    },
  };
}

/**
 * The real gateway process (dist/src/main.js) on the local store or on S3, with the bench channel on and,
 * when `profileDir` is set, `node --cpu-prof` writing there at exit.
 */
export async function startBenchGateway(
  kind: 'local' | 's3',
  pub: string,
  s3: S3Server | undefined,
  profileDir?: string,
  extraConfig: Record<string, unknown> = {},
  nodeFlags: string[] = [],
): Promise<GatewayServer> {
  const storage =
    kind === 'local'
      ? { type: 'local', root: path.join(dataRoot, 'local-data') }
      : {
          type: 's3',
          endpoint: s3!.endpoint,
          region: s3!.region,
          forcePathStyle: true,
          credentials: {
            accessKeyId: s3!.accessKeyId,
            secretAccessKey: s3!.secretAccessKey,
          },
        };
  const home = kind === 'local' ? '/bench/home' : `/${s3!.bucket}/bench`;
  const env: NodeJS.ProcessEnv = { SFTP_GATEWAY_BENCH_CHANNEL: '1' };
  if (profileDir) await mkdir(profileDir, { recursive: true });
  // `server` and `storage` settings are merged into the bench's (e.g. {"server":{"workers":2}}).
  const { server: extraServer, storage: extraStorage, ...extraRest } = extraConfig as {
    server?: Record<string, unknown>;
    storage?: Record<string, unknown>;
  };
  const gateway = await launchGateway(
    {
      server: {
        port: 0,
        host: '127.0.0.1',
        hostKeys: ['state/ssh_host_ed25519_key'],
        ...extraServer,
      },
      storage: { ...storage, ...extraStorage },
      metrics: false,
      users: [{ UserName: 'bench', HomeDirectory: home, SshPublicKeys: [pub] }],
      ...extraRest,
    },
    env,
    [...nodeFlags, ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])],
  );
  return {
    id: kind === 'local' ? 'gw-local' : 'gw-s3',
    label: kind === 'local' ? 'gateway, local store' : 'gateway, S3',
    port: gateway.port,
    user: 'bench',
    root: kind === 'local' ? 'w' : 'w-gw',
    listRoot: '.',
    pid: gateway.process.pid,
    gateway,
    stop: async () => {
      const code = await gateway.stop();
      if (code !== 0)
        process.stderr.write(`gateway (${kind}) exited ${code}\n`);
    },
  };
}

export type { ChildProcess };
