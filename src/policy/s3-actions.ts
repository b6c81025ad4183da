/**
 * SFTP operations expressed as the S3 authorization checks the managed service would need, so the vfs
 * refuses exactly what AWS Transfer would refuse, with the action and path in the message.
 */
import type { AccessChecker, AccessResult } from './engine.js';
import type { RequestContext } from './evaluate.js';

export function s3BucketArn(bucket: string): string {
  return `arn:aws:s3:::${bucket}`;
}

export function s3ObjectArn(bucket: string, key: string): string {
  return `arn:aws:s3:::${bucket}/${key}`;
}

/** Directory keys are prefixes; a directory's own marker/prefix always ends with one `/`. */
function dirKey(key: string): string {
  return key === '' || key.endsWith('/') ? key : `${key}/`;
}

export type SftpOperation =
  /** READDIR of a directory; `key` is the directory's key ('' for the bucket root). */
  | { op: 'list'; bucket: string; key: string }
  | { op: 'read'; bucket: string; key: string }
  | { op: 'write'; bucket: string; key: string }
  /** Append or resume: UploadPartCopy reads the existing object into the new upload. */
  | { op: 'append'; bucket: string; key: string }
  | { op: 'remove'; bucket: string; key: string }
  | { op: 'mkdir'; bucket: string; key: string }
  | { op: 'rmdir'; bucket: string; key: string }
  /** Rename of one object (a directory rename is a list plus one rename per key). */
  | { op: 'rename'; bucket: string; key: string; toBucket: string; toKey: string };

export interface S3Check {
  action: string;
  resource: string;
  context: RequestContext;
  /** The `/bucket/key` path the check concerns, for messages and logs. */
  path: string;
}

/** The S3 checks an operation needs, in the order the store would perform them. */
export function s3ChecksFor(op: SftpOperation): S3Check[] {
  const object = (action: string, bucket: string, key: string): S3Check => ({
    action,
    resource: s3ObjectArn(bucket, key),
    context: {},
    path: `/${bucket}/${key}`,
  });
  switch (op.op) {
    case 'list': {
      const prefix = dirKey(op.key);
      // The root of a bucket is listed with an empty prefix: present and empty, as the S3 console sends
      // it, so that the documented `"s3:prefix": ["", "home/"]` policies allow browsing the root.
      return [
        {
          action: 's3:ListBucket',
          resource: s3BucketArn(op.bucket),
          context: { 's3:prefix': prefix, 's3:delimiter': '/' },
          path: `/${op.bucket}/${prefix}`,
        },
      ];
    }
    case 'read':
      return [object('s3:GetObject', op.bucket, op.key)];
    case 'write':
      return [object('s3:PutObject', op.bucket, op.key)];
    case 'append':
      return [object('s3:GetObject', op.bucket, op.key), object('s3:PutObject', op.bucket, op.key)];
    case 'remove':
      return [object('s3:DeleteObject', op.bucket, op.key)];
    case 'mkdir':
      return [object('s3:PutObject', op.bucket, dirKey(op.key))];
    case 'rmdir':
      return [object('s3:DeleteObject', op.bucket, dirKey(op.key))];
    case 'rename':
      // CopyObject reads the source and writes the target; then the source is deleted.
      return [
        object('s3:GetObject', op.bucket, op.key),
        object('s3:PutObject', op.toBucket, op.toKey),
        object('s3:DeleteObject', op.bucket, op.key),
      ];
  }
}

export interface OperationDenial {
  action: string;
  resource: string;
  path: string;
  reason: string;
  /** For PERMISSION_DENIED: `<action> denied on <path>`. */
  message: string;
}

/** Runs every check of the operation; returns the first denied one, or undefined when all pass. */
export function checkOperation(engine: AccessChecker, op: SftpOperation): OperationDenial | undefined {
  for (const check of s3ChecksFor(op)) {
    const result: AccessResult = engine.isAllowed(check.action, check.resource, check.context);
    if (!result.allowed) return denialOf(check, result);
  }
  return undefined;
}

/** The denial reported for a failed check: the action and path go into the SFTP message and the log. */
export function denialOf(check: S3Check, result: AccessResult): OperationDenial {
  return {
    action: check.action,
    resource: check.resource,
    path: check.path,
    reason: result.reason,
    message: `${check.action} denied on ${check.path}`,
  };
}

/** For the README: each SFTP operation and the S3 permissions it needs. */
export const SFTP_S3_ACTION_TABLE: readonly { sftp: string; s3: string }[] = [
  {
    sftp: 'list a directory (READDIR)',
    s3: 's3:ListBucket on the bucket, s3:prefix = `dir/`, s3:delimiter = `/`',
  },
  { sftp: 'read a file (OPEN for read)', s3: 's3:GetObject on the object' },
  { sftp: 'write a file (OPEN for write)', s3: 's3:PutObject on the object' },
  { sftp: 'append / resume', s3: 's3:GetObject + s3:PutObject on the object' },
  { sftp: 'remove a file (REMOVE)', s3: 's3:DeleteObject on the object' },
  { sftp: 'make a directory (MKDIR)', s3: 's3:PutObject on `dir/`' },
  { sftp: 'remove a directory (RMDIR)', s3: 's3:DeleteObject on `dir/`' },
  {
    sftp: 'rename (RENAME)',
    s3: 's3:GetObject on the source + s3:PutObject on the target + s3:DeleteObject on the source',
  },
];

export function sftpS3ActionTableMarkdown(): string {
  const rows = SFTP_S3_ACTION_TABLE.map((r) => `| ${r.sftp} | ${r.s3} |`);
  return ['| SFTP operation | S3 permission checked |', '|---|---|', ...rows].join('\n');
}
