import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalStore } from '../../src/storage/local/local-store.js';
import { objectStoreContract } from './contract.js';

objectStoreContract(
  'LocalStore',
  async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'sftp-gw-local-'));
    mkdirSync(path.join(root, 'test'));
    const store = new LocalStore({ root });
    await store.init();
    return {
      store,
      bucket: 'test',
      cleanup: async () => {
        await store.close();
        rmSync(root, { recursive: true, force: true });
      },
    };
  },
  { quirks: { implicitDirectories: true, snapshotReads: true } },
);
