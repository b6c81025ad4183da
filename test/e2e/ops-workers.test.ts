/**
 * `server.workers: 2` with the real gateway process: the SSH port is shared by two worker processes
 * (node:cluster), /metrics and /readyz speak for both, a user made through the user API can log in on
 * either worker at once, a worker that dies is replaced, a worker that cannot start fails the container,
 * and SIGTERM stops everything with exit code 0.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  CreateUserCommand,
  DeleteUserCommand,
  ListServersCommand,
  type TransferClient,
} from '@aws-sdk/client-transfer';
import { parse, stringify } from 'yaml';
import {
  makeFile,
  makeKey,
  publicKey,
  sha256File,
  startGateway,
  type TestGateway,
  tempDir,
} from '../support/gateway.js';
import { s3SkipReason, startS3 } from '../support/s3.js';
import { apiConfig, apiPort, sdkClient } from '../support/transfer-api.js';
import { listKeys, listUploads, s3Client, s3Storage, scrape, value, waitFor } from './ops-support.js';

const MiB = 1024 * 1024;

const ROLE = 'arn:aws:iam::176354371281:role/transfer-s3-access';

/** The worker index of each session, from the CONNECTED audit lines. */
const connectedWorkers = (gw: TestGateway, user = 'alice') =>
  gw
    .logLines()
    .filter((l) => l['activity-type'] === 'CONNECTED' && l['user'] === user)
    .map((l) => l['worker'] as number);

/** Four logins back to back (new connections alternate between the workers): each succeeds, on both workers. */
async function logsInOnBothWorkers(gw: TestGateway, user: string, key: string, when: string): Promise<void> {
  for (let i = 0; i < 4; i++) {
    const r = await gw.sftp('pwd\n', { user, key });
    assert.equal(r.code, 0, `login ${i} ${when}: ${r.stderr}`);
  }
  assert.deepEqual([...new Set(connectedWorkers(gw, user))].sort(), [0, 1]);
}

