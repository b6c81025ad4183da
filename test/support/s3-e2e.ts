/**
 * Helpers for end-to-end tests of the real gateway process on the S3 store (Swift on loopback): a
 * gateway whose users live in the test bucket, an SDK client to look behind the gateway's back, and
 * the Swift proxy's access log as the record of which S3 requests were really sent.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  makeKey,
  publicKey,
  type RunResult,
  run,
  startGateway,
  type TestGateway,
  tempDir,
} from './gateway.js';
import { clearAwsEnv, type S3TestServer } from './s3.js';

export const MiB = 1024 * 1024;

export function sdkClient(
  s3: S3TestServer,
  options: { compat?: boolean } = {},
): S3Client {
  clearAwsEnv();
  return new S3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: {
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
    },
    maxAttempts: 4,
    ...(options.compat === false
      ? {
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
        }
      : {}),
  });
}

/** The gateway's storage section for this server; `over` adds or replaces settings. */
export function s3Storage(
  s3: S3TestServer,
  over: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    type: 's3',
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: {
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
    },
    ...over,
  };
}

export interface S3Gateway {
  gw: TestGateway;
  /** alice's key (home `/bucket/<prefix>`); bob's home is the bucket root. */
  key: string;
  /** alice's home as a key prefix without the trailing slash, e.g. `e2e-1a2b3c`. */
  prefix: string;
  /** `sftp -b -` as alice (or another user with `user`/`key`). */
  sftp(
    commands: string,
    options?: { user?: string; key?: string; extraArgs?: string[] },
  ): Promise<RunResult>;
  /** As sftp(), and asserts that it succeeded (the failure message shows the commands and the output). */
  sftpOk(
    commands: string,
    options?: { user?: string; key?: string; extraArgs?: string[] },
  ): Promise<RunResult>;
  /** scp as alice; `args` are the source and target. */
  scp(...args: string[]): Promise<RunResult>;
  sshArgs(): string[];
}

/** Starts the real gateway on the S3 store with users alice (home `/bucket/<prefix>`) and bob (home `/bucket`). */
export async function startS3Gateway(
  s3: S3TestServer,
  options: {
    storage?: Record<string, unknown>;
    config?: Record<string, unknown>;
    prefix?: string;
  } = {},
): Promise<S3Gateway> {
  clearAwsEnv();
  const keys = await tempDir('keys');
  const key = await makeKey(keys, 'alice');
  const pub = await publicKey(key);
  const prefix = options.prefix ?? `e2e-${randomBytes(4).toString('hex')}`;
  const gw = await startGateway({
    config: { storage: s3Storage(s3, options.storage), ...options.config },
    users: [
      {
        UserName: 'alice',
        HomeDirectory: `/${s3.bucket}/${prefix}`,
        SshPublicKeys: [pub],
      },
      { UserName: 'bob', HomeDirectory: `/${s3.bucket}`, SshPublicKeys: [pub] },
    ],
  });
  const sftp = (commands: string, o = {}) => gw.sftp(commands, { key, ...o });
  return {
    gw,
    key,
    prefix,
    sftp,
    async sftpOk(commands, o = {}) {
      const r = await sftp(commands, o);
      assert.equal(r.code, 0, `sftp failed:\n${commands}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
      return r;
    },
    scp: (...args) =>
      run('scp', [...gw.sshArgs(key), ...args], { timeoutMs: 300_000 }),
    sshArgs: () => gw.sshArgs(key),
  };
}

export async function objectSha256(
  client: S3Client,
  bucket: string,
  key: string,
): Promise<string> {
  const r = await client.send(
    new GetObjectCommand({ Bucket: bucket, Key: key }),
  );
  const h = createHash('sha256');
  for await (const chunk of r.Body as Readable) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The object's size, or undefined when it does not exist. */
export async function objectSize(
  client: S3Client,
  bucket: string,
  key: string,
): Promise<number | undefined> {
  try {
    return (
      await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
    ).ContentLength;
  } catch (err) {
    if (
      (err as { $metadata?: { httpStatusCode?: number } }).$metadata
        ?.httpStatusCode === 404
    )
      return undefined;
    throw err;
  }
}

/** Keys of in-progress multipart uploads under `prefix`. */
export async function multipartUploads(
  client: S3Client,
  bucket: string,
  prefix: string,
): Promise<string[]> {
  const r = await client.send(
    new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }),
  );
  return (r.Uploads ?? []).map((u) => u.Key!);
}

export async function listKeys(
  client: S3Client,
  bucket: string,
  prefix: string,
): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const r = await client.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: prefix,
        ContinuationToken: token,
      }),
    );
    for (const o of r.Contents ?? []) keys.push(o.Key!);
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** Journal marks (`.sftp-gateway/multipart/...`) whose recorded key is `key`. */
export async function journalMarksFor(
  client: S3Client,
  bucket: string,
  key: string,
): Promise<string[]> {
  const marks: string[] = [];
  for (const mark of await listKeys(client, bucket, '.sftp-gateway/')) {
    const r = await client
      .send(new GetObjectCommand({ Bucket: bucket, Key: mark }))
      .catch(() => undefined);
    const body = r ? await r.Body!.transformToString() : '{}';
    if ((JSON.parse(body) as { key?: string }).key === key) marks.push(mark);
  }
  return marks;
}

/**
 * Successful requests of an S3 operation (the SDK's `x-id`, e.g. UploadPartCopy) on `key`, counted in
 * the Swift proxy's access log: what was really sent to the store, not what the gateway says it sent.
 */
export async function proxyLogCount(
  s3: S3TestServer,
  key: string,
  operation: string,
): Promise<number> {
  const log = await readFile(path.join(s3.dataDir, 'log', 'proxy.log'), 'utf8');
  const encodedPath = `/${s3.bucket}/${key.split('/').map(encodeURIComponent).join('/')}%3F`;
  return log
    .split('\n')
    .filter((l) => l.includes(` ${encodedPath}`) && l.includes(`x-id%3D${operation} HTTP/1.0 2`)).length;
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts `sftp -b -` in its own process group (so that SIGKILL reaches its ssh child too). */
export function spawnSftp(g: S3Gateway, extraArgs: string[], commands: string) {
  const child = spawn(
    'sftp',
    [...g.sshArgs(), ...extraArgs, '-b', '-', 'alice@127.0.0.1'],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  child.stdin.end(commands);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, exited, output: () => ({ stdout, stderr }) };
}

export function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Stops what an S3 test file started (whatever of it did start) and checks the gateway exited 0. */
export async function stopS3Lane(lane: { g?: S3Gateway; client?: S3Client; s3?: S3TestServer }): Promise<void> {
  const code = await lane.g?.gw.stop();
  lane.client?.destroy();
  await lane.s3?.stop();
  assert.equal(code, 0, 'the gateway exits 0 on SIGTERM');
}
