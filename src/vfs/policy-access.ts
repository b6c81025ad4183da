/**
 * Access control from IAM policies: each filesystem action is checked as the S3 request(s) the managed
 * service would make, against the role's policies AND the user's scope-down policy (src/policy).
 */
import { permissionDenied } from '../errors.js';
import {
  type AccessChecker,
  checkOperation,
  denialOf,
  type OperationDenial,
  type S3Check,
  type SftpOperation,
  s3BucketArn,
  s3ObjectArn,
} from '../policy/index.js';
import type { AccessControl, FsAction } from './access.js';
import type { StoreLocation } from './paths.js';

export interface Denial extends OperationDenial {
  fsAction: FsAction;
  virtualPath: string;
}

const OPERATION: Record<Exclude<FsAction, 'stat'>, Exclude<SftpOperation['op'], 'rename'>> = {
  list: 'list',
  read: 'read',
  write: 'write',
  delete: 'remove',
  mkdir: 'mkdir',
  rmdir: 'rmdir',
};

/**
 * The alternatives that allow STAT of `key`: any one suffices. A stat is a HeadObject of the key plus a
 * one-key listing of `key/` (is it a directory?), and a client that may list the parent sees the name
 * there anyway, so STAT is allowed when the policy allows
 *   s3:GetObject on the key, OR
 *   s3:ListBucket with s3:prefix `key/` (listing the directory itself), OR
 *   s3:ListBucket with s3:prefix `parent/` (listing the directory that holds it).
 * A bucket root needs s3:ListBucket with the empty prefix. This lets a user `cd` into every folder the
 * policy lets them list, and no further (with the per-user scope-down policy, `cd ..` from the home is
 * refused, as in the managed service).
 */
export function statAlternatives(location: StoreLocation): S3Check[] {
  const { bucket, key } = location;
  const list = (prefix: string): S3Check => ({
    action: 's3:ListBucket',
    resource: s3BucketArn(bucket),
    context: { 's3:prefix': prefix, 's3:delimiter': '/' },
    path: `/${bucket}/${prefix}`,
  });
  if (key === '') return [list('')];
  const slash = key.lastIndexOf('/');
  const parent = slash < 0 ? '' : key.slice(0, slash + 1);
  return [
    { action: 's3:GetObject', resource: s3ObjectArn(bucket, key), context: {}, path: `/${bucket}/${key}` },
    list(`${key}/`),
    list(parent),
  ];
}

/** The first failed check of `action` at `location`, or undefined when the policies allow it. */
export function decide(
  engine: AccessChecker,
  action: FsAction,
  location: StoreLocation,
): OperationDenial | undefined {
  if (action === 'stat') {
    const alternatives = statAlternatives(location);
    let first: OperationDenial | undefined;
    for (const check of alternatives) {
      const r = engine.isAllowed(check.action, check.resource, check.context);
      if (r.allowed) return undefined;
      first ??= denialOf(check, r);
    }
    return first;
  }
  return checkOperation(engine, {
    op: OPERATION[action],
    bucket: location.bucket,
    key: location.key,
  } as SftpOperation);
}

/** PERMISSION_DENIED naming the S3 action and the path; each denial is reported to `onDenied` (the log). */
export class PolicyAccess implements AccessControl {
  readonly checksEachKey = true;
  constructor(
    private readonly engine: AccessChecker,
    private readonly onDenied?: (d: Denial) => void,
  ) {}

  check(action: FsAction, location: StoreLocation, virtualPath: string): void {
    const denial = decide(this.engine, action, location);
    if (!denial) return;
    this.onDenied?.({ ...denial, fsAction: action, virtualPath });
    throw permissionDenied(`permission denied: ${denial.action} on ${virtualPath} (${denial.reason})`);
  }
}