async function readyz(port: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('server.workers: 2 (local store)', () => {
  let gw: TestGateway;
  let sdk: TransferClient;
  let serverId: string;

  before(async () => {
    gw = await startGateway({ config: { server: { port: 0, workers: 2 }, api: apiConfig() } });
    sdk = sdkClient(`http://127.0.0.1:${await apiPort(gw)}`);
    serverId = (await sdk.send(new ListServersCommand({}))).Servers![0]!.ServerId!;
  });
  after(async () => {
    sdk?.destroy();
    await gw?.stop();
  });

  test('both workers serve SFTP sessions; one listening line for the container', async () => {
    const workers = gw.logLines().filter((l) => l['msg'] === 'worker listening');
    assert.deepEqual(workers.map((l) => l['worker']).sort(), [0, 1]);
    assert.equal(gw.logLines().filter((l) => l['msg'] === 'SFTP gateway listening').length, 1);
    const results = await Promise.all(
      [0, 1, 2, 3, 4, 5].map((i) => gw.sftp(`put ${gw.configFile} upload-${i}.yaml\nls -l\n`)),
    );
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([...new Set(connectedWorkers(gw))].sort(), [0, 1], 'sessions on both workers');
  });

  test('/metrics sums the workers; /readyz is ready with both running', async () => {
    const families = await scrape(gw.metricsPort!);
    assert.equal(value(families, 'sftp_gateway_workers', { state: 'configured' }), 2);
    assert.equal(value(families, 'sftp_gateway_workers', { state: 'running' }), 2);
    const sessions = connectedWorkers(gw).length;
    assert.ok(sessions >= 6);
    assert.equal(value(families, 'sftp_gateway_sessions_total'), sessions, 'every session of both workers');
    assert.equal(value(families, 'sftp_gateway_files_in_total'), 6);
    // An info series is not summed over the workers.
    assert.equal(value(families, 'sftp_gateway_ssh_crypto_info', { implementation: 'native' }), 1);
    const r = await readyz(gw.metricsPort!);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual((r.body['checks'] as Record<string, unknown>)['workers'], { ok: true });
  });

  test('a user created through the API logs in on either worker at once; deleted, on neither', async () => {
    const key = await makeKey(gw.dir, 'bob_key');
    await sdk.send(
      new CreateUserCommand({
        ServerId: serverId,
        UserName: 'bob',
        Role: ROLE,
        HomeDirectory: '/demo/home/bob',
        SshPublicKeyBody: await publicKey(key),
      }),
    );
    // Back to back, well within the user store's 1 s poll: connections alternate between the workers.
    await logsInOnBothWorkers(gw, 'bob', key, 'right after CreateUser');
    await sdk.send(new DeleteUserCommand({ ServerId: serverId, UserName: 'bob' }));
    for (let i = 0; i < 4; i++) {
      const r = await gw.sftp('pwd\n', { user: 'bob', key });
      assert.notEqual(r.code, 0, `login ${i} right after DeleteUser must fail`);
    }
  });

  test('a worker killed is replaced; sessions go on meanwhile', async () => {
    const pidOf = (index: number) =>
      gw
        .logLines()
        .filter((l) => l['msg'] === 'worker listening' && l['worker'] === index)
        .at(-1)?.['pid'] as number;
    const victim = pidOf(1);
    process.kill(victim, 'SIGKILL');
    await gw.waitForLog((l) => l['msg'] === 'worker exited: starting another' && l['worker'] === 1);
    const during = await gw.sftp('ls\n');
    assert.equal(during.code, 0, during.stderr);
    await gw.waitForLog((l) => l['msg'] === 'worker restarted' && l['worker'] === 1, 15_000);
    assert.notEqual(pidOf(1), victim);
    await waitFor(async () => (await readyz(gw.metricsPort!)).status === 200, 10_000, '/readyz to be 200 again');
    const onWorker1 = () => connectedWorkers(gw).filter((w) => w === 1).length;
    const before = onWorker1();
    for (let i = 0; i < 4; i++) assert.equal((await gw.sftp('ls\n')).code, 0);
    assert.ok(onWorker1() > before, 'the new worker 1 takes sessions');
    assert.equal(value(await scrape(gw.metricsPort!), 'sftp_gateway_workers', { state: 'running' }), 2);
  });

  test('SIGTERM stops every worker gracefully; exit 0', async () => {
    const code = await gw.stop('SIGTERM');
    assert.equal(code, 0, gw.logs());
    const done = gw.logLines().filter((l) => l['msg'] === 'shutdown complete');
    assert.deepEqual(done.map((l) => l['worker']).sort(), [0, 1]);
    assert.equal(gw.logLines().filter((l) => l['msg'] === 'all workers stopped').length, 1);
  });
});

describe('server.workers: a worker that cannot start', () => {
  test('fails the container: exit 1 with the reason logged', async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      await assert.rejects(
        startGateway({ config: { server: { port, host: '127.0.0.1', workers: 2 } } }),
        (e: Error) => {
          assert.match(e.message, /exit 1/);
          assert.match(e.message, /EADDRINUSE/);
          assert.match(e.message, /a worker failed to start: stopping/);
          return true;
        },
      );
    } finally {
      taken.close();
    }
  });
});

describe('server.workers: 2, config reloaded with SIGHUP (watchConfig off)', () => {
  test('a user added to the file logs in on both workers after one SIGHUP to the primary', async () => {
    const gw = await startGateway({ config: { server: { port: 0, workers: 2 }, watchConfig: false } });
    try {
      const key = await makeKey(gw.dir, 'carol_key');
      const config = parse(await readFile(gw.configFile, 'utf8')) as { users: Record<string, unknown>[] };
      config.users.push({ UserName: 'carol', HomeDirectory: '/demo/home/carol', SshPublicKeys: [await publicKey(key)] });
      await writeFile(gw.configFile, stringify(config));
      assert.notEqual((await gw.sftp('pwd\n', { user: 'carol', key })).code, 0, 'not before the reload');
      gw.process.kill('SIGHUP');
      await waitFor(
        () => gw.logLines().filter((l) => l['msg'] === 'config reloaded').length === 2,
        10_000,
        'both workers to reload',
      );
      await logsInOnBothWorkers(gw, 'carol', key, 'after SIGHUP');
    } finally {
      assert.equal(await gw.stop(), 0);
    }
  });
});

