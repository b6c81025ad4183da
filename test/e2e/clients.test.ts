/**
 * Other real SFTP clients against the real gateway (local store): paramiko playing WinSCP (and checking
 * exact status codes), lftp, curl (libssh2) and rclone.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeFile, run, sha256File, startGateway, type TestGateway, tempDir } from '../support/gateway.js';

const CLIENTS = fileURLToPath(new URL('../../../test/e2e/clients/', import.meta.url));
// Debian's python3 has python3-paramiko; a python3 earlier on PATH (pyenv) may not.
const PYTHON = '/usr/bin/python3';

/** The environment sets AWS_* and proxy variables that tools like rclone read: start them without. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('AWS_') || k.startsWith('RCLONE_')) delete env[k];
  return env;
}

describe('other SFTP clients', () => {
  let gw: TestGateway;
  let work: string;

  before(async () => {
    gw = await startGateway();
    work = await tempDir('clients');
  });
  after(async () => {
    await gw.stop();
  });

  test('paramiko plays WinSCP: .filepart upload, delete+rename, SETSTAT mtime; exact status codes', async () => {
    const r = await run(PYTHON, [
      path.join(CLIENTS, 'winscp_like.py'),
      String(gw.port),
      gw.key,
      'alice',
      work,
    ]);
    assert.equal(r.code, 0, `paramiko script failed:\n${r.stderr}\n${r.stdout}`);
    const results = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(results['home'], '/demo/home/alice');
    assert.equal(results['winscp-upload'], 'ok');
    assert.equal(results['listing'], 250);
    assert.match(results['list-outside-home'], /Permission denied|outside the home/);
  });

  test('lftp mirrors a folder up and down', async () => {
    const src = path.join(work, 'lftp-src');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(path.join(src, 'sub'), { recursive: true });
    await makeFile(path.join(src, 'a.bin'), 3 * 1024 * 1024 + 5);
    await writeFile(path.join(src, 'sub/b.txt'), 'lftp');
    const back = path.join(work, 'lftp-back');
    const script = [
      'set sftp:auto-confirm yes',
      `set sftp:connect-program "ssh -a -x -i ${gw.key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes"`,
      `open -u alice, sftp://127.0.0.1:${gw.port}`,
      `mirror -R ${src} lftp-dir`,
      `mirror lftp-dir ${back}`,
      'bye',
    ].join('\n');
    const r = await run('lftp', ['-c', script], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await sha256File(path.join(back, 'a.bin')), await sha256File(path.join(src, 'a.bin')));
    assert.equal(await readFile(path.join(back, 'sub/b.txt'), 'utf8'), 'lftp');
  });

  test('curl (libssh2) uploads, lists and downloads', async () => {
    const file = path.join(work, 'curl.bin');
    await makeFile(file, 2 * 1024 * 1024 + 3);
    const base = `sftp://127.0.0.1:${gw.port}/demo/home/alice`;
    const auth = ['-u', 'alice:', '--key', gw.key, '--pubkey', `${gw.key}.pub`, '--insecure', '-sS'];
    const up = await run('curl', [...auth, '-T', file, `${base}/curl.bin`]);
    assert.equal(up.code, 0, up.stderr);
    const list = await run('curl', [...auth, `${base}/`]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /curl\.bin/);
    const down = await run('curl', [...auth, '-o', `${file}.back`, `${base}/curl.bin`]);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(await sha256File(`${file}.back`), await sha256File(file));
    const denied = await run('curl', [...auth, `sftp://127.0.0.1:${gw.port}/demo/home/`]);
    assert.notEqual(denied.code, 0, 'listing outside the home is refused');
  });

  test('rclone copies to and from the gateway', async () => {
    const src = path.join(work, 'rclone-src');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(src, { recursive: true });
    await makeFile(path.join(src, 'r1.bin'), 5 * 1024 * 1024);
    await writeFile(path.join(src, 'r2.txt'), 'rclone');
    const env = {
      ...cleanEnv(),
      RCLONE_CONFIG_GW_TYPE: 'sftp',
      RCLONE_CONFIG_GW_HOST: '127.0.0.1',
      RCLONE_CONFIG_GW_PORT: String(gw.port),
      RCLONE_CONFIG_GW_USER: 'alice',
      RCLONE_CONFIG_GW_KEY_FILE: gw.key,
      RCLONE_CONFIG_GW_SHELL_TYPE: 'none',
    };
    const up = await run('rclone', ['copy', src, 'gw:/demo/home/alice/rclone'], { env, timeoutMs: 60_000 });
    assert.equal(up.code, 0, up.stderr);
    const back = path.join(work, 'rclone-back');
    const down = await run('rclone', ['copy', 'gw:/demo/home/alice/rclone', back], {
      env,
      timeoutMs: 60_000,
    });
    assert.equal(down.code, 0, down.stderr);
    assert.equal(await sha256File(path.join(back, 'r1.bin')), await sha256File(path.join(src, 'r1.bin')));
    const check = await run('rclone', ['check', src, 'gw:/demo/home/alice/rclone'], {
      env,
      timeoutMs: 60_000,
    });
    assert.equal(check.code, 0, check.stderr);
  });
});
