// biome-ignore-all lint/suspicious/noTemplateCurlyInString: IAM policy variables are written as plain ${...} strings.
/**
 * The managed service's user model end to end, with OpenSSH's sftp and paramiko against the real gateway
 * process on the local store: per-user scope-down policies in one bucket, a LOGICAL chroot, a FILE
 * mapping, passwords and key+password, a custom identity provider over HTTP, hot reload, import.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { hashPassword } from '../../src/auth/passwords.js';
import {
  MAIN,
  makeKey,
  publicKey,
  ROOT,
  run,
  startGateway,
  type TestGateway,
  tempDir,
} from '../support/gateway.js';

const ROLE = 'arn:aws:iam::000000000000:role/sftp-users';
const rolePolicy = {
  Version: '2012-10-17',
  Statement: [
    {
      Effect: 'Allow',
      Action: ['s3:ListBucket'],
      Resource: 'arn:aws:s3:::shared',
    },
    {
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      Resource: 'arn:aws:s3:::shared/*',
    },
  ],
};
/** The user guide's per-user scope-down policy: each user lists and uses only `shared/<user>/`. */
const scopeDown = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'AllowListingOfUserFolder',
      Action: ['s3:ListBucket'],
      Effect: 'Allow',
      Resource: ['arn:aws:s3:::shared'],
      Condition: {
        StringLike: {
          's3:prefix': ['${transfer:UserName}/*', '${transfer:UserName}'],
        },
      },
    },
    {
      Sid: 'HomeDirObjectAccess',
      Effect: 'Allow',
      Action: [
        's3:PutObject',
        's3:GetObject',
        's3:DeleteObject',
        's3:GetObjectVersion',
      ],
      Resource: 'arn:aws:s3:::shared/${transfer:UserName}/*',
    },
  ],
});
const PY = '/usr/bin/python3';
const LOGIN = path.join(ROOT, 'test/e2e/clients/login.py');

async function login(
  gw: TestGateway,
  user: string,
  opts: { key?: string; password?: string },
) {
  const args = [LOGIN, '127.0.0.1', String(gw.port), user];
  if (opts.key) args.push('--key', opts.key);
  if (opts.password !== undefined) args.push('--password', opts.password);
  const r = await run(PY, args);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    ok: boolean;
    partial?: string[];
    listing?: string[];
    cwd?: string;
    error?: string;
  };
}

