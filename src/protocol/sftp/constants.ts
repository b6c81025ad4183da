/** SFTP version 3 numbers (draft-ietf-secsh-filexfer-02) and the limits this server advertises. */

export const SFTP_VERSION = 3;

export const PacketType = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  LSTAT: 7,
  FSTAT: 8,
  SETSTAT: 9,
  FSETSTAT: 10,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  RMDIR: 15,
  REALPATH: 16,
  STAT: 17,
  RENAME: 18,
  READLINK: 19,
  SYMLINK: 20,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;
export type PacketTypeCode = (typeof PacketType)[keyof typeof PacketType];

const packetNames = new Map<number, string>(Object.entries(PacketType).map(([name, code]) => [code, name]));

/** For logs: `OPEN`, `READ`, ... or `UNKNOWN(42)`. */
export function packetTypeName(type: number): string {
  return packetNames.get(type) ?? `UNKNOWN(${type})`;
}

export const StatusCode = {
  OK: 0,
  EOF: 1,
  NO_SUCH_FILE: 2,
  PERMISSION_DENIED: 3,
  FAILURE: 4,
  BAD_MESSAGE: 5,
  NO_CONNECTION: 6,
  CONNECTION_LOST: 7,
  OP_UNSUPPORTED: 8,
} as const;
export type StatusCodeValue = (typeof StatusCode)[keyof typeof StatusCode];

const statusNames = new Map<number, string>(Object.entries(StatusCode).map(([name, code]) => [code, name]));

export function statusName(code: number): string {
  return statusNames.get(code) ?? `STATUS(${code})`;
}

export const AttrFlags = {
  SIZE: 0x1,
  UIDGID: 0x2,
  PERMISSIONS: 0x4,
  ACMODTIME: 0x8,
  EXTENDED: 0x80000000,
} as const;

export const OpenPflags = {
  READ: 0x1,
  WRITE: 0x2,
  APPEND: 0x4,
  CREAT: 0x8,
  TRUNC: 0x10,
  EXCL: 0x20,
} as const;

/** File-type bits of st_mode, as clients expect them in PERMISSIONS. */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;

/**
 * OpenSSH's own limits (sftp-server.c): a 256 KiB packet, and reads/writes 1 KiB smaller so that a WRITE
 * request with its header still fits in one packet. Advertising them makes OpenSSH 9+ clients use
 * 261,120-byte requests instead of 32 KiB ones.
 */
export const MAX_PACKET_LENGTH = 256 * 1024;
export const MAX_READ_LENGTH = MAX_PACKET_LENGTH - 1024;
export const MAX_WRITE_LENGTH = MAX_PACKET_LENGTH - 1024;
export const MAX_OPEN_HANDLES = 1024;
/** OpenSSH sends at most 100 names per READDIR reply; clients are used to that page size. */
export const READDIR_PAGE_SIZE = 100;

/**
 * The largest packet body we accept. A little above the advertised limit, because clients that never saw
 * limits@openssh.com size their writes by other rules and an extra header's worth is harmless.
 */
export const MAX_INCOMING_PACKET_LENGTH = MAX_PACKET_LENGTH + 1024;

/** Extensions advertised in VERSION (name, version). hardlink@openssh.com is deliberately absent. */
export const SERVER_EXTENSIONS: ReadonlyArray<readonly [string, string]> = [
  ['posix-rename@openssh.com', '1'],
  ['statvfs@openssh.com', '2'],
  ['fstatvfs@openssh.com', '2'],
  ['limits@openssh.com', '1'],
  ['fsync@openssh.com', '1'],
  ['copy-data', '1'],
];
