/**
 * The `copy-data` extension (OpenSSH 9's `sftp cp`): bytes go from a file open for reading to one open for
 * writing inside the gateway, so they never cross the client's connection. A whole file copied into a new
 * one is copied inside the store when the handles allow it (WriteHandle.copyWhole); anything else, or a
 * store that cannot, goes through the handles. The two OPENs already checked the user's permissions
 * (s3:GetObject on the source, s3:PutObject on the target).
 */
import { GatewayError } from '../../errors.js';
import { MAX_READ_LENGTH } from './constants.js';
import type { ReadEntry, WriteEntry } from './handles.js';

export interface CopyRange {
  readOffset: number;
  /** 0: up to the end of the source. */
  length: number;
  writeOffset: number;
}

/**
 * Copies `range`: inside the store when it is a whole file into an untouched one, else chunk by chunk,
 * each read awaited before its write and each write before the next read, so a copy holds one chunk of
 * memory whatever the file's size and the target's backpressure (an S3 part in flight) paces the source.
 * Resolves 'eof' when a fixed length ran past the source's end (what OpenSSH's sftp-server answers), 'ok'
 * otherwise. Any failure marks the target as failed, so its CLOSE discards the upload instead of
 * completing a partial copy.
 */
export async function copyData(from: ReadEntry, to: WriteEntry, range: CopyRange): Promise<'ok' | 'eof'> {
  try {
    const whole = range.readOffset === 0 && range.length === 0 && range.writeOffset === 0;
    if (whole && from.handle.copySource && to.handle.copyWhole) {
      const copied = await to.handle.copyWhole(from.handle.copySource);
      if (copied !== undefined) {
        from.bytesOut += copied;
        to.bytesIn += copied;
        return 'ok';
      }
    }
    return await copyThroughHandles(from, to, range);
  } catch (err) {
    to.writeError ??= err;
    throw err;
  }
}

async function copyThroughHandles(from: ReadEntry, to: WriteEntry, range: CopyRange): Promise<'ok' | 'eof'> {
  const chunk = Buffer.allocUnsafe(range.length > 0 ? Math.min(MAX_READ_LENGTH, range.length) : MAX_READ_LENGTH);
  let readAt = range.readOffset;
  let writeAt = range.writeOffset;
  let left = range.length > 0 ? range.length : Infinity;
  while (left > 0) {
    const data = await readChunk(from, readAt, chunk.subarray(0, Math.min(chunk.length, left)));
    if (data.length === 0) return range.length > 0 ? 'eof' : 'ok';
    from.bytesOut += data.length;
    // The write handle copies what it keeps past the write, so the chunk is free again once it resolves.
    await to.handle.write(writeAt, data);
    to.bytesIn += data.length;
    readAt += data.length;
    writeAt += data.length;
    left -= data.length;
  }
  return 'ok';
}

async function readChunk(from: ReadEntry, offset: number, into: Buffer): Promise<Buffer> {
  if (from.handle.readInto) return into.subarray(0, await from.handle.readInto(offset, into));
  return from.handle.read(offset, into.length);
}

export function sameFileRefused(path: string): GatewayError {
  return new GatewayError('Failure', `copy-data: ${path} is both the source and the target`);
}
