import type { ObjectStore } from '../storage/object-store.js';
import { type AccessControl, HomeConfinement, mappingsOnly } from './access.js';
import { LogicalNamespace, type Mapping, type Namespace, PathNamespace } from './namespace.js';
import { normalizePath } from './paths.js';
import { ObjectFileSystem, type ObjectFileSystemOptions } from './user-fs.js';

/** The parts of a user (AWS Transfer's field names) that shape their filesystem view. */
export interface FsUser {
  UserName: string;
  HomeDirectory?: string;
  HomeDirectoryType?: 'PATH' | 'LOGICAL';
  HomeDirectoryMappings?: Mapping[];
}

export type FsSettings = Omit<ObjectFileSystemOptions, 'store' | 'namespace' | 'access'>;

/** Substitutes `${Transfer:UserName}` (any letter case, as IAM matches variable names) in mapping targets. */
export function substituteUserName(text: string, userName: string): string {
  return text.replace(/\$\{transfer:username\}/gi, userName);
}

export function namespaceFor(user: FsUser): Namespace {
  if (user.HomeDirectoryType === 'LOGICAL') {
    const mappings = (user.HomeDirectoryMappings ?? []).map((m) => ({
      ...m,
      Entry: normalizePath(m.Entry, '/'),
      Target: normalizePath(substituteUserName(m.Target, user.UserName), '/'),
    }));
    return new LogicalNamespace(mappings);
  }
  return new PathNamespace(normalizePath(substituteUserName(user.HomeDirectory ?? '/', user.UserName), '/'));
}

/**
 * Builds a session's filesystem. `access` is the policy check when the user has one; without it, PATH
 * users are confined to their home and LOGICAL users to their mappings.
 */
export function createUserFileSystem(
  user: FsUser,
  store: ObjectStore,
  settings: FsSettings,
  access?: AccessControl,
): ObjectFileSystem {
  const namespace = namespaceFor(user);
  const defaultAccess =
    user.HomeDirectoryType === 'LOGICAL' ? mappingsOnly : new HomeConfinement(namespace.home);
  return new ObjectFileSystem({ ...settings, store, namespace, access: access ?? defaultAccess });
}
