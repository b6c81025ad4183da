/**
 * The ssh2 patch that takes packet padding from a block of CSPRNG output (scripts/patch-dependencies.mjs)
 * instead of one randomFillSync call per packet. Observed through ssh2's own NullCipher, which writes
 * packets in clear (as before the key exchange), so the padding bytes can be read back.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';

const require = createRequire(import.meta.url);
const cryptoFile = require.resolve('ssh2/lib/protocol/crypto.js');
const { NullCipher } = require(cryptoFile) as {
  NullCipher: new (
    seqno: number,
    onWrite: (packet: Buffer) => void,
  ) => { allocPacket(payloadLen: number): Buffer; encrypt(packet: Buffer): void };
};

/** The padding of `count` packets with payloads of 1..32 bytes, each packet's padding as hex. */
function paddings(count: number): string[] {
  const out: string[] = [];
  const cipher = new NullCipher(0, (packet) => {
    const padLen = packet[4]!;
    out.push(packet.subarray(packet.length - padLen).toString('hex'));
  });
  for (let i = 0; i < count; i++) {
    const payloadLen = 1 + (i % 32);
    const packet = cipher.allocPacket(payloadLen);
    packet.fill(0x5a, 5, 5 + payloadLen);
    cipher.encrypt(packet);
  }
  return out;
}

describe('ssh2 packet padding (patched)', () => {
  it('is installed: every cipher takes padding from the block, none calls randomFillSync per packet', () => {
    const source = readFileSync(cryptoFile, 'utf8');
    assert.match(source, /function fillPadding\(/);
    assert.equal(source.split('randomFillSync(packet, 5 + payloadLen, padLen)').length, 1);
    assert.equal(source.split('fillPadding(packet, 5 + payloadLen, padLen)').length, 8);
  });

  it('gives every packet fresh random bytes, across refills of the 64 KiB block', () => {
    // 20,000 packets of 4-11 bytes of padding use the 64 KiB block about twice over.
    const pads = paddings(20_000);
    const bytes = Buffer.from(pads.join(''), 'hex');
    assert.ok(bytes.length > 128 * 1024, `${bytes.length} bytes of padding`);
    for (const p of pads) assert.ok(p.length >= 8, 'at least 4 bytes of padding (RFC 4253)');
    // Reused bytes would repeat long runs; 16-byte windows of random data never collide at this scale.
    const seen = new Set<string>();
    for (let i = 0; i + 16 <= bytes.length; i += 16) {
      const w = bytes.subarray(i, i + 16).toString('hex');
      assert.ok(!seen.has(w), `padding bytes repeat at ${i}`);
      seen.add(w);
    }
    // Roughly uniform: every byte value appears, none more than twice its expected share.
    const counts = new Array<number>(256).fill(0);
    for (const b of bytes) counts[b]!++;
    const expected = bytes.length / 256;
    assert.ok(Math.min(...counts) > 0);
    assert.ok(Math.max(...counts) < 2 * expected, `byte counts ${Math.min(...counts)}..${Math.max(...counts)}`);
  });
});
