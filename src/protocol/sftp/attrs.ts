/** Conversions between the vfs's types and SFTP's ATTRS and open flags. */
import type { FileStat, OpenFlags, SetAttributes } from '../../vfs/types.js';
import type { Attrs } from './codec.js';
import { OpenPflags, S_IFDIR, S_IFREG } from './constants.js';

const UINT32_MAX = 0xffffffff;

/** Full attributes of a file or directory: owner 0:0, file-type bits included, atime = mtime. */
export function fileStatToAttrs(stat: FileStat): Attrs {
  const seconds = Math.min(UINT32_MAX, Math.max(0, Math.floor(stat.mtime.getTime() / 1000) || 0));
  return {
    size: stat.size,
    uid: 0,
    gid: 0,
    permissions: (stat.type === 'directory' ? S_IFDIR : S_IFREG) | (stat.permissions & 0o7777),
    atime: seconds,
    mtime: seconds,
  };
}

/** SETSTAT/FSETSTAT attributes for the vfs; clients may send file-type bits along with the mode. */
export function attrsToSetAttributes(attrs: Attrs): SetAttributes {
  const out: SetAttributes = {};
  if (attrs.size !== undefined) out.size = attrs.size;
  if (attrs.permissions !== undefined) out.permissions = attrs.permissions & 0o7777;
  if (attrs.uid !== undefined) out.uid = attrs.uid;
  if (attrs.gid !== undefined) out.gid = attrs.gid;
  if (attrs.atime !== undefined) out.atime = attrs.atime;
  if (attrs.mtime !== undefined) out.mtime = attrs.mtime;
  return out;
}

export function pflagsToOpenFlags(pflags: number): OpenFlags {
  return {
    read: (pflags & OpenPflags.READ) !== 0,
    write: (pflags & OpenPflags.WRITE) !== 0,
    append: (pflags & OpenPflags.APPEND) !== 0,
    create: (pflags & OpenPflags.CREAT) !== 0,
    truncate: (pflags & OpenPflags.TRUNC) !== 0,
    exclusive: (pflags & OpenPflags.EXCL) !== 0,
  };
}
