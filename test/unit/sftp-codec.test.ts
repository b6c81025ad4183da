import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Attrs,
  PacketCursor,
  PacketReader,
  PacketWriter,
  SftpProtocolError,
} from '../../src/protocol/sftp/codec.js';
import {
  MAX_INCOMING_PACKET_LENGTH,
  PacketType,
  SERVER_EXTENSIONS,
  StatusCode,
} from '../../src/protocol/sftp/constants.js';
import {
  attrsPacket,
  dataPacket,
  extendedReplyPacket,
  handlePacket,
  namePacket,
  statusPacket,
  versionPacket,
} from '../../src/protocol/sftp/replies.js';

/** Frames one finished packet and returns a cursor positioned after its type byte. */
function parse(packet: Buffer): { type: number; r: PacketCursor } {
  const reader = new PacketReader();
  reader.push(packet);
  const body = reader.next();
  assert.ok(body, 'a complete packet');
  assert.equal(reader.next(), undefined);
  assert.equal(reader.bufferedBytes, 0);
  return { type: body[0]!, r: new PacketCursor(body, 1) };
}

const attrShapes: Array<[string, Attrs]> = [
  ['empty', {}],
  ['size only', { size: 1234 }],
  ['large size', { size: 2 ** 40 + 7 }],
  ['uid/gid', { uid: 1000, gid: 100 }],
  ['permissions', { permissions: 0o100644 }],
  ['times', { atime: 1_700_000_000, mtime: 1_700_000_001 }],
  [
    'everything',
    {
      size: 5,
      uid: 0,
      gid: 0,
      permissions: 0o40755,
      atime: 1,
      mtime: 2,
      extended: [
        ['a@example.com', Buffer.from('x')],
        ['b@example.com', Buffer.alloc(0)],
      ],
    },
  ],
];

describe('PacketWriter and PacketCursor', () => {
  it('round-trip every field type', () => {
    const packet = new PacketWriter(PacketType.WRITE, 4)
      .uint32(7)
      .bytes(Buffer.from([0, 0, 0, 1]))
      .uint64(2 ** 52 + 3)
      .string('héllo/wörld')
      .byte(0xfe)
      .finish();
    const { type, r } = parse(packet);
    assert.equal(type, PacketType.WRITE);
    assert.equal(r.uint32(), 7);
    assert.deepEqual(r.bytes(), Buffer.from([0, 0, 0, 1]));
    assert.equal(r.uint64(), 2 ** 52 + 3);
    assert.equal(r.string(), 'héllo/wörld');
    assert.equal(r.byte(), 0xfe);
    assert.equal(r.remaining, 0);
  });

  for (const [name, attrs] of attrShapes) {
    it(`round-trips attrs: ${name}`, () => {
      const { r } = parse(new PacketWriter(PacketType.ATTRS).uint32(1).attrs(attrs).finish());
      assert.equal(r.uint32(), 1);
      assert.deepEqual(r.attrs(), attrs);
      assert.equal(r.remaining, 0);
    });
  }

  it('encodes attribute flags as the protocol defines them', () => {
    const packet = new PacketWriter(PacketType.ATTRS).attrs({ size: 1, permissions: 0o644 }).finish();
    assert.equal(packet.readUInt32BE(5), 0x1 | 0x4);
    const all = new PacketWriter(PacketType.ATTRS)
      .attrs({ size: 1, uid: 0, gid: 0, permissions: 0, atime: 0, mtime: 0, extended: [] })
      .finish();
    assert.equal(all.readUInt32BE(5), 0x8000000f);
  });

  it('rejects reading past the end of a packet', () => {
    const { r } = parse(new PacketWriter(PacketType.OPEN).uint32(1).uint32(100).finish());
    assert.equal(r.uint32(), 1);
    assert.throws(() => r.string(), SftpProtocolError);
  });

  it('rejects truncated attributes and absurd extended counts', () => {
    const truncated = new PacketWriter(PacketType.SETSTAT).uint32(0x1).uint32(0).finish();
    assert.throws(() => parse(truncated).r.attrs(), SftpProtocolError);
    const hugeCount = new PacketWriter(PacketType.SETSTAT).uint32(0x80000000).uint32(0xffffffff).finish();
    assert.throws(() => parse(hugeCount).r.attrs(), SftpProtocolError);
  });

  it('rejects 64-bit values that cannot be represented', () => {
    const packet = new PacketWriter(PacketType.READ).uint32(0xffffffff).uint32(0xffffffff).finish();
    assert.throws(() => parse(packet).r.uint64(), SftpProtocolError);
  });

  it('grows past its size hint', () => {
    const big = Buffer.alloc(100_000, 7);
    const { r } = parse(new PacketWriter(PacketType.DATA, 1).bytes(big).finish());
    assert.deepEqual(r.bytes(), big);
  });
});