const skip = s3SkipReason();

describe('server.workers: 2 on S3', { skip }, () => {
  let server: Awaited<ReturnType<typeof startS3>>;
  before(async () => {
    server = await startS3({ compat: true });
  });
  after(async () => {
    await server?.stop();
  });

  test('parallel transfers on both workers; SIGTERM aborts an unfinished upload cleanly; exit 0', async () => {
    const dir = await tempDir('workers-s3');
    const key = await makeKey(dir, 'alice');
    const home = `/${server.bucket}/workers/alice`;
    const client = s3Client(server);
    const gw = await startGateway({
      config: { server: { port: 0, workers: 2, shutdownDeadlineSeconds: 1 }, storage: s3Storage(server) },
      users: [{ UserName: 'alice', HomeDirectory: home, SshPublicKeys: [await publicKey(key)] }],
    });
    try {
      const src = path.join(dir, 'twelve');
      await makeFile(src, 12 * MiB); // three 5 MiB parts: multipart in each worker's half of uploadMemoryMiB
      const puts = await Promise.all(
        [0, 1, 2, 3].map((i) => gw.sftp(`put ${src} copy-${i}\nget copy-${i} ${src}-back-${i}\n`, { key })),
      );
      for (const r of puts) assert.equal(r.code, 0, r.stderr);
      for (const i of [0, 1, 2, 3]) assert.equal(await sha256File(`${src}-back-${i}`), await sha256File(src));
      assert.deepEqual([...new Set(connectedWorkers(gw))].sort(), [0, 1]);

      const big = path.join(dir, 'big');
      await makeFile(big, 64 * MiB);
      const upload = gw.sftp(`put ${big} big\n`, { key, extraArgs: ['-l', '24000'] });
      await waitFor(async () => (await listUploads(client, server.bucket)).length > 0, 30_000, 'a multipart upload');
      assert.equal(await gw.stop('SIGTERM'), 0, 'exit code 0');
      assert.notEqual((await upload).code, 0, 'the client sees the upload fail');
      assert.deepEqual(await listUploads(client, server.bucket), [], 'no multipart upload left');
      const files = (await listKeys(client, server.bucket, 'workers/alice/')).filter((k) => !k.endsWith('/'));
      assert.deepEqual(files.sort(), [
        'workers/alice/copy-0',
        'workers/alice/copy-1',
        'workers/alice/copy-2',
        'workers/alice/copy-3',
      ]);
    } finally {
      await gw.stop();
      client.destroy();
    }
  });

  test('bucket user store: worker 0 alone polls; a user another replica wrote logs in on both workers', async () => {
    const dir = await tempDir('workers-s3-users');
    const key = await makeKey(dir, 'erin');
    const client = s3Client(server);
    const gw = await startGateway({
      config: {
        server: { port: 0, workers: 2 },
        storage: s3Storage(server),
        userStore: { type: 's3', bucket: server.bucket, prefix: 'workers-users/', pollIntervalMs: 200 },
      },
    });
    try {
      // What another replica's CreateUser writes.
      const erin = {
        UserName: 'erin',
        HomeDirectory: `/${server.bucket}/workers/erin`,
        HomeDirectoryType: 'PATH',
        Role: ROLE,
        SshPublicKeys: [
          { SshPublicKeyId: 'key-0123456789abcdef0', SshPublicKeyBody: await publicKey(key), DateImported: new Date().toISOString() },
        ],
      };
      await client.send(
        new PutObjectCommand({
          Bucket: server.bucket,
          Key: 'workers-users/users/erin.json',
          Body: JSON.stringify(erin),
        }),
      );
      await waitFor(async () => (await gw.sftp('pwd\n', { user: 'erin', key })).code === 0, 10_000, 'a first login');
      // Worker 1 does not poll: it knows erin only because worker 0 had it re-read the store.
      await logsInOnBothWorkers(gw, 'erin', key, 'after the bucket write');
    } finally {
      assert.equal(await gw.stop(), 0);
      client.destroy();
    }
  });
});
