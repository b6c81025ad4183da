/**
 * Two gateway replicas behind a real HAProxy (Debian package, `send-proxy-v2`), sharing one host key file
 * and one S3 server: every connection sees the same host key, a file uploaded through one replica
 * downloads through the other, the logs carry the client's address as HAProxy reports it (not HAProxy's),
 * and a connection without a PROXY header from an untrusted address is refused.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  makeFile,
  makeKey,
  publicKey,
  run,
  sha256File,
  startGateway,
  type TestGateway,
  tempDir,
} from '../support/gateway.js';
import { type S3TestServer, s3SkipReason, startS3 } from '../support/s3.js';
import { type HAProxy, s3Storage, startHAProxy, waitFor } from './ops-support.js';

const MiB = 1024 * 1024;
const CLIENT_IP = '127.0.0.2';

const skip = s3SkipReason() ?? (existsSync('/usr/sbin/haproxy') ? undefined : 'haproxy is not installed');

describe('two replicas behind HAProxy with PROXY protocol v2', { skip }, () => {
  let server: S3TestServer;
  let replicas: TestGateway[];
  let haproxy: HAProxy;
  let work: string;
  let key: string;
  let hostPub: string;
  let knownHosts: string;

  before(async () => {
    server = await startS3({ compat: true });
    work = await tempDir('replicas');
    key = await makeKey(work, 'alice');
    // The shared host key, as a Kubernetes Secret would mount it into every replica.
    const hostKey = await makeKey(work, 'ssh_host_ed25519_key');
    hostPub = await publicKey(hostKey);
    const users = [
      {
        UserName: 'alice',
        HomeDirectory: `/${server.bucket}/replicas/alice`,
        SshPublicKeys: [await publicKey(key)],
      },
    ];
    const config = {
      server: {
        port: 0,
        hostKeys: [hostKey],
        proxyProtocol: { enabled: true, trustedSources: ['127.0.0.1/32'], timeoutSeconds: 5 },
      },
      stateDir: 'state',
      storage: s3Storage(server),
    };
    replicas = await Promise.all([startGateway({ config, users }), startGateway({ config, users })]);
    haproxy = await startHAProxy(
      work,
      replicas.map((r) => r.port),
    );
    const [kind, blob] = hostPub.split(' ');
    knownHosts = path.join(work, 'known_hosts');
    await writeFile(knownHosts, `[127.0.0.1]:${haproxy.port} ${kind} ${blob}\n`);
  });
  after(async () => {
    await haproxy?.stop();
    const codes = await Promise.all((replicas ?? []).map((r) => r.stop()));
    assert.deepEqual(
      codes,
      codes.map(() => 0),
    );
    await server?.stop();
  });

  /** sftp through HAProxy from 127.0.0.2, checking the host key against known_hosts (strict). */
  const sftp = (commands: string) =>
    run(
      'sftp',
      [
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        `UserKnownHostsFile=${knownHosts}`,
        '-o',
        'LogLevel=ERROR',
        '-o',
        'BatchMode=yes',
        '-o',
        'IdentitiesOnly=yes',
        '-o',
        `BindAddress=${CLIENT_IP}`,
        '-i',
        key,
        '-P',
        String(haproxy.port),
        '-b',
        '-',
        'alice@127.0.0.1',
      ],
      { input: commands },
    );

  /** Which replica logged an audit line of `type` for `file`. */
  const servedBy = (type: string, file: string, mode: string) =>
    replicas.flatMap((r, i) =>
      r
        .logLines()
        .filter(
          (l) =>
            l['activity-type'] === type &&
            String(l['path']).endsWith(`/${file}`) &&
            String(l['mode']).includes(mode),
        )
        .map(() => i),
    );

  test('repeated connections through the load balancer see one host key', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await run('ssh-keyscan', [
        '-T',
        '10',
        '-t',
        'ed25519',
        '-p',
        String(haproxy.port),
        '127.0.0.1',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.split('\n').filter((l) => l && !l.startsWith('#'));
      assert.equal(lines.length, 1, r.stdout);
      seen.add(lines[0]!.split(' ').slice(1, 3).join(' '));
    }
    assert.deepEqual([...seen], [hostPub.split(' ').slice(0, 2).join(' ')]);
  });

  test('a file uploaded through one replica downloads through the other', async () => {
    const src = path.join(work, 'shared');
    await makeFile(src, 7 * MiB + 11);
    const up = await sftp(`put ${src} shared\n`);
    assert.equal(up.code, 0, up.stderr);
    // Audit lines are written after the replies they record (logging.writeIntervalMs), so the client may
    // exit before its CLOSE line reaches the pipe: wait for it rather than read the log at once.
    await waitFor(() => servedBy('CLOSE', 'shared', 'write').length > 0, 5_000, 'the upload\'s CLOSE line');
    const uploader = servedBy('CLOSE', 'shared', 'write');
    assert.equal(uploader.length, 1, 'one replica stored the file');
    // Round robin: within two more connections the other replica serves a download.
    let downloader: number[] = [];
    for (let i = 0; i < 3 && !downloader.some((d) => d !== uploader[0]); i++) {
      const down = await sftp(`get shared ${src}.${i}\n`);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(await sha256File(`${src}.${i}`), await sha256File(src));
      await waitFor(() => servedBy('CLOSE', 'shared', 'read').length > i, 5_000, 'the download\'s CLOSE line');
      downloader = servedBy('CLOSE', 'shared', 'read');
    }
    assert.ok(
      downloader.some((d) => d !== uploader[0]),
      `downloaded through the other replica (upload: ${uploader}, downloads: ${downloader})`,
    );
  });

  test('the logs show the client\'s address as HAProxy reports it, not HAProxy\'s', async () => {
    const connected = replicas.flatMap((r) => r.logLines().filter((l) => l['activity-type'] === 'CONNECTED'));
    assert.ok(connected.length >= 2, 'sessions through both tests so far');
    for (const line of connected) {
      assert.equal(line['source-ip'], CLIENT_IP, JSON.stringify(line));
      assert.notEqual(line['source-port'], undefined);
    }
    for (const [i, r] of replicas.entries()) {
      const sessions = new Set(
        r
          .logLines()
          .filter((l) => l['activity-type'] === 'CONNECTED')
          .map((l) => l['session-id']),
      );
      for (const l of r.logLines().filter((x) => sessions.has(x['session-id']))) {
        assert.equal(l['source-ip'], CLIENT_IP, `replica ${i}: ${JSON.stringify(l)}`);
      }
    }
  });

  test('a connection without a PROXY header from an untrusted address is refused', async () => {
    const target = replicas[0]!;
    const outcome = await new Promise<{ data: string; closed: boolean }>((resolve) => {
      let data = '';
      const s = net.connect({ port: target.port, host: '127.0.0.1', localAddress: CLIENT_IP });
      s.on('data', (d) => {
        data += d;
      });
      s.on('connect', () => s.write('SSH-2.0-OpenSSH_9.2\r\n'));
      s.on('error', () => undefined);
      s.on('close', () => resolve({ data, closed: true }));
      setTimeout(() => {
        s.destroy();
        resolve({ data, closed: false });
      }, 5000).unref();
    });
    assert.equal(outcome.closed, true, 'closed by the gateway');
    assert.equal(outcome.data, '', 'no SSH banner');
    // The refusal is logged with the untrusted address. Waited for, not read at once: the line is written
    // at the end of the turn that closed the socket, and the client may see the close first.
    await target.waitForLog(
      (l) => l['source-ip'] === CLIENT_IP && String(l['msg']).includes('trusted source only'),
      5_000,
    );
    // And OpenSSH straight to a replica, bypassing HAProxy, fails too.
    const direct = await run(
      'sftp',
      [
        '-o',
        'StrictHostKeyChecking=no',
        '-o',
        'UserKnownHostsFile=/dev/null',
        '-o',
        'BatchMode=yes',
        '-o',
        `BindAddress=${CLIENT_IP}`,
        '-i',
        key,
        '-P',
        String(target.port),
        '-b',
        '-',
        'alice@127.0.0.1',
      ],
      { input: 'pwd\n' },
    );
    assert.notEqual(direct.code, 0);
    assert.ok(!(await readFile(knownHosts, 'utf8')).includes(String(target.port)));
  });
});
