import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { START_NODE_FLAGS, startGateway, type TestGateway } from '../support/gateway.js';

const MEMORY_REDUCER_WARNING = /run the gateway with node --no-memory-reducer/;
const HEAP_SIZE_WARNING = /run the gateway with node --initial-heap-size=64/;
const major = Number(process.versions.node.split('.')[0]);

describe('node flags', () => {
  const started: TestGateway[] = [];
  after(async () => {
    for (const g of started) await g.stop();
  });
  const warned = (gw: TestGateway, re: RegExp) => gw.logLines().some((l) => re.test(String(l['msg'])));

  it('npm start passes --initial-heap-size and --no-memory-reducer, and the gateway then says nothing about them', async () => {
    for (const flag of ['--no-memory-reducer', '--initial-heap-size=64'])
      assert.ok(START_NODE_FLAGS.includes(flag), `npm start flags: ${START_NODE_FLAGS.join(' ')}`);
    const gw = await startGateway();
    started.push(gw);
    assert.equal(warned(gw, MEMORY_REDUCER_WARNING), false);
    assert.equal(warned(gw, HEAP_SIZE_WARNING), false);
  });

  it(`without them, Node ${major} warns about the heap size${major < 24 ? ' and the memory reducer' : ''} at start`, async () => {
    const gw = await startGateway({ nodeArgs: [] });
    started.push(gw);
    const line = await gw.waitForLog((l) => HEAP_SIZE_WARNING.test(String(l['msg'])));
    assert.equal(line['level'], 'warn');
    if (major < 24) {
      const reducer = await gw.waitForLog((l) => MEMORY_REDUCER_WARNING.test(String(l['msg'])));
      assert.equal(reducer['level'], 'warn');
    } else {
      assert.equal(warned(gw, MEMORY_REDUCER_WARNING), false);
    }
  });

  it('another --initial-heap-size is the operator’s choice: no warning about it', async () => {
    const gw = await startGateway({ nodeArgs: ['--initial-heap-size=128', '--no-memory-reducer'] });
    started.push(gw);
    assert.equal(warned(gw, HEAP_SIZE_WARNING), false);
    assert.equal(warned(gw, MEMORY_REDUCER_WARNING), false);
  });
});
