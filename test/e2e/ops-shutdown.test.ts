/**
 * Graceful shutdown of the real gateway process: SIGTERM during an upload lets it finish when it can
 * within `server.shutdownDeadlineSeconds`, else aborts it without leaving anything behind (no object, no
 * multipart upload on S3); the process exits 0 either way.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
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
import { listKeys, listUploads, s3Client, s3Storage, waitFor } from './ops-support.js';

const MiB = 1024 * 1024;

/** Logged JSON lines with this message. */
const logged = (gw: TestGateway, msg: string) => gw.logLines().filter((l) => l['msg'] === msg);
const activity = (gw: TestGateway, type: string) => gw.logLines().filter((l) => l['activity-type'] === type);

function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      // Accepted by the kernel but closed at once is refusal too; a banner means it is still serving.
      s.once('data', () => {
        s.destroy();
        resolve(false);
      });
      s.once('close', () => resolve(true));
    });
    s.once('error', () => resolve(true));
  });
}

describe('SIGTERM during an upload (local store)', () => {
  let work: string;
  before(async () => {
    work = await tempDir('shutdown');
  });

  test('an upload that finishes within the deadline completes; new connections are refused; exit 0', async () => {
    const gw = await startGateway({ config: { server: { port: 0, shutdownDeadlineSeconds: 30 } } });
    const src = path.join(work, 'completes');
    await makeFile(src, 6 * MiB);
    // 16 Mbit/s: about 3 s for 6 MiB.
    const upload = gw.sftp(`put ${src} completes\n`, { extraArgs: ['-l', '16000'] });
    await waitFor(() => activity(gw, 'OPEN').length > 0, 10_000, 'the upload to start');
    await new Promise((r) => setTimeout(r, 500));
    const stopped = gw.stop('SIGTERM');
    await waitFor(
      () => logged(gw, 'shutting down: no new connections, waiting for transfers').length > 0,
      5000,
      'the shutdown to begin',
    );
    assert.equal(await refusesConnections(gw.port), true, 'no new connections while draining');
    const r = await upload;
    assert.equal(r.code, 0, `the upload completes:\n${r.stdout}\n${r.stderr}`);
    assert.equal(await stopped, 0, 'exit code 0');
    const stored = path.join(gw.dir, 'data/demo/home/alice/completes');
    assert.equal((await stat(stored)).size, 6 * MiB);
    assert.equal(await sha256File(stored), await sha256File(src));
    assert.equal(activity(gw, 'CLOSE').length, 1, 'one CLOSE audit line');
    assert.equal(logged(gw, 'shutdown complete').length, 1);
    assert.equal(logged(gw, 'shutdown deadline reached: aborting unfinished transfers').length, 0);
  });

  test('an upload past the deadline is aborted: no file, no partial file; exit 0', async () => {
    const gw = await startGateway({ config: { server: { port: 0, shutdownDeadlineSeconds: 1 } } });
    const src = path.join(work, 'aborted');
    await makeFile(src, 40 * MiB);
    // 8 Mbit/s: about 40 s for 40 MiB, far past the 1 s deadline.
    const upload = gw.sftp(`put ${src} aborted\n`, { extraArgs: ['-l', '8000'] });
    await waitFor(() => activity(gw, 'OPEN').length > 0, 10_000, 'the upload to start');
    await new Promise((r) => setTimeout(r, 1000));
    const t0 = Date.now();
    assert.equal(await gw.stop('SIGTERM'), 0, 'exit code 0');
    assert.ok(Date.now() - t0 < 10_000, `stopped within the deadline plus clean-up (${Date.now() - t0} ms)`);
    const r = await upload;
    assert.notEqual(r.code, 0, 'the client sees the upload fail');
    assert.equal(logged(gw, 'shutdown deadline reached: aborting unfinished transfers').length, 1);
    assert.equal(activity(gw, 'PARTIAL_CLOSE').length, 1, gw.logs());
    const home = path.join(gw.dir, 'data/demo/home/alice');
    assert.equal(existsSync(path.join(home, 'aborted')), false, 'no object');
    assert.deepEqual(
      (await readdir(home)).filter((n) => n.includes('aborted')),
      [],
      'no partial file in the home directory',
    );
  });
});

const skip = s3SkipReason();

describe('SIGTERM during an upload (S3 store)', { skip }, () => {
  let server: Awaited<ReturnType<typeof startS3>>;
  let work: string;
  before(async () => {
    server = await startS3({ compat: true });
    work = await tempDir('shutdown-s3');
  });
  after(async () => {
    await server?.stop();
  });

  test('an upload past the deadline is aborted: no object and no multipart upload left; exit 0', async () => {
    const dir = await tempDir('shutdown-s3-key');
    const key = await makeKey(dir, 'alice');
    const home = `/${server.bucket}/shutdown/alice`;
    const client = s3Client(server);
    assert.deepEqual(await listUploads(client, server.bucket), [], 'no multipart upload before');
    const gw = await startGateway({
      config: { server: { port: 0, shutdownDeadlineSeconds: 1 }, storage: s3Storage(server) },
      users: [{ UserName: 'alice', HomeDirectory: home, SshPublicKeys: [await publicKey(key)] }],
    });
    const src = path.join(work, 'big');
    await makeFile(src, 64 * MiB);
    // 24 Mbit/s: the first 5 MiB part is on its way after about 2 s; the whole file needs over 20 s.
    const upload = gw.sftp(`put ${src} big\n`, { key, extraArgs: ['-l', '24000'] });
    await waitFor(
      async () => (await listUploads(client, server.bucket)).length > 0,
      30_000,
      'a multipart upload to exist',
    );
    assert.equal(await gw.stop('SIGTERM'), 0, 'exit code 0');
    const r = await upload;
    assert.notEqual(r.code, 0, 'the client sees the upload fail');
    assert.equal(activity(gw, 'PARTIAL_CLOSE').length, 1, gw.logs());
    assert.deepEqual(await listUploads(client, server.bucket), [], 'no multipart upload left');
    assert.deepEqual(
      (await listKeys(client, server.bucket, 'shutdown/')).filter((k) => k.includes('big')),
      [],
      'no object',
    );
    client.destroy();
  });
});
