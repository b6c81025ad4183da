/**
 * End to end with the real OpenSSH clients (`sftp -b`, `scp`) against the real gateway process on the
 * local store. Nothing is mocked.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeFile, run, sha256File, startGateway, type TestGateway, tempDir } from '../support/gateway.js';

const MiB = 1024 * 1024;

describe('OpenSSH sftp and scp against the gateway (local store)', () => {
  let gw: TestGateway;
  let work: string;
  let home: string;

  before(async () => {
    gw = await startGateway();
    work = await tempDir('client');
    home = path.join(gw.dir, 'data/demo/home/alice');
  });
  after(async () => {
    assert.equal(await gw.stop(), 0, 'the gateway exits 0 on SIGTERM');
  });

  const ok = async (commands: string, extraArgs?: string[]) => {
    const r = await gw.sftp(commands, { extraArgs });
    assert.equal(r.code, 0, `sftp failed:\n${commands}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
    return r;
  };
  const fails = async (commands: string, pattern: RegExp) => {
    const r = await gw.sftp(commands);
    assert.notEqual(r.code, 0, `sftp should have failed:\n${commands}\n${r.stdout}`);
    assert.match(r.stderr, pattern);
    return r;
  };

  test('lands in the home directory; pwd, ls, df, chmod', async () => {
    const r = await ok('pwd\nls -l\ndf\n');
    assert.match(r.stdout, /Remote working directory: \/demo\/home\/alice/);
    assert.match(r.stdout, /Size\s+Used\s+Avail/);
    await writeFile(path.join(work, 'small'), 'hello');
    await ok(`put ${work}/small small\nchmod 600 small\nls -l small\n`);
  });

  for (const size of [0, 1, 32 * 1024 - 1, 32 * 1024, 32 * 1024 + 1, 10 * MiB, 200 * MiB]) {
    test(`a file of ${size} bytes round-trips with sftp and scp`, async () => {
      const src = path.join(work, `src-${size}`);
      await makeFile(src, size);
      const expected = await sha256File(src);
      await ok(`put ${src} f-${size}\nget f-${size} ${src}.sftp\n`);
      assert.equal(await sha256File(`${src}.sftp`), expected);
      assert.equal((await stat(path.join(home, `f-${size}`))).size, size);

      const up = await run('scp', [
        ...gw.sshArgs().map((a) => (a === '-P' ? '-P' : a)),
        src,
        `alice@127.0.0.1:scp-${size}`,
      ]);
      assert.equal(up.code, 0, up.stderr);
      const down = await run('scp', [...gw.sshArgs(), `alice@127.0.0.1:scp-${size}`, `${src}.scp`]);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(await sha256File(`${src}.scp`), expected);
    });
  }

  test('large requests: sftp -B 262144 -R 128', async () => {
    const src = path.join(work, 'br');
    await makeFile(src, 24 * MiB + 7);
    // OpenSSH 9.2's client cannot send a WRITE of 262144 bytes to any server ("Outbound message too long
    // 262169", also against its own sshd), so uploads use the largest size it can send: our advertised
    // max-write-length. Downloads use 262144-byte READs, which the server clamps to 261120.
    await ok(`put ${src} br\n`, ['-B', '261120', '-R', '128']);
    await ok(`get br ${src}.back\n`, ['-B', '262144', '-R', '128']);
    assert.equal(await sha256File(`${src}.back`), await sha256File(src));
  });

  test('nested directories, listings, rmdir', async () => {
    await writeFile(path.join(work, 'n'), 'nested');
    const r = await ok(
      `mkdir a\nmkdir a/b\nmkdir a/b/c\nput ${work}/n a/b/c/n.txt\nls -l a/b\nls a/b/c\ncd a/b/c\npwd\nget n.txt ${work}/n.back\n`,
    );
    assert.match(r.stdout, /^d.*\s+c$/m, 'ls -l shows c as a directory');
    assert.match(r.stdout, /n\.txt/);
    assert.match(r.stdout, /Remote working directory: \/demo\/home\/alice\/a\/b\/c/);
    await fails('rmdir a/b\n', /Failure|not empty/i);
    await fails('mkdir a\n', /Failure|exists/i);
    await fails('mkdir no/such/parent\n', /No such file/i);
    await ok('rm a/b/c/n.txt\nrmdir a/b/c\nrmdir a/b\nrmdir a\n');
    assert.equal(existsSync(path.join(home, 'a')), false);
  });

  test('ls -l reads like the managed service', async () => {
    await ok('mkdir lsdir\n');
    await writeFile(path.join(work, 'ls1'), Buffer.alloc(1234));
    await ok(`put ${work}/ls1 lsdir/file.txt\nmkdir lsdir/input\n`);
    const r = await ok('ls -l lsdir\n');
    assert.match(r.stdout, /^-rw-r--r-- +1 - +- +1234 \w{3} [ \d]\d (\d\d:\d\d| \d{4}) file\.txt$/m);
    assert.match(r.stdout, /^drwxr--r-- +1 - +- +0 \w{3} [ \d]\d (\d\d:\d\d| \d{4}) input$/m);
  });

  test('rename: to a new name, over an existing file (posix-rename), and a directory with contents', async () => {
    await writeFile(path.join(work, 'r1'), 'one');
    await writeFile(path.join(work, 'r2'), 'two');
    await ok(`put ${work}/r1 r1\nput ${work}/r2 r2\nrename r1 r1-renamed\n`);
    assert.equal(existsSync(path.join(home, 'r1')), false);
    // OpenSSH's rename uses posix-rename@openssh.com when the server offers it: it overwrites.
    await ok('rename r1-renamed r2\n');
    await ok(`get r2 ${work}/r2.back\n`);
    assert.equal(await sha256File(`${work}/r2.back`), await sha256File(`${work}/r1`));
    await ok(`mkdir d1\nmkdir d1/sub\nput ${work}/r2 d1/sub/x\nrename d1 d2\nget d2/sub/x ${work}/x.back\n`);
    assert.equal(existsSync(path.join(home, 'd1')), false);
  });

  test('cp copies inside the server (copy-data), and refuses a file onto itself without emptying it', async () => {
    const src = path.join(work, 'cp-src');
    await makeFile(src, 3 * MiB + 5);
    await ok(`put ${src} cp-a\ncp cp-a cp-b\nmkdir cp-dir\ncp cp-b cp-dir/cp-c\n`);
    for (const name of ['cp-b', 'cp-dir/cp-c'])
      assert.equal(await sha256File(path.join(home, name)), await sha256File(src), name);
    // Only the put's bytes crossed the connection: the copies are CLOSE lines without a client transfer.
    const closes = gw
      .logLines()
      .filter((l) => l['activity-type'] === 'CLOSE' && String(l['path']).includes('/cp-'));
    assert.deepEqual(
      closes.map((l) => `${path.basename(String(l['path']))} ${l['mode']} ${l['bytes-in']} ${l['bytes-out']}`).sort(),
      [
        `cp-a read 0 ${3 * MiB + 5}`,
        `cp-a write ${3 * MiB + 5} 0`,
        `cp-b read 0 ${3 * MiB + 5}`,
        `cp-b write ${3 * MiB + 5} 0`,
        `cp-c write ${3 * MiB + 5} 0`,
      ],
    );
    await fails('cp cp-a cp-a\n', /both the source and the target|Failure/);
    assert.equal(await sha256File(path.join(home, 'cp-a')), await sha256File(src), 'cp-a keeps its content');
    await fails('cp no-such-file cp-x\n', /No such file/);
  });

  test('paths outside the home directory are refused', async () => {
    await writeFile(path.join(work, 'o'), 'out');
    // sftp's ls reports any failure to open a directory as "not found"; the status code itself is
    // checked with paramiko (test/e2e/paramiko.test.ts).
    await fails('ls /demo/home\n', /not found|Permission denied/);
    await fails('ls ..\n', /not found|Permission denied/);
    await fails('cd /demo/home\n', /Permission denied/);
    await fails(`put ${work}/o /demo/elsewhere\n`, /Permission denied/);
    await fails('get /demo/home/bob/secret /tmp/x\n', /not found|Permission denied/);
    await fails('mkdir ../../escape\n', /Permission denied/);
    await fails('rename r2 ../r2\n', /Permission denied/);
    await fails('ls /etc\n', /Permission denied|No such file|not found/);
    await fails('get ../../../../etc/passwd /tmp/x\n', /Permission denied|No such file|not found/);
  });

  test('reput and reget resume transfers', async () => {
    const src = path.join(work, 'resume');
    await makeFile(src, 20 * MiB);
    const partial = path.join(work, 'resume-part');
    await makeFile(partial, 20 * MiB);
    await truncate(partial, 12 * MiB);
    await ok(`put ${partial} resume\n`);
    await ok(`reput ${src} resume\n`);
    assert.equal(await sha256File(path.join(home, 'resume')), await sha256File(src));

    const local = path.join(work, 'resume-get');
    await makeFile(local, 20 * MiB);
    await truncate(local, 5 * MiB);
    await ok(`reget resume ${local}\n`);
    assert.equal(await sha256File(local), await sha256File(src));
  });

  test('a client killed mid-upload leaves no file and no temp data', async () => {
    const src = path.join(work, 'killed');
    await makeFile(src, 64 * MiB);
    // -l limits the client to 16 Mbit/s, so the upload is surely running when it is killed.
    const child = spawn('sftp', [...gw.sshArgs(), '-l', '16000', '-b', '-', 'alice@127.0.0.1'], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    child.stdin.end(`put ${src} killed\n`);
    const tmp = path.join(gw.dir, 'data/.sftp-gateway-tmp');
    const deadline = Date.now() + 10_000;
    // Wait until the upload's temp file has data, then kill the client.
    for (;;) {
      const files = await readdir(tmp).catch(() => []);
      const sizes = await Promise.all(
        files.map((f) =>
          stat(path.join(tmp, f))
            .then((s) => s.size)
            .catch(() => 0),
        ),
      );
      if (sizes.some((s) => s > MiB)) break;
      assert.ok(Date.now() < deadline, 'the upload never started');
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // The ssh process is killed with its parent only when it notices; give the gateway a moment.
    for (let i = 0; i < 100 && (await readdir(tmp)).some((f) => f.startsWith('upload-')); i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(existsSync(path.join(home, 'killed')), false, 'no partial object is visible');
    assert.deepEqual(
      (await readdir(tmp)).filter((f) => f.startsWith('upload-')),
      [],
      'the temp upload is removed',
    );
    const r = await gw.sftp('ls\n');
    assert.doesNotMatch(r.stdout, /killed/);
  });

  test('each transfer is an audit event with bytes and the session context', async () => {
    const close = await gw.waitForLog(
      (l) => l['activity-type'] === 'CLOSE' && String(l['path']).endsWith('/f-10485760'),
    );
    const lines = gw.logLines();
    assert.ok(close, 'a CLOSE line for the 10 MiB upload');
    assert.equal(close['user'], 'alice');
    assert.equal(close['source-ip'], '127.0.0.1');
    assert.match(String(close['session-id']), /^[0-9a-f]{16}$/);
    assert.ok(
      lines.some(
        (l) =>
          l['activity-type'] === 'CONNECTED' && String(l['ssh-public-key-fingerprint']).startsWith('SHA256:'),
      ),
    );
  });
});
