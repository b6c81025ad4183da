import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { coalesceWrites } from '../../src/protocol/coalesced-writes.js';

/** A loopback TCP pair: the server side gets coalesceWrites (as the SSH server's sockets do). */
async function pair(): Promise<{ sender: net.Socket; receiver: net.Socket; received: () => Buffer; close: () => void }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const receiver = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [sender] = (await once(server, 'connection')) as [net.Socket];
  coalesceWrites(sender);
  const chunks: Buffer[] = [];
  receiver.on('data', (d: Buffer) => chunks.push(d));
  return {
    sender,
    receiver,
    received: () => Buffer.concat(chunks),
    close: () => {
      sender.destroy();
      receiver.destroy();
      server.close();
    },
  };
}

async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('coalesceWrites', () => {
  let p: Awaited<ReturnType<typeof pair>>;
  before(async () => {
    p = await pair();
  });
  after(() => p.close());

  it('holds the writes of one turn and sends them together, in order, when the turn ends', async () => {
    const parts = [Buffer.alloc(40_000, 1), Buffer.from('tail'), Buffer.alloc(1000, 2)];
    for (const b of parts) p.sender.write(b);
    // An idle socket would have passed the first write to the kernel at once; here all of it waits.
    assert.equal(p.sender.writableLength, 41_004);
    assert.equal(p.sender.writableCorked, 1);
    await new Promise((r) => process.nextTick(r));
    assert.equal(p.sender.writableCorked, 0);
    await until(() => p.received().length === 41_004);
    assert.deepEqual(p.received(), Buffer.concat(parts));
  });

  it('sends a write of a later turn without waiting for another write', async () => {
    const before = p.received().length;
    await new Promise((r) => setImmediate(r));
    p.sender.write('next');
    await until(() => p.received().length === before + 4);
    assert.equal(p.received().subarray(before).toString(), 'next');
  });

  it('passes the callback and the return value through', async () => {
    let called = false;
    const ok = p.sender.write('cb', () => {
      called = true;
    });
    assert.equal(typeof ok, 'boolean');
    await until(() => called);
  });

  it('end() in the same turn still sends what was written before it', async () => {
    const q = await pair();
    try {
      q.sender.write('bye');
      q.sender.end();
      await once(q.receiver, 'end');
      assert.equal(q.received().toString(), 'bye');
    } finally {
      q.close();
    }
  });
});
