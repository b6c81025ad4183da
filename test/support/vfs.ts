import path from 'node:path';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { createUserFileSystem } from '../../src/vfs/factory.js';

/** User `u` (home /b/home/u) on `store`, with default settings and its spool under `root`. */
export function userFsOn(store: ObjectStore, root: string) {
  return createUserFileSystem({ UserName: 'u', HomeDirectory: '/b/home/u' }, store, {
    setStatOption: 'ENABLE_NO_OP',
    keepPartial: false,
    spoolDir: path.join(root, 'spool'),
    spoolMaxBytes: 1 << 20,
  });
}
