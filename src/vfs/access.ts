import { permissionDenied } from '../errors.js';
import { isWithin, type StoreLocation } from './paths.js';

/** What a filesystem operation needs on a store location; policy/ maps these to S3 actions. */
export type FsAction = 'stat' | 'list' | 'read' | 'write' | 'delete' | 'mkdir' | 'rmdir';

/** Decides whether a user may do `action` at `location`; throws PermissionDenied (naming both) if not. */
export interface AccessControl {
  check(action: FsAction, location: StoreLocation, virtualPath: string): void;
  /** True when a decision about a directory does not cover the keys below it (policies): renames check each key. */
  readonly checksEachKey?: boolean;
}

/** PATH users without a policy stay inside their HomeDirectory, as in the managed service. */
export class HomeConfinement implements AccessControl {
  constructor(private readonly home: string) {}

  check(action: FsAction, location: StoreLocation, virtualPath: string): void {
    const storePath = location.key === '' ? `/${location.bucket}` : `/${location.bucket}/${location.key}`;
    if (!isWithin(storePath, this.home)) {
      throw permissionDenied(
        `permission denied: ${action} ${virtualPath} is outside the home directory ${this.home}`,
      );
    }
  }
}

/** LOGICAL users without a policy: the mappings themselves are the boundary. */
export const mappingsOnly: AccessControl = { check() {} };
