import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../src/observability/logger.js';
import { LocalStore } from '../../src/storage/local/local-store.js';
import { ObjectUserStore } from '../../src/users/object-store.js';

/** A bucket user store over a local folder (the LocalStore is the ObjectStore), counting its listings. */
function bucketStore(store: LocalStore, options: { poll?: boolean; onChange?: () => void }) {
  const counts = { lists: 0 };
  const counted = Object.create(store) as LocalStore;
  counted.list = (bucket, o) => {
    counts.lists++;
    return store.list(bucket, o);
  };
  return { users: new ObjectUserStore(counted, 'cfg', 'gw/', silentLogger(), 100, options), counts };
}

const until = async (check: () => boolean, ms: number) => {
  for (const end = Date.now() + ms; !check() && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
};

describe('bucket user store: who polls', () => {
  let root: string;
  let store: LocalStore;
  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'sftp-gw-users-'));
    mkdirSync(path.join(root, 'cfg/gw/users'), { recursive: true });
    store = new LocalStore({ root });
    await store.init();
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('a polling store finds a user written elsewhere and says so; one that does not poll lists when refreshed', async () => {
    let changes = 0;
    const polling = bucketStore(store, { onChange: () => changes++ });
    const quiet = bucketStore(store, { poll: false, onChange: () => assert.fail('a store that does not poll') });
    await polling.users.start();
    await quiet.users.start();
    try {
      await new Promise((r) => setTimeout(r, 350));
      assert.equal(changes, 0, 'no change, no notice');
      assert.ok(polling.counts.lists >= 3, `polled every 100 ms: ${polling.counts.lists} listings`);
      assert.equal(quiet.counts.lists, 1, 'listed once, at start');

      // As another replica's API would write it.
      const dora = {
        UserName: 'dora',
        HomeDirectory: '/demo/home/dora',
        HomeDirectoryType: 'PATH',
        Role: 'arn:aws:iam::123456789012:role/r',
        SshPublicKeys: [],
      };
      writeFileSync(path.join(root, 'cfg/gw/users/dora.json'), JSON.stringify(dora));
      await until(() => changes > 0, 2000);
      assert.equal(changes, 1, 'one notice for the new user');
      assert.ok(polling.users.find('dora'));
      assert.equal(quiet.users.find('dora'), undefined, 'not polled: not seen yet');
      assert.equal(quiet.counts.lists, 1);

      await quiet.users.refresh();
      assert.ok(quiet.users.find('dora'), 'seen once refreshed');
      assert.equal(quiet.counts.lists, 2);
    } finally {
      await polling.users.stop();
      await quiet.users.stop();
    }
  });
});
