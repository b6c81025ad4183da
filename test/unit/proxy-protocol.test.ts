import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  compileTrustedSources,
  formatIPv6,
  isTrustedProxy,
  type ProxyHeader,
  ProxyProtocolError,
  parseProxyHeader,
  readProxyHeader,
  V2_SIGNATURE,
} from '../../src/protocol/proxy-protocol.js';

const SSH_BANNER = Buffer.from(
  'SSH-2.0-OpenSSH_9.6\r\n\x00\x00\x01\x0c\x0a\x14binary-kexinit-follows',
  'latin1',
);

interface Outcome {
  header?: ProxyHeader;
  error?: unknown;
  rest: Buffer;
  elapsedMs: number;
}

/** A server that reads a PROXY header from each connection, then collects the rest of the stream. */
class Harness {
  server!: Server;
  port = 0;
  private waiting: ((o: Outcome) => void)[] = [];
  constructor(
    private readonly timeoutMs: number,
    private readonly attachDelayMs = 0,
    private readonly readDelayMs = 0,
  ) {}
  /** readableFlowing of the socket right after the header was read and a tick passed. */
  flowingAfterHeader: (boolean | null)[] = [];

  async start(): Promise<void> {
    this.server = createServer((socket) => void this.handle(socket));
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const addr = this.server.address();
    assert.ok(addr && typeof addr === 'object');
    this.port = addr.port;
  }

  private async handle(socket: Socket): Promise<void> {
    const started = Date.now();
    const resolveOutcome = this.waiting.shift()!;
    let header: ProxyHeader | undefined;
    if (this.readDelayMs > 0) await new Promise((r) => setTimeout(r, this.readDelayMs));
    try {
      header = await readProxyHeader(socket, { timeoutMs: this.timeoutMs });
    } catch (error) {
      socket.destroy();
      resolveOutcome({ error, rest: Buffer.alloc(0), elapsedMs: Date.now() - started });
      return;
    }
    await new Promise((r) => setImmediate(r));
    this.flowingAfterHeader.push(socket.readableFlowing);
    if (this.attachDelayMs > 0) await new Promise((r) => setTimeout(r, this.attachDelayMs));
    // Like ssh2: a plain 'data' listener on the socket as handed over.
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => {
      socket.end();
      resolveOutcome({ header, rest: Buffer.concat(chunks), elapsedMs: Date.now() - started });
    });
  }

  /** Connect, write each chunk as its own segment (a pause between them), then end. */
  async send(chunks: Buffer[], opts: { end?: boolean; gapMs?: number } = {}): Promise<Outcome> {
    const outcome = new Promise<Outcome>((resolve) => this.waiting.push(resolve));
    const client = createConnection({ host: '127.0.0.1', port: this.port });
    client.setNoDelay(true);
    client.on('error', () => {});
    client.resume();
    await once(client, 'connect');
    for (const [i, c] of chunks.entries()) {
      if (i > 0) await new Promise((r) => setTimeout(r, opts.gapMs ?? 15));
      client.write(c);
    }
    if (opts.end ?? true) client.end();
    const result = await outcome;
    client.destroy();
    return result;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function v2(opts: {
  command?: number;
  famProto: number;
  address: Buffer;
  tlvs?: Buffer;
  version?: number;
}): Buffer {
  const body = Buffer.concat([opts.address, opts.tlvs ?? Buffer.alloc(0)]);
  const head = Buffer.alloc(4);
  head[0] = ((opts.version ?? 2) << 4) | (opts.command ?? 1);
  head[1] = opts.famProto;
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([V2_SIGNATURE, head, body]);
}

function inet4(src: string, dst: string, sport: number, dport: number): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(src.split('.').map(Number)).copy(b, 0);
  Buffer.from(dst.split('.').map(Number)).copy(b, 4);
  b.writeUInt16BE(sport, 8);
  b.writeUInt16BE(dport, 10);
  return b;
}

