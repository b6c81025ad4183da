import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { START_NODE_FLAGS, startGateway, type TestGateway } from '../support/gateway.js';

const MEMORY_REDUCER_WARNING = /run the gateway with node --no-memory-reducer/;
const major = Number(process.versions.node.split('.')[0]);

describe('node flags', () => {
  const started: TestGateway[] = [];
  after(async () => {
    for (const g of started) await g.stop();
  });

  it('npm start passes --no-memory-reducer, and the gateway then says nothing about it', async () => {
    assert.ok(START_NODE_FLAGS.includes('--no-memory-reducer'), `npm start flags: ${START_NODE_FLAGS.join(' ')}`);
    const gw = await startGateway();
    started.push(gw);
    assert.equal(gw.logLines().some((l) => MEMORY_REDUCER_WARNING.test(String(l['msg']))), false);
  });

  it(`without the flag, Node ${major} ${major < 24 ? 'warns' : 'does not warn'} at start`, async () => {
    const gw = await startGateway({ nodeArgs: [] });
    started.push(gw);
    if (major < 24) {
      const line = await gw.waitForLog((l) => MEMORY_REDUCER_WARNING.test(String(l['msg'])));
      assert.equal(line['level'], 'warn');
    } else {
      assert.equal(gw.logLines().some((l) => MEMORY_REDUCER_WARNING.test(String(l['msg']))), false);
    }
  });
});
