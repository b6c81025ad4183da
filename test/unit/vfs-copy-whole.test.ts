import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LocalStore } from '../../src/storage/local/local-store.js';
import type { ObjectStore, WriterOptions } from '../../src/storage/object-store.js';
import type { OpenFlags, ReadHandle, WriteHandle } from '../../src/vfs/types.js';
import type { ObjectFileSystem } from '../../src/vfs/user-fs.js';
import { userFsOn } from '../support/vfs.js';

const READ: OpenFlags = { read: true, write: false, create: false, truncate: false, exclusive: false, append: false };
const REPLACE: OpenFlags = { read: false, write: true, create: true, truncate: true, exclusive: false, append: false };

/** The writers the store is asked for, with the base each starts from (copy-data's copy inside the store). */
function recordingWriters(store: ObjectStore): { store: ObjectStore; bases: Array<string | undefined> } {
  const bases: Array<string | undefined> = [];
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (prop !== 'createWriter' || typeof v !== 'function') return typeof v === 'function' ? v.bind(target) : v;
      return (bucket: string, key: string, options?: WriterOptions) => {
        bases.push(options?.base && `${options.base.bucket}/${options.base.info.key}:${options.base.length}`);
        return v.call(target, bucket, key, options);
      };
    },
  });
  return { store: proxy, bases };
}

describe('WriteHandle.copyWhole (copy-data inside the store)', () => {
  let root: string;
  let home: string;
  let local: LocalStore;
  let fs: ObjectFileSystem;
  let bases: Array<string | undefined>;
  const source = Buffer.from('0123456789'.repeat(1000));

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'sftp-gw-copy-'));
    home = path.join(root, 'b', 'home', 'u');
    mkdirSync(home, { recursive: true });
    writeFileSync(path.join(home, 'src'), source);
    writeFileSync(path.join(home, 'old'), 'old content');
    local = new LocalStore({ root });
    await local.init();
    const r = recordingWriters(local);
    bases = r.bases;
    fs = userFsOn(r.store, root);
  });
  after(async () => {
    await local.close();
    rmSync(root, { recursive: true, force: true });
  });

  const openRead = async (p: string) => (await fs.open(p, READ)) as ReadHandle;
  const openWrite = async (p: string, flags = REPLACE) => (await fs.open(p, flags)) as WriteHandle;

  it('starts a new file as the whole source, copied by the store; later writes go after it', async () => {
    const from = await openRead('src');
    const to = await openWrite('dst');
    bases.length = 0;
    assert.equal(await to.copyWhole!(from.copySource!), source.length);
    assert.deepEqual(bases, [`b/home/u/src:${source.length}`], 'one writer, based on the source');
    assert.equal((await to.stat()).size, source.length);
    await to.write(source.length, Buffer.from('!'));
    await to.close();
    await from.close();
    assert.deepEqual(readFileSync(path.join(home, 'dst')), Buffer.concat([source, Buffer.from('!')]));
  });

  it('declines once data was written, in append mode, and over a file it keeps (no truncation)', async () => {
    const from = await openRead('src');
    const written = await openWrite('w1');
    await written.write(0, Buffer.from('x'));
    assert.equal(await written.copyWhole!(from.copySource!), undefined);
    await written.close();
    assert.equal(readFileSync(path.join(home, 'w1'), 'utf8'), 'x');

    const appending = await openWrite('w2', { ...REPLACE, append: true });
    assert.equal(await appending.copyWhole!(from.copySource!), undefined);
    await appending.abort('test');

    const keeping = await openWrite('old', { ...REPLACE, truncate: false });
    assert.equal(await keeping.copyWhole!(from.copySource!), undefined);
    await keeping.close();
    assert.equal(readFileSync(path.join(home, 'old'), 'utf8'), 'old content');
    await from.close();
  });

  it('declines a source from another store', async () => {
    const otherRoot = mkdtempSync(path.join(os.tmpdir(), 'sftp-gw-copy-other-'));
    mkdirSync(path.join(otherRoot, 'b', 'home', 'u'), { recursive: true });
    writeFileSync(path.join(otherRoot, 'b', 'home', 'u', 'src'), 'elsewhere');
    const other = new LocalStore({ root: otherRoot });
    await other.init();
    try {
      const from = (await userFsOn(other, otherRoot).open('src', READ)) as ReadHandle;
      const to = await openWrite('w3');
      assert.equal(await to.copyWhole!(from.copySource!), undefined);
      await to.abort('test');
      await from.close();
    } finally {
      await other.close();
      rmSync(otherRoot, { recursive: true, force: true });
    }
  });

  it('an empty source leaves the new file empty', async () => {
    writeFileSync(path.join(home, 'empty'), '');
    const from = await openRead('empty');
    const to = await openWrite('w4');
    assert.equal(await to.copyWhole!(from.copySource!), 0);
    await to.close();
    await from.close();
    assert.equal(readFileSync(path.join(home, 'w4')).length, 0);
  });
});
