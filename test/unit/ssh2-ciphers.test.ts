/**
 * Every cipher the gateway offers round-trips packets through ssh2's cipher and decipher, whichever
 * implementation ssh2 picked: its native binding or its JavaScript one. test/smoke-node24.sh runs this
 * file again under Node 24 against a copy of ssh2 whose binding ssh2's install script built for Node 24
 * (SSH2_CRYPTO_MODULE), as the container builds it, and requires the binding there
 * (REQUIRE_SSH2_BINDING): its ChaCha20-Poly1305 is about three times as fast as the JavaScript one.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';

const require = createRequire(import.meta.url);
const modulePath = process.env['SSH2_CRYPTO_MODULE'] ?? require.resolve('ssh2/lib/protocol/crypto.js');

interface CipherInfo {
  sslName: string;
  keyLen: number;
  ivLen: number;
}
interface MacInfo {
  len: number;
}
interface Ssh2Crypto {
  init: Promise<void>;
  bindingAvailable: boolean;
  CIPHER_INFO: Record<string, CipherInfo>;
  MAC_INFO: Record<string, MacInfo>;
  createCipher(config: unknown): { allocPacket(n: number): Buffer; encrypt(p: Buffer): void; free(): void };
  createDecipher(config: unknown): { decrypt(d: Buffer, p: number, n: number): void; free(): void };
}
const ssh2 = require(modulePath) as Ssh2Crypto;

/** Encrypts `count` packets of growing payloads and decrypts the stream; the implementations' class names. */
function roundTrip(cipherName: string, macName: string | undefined, count: number) {
  const cipherInfo = ssh2.CIPHER_INFO[cipherName]!;
  const macInfo = macName ? ssh2.MAC_INFO[macName] : undefined;
  const key = Buffer.alloc(cipherInfo.keyLen, 0x11);
  const iv = cipherInfo.ivLen ? Buffer.alloc(cipherInfo.ivLen, 0x22) : undefined;
  const macKey = macInfo ? Buffer.alloc(macInfo.len, 0x33) : undefined;
  const wire: Buffer[] = [];
  const payloads: string[] = [];
  const enc = ssh2.createCipher({
    outbound: {
      onWrite: (p: Buffer) => wire.push(Buffer.from(p)),
      cipherInfo,
      cipherKey: key,
      cipherIV: iv,
      seqno: 0,
      macInfo,
      macKey,
    },
  });
  const dec = ssh2.createDecipher({
    inbound: {
      onPayload: (p: Buffer) => void payloads.push(p.toString()),
      decipherInfo: cipherInfo,
      decipherKey: key,
      decipherIV: iv,
      seqno: 0,
      macInfo,
      macKey,
    },
  });
  const sent: string[] = [];
  for (let i = 0; i < count; i++) {
    const text = `packet ${i} `.repeat(1 + i * 7);
    const packet = enc.allocPacket(text.length);
    packet.write(text, 5);
    enc.encrypt(packet);
    sent.push(text);
  }
  const stream = Buffer.concat(wire);
  dec.decrypt(stream, 0, stream.length);
  const names = { cipher: enc.constructor.name, decipher: dec.constructor.name };
  enc.free();
  dec.free();
  return { sent, payloads, names };
}

describe(`ssh2 ciphers round-trip (Node ${process.versions.node}, OpenSSL ${process.versions.openssl})`, () => {
  const offered: Array<[string, string | undefined]> = [
    ['chacha20-poly1305@openssh.com', undefined],
    ['aes128-gcm@openssh.com', undefined],
    ['aes256-gcm@openssh.com', undefined],
    ['aes128-ctr', 'hmac-sha2-256-etm@openssh.com'],
    ['aes256-ctr', 'hmac-sha2-512'],
  ];
  for (const [cipher, mac] of offered) {
    it(`${cipher}${mac ? ` with ${mac}` : ''}: 20 packets arrive as sent`, async (t) => {
      await ssh2.init;
      const r = roundTrip(cipher, mac, 20);
      assert.deepEqual(r.payloads, r.sent);
      t.diagnostic(`${r.names.cipher} / ${r.names.decipher}`);
    });
  }

  it('uses the native binding for ChaCha20-Poly1305 and AES-GCM where it loaded', async () => {
    await ssh2.init;
    if (process.env['REQUIRE_SSH2_BINDING']) assert.ok(ssh2.bindingAvailable, 'ssh2 native binding loaded');
    const gcm = roundTrip('aes128-gcm@openssh.com', undefined, 1).names;
    const chacha = roundTrip('chacha20-poly1305@openssh.com', undefined, 1).names;
    if (ssh2.bindingAvailable) {
      assert.deepEqual(gcm, { cipher: 'AESGCMCipherBinding', decipher: 'AESGCMDecipherBinding' });
      assert.deepEqual(chacha, { cipher: 'ChaChaPolyCipherBinding', decipher: 'ChaChaPolyDecipherBinding' });
    } else {
      assert.deepEqual(gcm, { cipher: 'AESGCMCipherNative', decipher: 'AESGCMDecipherNative' });
      assert.deepEqual(chacha, { cipher: 'ChaChaPolyCipherNative', decipher: 'ChaChaPolyDecipherNative' });
    }
  });
});