async function until(what: string, f: () => Promise<boolean>, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await f())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('users, policies and logins (local store)', () => {
  let gw: TestGateway;
  let keys: string;
  let work: string;
  const key: Record<string, string> = {};
  let users: Record<string, unknown>[];
  const data = () => path.join(gw.dir, 'data');

  before(async () => {
    keys = await tempDir('keys');
    work = await tempDir('work');
    for (const u of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'])
      key[u] = await makeKey(keys, u);
    users = [
      {
        UserName: 'alice',
        HomeDirectory: '/shared/alice',
        Role: ROLE,
        Policy: scopeDown,
        SshPublicKeys: [await publicKey(key['alice']!)],
      },
      {
        UserName: 'bob',
        HomeDirectory: '/shared/bob',
        Role: ROLE,
        Policy: scopeDown,
        SshPublicKeys: [await publicKey(key['bob']!)],
      },
      {
        UserName: 'carol',
        HomeDirectoryType: 'LOGICAL',
        HomeDirectoryMappings: [
          { Entry: '/', Target: '/shared/${Transfer:UserName}' },
        ],
        SshPublicKeys: [await publicKey(key['carol']!)],
      },
      {
        UserName: 'dave',
        HomeDirectoryType: 'LOGICAL',
        HomeDirectoryMappings: [
          {
            Entry: '/report.txt',
            Target: '/shared/reports/dave.txt',
            Type: 'FILE',
          },
        ],
        SshPublicKeys: [await publicKey(key['dave']!)],
      },
      {
        UserName: 'erin',
        HomeDirectory: '/shared/erin',
        PasswordHash: await hashPassword('erin-secret-1'),
      },
    ];
    gw = await startGateway({
      users,
      config: { roles: [{ Arn: ROLE, Policies: [rolePolicy] }] },
    });
    await writeFile(path.join(work, 'f'), 'content');
  });
  after(async () => {
    assert.equal(await gw.stop(), 0);
  });

  const sftp = (user: string, commands: string) =>
    gw.sftp(commands, { user, key: key[user] });
  const ok = async (user: string, commands: string) => {
    const r = await sftp(user, commands);
    assert.equal(
      r.code,
      0,
      `${user} failed:\n${commands}\n${r.stdout}\n${r.stderr}`,
    );
    return r;
  };
  const refused = async (
    user: string,
    command: string,
    pattern = /Permission denied|not found|No such file/i,
  ) => {
    const r = await sftp(user, command);
    assert.notEqual(
      r.code,
      0,
      `${user} should be refused: ${command}\n${r.stdout}`,
    );
    assert.match(r.stderr, pattern, command);
  };

  test('two users in one bucket under the per-user scope-down policy cannot touch each other', async () => {
    await ok('bob', `put ${work}/f secret\nmkdir sub\nls -l\n`);
    const r = await ok(
      'alice',
      `pwd\nput ${work}/f mine\nls\nmkdir d\nrmdir d\nrename mine mine2\nget mine2 ${work}/back\n`,
    );
    assert.match(r.stdout, /Remote working directory: \/shared\/alice/);
    assert.equal(await readFile(path.join(work, 'back'), 'utf8'), 'content');
    await refused('alice', 'ls /shared/bob\n');
    await refused('alice', 'ls /shared\n');
    await refused('alice', 'cd /shared/bob\n', /Permission denied/);
    await refused('alice', `get /shared/bob/secret ${work}/stolen\n`);
    await refused(
      'alice',
      `put ${work}/f /shared/bob/planted\n`,
      /Permission denied/,
    );
    await refused(
      'alice',
      'rm /shared/bob/secret\n',
      /Permission denied|Couldn't delete/,
    );
    await refused(
      'alice',
      'mkdir /shared/bob/d\n',
      /Permission denied|Couldn't create/,
    );
    await refused(
      'alice',
      'rmdir /shared/bob/sub\n',
      /Permission denied|Couldn't remove/,
    );
    await refused(
      'alice',
      'rename mine2 /shared/bob/mine2\n',
      /Permission denied|Couldn't rename/,
    );
    await refused(
      'bob',
      'rename /shared/alice/mine2 stolen\n',
      /Permission denied|Couldn't rename/,
    );
    assert.equal(
      await readFile(path.join(data(), 'shared/bob/secret'), 'utf8'),
      'content',
    );
    const denial = gw
      .logLines()
      .find(
        (l) =>
          String(l['msg']).startsWith('permission denied: s3:') &&
          l['user'] === 'alice',
      );
    assert.ok(denial, 'each denial is logged with the S3 action and the path');
    assert.match(String(denial['path']), /^\/shared/);
  });

  test('a LOGICAL chroot user cannot escape with .., absolute paths or renames', async () => {
    await mkdir(path.join(data(), 'shared/alice'), { recursive: true });
    await writeFile(path.join(data(), 'shared/alice/private'), 'alice only');
    const r = await ok(
      'carol',
      `pwd\nput ${work}/f c1\ncd ..\ncd ../..\npwd\nls -1 /../..\n`,
    );
    assert.match(r.stdout, /Remote working directory: \/\n/);
    assert.doesNotMatch(r.stdout, /alice|private/);
    await refused('carol', `get /shared/alice/private ${work}/x\n`);
    await refused('carol', `get ../alice/private ${work}/x\n`);
    await refused('carol', `get ../../../shared/alice/private ${work}/x\n`);
    await refused('carol', 'ls /shared\n');
    // Renaming "out" only renames within the chroot: ../../c1 is /c1 itself.
    await ok('carol', 'rename c1 ../../../c2\n');
    await refused(
      'carol',
      'rename c2 /shared/alice/c2\n',
      /No such file|Couldn't rename|not found/,
    );
    assert.equal(
      await readFile(path.join(data(), 'shared/carol/c2'), 'utf8'),
      'content',
    );
    assert.equal(
      await readFile(path.join(data(), 'shared/alice/private'), 'utf8'),
      'alice only',
    );
  });

  test('a FILE mapping serves exactly one object', async () => {
    await mkdir(path.join(data(), 'shared/reports'), { recursive: true });
    await writeFile(path.join(data(), 'shared/reports/dave.txt'), 'for dave');
    await writeFile(
      path.join(data(), 'shared/reports/other.txt'),
      'not for dave',
    );
    const r = await ok('dave', `ls -1 /\nget report.txt ${work}/report\n`);
    assert.deepEqual(
      r.stdout
        .split('\n')
        .filter((l) => l && !l.startsWith('sftp>'))
        .map((l) => l.trim())
        .filter((l) => !l.startsWith('Fetching')),
      ['/report.txt'],
    );
    assert.equal(await readFile(path.join(work, 'report'), 'utf8'), 'for dave');
    await refused('dave', `get other.txt ${work}/x\n`);
    await refused('dave', `get /report.txt/../other.txt ${work}/x\n`);
    await refused(
      'dave',
      'ls /report.txt/x\n',
      /not found|Not a directory|No such file|Couldn't/i,
    );
    await refused(
      'dave',
      `put ${work}/f /new.txt\n`,
      /Permission denied|Couldn't|No such/,
    );
  });

  test('password logins with paramiko (PUBLIC_KEY_OR_PASSWORD, the default)', async () => {
    const good = await login(gw, 'erin', { password: 'erin-secret-1' });
    assert.equal(good.ok, true, good.error);
    assert.equal(good.cwd, '/shared/erin');
    const bad = await login(gw, 'erin', { password: 'wrong' });
    assert.equal(bad.ok, false);
    const nopw = await login(gw, 'alice', { password: 'anything' });
    assert.equal(
      nopw.ok,
      false,
      'a user without PasswordHash has no password login',
    );
    const byKey = await login(gw, 'alice', { key: key['alice'] });
    assert.equal(byKey.ok, true, byKey.error);
    assert.ok(
      gw
        .logLines()
        .some(
          (l) =>
            l['activity-type'] === 'CONNECTED' &&
            l['user'] === 'erin' &&
            l['method'] === 'password',
        ),
    );
  });

  test('hot reload: a key added to the file logs in without a restart; a broken file keeps the old config', async () => {
    const denied = await gw.sftp('pwd\n', { user: 'frank', key: key['frank'] });
    assert.notEqual(denied.code, 0);
    const config = parse(await readFile(gw.configFile, 'utf8')) as {
      users: Record<string, unknown>[];
    };
    config.users.push({
      UserName: 'frank',
      HomeDirectory: '/shared/frank',
      SshPublicKeys: [await publicKey(key['frank']!)],
    });
    const before = gw
      .logLines()
      .filter((l) => l['msg'] === 'config reloaded').length;
    await writeFile(gw.configFile, stringify(config));
    await until(
      'the reload',
      async () =>
        gw.logLines().filter((l) => l['msg'] === 'config reloaded').length >
          before,
    );
    const r = await gw.sftp('pwd\n', { user: 'frank', key: key['frank'] });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\/shared\/frank/);

    await writeFile(gw.configFile, `${stringify(config)}\nbogusSetting: 1\n`);
    await until('the reload failure', async () =>
      gw
        .logLines()
        .some(
          (l) =>
            l['msg'] === 'config reload failed: keeping the previous config',
        ),
    );
    const problem = gw
      .logLines()
      .find((l) => String(l['msg']).startsWith('config problem:'));
    assert.match(
      String(problem?.['problem']),
      /gateway\.yaml:\d+:\d+: bogusSetting: unknown field/,
    );
    assert.equal(
      (await gw.sftp('pwd\n', { user: 'frank', key: key['frank'] })).code,
      0,
      'the previous config still applies',
    );
    await writeFile(gw.configFile, stringify(config));
  });
});

