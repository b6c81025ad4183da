import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { START_NODE_FLAGS, startGateway, tempDir, type TestGateway } from '../support/gateway.js';
import { scrape, sum } from './ops-support.js';

const MEMORY_REDUCER_WARNING = /run the gateway with node --no-memory-reducer/;
const HEAP_SIZE_WARNING = /run the gateway with node --initial-heap-size=64/;
const PRETENURING_WARNING = /run the gateway with node --no-allocation-site-pretenuring/;
const CRYPTO_WARNING = /native crypto binding is not loaded/;
const major = Number(process.versions.node.split('.')[0]);

describe('node flags', () => {
  const started: TestGateway[] = [];
  after(async () => {
    for (const g of started) await g.stop();
  });
  const warned = (gw: TestGateway, re: RegExp) => gw.logLines().some((l) => re.test(String(l['msg'])));

  it('npm start passes its V8 flags, and the gateway then says nothing about them', async () => {
    for (const flag of ['--no-memory-reducer', '--initial-heap-size=64', '--no-allocation-site-pretenuring'])
      assert.ok(START_NODE_FLAGS.includes(flag), `npm start flags: ${START_NODE_FLAGS.join(' ')}`);
    const gw = await startGateway();
    started.push(gw);
    assert.equal(warned(gw, MEMORY_REDUCER_WARNING), false);
    assert.equal(warned(gw, HEAP_SIZE_WARNING), false);
    assert.equal(warned(gw, PRETENURING_WARNING), false);
  });

  it(`without them, Node ${major} warns about the heap size, pretenuring${major < 24 ? ' and the memory reducer' : ''} at start`, async () => {
    const gw = await startGateway({ nodeArgs: [] });
    started.push(gw);
    const line = await gw.waitForLog((l) => HEAP_SIZE_WARNING.test(String(l['msg'])));
    assert.equal(line['level'], 'warn');
    const pretenuring = await gw.waitForLog((l) => PRETENURING_WARNING.test(String(l['msg'])));
    assert.equal(pretenuring['level'], 'warn');
    if (major < 24) {
      const reducer = await gw.waitForLog((l) => MEMORY_REDUCER_WARNING.test(String(l['msg'])));
      assert.equal(reducer['level'], 'warn');
    } else {
      assert.equal(warned(gw, MEMORY_REDUCER_WARNING), false);
    }
  });

  it('says at start whether ssh2 runs its native crypto binding, and warns when it does not', async () => {
    const gw = await startGateway();
    started.push(gw);
    const listening = await gw.waitForLog((l) => l['msg'] === 'SFTP gateway listening');
    // .ci/run and the container check that the binding was built; this machine has it.
    assert.equal(listening['sshCrypto'], 'native');
    assert.equal(warned(gw, CRYPTO_WARNING), false);
    const crypto = async (g: TestGateway, implementation: string) =>
      sum(await scrape(g.metricsPort!), 'sftp_gateway_ssh_crypto_info', { implementation });
    assert.equal(await crypto(gw, 'native'), 1);
    assert.equal(await crypto(gw, 'javascript'), 0);

    // A binding that failed to build (no compiler at install, --ignore-scripts): the gateway still serves,
    // in JavaScript.
    const slow = await startGateway({ nodeArgs: [...START_NODE_FLAGS, '--require', await noBindingPreload()] });
    started.push(slow);
    const line = await slow.waitForLog((l) => CRYPTO_WARNING.test(String(l['msg'])));
    assert.equal(line['level'], 'warn');
    const slowListening = await slow.waitForLog((l) => l['msg'] === 'SFTP gateway listening');
    assert.equal(slowListening['sshCrypto'], 'javascript');
    assert.equal(await crypto(slow, 'javascript'), 1);
    assert.equal(await crypto(slow, 'native'), 0);
    const r = await slow.sftp('pwd\n', { extraArgs: ['-c', 'chacha20-poly1305@openssh.com'] });
    assert.equal(r.code, 0, r.stderr);
  });

  it('with server.workers, the primary says it once for all the workers', async () => {
    // The preload is in the primary's execArgv, which node:cluster passes on to the workers.
    const gw = await startGateway({
      config: { server: { port: 0, workers: 2 } },
      nodeArgs: [...START_NODE_FLAGS, '--require', await noBindingPreload()],
    });
    started.push(gw);
    const listening = await gw.waitForLog((l) => l['msg'] === 'SFTP gateway listening');
    assert.equal(listening['sshCrypto'], 'javascript');
    assert.equal(listening['workers'], 2);
    const workers = gw.logLines().filter((l) => l['msg'] === 'worker listening');
    assert.deepEqual(
      workers.map((l) => l['sshCrypto']),
      ['javascript', 'javascript'],
    );
    const warnings = gw.logLines().filter((l) => CRYPTO_WARNING.test(String(l['msg'])));
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.equal(warnings[0]!['component'], 'supervisor');
    assert.equal(await sum(await scrape(gw.metricsPort!), 'sftp_gateway_ssh_crypto_info', { implementation: 'javascript' }), 1);
  });

  it('another --initial-heap-size is the operator’s choice: no warning about it', async () => {
    const gw = await startGateway({ nodeArgs: ['--initial-heap-size=128', '--no-memory-reducer'] });
    started.push(gw);
    assert.equal(warned(gw, HEAP_SIZE_WARNING), false);
    assert.equal(warned(gw, MEMORY_REDUCER_WARNING), false);
  });
});

/**
 * A preload that makes requiring ssh2's binding throw, as ssh2 sees a binding that was never built (no
 * compiler at install, --ignore-scripts).
 */
async function noBindingPreload(): Promise<string> {
  const dir = await tempDir('no-binding');
  const preload = path.join(dir, 'no-binding.cjs');
  await writeFile(
    preload,
    'const Module = require(\'node:module\');\n' +
      'const load = Module._load;\n' +
      'Module._load = function (request, ...rest) {\n' +
      '  if (String(request).endsWith(\'sshcrypto.node\')) throw new Error(\'simulated: binding not built\');\n' +
      '  return load.call(this, request, ...rest);\n' +
      '};\n',
  );
  return preload;
}