function tlv(type: number, value: Buffer): Buffer {
  const h = Buffer.alloc(3);
  h[0] = type;
  h.writeUInt16BE(value.length, 1);
  return Buffer.concat([h, value]);
}

const bytesOf = (s: string) => Buffer.from(s, 'latin1');

describe('readProxyHeader over real sockets', () => {
  const h = new Harness(500);
  before(() => h.start());
  after(() => h.stop());

  it('v1 TCP4 with the SSH stream in the same packet', async () => {
    const o = await h.send([
      Buffer.concat([bytesOf('PROXY TCP4 203.0.113.7 10.0.0.5 51234 22\r\n'), SSH_BANNER]),
    ]);
    assert.equal(o.error, undefined);
    assert.deepEqual(o.header, {
      local: false,
      version: 1,
      family: 'IPv4',
      sourceAddress: '203.0.113.7',
      sourcePort: 51234,
      destAddress: '10.0.0.5',
      destPort: 22,
    });
    assert.deepEqual(o.rest, SSH_BANNER);
  });

  it('v1 TCP6 split byte by byte, payload in a later write', async () => {
    const header = 'PROXY TCP6 2001:db8:0:0:0:0:0:1 2001:DB8::2 40000 2222\r\n';
    const chunks = [...header].map((c) => bytesOf(c));
    chunks.push(SSH_BANNER);
    const o = await h.send(chunks, { gapMs: 2 });
    assert.equal(o.error, undefined);
    assert.deepEqual(o.header, {
      local: false,
      version: 1,
      family: 'IPv6',
      sourceAddress: '2001:db8::1',
      sourcePort: 40000,
      destAddress: '2001:db8::2',
      destPort: 2222,
    });
    assert.deepEqual(o.rest, SSH_BANNER);
  });

  it('v1 header split with the payload glued to its second half', async () => {
    const o = await h.send([
      bytesOf('PROXY TCP4 198.51.100.1 '),
      Buffer.concat([bytesOf('198.51.100.2 1 65535\r\n'), SSH_BANNER]),
    ]);
    assert.equal(o.header?.local, false);
    assert.equal(o.header?.local === false && o.header.destPort, 65535);
    assert.deepEqual(o.rest, SSH_BANNER);
  });

  it('v1 UNKNOWN is local', async () => {
    const o = await h.send([Buffer.concat([bytesOf('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n'), SSH_BANNER])]);
    assert.deepEqual(o.header, { local: true, version: 1 });
    assert.deepEqual(o.rest, SSH_BANNER);
  });

  it('v2 PROXY TCP over IPv4 with TLVs and payload in the same packet', async () => {
    const header = v2({
      famProto: 0x11,
      address: inet4('192.0.2.10', '10.1.2.3', 61000, 2222),
      tlvs: Buffer.concat([tlv(0xea, bytesOf('\x01vpce-0123456789abcdef')), tlv(0x04, Buffer.alloc(0))]),
    });
    const o = await h.send([Buffer.concat([header, SSH_BANNER])]);
    assert.equal(o.error, undefined);
    assert.deepEqual(o.header, {
      local: false,
      version: 2,
      family: 'IPv4',
      sourceAddress: '192.0.2.10',
      sourcePort: 61000,
      destAddress: '10.1.2.3',
      destPort: 2222,
    });
    assert.deepEqual(o.rest, SSH_BANNER);
  });

  it('v2 PROXY TCP over IPv6 split across writes (inside the signature, the header, then the payload)', async () => {
    const addr = Buffer.alloc(36);
    Buffer.from('20010db8000000000000000000000042', 'hex').copy(addr, 0);
    Buffer.from('00000000000000000000ffff0a000001', 'hex').copy(addr, 16);
    addr.writeUInt16BE(1234, 32);
    addr.writeUInt16BE(22, 34);
    const header = v2({ famProto: 0x21, address: addr });
    const o = await h.send([
      header.subarray(0, 5),
      header.subarray(5, 14),
      header.subarray(14, 30),
      Buffer.concat([header.subarray(30), SSH_BANNER.subarray(0, 4)]),
      SSH_BANNER.subarray(4),
    ]);
    assert.equal(o.error, undefined);
    assert.deepEqual(o.header, {
      local: false,
      version: 2,
      family: 'IPv6',
      sourceAddress: '2001:db8::42',
      sourcePort: 1234,
      destAddress: '::ffff:10.0.0.1',
      destPort: 22,
    });
    assert.deepEqual(o.rest, SSH_BANNER);
  });

  it('v2 LOCAL (a health check from the proxy) is local', async () => {
    const o = await h.send([
      Buffer.concat([v2({ command: 0, famProto: 0x00, address: Buffer.alloc(0) }), SSH_BANNER]),
    ]);
    assert.deepEqual(o.header, { local: true, version: 2 });
    assert.deepEqual(o.rest, SSH_BANNER);
  });

  it('v2 PROXY with AF_UNSPEC is local', async () => {
    const o = await h.send([v2({ famProto: 0x00, address: Buffer.alloc(0) })]);
    assert.deepEqual(o.header, { local: true, version: 2 });
    assert.equal(o.rest.length, 0);
  });

  it('a plain SSH client (no header) fails fast as malformed, not by timeout', async () => {
    const o = await h.send([SSH_BANNER], { end: false });
    assert.ok(o.error instanceof ProxyProtocolError);
    assert.equal(o.error.code, 'malformed');
    assert.ok(o.elapsedMs < 400, `took ${o.elapsedMs} ms`);
  });

  for (const [name, bytes] of [
    ['v1 without CRLF within 107 bytes', bytesOf(`PROXY TCP4 ${'1'.repeat(120)}`)],
    ['v1 with a bare LF', bytesOf('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n')],
    ['v1 with an out-of-range port', bytesOf('PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n')],
    ['v1 with a leading-zero port', bytesOf('PROXY TCP4 1.2.3.4 5.6.7.8 01 22\r\n')],
    ['v1 TCP4 carrying an IPv6 address', bytesOf('PROXY TCP4 ::1 ::2 1 2\r\n')],
    ['v1 with an unknown protocol', bytesOf('PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 with a missing field', bytesOf('PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n')],
    ['v1 with double spaces', bytesOf('PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n')],
    ['v1 with a bad signature', bytesOf('PROXZ TCP4 1.2.3.4 5.6.7.8 1 2\r\n')],
    [
      'v2 with a bad signature',
      Buffer.concat([V2_SIGNATURE.subarray(0, 11), Buffer.from([0x0b, 0x21, 0x11, 0, 0])]),
    ],
    ['v2 with version 1', v2({ version: 1, famProto: 0x11, address: inet4('1.2.3.4', '5.6.7.8', 1, 2) })],
    ['v2 with command 2', v2({ command: 2, famProto: 0x11, address: inet4('1.2.3.4', '5.6.7.8', 1, 2) })],
    ['v2 AF_INET with a short address block', v2({ famProto: 0x11, address: Buffer.alloc(8) })],
    ['v2 AF_INET over UDP', v2({ famProto: 0x12, address: inet4('1.2.3.4', '5.6.7.8', 1, 2) })],
    ['v2 with family 5', v2({ famProto: 0x51, address: Buffer.alloc(12) })],
    [
      'v2 with a TLV overrunning the header',
      v2({
        famProto: 0x11,
        address: inet4('1.2.3.4', '5.6.7.8', 1, 2),
        tlvs: Buffer.from([0x01, 0x00, 0x09, 0x41]),
      }),
    ],
  ] as const) {
    it(`rejects ${name}`, async () => {
      const o = await h.send([bytes], { end: false });
      assert.ok(o.error instanceof ProxyProtocolError, String(o.error));
      assert.equal(o.error.code, 'malformed');
      assert.ok(o.elapsedMs < 400, `took ${o.elapsedMs} ms`);
    });
  }

  it('times out on an incomplete header', async () => {
    const o = await h.send([bytesOf('PROXY TCP4 1.2.3.4 ')], { end: false });
    assert.ok(o.error instanceof ProxyProtocolError);
    assert.equal(o.error.code, 'timeout');
    assert.ok(o.elapsedMs >= 450 && o.elapsedMs < 2000, `took ${o.elapsedMs} ms`);
  });

  it('times out on a silent client', async () => {
    const o = await h.send([], { end: false });
    assert.ok(o.error instanceof ProxyProtocolError);
    assert.equal(o.error.code, 'timeout');
  });

  it('reports a connection closed before the header is complete', async () => {
    const o = await h.send([
      v2({ famProto: 0x11, address: inet4('1.2.3.4', '5.6.7.8', 1, 2) }).subarray(0, 20),
    ]);
    assert.ok(o.error instanceof ProxyProtocolError);
    assert.equal(o.error.code, 'closed');
  });
});

describe('readProxyHeader hand-over', () => {
  const h = new Harness(500, 50);
  before(() => h.start());
  after(() => h.stop());

  it('a data listener attached later still sees the whole rest of the stream, in order', async () => {
    const big = Buffer.alloc(256 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const o = await h.send([
      Buffer.concat([bytesOf('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), big.subarray(0, 1000)]),
      big.subarray(1000),
    ]);
    assert.equal(o.header?.local, false);
    assert.equal(o.rest.length, big.length);
    assert.ok(o.rest.equals(big));
    // Left as a fresh socket: not paused, not flowing, so the next owner's on('data') starts the flow.
    assert.deepEqual(h.flowingAfterHeader, [null]);
  });
});

describe('readProxyHeader called after the data has arrived', () => {
  const h = new Harness(500, 0, 50);
  before(() => h.start());
  after(() => h.stop());

  it('reads a header already buffered on the socket', async () => {
    const o = await h.send([Buffer.concat([bytesOf('PROXY TCP4 9.9.9.9 5.6.7.8 4242 2\r\n'), SSH_BANNER])]);
    assert.equal(o.error, undefined);
    assert.equal(o.header?.local === false && o.header.sourceAddress, '9.9.9.9');
    assert.deepEqual(o.rest, SSH_BANNER);
  });
});

describe('parseProxyHeader', () => {
  it('needs more on valid prefixes and fails on the first wrong byte', () => {
    assert.deepEqual(parseProxyHeader(Buffer.alloc(0)), { kind: 'need-more' });
    assert.deepEqual(parseProxyHeader(bytesOf('PRO')), { kind: 'need-more' });
    assert.deepEqual(parseProxyHeader(bytesOf('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r')), { kind: 'need-more' });
    assert.deepEqual(parseProxyHeader(V2_SIGNATURE.subarray(0, 7)), { kind: 'need-more' });
    assert.throws(() => parseProxyHeader(bytesOf('PRX')), ProxyProtocolError);
    assert.throws(() => parseProxyHeader(bytesOf('SSH-2.0')), ProxyProtocolError);
    assert.throws(() => parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d, 0x0b])), ProxyProtocolError);
  });

  it('reports the exact header length', () => {
    const line = 'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n';
    const r = parseProxyHeader(Buffer.concat([bytesOf(line), bytesOf('SSH-')]));
    assert.equal(r.kind, 'done');
    assert.equal(r.kind === 'done' && r.length, line.length);
    const h2 = v2({
      famProto: 0x11,
      address: inet4('1.2.3.4', '5.6.7.8', 1, 2),
      tlvs: tlv(0x03, Buffer.alloc(4)),
    });
    const r2 = parseProxyHeader(Buffer.concat([h2, bytesOf('SSH-')]));
    assert.equal(r2.kind === 'done' && r2.length, h2.length);
  });

  it('accepts a maximal 107-byte v1 header', () => {
    const line =
      'PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n';
    assert.equal(line.length, 104);
    const r = parseProxyHeader(bytesOf(line));
    assert.equal(r.kind, 'done');
  });
});

describe('formatIPv6', () => {
  const f = (hex: string) => formatIPv6(Buffer.from(hex, 'hex'));
  it('follows RFC 5952', () => {
    assert.equal(f('00000000000000000000000000000000'), '::');
    assert.equal(f('00000000000000000000000000000001'), '::1');
    assert.equal(f('20010db8000000000001000000000001'), '2001:db8::1:0:0:1');
    assert.equal(f('20010db8000100000001000100010001'), '2001:db8:1:0:1:1:1:1');
    assert.equal(f('00000000000000000000ffff7f000001'), '::ffff:127.0.0.1');
    assert.equal(f('fe800000000000000000000000000000'), 'fe80::');
  });
});

describe('isTrustedProxy', () => {
  it('matches IPv4 CIDRs and single addresses', () => {
    const list = ['10.0.0.0/8', '192.168.1.5', '172.16.0.0/12'];
    assert.equal(isTrustedProxy('10.200.3.4', list), true);
    assert.equal(isTrustedProxy('11.0.0.1', list), false);
    assert.equal(isTrustedProxy('192.168.1.5', list), true);
    assert.equal(isTrustedProxy('192.168.1.6', list), false);
    assert.equal(isTrustedProxy('172.31.255.255', list), true);
    assert.equal(isTrustedProxy('172.32.0.0', list), false);
    assert.equal(isTrustedProxy(undefined, list), false);
    assert.equal(isTrustedProxy('not-an-ip', list), false);
  });

  it('treats IPv4-mapped IPv6 addresses as IPv4', () => {
    assert.equal(isTrustedProxy('::ffff:127.0.0.1', ['127.0.0.0/8']), true);
    assert.equal(isTrustedProxy('::FFFF:7f00:1', ['127.0.0.1']), true);
    assert.equal(isTrustedProxy('127.0.0.1', ['::ffff:127.0.0.0/104']), true);
    assert.equal(isTrustedProxy('128.0.0.1', ['::ffff:127.0.0.0/104']), false);
    assert.equal(isTrustedProxy('::ffff:10.1.1.1', ['::1']), false);
  });

  it('matches IPv6 CIDRs, ignoring zone ids', () => {
    const list = ['fd00::/8', '::1', '2001:db8:abcd::/48'];
    assert.equal(isTrustedProxy('fd12:3456::1', list), true);
    assert.equal(isTrustedProxy('fe80::1%eth0', list), false);
    assert.equal(isTrustedProxy('::1', list), true);
    assert.equal(isTrustedProxy('2001:db8:abcd:ffff::9', list), true);
    assert.equal(isTrustedProxy('2001:db8:abce::9', list), false);
    assert.equal(isTrustedProxy('10.0.0.1', list), false);
    assert.equal(isTrustedProxy('fe80::1%eth0', ['fe80::/10']), true);
  });

  it('/0 matches its whole family, host bits in the network are masked', () => {
    assert.equal(isTrustedProxy('8.8.8.8', ['0.0.0.0/0']), true);
    assert.equal(isTrustedProxy('2001::1', ['0.0.0.0/0']), false);
    assert.equal(isTrustedProxy('2001::1', ['::/0']), true);
    assert.equal(isTrustedProxy('10.9.9.9', ['10.1.2.3/8']), true);
    assert.equal(isTrustedProxy('1.2.3.4', []), false);
  });

  it('rejects invalid entries', () => {
    for (const bad of [
      '10.0.0.0/33',
      '10.0.0.0/',
      '10.0.0/8',
      'fd00::/129',
      'host.example',
      '::ffff:10.0.0.0/95',
      '1.2.3.4/-1',
    ]) {
      assert.throws(() => compileTrustedSources([bad]), TypeError, bad);
    }
  });
});
