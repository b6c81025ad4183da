import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import ssh2 from 'ssh2';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';

const ed25519 = ssh2.utils.generateKeyPairSync('ed25519').public;
const rsa1024 = ssh2.utils.generateKeyPairSync('rsa', { bits: 1024 }).public;

function problems(text: string): string[] {
  try {
    parseConfig(text, '/etc/gw/gateway.yaml');
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('config', () => {
  test('the contract file from the issue loads as written, paths relative to the file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
    const file = path.join(dir, 'gateway.yaml');
    writeFileSync(
      file,
      `server:
  port: 2222
  hostKeys: [state/ssh_host_ed25519_key]   # generated when missing
storage:
  type: local
  root: data            # each top-level folder is a bucket: /demo/x -> data/demo/x
users:
  - UserName: alice
    HomeDirectory: /demo/home/alice
    SshPublicKeys:
      - ${ed25519} alice@laptop
`,
    );
    const c = loadConfig(file);
    assert.equal(c.server.port, 2222);
    assert.deepEqual(c.server.hostKeys, [path.join(dir, 'state/ssh_host_ed25519_key')]);
    assert.deepEqual(c.storage, { type: 'local', root: path.join(dir, 'data'), tempDir: undefined });
    const alice = c.users.get('alice');
    assert.equal(alice?.HomeDirectory, '/demo/home/alice');
    assert.equal(alice?.HomeDirectoryType, 'PATH');
    assert.equal(alice?.keys.length, 1);
    assert.equal(alice?.keys[0]?.comment, 'alice@laptop');
    assert.match(alice?.keys[0]?.fingerprint ?? '', /^SHA256:[A-Za-z0-9+/]{43}$/);
    // Defaults from the issue.
    assert.equal(c.server.maxAuthTries, 6);
    assert.equal(c.server.loginGraceTimeSeconds, 120);
    assert.equal(c.server.idleTimeoutSeconds, 1800);
    assert.equal(c.server.maxChannelsPerConnection, 10);
  });

  test('each problem is FILE:LINE:COL: field: message', () => {
    const p = problems(`server:
  port: "x"
  colour: blue
users:
  - UserName: -bad
    HomeDirectory: relative/path
  - UserName: ok-user
    HomeDirectory: /b/h
    Tags: [{Key: k}]
`);
    assert.deepEqual(
      p.sort(),
      [
        '/etc/gw/gateway.yaml:2:9: server.port: expected number',
        '/etc/gw/gateway.yaml:3:3: server.colour: unknown field',
        '/etc/gw/gateway.yaml:5:15: users[0].UserName: 3-100 characters of letters, digits, _ @ . -, not starting with - . or @',
        '/etc/gw/gateway.yaml:6:20: users[0].HomeDirectory: must be /bucket or /bucket/prefix',
        '/etc/gw/gateway.yaml:9:12: users[1].Tags[0].Value: required',
      ].sort(),
    );
  });

  test('YAML syntax errors carry line and column', () => {
    const p = problems('server:\n  port: [1, 2\nusers: []\n');
    assert.equal(p.length >= 1, true);
    assert.match(p[0]!, /^\/etc\/gw\/gateway\.yaml:\d+:\d+: /);
  });

  test('bad keys, weak RSA and duplicate users are refused with their position', () => {
    const p = problems(`users:
  - UserName: alice
    HomeDirectory: /demo/home/alice
    SshPublicKeys:
      - ssh-ed25519 AAAAnotakey
      - ${rsa1024}
  - UserName: alice
    HomeDirectory: /demo/home/alice
    SshPublicKeyBody: ssh-dss AAAA
`);
    assert.equal(p.length, 4);
    assert.match(p[0]!, /:5:9: users\[0\]\.SshPublicKeys\[0\]: not a valid ssh-ed25519 public key/);
    assert.match(p[1]!, /:6:9: users\[0\]\.SshPublicKeys\[1\]: RSA key of 1024 bits refused/);
    assert.match(p[2]!, /:7:15: users\[1\]\.UserName: duplicate user "alice"/);
    assert.match(p[3]!, /:9:23: users\[1\]\.SshPublicKeyBody: unsupported key type "ssh-dss"/);
  });

  test('UserName rules follow CreateUser', () => {
    const base = (name: string) => `users:\n  - UserName: "${name}"\n    HomeDirectory: /b/h\n`;
    for (const good of ['abc', 'a.b@c-d_e', 'x'.repeat(100), '_x_'])
      assert.doesNotThrow(() => parseConfig(base(good), 'f'));
    for (const bad of ['ab', '.abc', '@abc', '-abc', 'x'.repeat(101), 'a b c', 'a/bc']) {
      assert.throws(() => parseConfig(base(bad), 'f'), ConfigError, bad);
    }
  });

  test('LOGICAL needs mappings; Entry "/" must be alone; targets have no trailing slash', () => {
    assert.match(
      problems('users:\n  - UserName: abc\n    HomeDirectoryType: LOGICAL\n')[0]!,
      /HomeDirectoryMappings: required/,
    );
    const p = problems(`users:
  - UserName: abc
    HomeDirectoryType: LOGICAL
    HomeDirectoryMappings:
      - {Entry: /, Target: /b/x}
      - {Entry: /y, Target: /b/y/}
`);
    assert.equal(p.length, 2);
  });

  test('storage.socketTimeoutSeconds: 60 by default, a positive number of seconds', () => {
    const s3 = (extra: string) => `storage:\n  type: s3\n  region: eu-west-1\n${extra}users: []\n`;
    const c = parseConfig(s3(''), 'f');
    assert.equal(c.storage.type === 's3' ? c.storage.socketTimeoutSeconds : undefined, 60);
    const d = parseConfig(s3('  socketTimeoutSeconds: 2.5\n'), 'f');
    assert.equal(d.storage.type === 's3' ? d.storage.socketTimeoutSeconds : undefined, 2.5);
    assert.match(problems(s3('  socketTimeoutSeconds: 0\n'))[0]!, /:4:25: storage\.socketTimeoutSeconds: /);
  });

  test('uploadMemoryMiB: 32 by default, at least one 8 MiB part', () => {
    assert.equal(parseConfig('users: []\n', 'f').uploadMemoryMiB, 32);
    assert.equal(parseConfig('uploadMemoryMiB: 128\nusers: []\n', 'f').uploadMemoryMiB, 128);
    assert.match(problems('uploadMemoryMiB: 4\nusers: []\n')[0]!, /:1:18: uploadMemoryMiB: /);
  });

  test('logging.writeIntervalMs: 20 by default, 0 to 1000', () => {
    assert.deepEqual(parseConfig('users: []\n', 'f').logging, { level: 'info', writeIntervalMs: 20 });
    assert.equal(parseConfig('logging:\n  level: debug\n  writeIntervalMs: 0\nusers: []\n', 'f').logging.writeIntervalMs, 0);
    assert.match(problems('logging:\n  writeIntervalMs: 5000\nusers: []\n')[0]!, /:2:20: logging\.writeIntervalMs: /);
  });

  test('a missing file is one readable line', () => {
    assert.throws(
      () => loadConfig('/nonexistent/gw.yaml'),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /^\/nonexistent\/gw\.yaml: cannot read config file: ENOENT$/);
        return true;
      },
    );
  });
});