describe('reply packets', () => {
  it('VERSION carries version 3 and the extensions', () => {
    const { type, r } = parse(versionPacket(SERVER_EXTENSIONS));
    assert.equal(type, PacketType.VERSION);
    assert.equal(r.uint32(), 3);
    const exts: Array<[string, string]> = [];
    while (r.remaining > 0) exts.push([r.string(), r.string()]);
    assert.deepEqual(exts, [
      ['posix-rename@openssh.com', '1'],
      ['statvfs@openssh.com', '2'],
      ['fstatvfs@openssh.com', '2'],
      ['limits@openssh.com', '1'],
      ['fsync@openssh.com', '1'],
      ['copy-data', '1'],
    ]);
  });

  it('STATUS carries code, message and language tag', () => {
    const { type, r } = parse(statusPacket(9, StatusCode.NO_SUCH_FILE, 'no such file: /x'));
    assert.equal(type, PacketType.STATUS);
    assert.deepEqual([r.uint32(), r.uint32(), r.string(), r.string()], [9, 2, 'no such file: /x', 'en']);
  });

  it('HANDLE, DATA, ATTRS and EXTENDED_REPLY', () => {
    let p = parse(handlePacket(1, Buffer.from([0, 0, 0, 5])));
    assert.equal(p.type, PacketType.HANDLE);
    assert.deepEqual([p.r.uint32(), p.r.bytes()], [1, Buffer.from([0, 0, 0, 5])]);

    p = parse(dataPacket(2, Buffer.from('abc')));
    assert.equal(p.type, PacketType.DATA);
    assert.deepEqual([p.r.uint32(), p.r.string()], [2, 'abc']);

    p = parse(attrsPacket(3, { size: 10, permissions: 0o100644 }));
    assert.equal(p.type, PacketType.ATTRS);
    assert.deepEqual([p.r.uint32(), p.r.attrs()], [3, { size: 10, permissions: 0o100644 }]);

    p = parse(extendedReplyPacket(4, [262144, 261120, 2 ** 45]));
    assert.equal(p.type, PacketType.EXTENDED_REPLY);
    assert.deepEqual([p.r.uint32(), p.r.uint64(), p.r.uint64(), p.r.uint64()], [4, 262144, 261120, 2 ** 45]);
    assert.equal(p.r.remaining, 0);
  });

  it('NAME with several entries', () => {
    const entries = [
      { filename: 'a', longname: '-rw-r--r--   1 a', attrs: { size: 1 } },
      { filename: 'dir', longname: 'drwxr-xr-x   1 dir', attrs: { permissions: 0o40755 } },
    ];
    const { type, r } = parse(namePacket(5, entries));
    assert.equal(type, PacketType.NAME);
    assert.equal(r.uint32(), 5);
    const count = r.uint32();
    const decoded = Array.from({ length: count }, () => ({
      filename: r.string(),
      longname: r.string(),
      attrs: r.attrs(),
    }));
    assert.deepEqual(decoded, entries);
  });
});

describe('PacketReader', () => {
  const packets = [
    statusPacket(1, StatusCode.OK, 'ok'),
    dataPacket(2, Buffer.alloc(3000, 1)),
    handlePacket(3, Buffer.from('h')),
  ];
  const stream = Buffer.concat(packets);

  it('waits for the rest of a truncated packet', () => {
    const reader = new PacketReader();
    reader.push(stream.subarray(0, 2));
    assert.equal(reader.next(), undefined);
    reader.push(stream.subarray(2, packets[0]!.length - 1));
    assert.equal(reader.next(), undefined);
    reader.push(stream.subarray(packets[0]!.length - 1));
    for (const p of packets) assert.deepEqual(reader.next(), p.subarray(4));
    assert.equal(reader.next(), undefined);
  });

  it('reassembles packets fed one byte at a time', () => {
    const reader = new PacketReader();
    const out: Buffer[] = [];
    for (let i = 0; i < stream.length; i++) {
      reader.push(stream.subarray(i, i + 1));
      for (let body = reader.next(); body !== undefined; body = reader.next()) out.push(Buffer.from(body));
    }
    assert.deepEqual(
      out,
      packets.map((p) => p.subarray(4)),
    );
    assert.equal(reader.bufferedBytes, 0);
  });

  it('handles packets split across chunks at every position', () => {
    for (let cut = 1; cut < stream.length; cut += 97) {
      const reader = new PacketReader();
      reader.push(stream.subarray(0, cut));
      const out: Buffer[] = [];
      for (let b = reader.next(); b; b = reader.next()) out.push(b);
      reader.push(stream.subarray(cut));
      for (let b = reader.next(); b; b = reader.next()) out.push(b);
      assert.equal(out.length, packets.length, `cut at ${cut}`);
    }
  });

  it('refuses an oversized packet as soon as its length is known', () => {
    const reader = new PacketReader();
    const header = Buffer.alloc(4);
    header.writeUInt32BE(MAX_INCOMING_PACKET_LENGTH + 1);
    reader.push(header);
    assert.throws(() => reader.next(), SftpProtocolError);
  });

  it('accepts a packet of exactly the maximum length', () => {
    const reader = new PacketReader();
    const packet = Buffer.alloc(4 + MAX_INCOMING_PACKET_LENGTH);
    packet.writeUInt32BE(MAX_INCOMING_PACKET_LENGTH);
    reader.push(packet);
    assert.equal(reader.next()?.length, MAX_INCOMING_PACKET_LENGTH);
  });

  it('refuses an empty packet', () => {
    const reader = new PacketReader();
    reader.push(Buffer.alloc(4));
    assert.throws(() => reader.next(), SftpProtocolError);
  });
});
