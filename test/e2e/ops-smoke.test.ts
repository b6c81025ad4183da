/**
 * The smoke subset that CI also runs under Node 24 (test/smoke-node24.sh): the real gateway process,
 * started with the same Node as this test runner, takes an SFTP upload and download, and its /metrics
 * parses and counts them. Under `npm test` it runs with the machine's Node.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  makeFile,
  sha256File,
  startGateway,
  type TestGateway,
  tempDir,
} from '../support/gateway.js';
import { scrape, sum } from './ops-support.js';

describe(`smoke: gateway on Node ${process.version}`, () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    if (gw) assert.equal(await gw.stop(), 0, 'exit 0 on SIGTERM');
  });

  test('sftp put and get, then /metrics counts them', async () => {
    const work = await tempDir('smoke');
    const src = path.join(work, 'smoke.bin');
    const size = 3 * 1024 * 1024 + 5;
    await makeFile(src, size);
    const before = await scrape(gw.metricsPort!);
    const r = await gw.sftp(
      `put ${src} smoke.bin\nget smoke.bin ${src}.back\nls -l\n`,
    );
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal(await sha256File(`${src}.back`), await sha256File(src));

    const after = await scrape(gw.metricsPort!);
    const delta = (name: string, labels: Record<string, string> = {}) =>
      sum(after, name, labels) - sum(before, name, labels);
    assert.equal(delta('sftp_gateway_sessions_total'), 1);
    assert.equal(delta('sftp_gateway_files_in_total'), 1);
    assert.equal(delta('sftp_gateway_files_out_total'), 1);
    assert.equal(delta('sftp_gateway_bytes_in_total'), size);
    assert.equal(delta('sftp_gateway_bytes_out_total'), size);
    // The gateway process runs on the same Node as this runner (Node 24 in smoke-node24.sh).
    const version = after.get('nodejs_version_info')?.samples[0]?.labels[
      'version'
    ];
    assert.equal(version, process.version);
    const health = await fetch(`http://127.0.0.1:${gw.metricsPort}/healthz`);
    assert.equal(health.status, 200);
  });

  // Each cipher goes through ssh2's native binding where it was built (under Node 24 in
  // smoke-node24.sh, as in the container), else its JavaScript ciphers: a file crosses intact both ways,
  // over more packets than a key exchange and a listing.
  for (const cipher of ['chacha20-poly1305@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr']) {
    test(`${cipher}: put and get arrive intact`, async () => {
      const work = await tempDir('smoke-cipher');
      const src = path.join(work, 'c.bin');
      await makeFile(src, 1024 * 1024 + 17);
      const r = await gw.sftp(`put ${src} ${cipher}.bin\nget ${cipher}.bin ${src}.back\n`, {
        extraArgs: ['-c', cipher],
      });
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.equal(await sha256File(`${src}.back`), await sha256File(src));
    });
  }
});
