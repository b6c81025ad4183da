/** Encoders for every reply the server sends. */
import { type Attrs, PacketWriter } from './codec.js';
import { PacketType, SFTP_VERSION, type StatusCodeValue } from './constants.js';

export interface NameEntry {
  filename: string;
  longname: string;
  attrs: Attrs;
}

export function versionPacket(extensions: ReadonlyArray<readonly [string, string]>): Buffer {
  const w = new PacketWriter(PacketType.VERSION, 256).uint32(SFTP_VERSION);
  for (const [name, data] of extensions) w.string(name).string(data);
  return w.finish();
}

/** STATUS with the language tag "en" (the message is always English). */
export function statusPacket(id: number, code: StatusCodeValue, message: string): Buffer {
  return new PacketWriter(PacketType.STATUS, 32 + message.length)
    .uint32(id)
    .uint32(code)
    .string(message)
    .string('en')
    .finish();
}

export function handlePacket(id: number, handle: Buffer): Buffer {
  return new PacketWriter(PacketType.HANDLE, 16 + handle.length).uint32(id).bytes(handle).finish();
}

/** Length, type, request id and data length: what precedes the bytes of a DATA reply. */
export const DATA_HEADER_BYTES = 13;

export function dataPacket(id: number, data: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(DATA_HEADER_BYTES + data.length);
  data.copy(buf, DATA_HEADER_BYTES);
  return dataHeader(buf, id, data.length);
}

/** Writes the header of a DATA reply whose `count` data bytes already sit after it; the reply. */
export function dataHeader(buf: Buffer, id: number, count: number): Buffer {
  buf.writeUInt32BE(DATA_HEADER_BYTES - 4 + count, 0);
  buf[4] = PacketType.DATA;
  buf.writeUInt32BE(id >>> 0, 5);
  buf.writeUInt32BE(count, 9);
  return buf.subarray(0, DATA_HEADER_BYTES + count);
}

export function namePacket(id: number, entries: readonly NameEntry[]): Buffer {
  const w = new PacketWriter(PacketType.NAME, 16 + entries.length * 128).uint32(id).uint32(entries.length);
  for (const e of entries) w.string(e.filename).string(e.longname).attrs(e.attrs);
  return w.finish();
}

export function attrsPacket(id: number, attrs: Attrs): Buffer {
  return new PacketWriter(PacketType.ATTRS, 48).uint32(id).attrs(attrs).finish();
}

/** EXTENDED_REPLY made of uint64 fields, which is the shape of every extension reply we send. */
export function extendedReplyPacket(id: number, fields: readonly number[]): Buffer {
  const w = new PacketWriter(PacketType.EXTENDED_REPLY, 8 + fields.length * 8).uint32(id);
  for (const f of fields) w.uint64(f);
  return w.finish();
}
