/**
 * Authentication and connection limits against the real gateway process, with OpenSSH and paramiko.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  launch,
  MAIN,
  makeKey,
  publicKey,
  run,
  SSH_OPTS,
  startGateway,
  type TestGateway,
  tempDir,
} from '../support/gateway.js';

const CLIENTS = fileURLToPath(new URL('../../../test/e2e/clients/', import.meta.url));
const PYTHON = '/usr/bin/python3';

describe('public-key authentication', () => {
  let gw: TestGateway;
  let keys: Record<string, string>;
  let stranger: string;

  before(async () => {
    const dir = await tempDir('keys');
    keys = {
      ed25519: await makeKey(dir, 'k-ed25519', 'ed25519'),
      'ecdsa-256': await makeKey(dir, 'k-ecdsa256', 'ecdsa', 256),
      'ecdsa-384': await makeKey(dir, 'k-ecdsa384', 'ecdsa', 384),
      'ecdsa-521': await makeKey(dir, 'k-ecdsa521', 'ecdsa', 521),
      'rsa-3072': await makeKey(dir, 'k-rsa3072', 'rsa', 3072),
    };
    stranger = await makeKey(dir, 'k-stranger', 'ed25519');
    gw = await startGateway({
      users: [
        {
          UserName: 'alice',
          HomeDirectory: '/demo/home/alice',
          SshPublicKeys: await Promise.all(Object.values(keys).map(publicKey)),
        },
      ],
      config: { server: { port: 0, hostKeys: ['state/ssh_host_ed25519_key'], maxAuthTries: 3 } },
    });
  });
  after(async () => {
    await gw.stop();
  });

  const login = (key: string, user = 'alice', extra: string[] = []) =>
    run('sftp', [...SSH_OPTS, ...extra, '-i', key, '-P', String(gw.port), '-b', '-', `${user}@127.0.0.1`], {
      input: 'pwd\n',
    });

  for (const name of ['ed25519', 'ecdsa-256', 'ecdsa-384', 'ecdsa-521', 'rsa-3072']) {
    test(`a user with several keys logs in with ${name}`, async () => {
      const r = await login(keys[name]!);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /\/demo\/home\/alice/);
    });
  }

  test('RSA signs with rsa-sha2-512 and rsa-sha2-256; SHA-1 ssh-rsa signatures are refused', async () => {
    for (const algo of ['rsa-sha2-512', 'rsa-sha2-256']) {
      const r = await login(keys['rsa-3072']!, 'alice', ['-o', `PubkeyAcceptedAlgorithms=${algo}`]);
      assert.equal(r.code, 0, `${algo}: ${r.stderr}`);
    }
    const sha1 = await login(keys['rsa-3072']!, 'alice', ['-o', 'PubkeyAcceptedAlgorithms=ssh-rsa']);
    assert.notEqual(sha1.code, 0);
  });

  test('an unknown user and a wrong key look the same to the client', async () => {
    const wrongKey = await login(stranger, 'alice');
    const unknownUser = await login(keys['ed25519']!, 'mallory');
    assert.notEqual(wrongKey.code, 0);
    assert.notEqual(unknownUser.code, 0);
    assert.match(wrongKey.stderr, /Permission denied \(publickey\)/);
    assert.equal(unknownUser.stderr.replace('mallory', 'alice'), wrongKey.stderr);
    await gw.waitForLog((l) => l['activity-type'] === 'AUTH_FAILURE' && l['user'] === 'mallory');
    const failures = gw.logLines().filter((l) => l['activity-type'] === 'AUTH_FAILURE');
    assert.ok(
      failures.every((l) => !JSON.stringify(l).includes('AAAA')),
      'no key body in the log',
    );
  });

  test('the connection ends after maxAuthTries failed attempts', async () => {
    const dir = await tempDir('many');
    const wrong = await Promise.all([1, 2, 3, 4, 5].map((i) => makeKey(dir, `w${i}`)));
    const r = await run('ssh', [
      ...SSH_OPTS,
      '-v',
      ...wrong.flatMap((k) => ['-i', k]),
      '-p',
      String(gw.port),
      '-s',
      'alice@127.0.0.1',
      'sftp',
    ]);
    assert.notEqual(r.code, 0);
    const offered = (r.stderr.match(/Offering public key/g) ?? []).length;
    assert.equal(offered, 3, `the client could offer ${offered} keys before the server hung up`);
  });
});

describe('connection limits and robustness', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway({
      config: {
        server: {
          port: 0,
          hostKeys: ['state/ssh_host_ed25519_key'],
          loginGraceTimeSeconds: 1,
          idleTimeoutSeconds: 2,
          maxChannelsPerConnection: 2,
        },
      },
    });
  });
  after(async () => {
    await gw.stop();
  });

  test('a client that does not log in is disconnected after the login grace time', async () => {
    const socket = net.connect(gw.port, '127.0.0.1');
    let banner = '';
    socket.on('data', (d) => {
      banner += d.toString('latin1');
    });
    const closedAfter = await new Promise<number>((resolve) => {
      const start = Date.now();
      socket.on('close', () => resolve(Date.now() - start));
      setTimeout(() => resolve(-1), 10_000);
    });
    assert.match(banner, /^SSH-2\.0-/);
    assert.ok(closedAfter > 0, 'the server closed the connection');
  });

  for (const check of ['idle', 'channels', 'malformed']) {
    test(`paramiko: ${check}`, async () => {
      const r = await run(PYTHON, [
        path.join(CLIENTS, 'session_limits.py'),
        check,
        String(gw.port),
        gw.key,
        'alice',
      ]);
      assert.equal(r.code, 0, `${check}: ${r.stdout}\n${r.stderr}`);
    });
  }
});

describe('startup', () => {
  test('the host key is generated once and kept across restarts', async () => {
    const gw = await startGateway();
    const scan1 = await run('ssh-keyscan', ['-p', String(gw.port), '-t', 'ed25519', '127.0.0.1']);
    assert.equal(await gw.stop(), 0);
    const again = await launch(gw.dir, gw.configFile, gw.key);
    const scan2 = await run('ssh-keyscan', ['-p', String(again.port), '-t', 'ed25519', '127.0.0.1']);
    await again.stop();
    const keyOf = (s: string) =>
      s
        .split('\n')
        .find((l) => l.includes('ssh-ed25519'))
        ?.split(' ')
        .slice(1)
        .join(' ');
    assert.ok(keyOf(scan1.stdout), scan1.stderr);
    assert.equal(keyOf(scan2.stdout), keyOf(scan1.stdout));
  });

  test('a malformed config exits non-zero with FILE:LINE:COL lines and no stack trace', async () => {
    const dir = await tempDir('badcfg');
    const file = path.join(dir, 'gateway.yaml');
    await writeFile(
      file,
      'server:\n  port: 2222\n  hostKeys: [k]\nstorage:\n  type: s4\nusers:\n  - UserName: x\n',
    );
    const r = await run(process.execPath, [MAIN, '--config', file]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:\\d+: storage\\.type: `, 'm'),
    );
    assert.match(r.stderr, /:7:\d+: users\[0\]\.UserName: /);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    const viaEnv = await run(process.execPath, [MAIN], {
      env: { ...process.env, SFTP_GATEWAY_CONFIG: file },
    });
    assert.equal(viaEnv.code, 2);
    assert.match(viaEnv.stderr, /storage\.type/);
  });
});
