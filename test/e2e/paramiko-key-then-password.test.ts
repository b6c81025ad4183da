/**
 * PUBLIC_KEY_AND_PASSWORD with paramiko's own API: `t.auth_publickey()` then `t.auth_password()`. paramiko
 * sends an SSH_MSG_SERVICE_REQUEST("ssh-userauth") before every auth_*() call; ssh2 1.17's server
 * disconnected on the second one (scripts/patch-dependencies.mjs fixes it), OpenSSH's sshd accepts it.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { hashPassword } from '../../src/auth/passwords.js';
import {
  makeKey,
  publicKey,
  ROOT,
  run,
  startGateway,
  type TestGateway,
  tempDir,
} from '../support/gateway.js';

/** `python3` on PATH may be a pyenv without paramiko. */
const PY = '/usr/bin/python3';
const CLIENT = path.join(ROOT, 'test/e2e/clients/key_then_password.py');

interface Outcome {
  partial?: string[];
  attempts: { ok: boolean; remaining?: string[]; error?: string }[];
  authenticated: boolean;
  cwd?: string;
  error?: string;
}

describe('paramiko auth_publickey() then auth_password() (a repeated SERVICE_REQUEST)', () => {
  let gw: TestGateway;
  let k: string;
  before(async () => {
    const dir = await tempDir('kp2');
    k = await makeKey(dir, 'kp2');
    gw = await startGateway({
      users: [
        {
          UserName: 'heidi',
          HomeDirectory: '/demo/heidi',
          SshPublicKeys: [await publicKey(k)],
          PasswordHash: await hashPassword('pw-heidi-1'),
        },
      ],
      config: {
        server: {
          port: 0,
          hostKeys: ['state/ssh_host_ed25519_key'],
          sftpAuthenticationMethods: 'PUBLIC_KEY_AND_PASSWORD',
        },
      },
    });
  });
  after(async () => {
    assert.equal(await gw.stop(), 0);
  });

  const attempt = async (...passwords: string[]) => {
    const r = await run(PY, [CLIENT, '127.0.0.1', String(gw.port), 'heidi', k, ...passwords]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Outcome;
  };

  test('the key, then the password, each with its own SERVICE_REQUEST', async () => {
    const o = await attempt('pw-heidi-1');
    assert.equal(o.error, undefined, JSON.stringify(o));
    assert.deepEqual(o.partial, ['password']);
    assert.deepEqual(o.attempts, [{ ok: true, remaining: [] }]);
    assert.equal(o.authenticated, true);
    assert.equal(o.cwd, '/demo/heidi');
  });

  test('a wrong password after the key is refused; the right one on the same connection then works', async () => {
    const o = await attempt('wrong', 'pw-heidi-1');
    assert.equal(o.error, undefined, JSON.stringify(o));
    assert.equal(o.attempts[0]?.ok, false);
    assert.match(String(o.attempts[0]?.error), /Authentication/);
    assert.deepEqual(o.attempts[1], { ok: true, remaining: [] });
    assert.equal(o.authenticated, true);
  });

  test('a wrong password alone after the key does not authenticate', async () => {
    const o = await attempt('wrong');
    assert.equal(o.error, undefined, JSON.stringify(o));
    assert.equal(o.authenticated, false);
    assert.ok(
      gw.logLines().some((l) => l['activity-type'] === 'AUTH_FAILURE' && l['user'] === 'heidi'),
    );
  });
});
