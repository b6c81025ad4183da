/**
 * End to end on the S3 store, AWS-like lane: the real OpenSSH `sftp`/`scp` clients against the real
 * gateway process with default S3 settings, on Swift's S3 API behind the compat shim (S3_COMPAT=1:
 * flexible checksums verified, DeleteObjects without Content-MD5, If-None-Match). An SDK client looks
 * at the bucket directly, and Swift's proxy access log shows which S3 requests were really sent.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  DeleteObjectCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { makeFile, run, sha256File, tempDir } from '../support/gateway.js';
import { parsePrometheusText, sampleValue } from '../support/prom-parse.js';
import {
  clearAwsEnv,
  type S3TestServer,
  startS3,
} from '../support/s3.js';
import {
  journalMarksFor,
  killGroup,
  listKeys,
  MiB,
  multipartUploads,
  objectSha256,
  objectSize,
  proxyLogCount,
  type S3Gateway,
  sdkClient,
  spawnSftp,
  startS3Gateway,
  stopS3Lane,
  waitFor,
} from '../support/s3-e2e.js';

clearAwsEnv();

describe('OpenSSH sftp and scp against the gateway on S3 (AWS-like lane)', () => {
  let s3: S3TestServer;
  let client: S3Client;
  let g: S3Gateway;
  let work: string;
  const bucket = () => s3.bucket;
  const k = (name: string) => `${g.prefix}/${name}`;

  before(async () => {
    s3 = await startS3({ compat: true });
    client = sdkClient(s3);
    g = await startS3Gateway(s3);
    work = await tempDir('s3-client');
  });
  after(() => stopS3Lane({ g, client, s3 }));

  const ok = (commands: string, o: { extraArgs?: string[]; user?: string } = {}) => g.sftpOk(commands, o);
  const fails = async (
    commands: string,
    pattern: RegExp,
    o: { user?: string } = {},
  ) => {
    const r = await g.sftp(commands, o);
    assert.notEqual(
      r.code,
      0,
      `sftp should have failed:\n${commands}\n${r.stdout}`,
    );
    assert.match(r.stderr, pattern);
    return r;
  };

  for (const size of [0, 1, 8 * MiB - 1, 8 * MiB, 8 * MiB + 1]) {
    test(`a file of ${size} bytes round-trips with sftp and scp`, async () => {
      const src = path.join(work, `src-${size}`);
      await makeFile(src, size);
      const expected = await sha256File(src);
      await ok(`put ${src} f-${size}\nget f-${size} ${src}.sftp\n`);
      assert.equal(await sha256File(`${src}.sftp`), expected);
      assert.equal(await objectSize(client, bucket(), k(`f-${size}`)), size);
      assert.equal(
        await objectSha256(client, bucket(), k(`f-${size}`)),
        expected,
      );

      const up = await g.scp(src, `alice@127.0.0.1:scp-${size}`);
      assert.equal(up.code, 0, up.stderr);
      const down = await g.scp(`alice@127.0.0.1:scp-${size}`, `${src}.scp`);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(await sha256File(`${src}.scp`), expected);
    });
  }

  // scp (OpenSSH >= 9 speaks SFTP underneath) is covered on S3 by the sizes above, across the 8 MiB
  // multipart boundary, and with up to 200 MiB in openssh.test.ts: a second 300 MiB round trip would
  // only repeat this one.
  test('a 300 MiB file round-trips with sftp, equal sha256', async (t) => {
    const size = 300 * MiB;
    const src = path.join(work, 'big');
    await makeFile(src, size);
    const expected = await sha256File(src);
    const rate = (ms: number) =>
      `${((size / MiB) * 1000) / ms} MiB/s`.replace(/(\.\d)\d+/, '$1');
    let t0 = performance.now();
    await ok(`put ${src} big\n`);
    const putMs = performance.now() - t0;
    t0 = performance.now();
    await ok(`get big ${src}.back\n`);
    const getMs = performance.now() - t0;
    assert.equal(await sha256File(`${src}.back`), expected);
    assert.equal(await objectSha256(client, bucket(), k('big')), expected);
    t.diagnostic(`300 MiB: sftp put ${rate(putMs)}, sftp get ${rate(getMs)}`);
    await run('rm', ['-f', src, `${src}.back`]);
    await ok('rm big\n');
  });

  test('directories on objects: markers, prefix-only directories, STAT, rmdir', async () => {
    await ok('mkdir d1\n');
    assert.equal(
      await objectSize(client, bucket(), k('d1/')),
      0,
      'mkdir writes a zero-byte d1/ marker',
    );
    // Prefix-only directories: keys below them, no marker.
    await client.send(
      new PutObjectCommand({
        Bucket: bucket(),
        Key: k('pfx/a/b.txt'),
        Body: 'hello',
      }),
    );
    assert.equal(await objectSize(client, bucket(), k('pfx/')), undefined);
    const r = await ok(`ls -l\nls -l pfx\nls -l pfx/a\ncd pfx/a\npwd\nget b.txt ${work}/b.txt\n`);
    assert.match(
      r.stdout,
      /^d\S+\s.*\spfx$/m,
      'ls -l shows the prefix-only pfx as a directory',
    );
    assert.match(r.stdout, /^d\S+\s.*\sd1$/m, 'and the marker directory d1');
    assert.match(r.stdout, /^d\S+\s.*\sa$/m, 'pfx/a is a directory inside pfx');
    assert.match(r.stdout, /^-\S+\s.*\s5 .*b\.txt$/m);
    assert.match(
      r.stdout,
      new RegExp(`Remote working directory: /${bucket()}/${g.prefix}/pfx/a`),
    );
    assert.equal(await readFile(`${work}/b.txt`, 'utf8'), 'hello');
    // rmdir refuses non-empty directories, with or without a marker.
    await fails('rmdir pfx/a\n', /Failure|not empty/i);
    await fails('rmdir pfx\n', /Failure|not empty/i);
    await ok(`put ${work}/b.txt d1/x\n`);
    await fails('rmdir d1\n', /Failure|not empty/i);
    await ok('rm d1/x\nrmdir d1\nrm pfx/a/b.txt\n');
    assert.equal(
      await objectSize(client, bucket(), k('d1/')),
      undefined,
      'rmdir removes the marker',
    );
    await fails('cd d1\n', /No such file|not found/i);
    await fails('mkdir no/such/parent\n', /No such file/i);
  });

  test('rename of a file, over a file, and of a directory with contents', async () => {
    await writeFile(path.join(work, 'r1'), 'one');
    await writeFile(path.join(work, 'r2'), 'two');
    const big = path.join(work, 'r-big');
    await makeFile(big, 12 * MiB + 3);
    await ok(
      `put ${work}/r1 r1\nput ${work}/r2 r2\nput ${big} rbig\nrename r1 r1-renamed\nrename rbig rbig2\n`,
    );
    assert.equal(await objectSize(client, bucket(), k('r1')), undefined);
    assert.equal(
      await objectSha256(client, bucket(), k('rbig2')),
      await sha256File(big),
    );
    assert.equal(await objectSize(client, bucket(), k('rbig')), undefined);
    await ok('rename r1-renamed r2\n'); // posix-rename overwrites
    await ok(`get r2 ${work}/r2.back\n`);
    assert.equal(await readFile(`${work}/r2.back`, 'utf8'), 'one');

    await ok(
      // rd/sub/big is a server-side copy of a multipart object, whose listed ETag Swift reports differently.
      `mkdir rd\nmkdir rd/sub\nput ${work}/r2 rd/x\nrename rbig2 rd/sub/big\nput ${work}/r2 rd/sub/y\nrename rd rd2\n`,
    );
    assert.deepEqual(await listKeys(client, bucket(), k('rd/')), []);
    assert.deepEqual(
      (await listKeys(client, bucket(), k('rd2/'))).map((x) =>
        x.slice(k('rd2/').length),
      ),
      ['', 'sub/', 'sub/big', 'sub/y', 'x'],
    );
    assert.equal(
      await objectSha256(client, bucket(), k('rd2/sub/big')),
      await sha256File(big),
    );
    await ok(`get rd2/sub/big ${big}.back\n`);
    assert.equal(await sha256File(`${big}.back`), await sha256File(big));
  });

  test('rename of a 12 MiB file with copyPartThresholdMiB 5 goes through UploadPartCopy', async () => {
    const g2 = await startS3Gateway(s3, {
      storage: { copyPartThresholdMiB: 5 },
      prefix: g.prefix,
    });
    try {
      const big = path.join(work, 'mp-big');
      await makeFile(big, 12 * MiB + 5);
      const r = await g2.sftp(
        `put ${big} mp\nrename mp mp-renamed\nget mp-renamed ${big}.back\n`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(await sha256File(`${big}.back`), await sha256File(big));
      assert.equal(
        await objectSha256(client, bucket(), k('mp-renamed')),
        await sha256File(big),
      );
      assert.equal(await objectSize(client, bucket(), k('mp')), undefined);
      assert.ok(
        (await proxyLogCount(s3, k('mp-renamed'), 'UploadPartCopy')) >= 1,
        'Swift received a successful UploadPartCopy for the target',
      );
      assert.equal(
        await proxyLogCount(s3, k('mp-renamed'), 'CopyObject'),
        0,
        'and no CopyObject',
      );
    } finally {
      await g2.gw.stop();
    }
  });

  test('cp (copy-data) of a small and a 12 MiB file, the big one by UploadPartCopy; a file onto itself keeps its object', async () => {
    const big = path.join(work, 'cp-big');
    await makeFile(big, 12 * MiB + 3);
    const small = path.join(work, 'cp-small');
    await makeFile(small, 1000);
    await ok(`put ${big} cp-big\nput ${small} cp-small\ncp cp-big cp-big-2\ncp cp-small cp-small-2\n`);
    assert.equal(await objectSha256(client, bucket(), k('cp-big-2')), await sha256File(big));
    assert.equal(await objectSha256(client, bucket(), k('cp-small-2')), await sha256File(small));
    // Copied inside the store: the 12 MiB went by UploadPartCopy, not through the gateway.
    assert.ok((await proxyLogCount(s3, k('cp-big-2'), 'UploadPartCopy')) >= 1, 'UploadPartCopy of cp-big-2');
    assert.equal(await proxyLogCount(s3, k('cp-big-2'), 'UploadPart'), 0, 'and no UploadPart');
    await fails('cp cp-big cp-big\n', /Failure/);
    assert.equal(await objectSha256(client, bucket(), k('cp-big')), await sha256File(big));
    assert.deepEqual(await multipartUploads(client, bucket(), k('cp-')), []);
  });

  test('reput of a 20 MiB file over a 12 MiB prefix: right bytes, via UploadPartCopy', async () => {
    const src = path.join(work, 'resume');
    await makeFile(src, 20 * MiB);
    const partial = path.join(work, 'resume-part');
    await makeFile(partial, 20 * MiB);
    await truncate(partial, 12 * MiB);
    await ok(`put ${partial} resume\n`);
    assert.equal(await objectSize(client, bucket(), k('resume')), 12 * MiB);
    const copiesBefore = await proxyLogCount(s3, k('resume'), 'UploadPartCopy');
    await ok(`reput ${src} resume\n`);
    assert.equal(
      await objectSha256(client, bucket(), k('resume')),
      await sha256File(src),
    );
    assert.ok(
      (await proxyLogCount(s3, k('resume'), 'UploadPartCopy')) > copiesBefore,
      'the 12 MiB already stored were copied inside the store with UploadPartCopy',
    );
    await ok(`get resume ${src}.back\n`);
    assert.equal(await sha256File(`${src}.back`), await sha256File(src));
  });

  test('SIGKILL of the sftp client mid-upload leaves no object, no multipart upload, no journal mark', async () => {
    const src = path.join(work, 'killed');
    await makeFile(src, 64 * MiB);
    // -l 16000 (Kbit/s): the upload is surely running when it is killed.
    const p = spawnSftp(g, ['-l', '16000'], `put ${src} killed\n`);
    try {
      await waitFor(
        'the multipart upload to start',
        async () =>
          (await multipartUploads(client, bucket(), k('killed'))).length > 0,
        60_000,
      );
      assert.equal(
        (await journalMarksFor(client, bucket(), k('killed'))).length,
        1,
        'the upload is marked',
      );
    } finally {
      killGroup(p.child);
    }
    await p.exited;
    await waitFor(
      'the multipart upload to be aborted',
      async () =>
        (await multipartUploads(client, bucket(), k('killed'))).length === 0,
      20_000,
    );
    assert.equal(
      await objectSize(client, bucket(), k('killed')),
      undefined,
      'no object is visible',
    );
    await waitFor(
      'the journal mark to be removed',
      async () =>
        (await journalMarksFor(client, bucket(), k('killed'))).length === 0,
      10_000,
    );
    const r = await ok('ls\n');
    assert.doesNotMatch(r.stdout, /killed/);
  });

  test('downloads: the OPEN is the first GET (no HEAD); a big file is a few GETs', async () => {
    const files = { 'dl-small': 4096, 'dl-empty': 0, 'dl-big': 40 * MiB + 5 };
    for (const [name, size] of Object.entries(files)) await makeFile(path.join(work, name), size);
    await ok(Object.keys(files).map((n) => `put ${path.join(work, n)} ${n}\n`).join(''));
    const before = await Promise.all(Object.keys(files).map((n) => requestsOn(s3, k(n))));
    await ok(Object.keys(files).map((n) => `get ${n} ${path.join(work, n)}.down\n`).join(''));
    const after = await Promise.all(Object.keys(files).map((n) => requestsOn(s3, k(n))));
    const delta = (i: number) => {
      const d: Record<string, number> = {};
      for (const [r, c] of after[i]!) if (c - (before[i]!.get(r) ?? 0) > 0) d[r] = c - (before[i]!.get(r) ?? 0);
      return d;
    };
    for (const [n, size] of Object.entries(files)) {
      assert.equal((await stat(`${path.join(work, n)}.down`)).size, size, n);
      assert.equal(await sha256File(`${path.join(work, n)}.down`), await sha256File(path.join(work, n)), n);
    }
    // sftp's `get` stats the file twice (two HEADs) before the OPEN; the OPEN and all READs are one GET.
    assert.deepEqual(delta(0), { 'HEAD 200': 2, 'GET 206': 1 }, 'dl-small');
    // An empty object answers the ranged GET with 416 (InvalidRange): a HEAD then tells it from a missing one.
    assert.deepEqual(delta(1), { 'HEAD 200': 3, 'GET 416': 1 }, 'dl-empty');
    // 4 MiB at OPEN, then streamed ranges of 8, 16 and (the rest of) 32 MiB.
    assert.deepEqual(delta(2), { 'HEAD 200': 2, 'GET 206': 4 }, 'dl-big');
  });

  test('get -r: every file is one GET, small ones fetched ahead, and each arrives whole', async () => {
    const dir = path.join(work, 'pf');
    await mkdir(dir, { recursive: true });
    // 3 MiB and 2 MiB are over the prefetch limit (1 MiB); the empty file answers its GET with 416.
    const sizes = [4096, 1, 0, 3 * MiB, 5000, 70_000, 12, 4096, 2 * MiB, 100, 4096, 4096];
    const names = sizes.map((_, i) => `pf-${String(i).padStart(2, '0')}`);
    for (let i = 0; i < sizes.length; i++) await makeFile(path.join(dir, names[i]!), sizes[i]!);
    await ok(`put -r ${dir} pf\n`);
    const gets = async () =>
      Promise.all(
        names.map(async (n) => {
          let c = 0;
          for (const [r, count] of await requestsOn(s3, k(`pf/${n}`))) if (r.startsWith('GET')) c += count;
          return c;
        }),
      );
    const prefetched = async () => {
      const m = parsePrometheusText(await (await fetch(`http://127.0.0.1:${g.gw.metricsPort}/metrics`)).text());
      const v = (outcome: string) => sampleValue(m, 'sftp_gateway_prefetched_files_total', { outcome }) ?? 0;
      return { used: v('used'), unused: v('unused') };
    };
    const before = { gets: await gets(), prefetched: await prefetched() };
    const down = path.join(work, 'pf.down');
    await ok(`get -r pf ${down}\n`);
    const afterGets = await gets();
    for (let i = 0; i < names.length; i++) {
      assert.equal(await sha256File(path.join(down, names[i]!)), await sha256File(path.join(dir, names[i]!)), names[i]);
      assert.equal(afterGets[i]! - before.gets[i]!, 1, `${names[i]}: one GET, fetched ahead or not`);
    }
    // The first two OPENs show the order; the 8 small files after them were fetched ahead and all used.
    const after = await prefetched();
    assert.deepEqual(
      { used: after.used - before.prefetched.used, unused: after.unused - before.prefetched.unused },
      { used: 8, unused: 0 },
    );
  });

  test('an overwrite during a download fails the download instead of mixing versions', async () => {
    const src = path.join(work, 'ow');
    await makeFile(src, 64 * MiB);
    await ok(`put ${src} ow\n`);
    const local = path.join(work, 'ow.down');
    const p = spawnSftp(g, ['-l', '16000'], `get ow ${local}\n`);
    try {
      await waitFor(
        'the download to start',
        async () =>
          ((await stat(local).catch(() => undefined))?.size ?? 0) > MiB,
        60_000,
      );
      // The new version: 64 MiB of 0xAB, easy to recognise in what was downloaded.
      await client.send(
        new PutObjectCommand({
          Bucket: bucket(),
          Key: k('ow'),
          Body: Buffer.alloc(64 * MiB, 0xab),
        }),
      );
    } catch (err) {
      killGroup(p.child);
      throw err;
    }
    const code = await p.exited;
    const { stderr } = p.output();
    assert.notEqual(code, 0, 'sftp reports the failed download');
    assert.match(stderr, /Failure|Couldn't read|changed|precondition/i);
    const got = await readFile(local);
    assert.ok(
      got.length < 64 * MiB || got.equals(await readFile(src)),
      'the download did not complete',
    );
    assert.equal(
      got.includes(Buffer.alloc(4096, 0xab)),
      false,
      'no byte of the new version was downloaded',
    );
  });

  test('the .sftp-gateway journal prefix is invisible and refused', async () => {
    // bob's home is the bucket root, where the journal prefix lives.
    const probe = '.sftp-gateway/multipart/e2e-probe';
    await client.send(
      new PutObjectCommand({ Bucket: bucket(), Key: probe, Body: '{}' }),
    );
    try {
      await writeFile(path.join(work, 'h'), 'h');
      const r = await ok('ls -la\n', { user: 'bob' });
      assert.match(r.stdout, new RegExp(g.prefix), 'bob sees the bucket root');
      assert.doesNotMatch(r.stdout, /sftp-gateway/);
      await fails('ls .sftp-gateway\n', /Permission denied|not found/i, {
        user: 'bob',
      });
      await fails('cd .sftp-gateway\n', /Permission denied/i, { user: 'bob' });
      // sftp's get and rm stat (glob) first and report any failure there as "not found".
      await fails(
        `get ${probe} ${work}/probe\n`,
        /Permission denied|not found/i,
        { user: 'bob' },
      );
      await fails(`put ${work}/h .sftp-gateway/x\n`, /Permission denied/i, {
        user: 'bob',
      });
      await fails('mkdir .sftp-gateway/y\n', /Permission denied/i, {
        user: 'bob',
      });
      await fails(`rm ${probe}\n`, /Permission denied|not found/i, {
        user: 'bob',
      });
      await fails(
        `rename ${g.prefix}/r2 .sftp-gateway/r2\n`,
        /Permission denied/i,
        { user: 'bob' },
      );
      assert.equal(
        await objectSize(client, bucket(), probe),
        2,
        'the probe is untouched',
      );
      assert.equal(
        await objectSize(client, bucket(), '.sftp-gateway/x'),
        undefined,
      );
    } finally {
      await client.send(
        new DeleteObjectCommand({ Bucket: bucket(), Key: probe }),
      );
    }
  });

  test('an unreachable store: /readyz is 503 and a login fails with a clear error, not a hang', async () => {
    const closed = await closedPort();
    const dead = await startS3Gateway(s3, {
      storage: {
        endpoint: `http://127.0.0.1:${closed}`,
        checkBucket: s3.bucket,
      },
    });
    try {
      assert.ok(dead.gw.metricsPort, 'the metrics port is in the logs');
      const res = await fetch(`http://127.0.0.1:${dead.gw.metricsPort}/readyz`);
      assert.equal(res.status, 503);
      const body = (await res.json()) as {
        checks: { store: { ok: boolean; message?: string } };
      };
      assert.equal(body.checks.store.ok, false);
      assert.match(
        String(body.checks.store.message),
        /HeadBucket|ECONNREFUSED|unavailable/i,
      );
      const r = await run(
        'sftp',
        [...dead.sshArgs(), '-b', '-', 'alice@127.0.0.1'],
        {
          input: 'ls\n',
          timeoutMs: 90_000,
        },
      );
      assert.notEqual(
        r.code,
        null,
        'sftp ended by itself (no hang until the test timeout)',
      );
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /unavailable|ECONNREFUSED|storage|S3/i, r.stderr);
    } finally {
      await dead.gw.stop();
    }
  });
});

async function closedPort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Requests on exactly `key` in Swift's proxy access log, counted by "METHOD status". */
async function requestsOn(s3: S3TestServer, key: string): Promise<Map<string, number>> {
  await new Promise((r) => setTimeout(r, 300)); // the proxy logs after it answered
  const log = await readFile(path.join(s3.dataDir, 'log', 'proxy.log'), 'utf8');
  const counts = new Map<string, number>();
  for (const line of log.split('\n')) {
    const m = /^proxy-server: \S+ \S+ \S+ (GET|PUT|POST|HEAD|DELETE) (\S+) HTTP\/[\d.]+ (\d{3})/.exec(line);
    if (!m || decodeURIComponent(m[2]!).split('?')[0] !== `/${s3.bucket}/${key}`) continue;
    const r = `${m[1]} ${m[3]}`;
    counts.set(r, (counts.get(r) ?? 0) + 1);
  }
  return counts;
}
