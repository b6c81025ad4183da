import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';

/** The repository root, from dist/test/support/. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const MAIN = path.join(ROOT, 'dist/src/main.js');

/** Node's flags in `npm start` (between `node` and the script): test gateways run as users run them. */
export const START_NODE_FLAGS: string[] = (() => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const words = pkg.scripts.start.split(/\s+/);
  return words.slice(1, words.indexOf('dist/src/main.js'));
})();

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(
  cmd: string,
  args: string[],
  options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { env: options.env ?? process.env, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

const madeDirs: string[] = [];

/**
 * A fresh folder under the system temp dir, removed when the test file's process exits (files of one
 * e2e run weigh up to 800 MiB; SFTPGW_KEEP_TEST_DIRS=1 keeps them for a look after a failure).
 */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `sftpgw-${prefix}-`));
  if (madeDirs.length === 0 && !process.env.SFTPGW_KEEP_TEST_DIRS) {
    process.on('exit', () => {
      for (const d of madeDirs) rmSync(d, { recursive: true, force: true });
    });
  }
  madeDirs.push(dir);
  return dir;
}

/** Generates a key pair with ssh-keygen; returns the private key path (public key at `.pub`). */
export async function makeKey(
  dir: string,
  name: string,
  type: 'ed25519' | 'ecdsa' | 'rsa' = 'ed25519',
  bits?: number,
): Promise<string> {
  const file = path.join(dir, name);
  const args = ['-q', '-t', type, '-N', '', '-C', `${name}@test`, '-f', file];
  if (bits) args.push('-b', String(bits));
  const r = await run('ssh-keygen', args);
  if (r.code !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  return file;
}

export async function publicKey(privateKeyFile: string): Promise<string> {
  return (await readFile(`${privateKeyFile}.pub`, 'utf8')).trim();
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (c) => h.update(c))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

/** Writes `size` pseudo-random bytes (fast: a repeated random block with a counter). */
export async function makeFile(file: string, size: number): Promise<void> {
  const { createWriteStream } = await import('node:fs');
  const out = createWriteStream(file);
  const block = Buffer.alloc(1024 * 1024);
  let written = 0;
  let n = 0;
  while (written < size) {
    for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((n++ * 2654435761) >>> 0, i);
    const chunk = block.subarray(0, Math.min(block.length, size - written));
    if (!out.write(Buffer.from(chunk))) await new Promise<void>((r) => out.once('drain', () => r()));
    written += chunk.length;
  }
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
}

export interface GatewayOptions {
  /** Extra top-level config merged over the defaults (server, storage, users ...). */
  config?: Record<string, unknown>;
  /** Users; default one user `alice` with home /demo/home/alice and a fresh ed25519 key. */
  users?: Record<string, unknown>[];
  env?: NodeJS.ProcessEnv;
  /** Node's own flags; default those of `npm start`. */
  nodeArgs?: string[];
}

export interface TestGateway {
  dir: string;
  port: number;
  metricsPort: number | undefined;
  /** alice's private key. */
  key: string;
  configFile: string;
  process: ChildProcess;
  /** Everything the gateway wrote to stdout so far (JSON lines), then to stderr. */
  logs(): string;
  /** What the gateway wrote to stderr: only what comes before the logger (bad arguments, a bad config). */
  stderr(): string;
  logLines(): Record<string, unknown>[];
  /** Waits (up to 10 s) for a log line matching `predicate`: the gateway writes its log asynchronously. */
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Runs OpenSSH `sftp -b -` with the given commands as `user` (default alice). */
  sftp(
    commands: string,
    options?: { user?: string; key?: string; extraArgs?: string[]; cwd?: string },
  ): Promise<RunResult>;
  sshArgs(key?: string): string[];
}

export const SSH_OPTS = [
  '-o',
  'StrictHostKeyChecking=no',
  '-o',
  'UserKnownHostsFile=/dev/null',
  '-o',
  'LogLevel=ERROR',
  '-o',
  'BatchMode=yes',
  '-o',
  'IdentitiesOnly=yes',
];

/** Starts the real gateway (dist/src/main.js) as a child process on free ports in a temp folder. */
export async function startGateway(options: GatewayOptions = {}): Promise<TestGateway> {
  const dir = await tempDir('gw');
  const key = await makeKey(dir, 'alice_key');
  const users = options.users ?? [
    { UserName: 'alice', HomeDirectory: '/demo/home/alice', SshPublicKeys: [await publicKey(key)] },
  ];
  const config = {
    server: { port: 0, hostKeys: ['state/ssh_host_ed25519_key'] },
    storage: { type: 'local', root: 'data' },
    metrics: { host: '127.0.0.1', port: 0 },
    users,
    ...options.config,
    // Each log line at the end of its event-loop turn, right after the reply it records, so that a test may
    // read the lines of what its client just did; with the default 20 ms, a client that exits at once can
    // be faster than the write (the unit tests in logger-destination.test.ts cover the interval).
    logging: { writeIntervalMs: 0, ...(options.config?.['logging'] as object | undefined) },
  };
  const configFile = path.join(dir, 'gateway.yaml');
  await writeFile(configFile, stringify(config));
  return launch(dir, configFile, key, options.env, options.nodeArgs);
}

export async function launch(
  dir: string,
  configFile: string,
  key: string,
  env?: NodeJS.ProcessEnv,
  nodeArgs: string[] = START_NODE_FLAGS,
): Promise<TestGateway> {
  const child = spawn(process.execPath, [...nodeArgs, MAIN, '--config', configFile], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const deadline = Date.now() + 20_000;
  let port: number | undefined;
  let metricsPort: number | undefined;
  while (port === undefined) {
    const listening = lines().find((l) => l['msg'] === 'SFTP gateway listening');
    if (listening) {
      port = listening['port'] as number;
      metricsPort = lines().find((l) => l['component'] === 'observability-http')?.['port'] as
        | number
        | undefined;
      break;
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`gateway did not start (exit ${child.exitCode}):\n${err}\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  // The metrics listener logs right after the SSH one.
  for (let i = 0; i < 20 && metricsPort === undefined; i++) {
    await new Promise((r) => setTimeout(r, 25));
    metricsPort = lines().find((l) => l['component'] === 'observability-http')?.['port'] as
      | number
      | undefined;
  }
  const sshPort = port;
  const gw: TestGateway = {
    dir,
    port: sshPort,
    metricsPort,
    key,
    configFile,
    process: child,
    logs: () => out + err,
    stderr: () => err,
    logLines: lines,
    async waitForLog(predicate, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const found = lines().find(predicate);
        if (found) return found;
        if (Date.now() > until) throw new Error(`no matching log line within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    sshArgs: (k = key) => [...SSH_OPTS, '-i', k, '-P', String(sshPort)],
    sftp(commands, o = {}) {
      const args = [
        ...gw.sshArgs(o.key),
        ...(o.extraArgs ?? []),
        '-b',
        '-',
        `${o.user ?? 'alice'}@127.0.0.1`,
      ];
      return run('sftp', args, { input: commands });
    },
  };
  return gw;
}
