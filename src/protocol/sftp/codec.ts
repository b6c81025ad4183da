/**
 * SFTP wire format: uint32-length-prefixed packets, incremental framing of a byte stream, field decoding
 * of one packet and encoding of replies. Nothing here knows about sessions or the filesystem.
 */
import { bufferPool } from './buffer-pool.js';
import { AttrFlags, MAX_INCOMING_PACKET_LENGTH } from './constants.js';

const POOL_MIN_BYTES = 16 * 1024;

/** A packet that cannot be framed or decoded. The session ends: the stream can no longer be trusted. */
export class SftpProtocolError extends Error {
  override readonly name = 'SftpProtocolError';
}

/** SFTP v3 ATTRS. A field is present exactly when it is defined (uid and gid travel together, as do the times). */
export interface Attrs {
  size?: number;
  uid?: number;
  gid?: number;
  permissions?: number;
  atime?: number;
  mtime?: number;
  extended?: Array<[type: string, data: Buffer]>;
}

/**
 * Splits a byte stream into packet bodies (type byte onwards). Chunks are kept as received and only
 * joined when a packet spans them, so a client dribbling single bytes costs O(n), not O(n^2).
 */
export class PacketReader {
  private chunks: Buffer[] = [];
  private head = 0;
  private headOffset = 0;
  private buffered = 0;
  /** Body length of the packet being assembled, once its header has arrived. */
  private expected: number | undefined;

  constructor(private readonly maxLength: number = MAX_INCOMING_PACKET_LENGTH) {}

  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next complete packet body, or undefined until more bytes arrive. Throws SftpProtocolError. */
  next(): Buffer | undefined {
    if (this.expected === undefined) {
      if (this.buffered < 4) return undefined;
      const length = this.take(4).readUInt32BE(0);
      if (length === 0) throw new SftpProtocolError('empty packet');
      if (length > this.maxLength) {
        throw new SftpProtocolError(`packet of ${length} bytes exceeds the limit of ${this.maxLength}`);
      }
      this.expected = length;
    }
    if (this.buffered < this.expected) return undefined;
    const body = this.take(this.expected);
    this.expected = undefined;
    return body;
  }

  /** Removes n buffered bytes (n <= buffered); zero-copy when they sit in one chunk. */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[this.head]!;
    const available = first.length - this.headOffset;
    if (available >= n) {
      const out = first.subarray(this.headOffset, this.headOffset + n);
      this.advance(n === available ? undefined : this.headOffset + n);
      return out;
    }
    // A WRITE's data nearly always straddles two SSH packets; its joined copy comes from the pool and goes
    // back once the write settled (see buffer-pool.ts). Small packets are not worth pooling.
    const out = n >= POOL_MIN_BYTES ? bufferPool.take(n) : Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[this.head]!;
      const count = Math.min(chunk.length - this.headOffset, n - filled);
      chunk.copy(out, filled, this.headOffset, this.headOffset + count);
      filled += count;
      this.advance(this.headOffset + count === chunk.length ? undefined : this.headOffset + count);
    }
    return out;
  }

  /** Moves within the head chunk, or (offset undefined) past it. */
  private advance(offset: number | undefined): void {
    if (offset !== undefined) {
      this.headOffset = offset;
      return;
    }
    this.chunks[this.head] = EMPTY;
    this.head++;
    this.headOffset = 0;
    // Compact now and then instead of shifting the array for every consumed chunk.
    if (this.head === this.chunks.length) {
      this.chunks = [];
      this.head = 0;
    } else if (this.head >= 1024) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}

const EMPTY = Buffer.alloc(0);

/** Reads the fields of one packet body in order; running past the end is a malformed packet. */
export class PacketCursor {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    offset = 0,
  ) {
    this.pos = offset;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  byte(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  uint32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** Offsets and sizes beyond 2^53 cannot be real and cannot be represented: treated as malformed. */
  uint64(): number {
    this.need(8);
    const hi = this.buf.readUInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    if (hi > 0x1fffff) throw new SftpProtocolError('64-bit value out of range');
    return hi * 0x100000000 + lo;
  }

  /** A `string` field as raw bytes (a zero-copy view). */
  bytes(): Buffer {
    const length = this.uint32();
    this.need(length);
    const out = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  /** A `string` field decoded as UTF-8 (SFTP v3 file names are UTF-8 in practice). */
  string(): string {
    return this.bytes().toString('utf8');
  }

  attrs(): Attrs {
    const flags = this.uint32();
    const attrs: Attrs = {};
    if (flags & AttrFlags.SIZE) attrs.size = this.uint64();
    if (flags & AttrFlags.UIDGID) {
      attrs.uid = this.uint32();
      attrs.gid = this.uint32();
    }
    if (flags & AttrFlags.PERMISSIONS) attrs.permissions = this.uint32();
    if (flags & AttrFlags.ACMODTIME) {
      attrs.atime = this.uint32();
      attrs.mtime = this.uint32();
    }
    if (flags & AttrFlags.EXTENDED) {
      const count = this.uint32();
      // Each pair needs at least 8 bytes; checking first stops a huge count from looping for nothing.
      if (count * 8 > this.remaining) throw new SftpProtocolError('truncated extended attributes');
      attrs.extended = [];
      for (let i = 0; i < count; i++) attrs.extended.push([this.string(), this.bytes()]);
    }
    return attrs;
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new SftpProtocolError('truncated packet');
  }
}

/** Builds one packet, length prefix included, in a single growing buffer. */
export class PacketWriter {
  private buf: Buffer;
  private pos = 4;

  /** `sizeHint` is the expected body size; a right guess means no reallocation. */
  constructor(type: number, sizeHint = 64) {
    this.buf = Buffer.allocUnsafe(4 + Math.max(sizeHint, 16));
    this.byte(type);
  }

  byte(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  uint32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  uint64(v: number): this {
    this.ensure(8);
    const value = Math.max(0, Math.floor(v));
    this.buf.writeUInt32BE(Math.floor(value / 0x100000000) >>> 0, this.pos);
    this.buf.writeUInt32BE(value % 0x100000000, this.pos + 4);
    this.pos += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.uint32(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  string(s: string): this {
    const length = Buffer.byteLength(s, 'utf8');
    this.uint32(length);
    this.ensure(length);
    this.pos += this.buf.write(s, this.pos, length, 'utf8');
    return this;
  }

  attrs(a: Attrs): this {
    const hasIds = a.uid !== undefined && a.gid !== undefined;
    const hasTimes = a.atime !== undefined && a.mtime !== undefined;
    let flags = 0;
    if (a.size !== undefined) flags |= AttrFlags.SIZE;
    if (hasIds) flags |= AttrFlags.UIDGID;
    if (a.permissions !== undefined) flags |= AttrFlags.PERMISSIONS;
    if (hasTimes) flags |= AttrFlags.ACMODTIME;
    if (a.extended !== undefined) flags |= AttrFlags.EXTENDED;
    this.uint32(flags);
    if (a.size !== undefined) this.uint64(a.size);
    if (hasIds) this.uint32(a.uid!).uint32(a.gid!);
    if (a.permissions !== undefined) this.uint32(a.permissions);
    if (hasTimes) this.uint32(a.atime!).uint32(a.mtime!);
    if (a.extended !== undefined) {
      this.uint32(a.extended.length);
      for (const [type, data] of a.extended) this.string(type).bytes(data);
    }
    return this;
  }

  /** The finished packet. The writer must not be used afterwards. */
  finish(): Buffer {
    this.buf.writeUInt32BE(this.pos - 4, 0);
    return this.buf.subarray(0, this.pos);
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}