describe('PUBLIC_KEY_AND_PASSWORD', () => {
  let gw: TestGateway;
  let k: string;
  before(async () => {
    const dir = await tempDir('kp');
    k = await makeKey(dir, 'kp');
    gw = await startGateway({
      users: [
        {
          UserName: 'grace',
          HomeDirectory: '/demo/grace',
          SshPublicKeys: [await publicKey(k)],
          PasswordHash: await hashPassword('pw-grace-1'),
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
    await gw.stop();
  });

  test('the key first, then the password; either alone is refused', async () => {
    const both = await login(gw, 'grace', { key: k, password: 'pw-grace-1' });
    assert.deepEqual(both.partial, ['password']);
    assert.equal(both.ok, true, both.error);
    assert.equal((await login(gw, 'grace', { key: k })).ok, false);
    assert.equal(
      (await login(gw, 'grace', { password: 'pw-grace-1' })).ok,
      false,
    );
    assert.equal(
      (await login(gw, 'grace', { key: k, password: 'wrong' })).ok,
      false,
    );
  });
});

describe('custom identity provider over HTTP (AWS_LAMBDA shape)', () => {
  let gw: TestGateway;
  let idp: http.Server;
  let k: string;
  const requests: Record<string, unknown>[] = [];
  before(async () => {
    const dir = await tempDir('idp');
    k = await makeKey(dir, 'idp');
    const pub = await publicKey(k);
    idp = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        const event = JSON.parse(body) as Record<string, unknown>;
        requests.push(event);
        const answer = (o: unknown) => res.end(JSON.stringify(o));
        switch (event['username']) {
          case 'idp-allow':
            return answer({
              Role: ROLE,
              HomeDirectoryType: 'LOGICAL',
              HomeDirectoryDetails: JSON.stringify([
                { Entry: '/', Target: '/shared/${Transfer:UserName}' },
              ]),
              PublicKeys: [pub],
            });
          case 'idp-pass':
            return answer(
              event['password'] === 'open-sesame'
                ? { Role: ROLE, HomeDirectory: '/shared/idp-pass' }
                : {},
            );
          case 'idp-slow':
            return setTimeout(
              () =>
                answer({
                  Role: ROLE,
                  HomeDirectory: '/shared/slow',
                  PublicKeys: [pub],
                }),
              4000,
            );
          default:
            return answer({});
        }
      });
    });
    await new Promise<void>((r) => idp.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(idp.address() as AddressInfo).port}/`;
    gw = await startGateway({
      users: [],
      config: { identityProvider: { url, timeoutSeconds: 1 } },
    });
    // The local store's buckets are folders; identity-provider users are unknown until they log in.
    await mkdir(path.join(gw.dir, 'data/shared'), { recursive: true });
  });
  after(async () => {
    await gw.stop();
    idp.closeAllConnections();
    idp.close();
  });

  test('allow, deny, password and timeout', async () => {
    const allowed = await gw.sftp('pwd\n', { user: 'idp-allow', key: k });
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, /Remote working directory: \//);
    const event = requests.find((r) => r['username'] === 'idp-allow')!;
    assert.equal(event['protocol'], 'SFTP');
    assert.equal(event['sourceIp'], '127.0.0.1');
    assert.match(String(event['serverId']), /^s-[0-9a-f]{17}$/);
    assert.equal('password' in event, false, 'no password for key logins');

    assert.notEqual(
      (await gw.sftp('pwd\n', { user: 'idp-deny', key: k })).code,
      0,
    );
    assert.equal(
      (await login(gw, 'idp-pass', { password: 'open-sesame' })).ok,
      true,
    );
    assert.equal((await login(gw, 'idp-pass', { password: 'nope' })).ok, false);

    const t0 = Date.now();
    assert.notEqual(
      (await gw.sftp('pwd\n', { user: 'idp-slow', key: k })).code,
      0,
    );
    assert.ok(Date.now() - t0 < 15_000);
    // Waited for, not read at once: the gateway logs the refusal at the end of the turn that answers the
    // client, and the client may exit before that line reaches the pipe.
    await gw.waitForLog((l) => String(l['err']).includes('no answer within 1 s'), 5_000);
  });
});

describe('import: the CreateUser sample request of the API reference', () => {
  test('imports to YAML and logs in', async () => {
    const dir = await tempDir('import');
    const k = await makeKey(dir, 'imp');
    // The API reference's sample request, with a real key where the page elides it ("ssh-rsa AAAA...").
    const sample = {
      HomeDirectory: '/bucket_name/home/mydirectory',
      HomeDirectoryType: 'PATH',
      Role: 'arn:aws:iam::176354371281:role/AWS-Transfer-FTP',
      ServerId: 's-01234567890abcdef',
      SshPublicKeyBody: await publicKey(k),
      Tags: [{ Key: 'Group', Value: 'UserGroup1' }],
      UserName: 'my_user',
    };
    const file = path.join(dir, 'create-user.json');
    await writeFile(file, JSON.stringify(sample));
    const r = await run(process.execPath, [MAIN, 'import', file]);
    assert.equal(r.code, 0, r.stderr);
    const { users } = parse(r.stdout) as { users: Record<string, unknown>[] };
    assert.equal(users[0]?.['UserName'], 'my_user');
    const gw = await startGateway({ users });
    try {
      const s = await gw.sftp('pwd\n', { user: 'my_user', key: k });
      assert.equal(s.code, 0, s.stderr);
      assert.match(s.stdout, /\/bucket_name\/home\/mydirectory/);
    } finally {
      await gw.stop();
    }
  });
});
