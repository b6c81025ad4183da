import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isGatewayError } from '../../src/errors.js';
import { LocalStore } from '../../src/storage/local/local-store.js';
import type { ObjectStore } from '../../src/storage/object-store.js';
import { SUBDIR_KNOWLEDGE_MS, SubdirCache } from '../../src/vfs/subdir-cache.js';
import type { ObjectFileSystem } from '../../src/vfs/user-fs.js';
import { userFsOn } from '../support/vfs.js';

describe('SubdirCache', () => {
  const dir = { bucket: 'b', key: 'home/u' };

  it('knows nothing of a directory it was not told about', () => {
    assert.equal(new SubdirCache().knownNotADirectory(dir, 'x'), false);
  });

  it('answers from a learnt set until it is SUBDIR_KNOWLEDGE_MS old', () => {
    let now = 1_000_000;
    const c = new SubdirCache(() => now);
    c.learn(dir, ['sub']);
    assert.equal(c.knownNotADirectory(dir, 'file'), true);
    assert.equal(c.knownNotADirectory(dir, 'sub'), false);
    assert.equal(c.knownNotADirectory({ bucket: 'b', key: 'home' }, 'u'), false);
    now += SUBDIR_KNOWLEDGE_MS;
    assert.equal(c.knownNotADirectory(dir, 'file'), true);
    now += 1;
    assert.equal(c.knownNotADirectory(dir, 'file'), false);
  });

  it('dates knowledge from when the listing started, and adds the session own directories', () => {
    let now = 1_000_000;
    const c = new SubdirCache(() => now);
    c.learn(dir, [], now - SUBDIR_KNOWLEDGE_MS - 1);
    assert.equal(c.knownNotADirectory(dir, 'x'), false);
    c.learn(dir, []);
    c.added(dir, 'made');
    assert.equal(c.knownNotADirectory(dir, 'made'), false);
    assert.equal(c.knownNotADirectory(dir, 'other'), true);
    now += 1;
  });
});

/** Counts the store calls that ask about existing keys (head, list, and the local store's probe). */
function counting(store: ObjectStore): { store: ObjectStore; calls: string[] } {
  const calls: string[] = [];
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (prop === 'head' || prop === 'list' || prop === 'probe') calls.push(`${String(prop)} ${String(args[1] && typeof args[1] === 'object' ? (args[1] as { prefix: string }).prefix : args[1])}`);
        return v.apply(target, args);
      };
    },
  });
  return { store: proxy, calls };
}

async function upload(fs: ObjectFileSystem, p: string, body: string): Promise<void> {
  const h = await fs.open(p, { read: false, write: true, create: true, truncate: true, exclusive: false, append: false });
  assert.equal(h.kind, 'write');
  await h.write(0, Buffer.from(body));
  await h.close();
}

/** Opens `p` for appending, keeping what is there (a resumed upload), and closes it without writing. */
async function openForAppend(fs: ObjectFileSystem, p: string): Promise<void> {
  const h = await fs.open(p, { read: false, write: true, create: true, truncate: false, exclusive: false, append: true });
  await h.close();
}

/** A user filesystem on a fresh LocalStore under home /b/home/u whose HEAD and LIST calls are counted. */
function countedLocalFs(prepare: (home: string) => void = () => undefined) {
  const f = { root: '', calls: [] as string[], fs: undefined as unknown as ObjectFileSystem };
  let local: LocalStore;
  before(async () => {
    f.root = mkdtempSync(path.join(os.tmpdir(), 'sftp-gw-vfs-'));
    const home = path.join(f.root, 'b', 'home', 'u');
    mkdirSync(home, { recursive: true });
    prepare(home);
    local = new LocalStore({ root: f.root });
    await local.init();
    const c = counting(local);
    f.calls = c.calls;
    f.fs = userFsOn(c.store, f.root);
  });
  after(async () => {
    await local.close();
    rmSync(f.root, { recursive: true, force: true });
  });
  return f;
}

describe('ObjectFileSystem: a new file in a directory whose subdirectories the session knows', () => {
  const f = countedLocalFs();

  it('after mkdir, uploads into it ask the store nothing about the target', async () => {
    await f.fs.mkdir('/b/home/u/new');
    f.calls.length = 0;
    for (let i = 0; i < 3; i++) await upload(f.fs, `/b/home/u/new/f${i}`, `body ${i}`);
    assert.deepEqual(f.calls, [], 'no HEAD, LIST or probe per file');
    const st = await f.fs.stat('/b/home/u/new/f2');
    assert.equal(st.size, 'body 2'.length);
  });

  it('still refuses a file over a subdirectory made by this session', async () => {
    await f.fs.mkdir('/b/home/u/new/sub');
    await assert.rejects(upload(f.fs, '/b/home/u/new/sub', 'x'), (e) => isGatewayError(e, 'IsADirectory'));
  });

  it('learns from a complete listing, and refuses a file over a listed subdirectory', async () => {
    mkdirSync(path.join(f.root, 'b', 'home', 'u', 'listed', 'd'), { recursive: true });
    const dh = await f.fs.openDir('/b/home/u/listed');
    while (await dh.next(100));
    await dh.close();
    f.calls.length = 0;
    await upload(f.fs, '/b/home/u/listed/file', 'ok');
    assert.deepEqual(f.calls, []);
    await assert.rejects(upload(f.fs, '/b/home/u/listed/d', 'x'), (e) => isGatewayError(e, 'IsADirectory'));
  });

  it('asks the store when it knows nothing (a directory another session made)', async () => {
    mkdirSync(path.join(f.root, 'b', 'home', 'u', 'elsewhere', 'd'), { recursive: true });
    f.calls.length = 0;
    await assert.rejects(upload(f.fs, '/b/home/u/elsewhere/d', 'x'), (e) => isGatewayError(e, 'IsADirectory'));
    // One stat answers "file or folder?" for the target, one the parent's stat.
    assert.deepEqual(f.calls, ['probe home/u/elsewhere/d', 'probe home/u/elsewhere']);
  });
});

describe('ObjectFileSystem: OPEN for writing right after a STAT (sftp put, scp)', () => {
  const f = countedLocalFs((home) => {
    mkdirSync(path.join(home, 'd'));
    mkdirSync(path.join(home, 'e'));
    writeFileSync(path.join(home, 'e', 'old'), 'old body');
  });

  it('replaces a file the STAT found without asking the store anything, not even about the parent', async () => {
    assert.equal((await f.fs.stat('/b/home/u/e/old')).size, 8);
    f.calls.length = 0;
    await upload(f.fs, '/b/home/u/e/old', 'new');
    assert.deepEqual(f.calls, []);
    assert.equal((await f.fs.stat('/b/home/u/e/old')).size, 3);
  });

  it('for a file the STAT found, an OPEN that keeps its data reads it again (HEAD)', async () => {
    await f.fs.stat('/b/home/u/e/old');
    f.calls.length = 0;
    await openForAppend(f.fs, '/b/home/u/e/old');
    assert.deepEqual(f.calls, ['head home/u/e/old']);
  });

  it('asks the store nothing more about the target', async () => {
    await f.fs.stat('/b/home/u/d');
    await assert.rejects(f.fs.stat('/b/home/u/d/new'), (e) => isGatewayError(e, 'NotFound'));
    f.calls.length = 0;
    await upload(f.fs, '/b/home/u/d/new', 'body');
    assert.deepEqual(f.calls, []);
    assert.equal((await f.fs.stat('/b/home/u/d/new')).size, 4);
  });

  it('trusts the answer once: a second OPEN of the same path asks again', async () => {
    await assert.rejects(f.fs.stat('/b/home/u/d/twice'), (e) => isGatewayError(e, 'NotFound'));
    await upload(f.fs, '/b/home/u/d/twice', 'one');
    f.calls.length = 0;
    await upload(f.fs, '/b/home/u/d/twice', 'two');
    assert.deepEqual(f.calls, ['probe home/u/d/twice']);
  });

  it('an OPEN that keeps existing data still reads the object (HEAD), not whether a folder exists', async () => {
    await assert.rejects(f.fs.stat('/b/home/u/d/append'), (e) => isGatewayError(e, 'NotFound'));
    f.calls.length = 0;
    await openForAppend(f.fs, '/b/home/u/d/append');
    assert.deepEqual(f.calls, ['head home/u/d/append']);
  });

  it('forgets the answer on this session\'s mkdir of that name: the upload is refused', async () => {
    await assert.rejects(f.fs.stat('/b/home/u/d/sub'), (e) => isGatewayError(e, 'NotFound'));
    await f.fs.mkdir('/b/home/u/d/sub');
    // mkdir taught the subdirectory cache nothing about /b/home/u/d (never listed): only the memo could skip.
    await assert.rejects(upload(f.fs, '/b/home/u/d/sub', 'x'), (e) => isGatewayError(e, 'IsADirectory'));
  });

  it('forgets it on this session\'s rename onto that name', async () => {
    await f.fs.mkdir('/b/home/u/d/src');
    await assert.rejects(f.fs.stat('/b/home/u/d/moved'), (e) => isGatewayError(e, 'NotFound'));
    await f.fs.rename('/b/home/u/d/src', '/b/home/u/d/moved', false);
    await assert.rejects(upload(f.fs, '/b/home/u/d/moved', 'x'), (e) => isGatewayError(e, 'IsADirectory'));
  });

  it('forgets it on this session\'s remove and rmdir: a file is not created in a folder that has gone', async () => {
    await f.fs.mkdir('/b/home/u/gone');
    await upload(f.fs, '/b/home/u/gone/x', 'x');
    assert.equal((await f.fs.stat('/b/home/u/gone/x')).type, 'file');
    await f.fs.remove('/b/home/u/gone/x');
    await f.fs.rmdir('/b/home/u/gone');
    await assert.rejects(upload(f.fs, '/b/home/u/gone/x', 'x'), (e) => isGatewayError(e, 'NotFound'));
  });

  it('asks again once the answer is 3 s old (a directory another session made meanwhile)', async (t) => {
    await assert.rejects(f.fs.stat('/b/home/u/d/late'), (e) => isGatewayError(e, 'NotFound'));
    t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    t.mock.timers.tick(3000);
    mkdirSync(path.join(f.root, 'b', 'home', 'u', 'd', 'late'));
    f.calls.length = 0;
    await assert.rejects(upload(f.fs, '/b/home/u/d/late', 'x'), (e) => isGatewayError(e, 'IsADirectory'));
    assert.ok(f.calls.includes('probe home/u/d/late'), f.calls.join(', '));
  });
});

describe('ObjectFileSystem: OPENDIR of a directory the session has just seen', () => {
  const f = countedLocalFs((home) => {
    mkdirSync(path.join(home, 'd'));
    writeFileSync(path.join(home, 'd', 'f'), 'x');
    writeFileSync(path.join(home, 'file'), 'x');
  });

  it('asks the store only for the listing after a stat (as `ls` sends them)', async () => {
    assert.equal((await f.fs.stat('/b/home/u/d')).type, 'directory');
    f.calls.length = 0;
    const dh = await f.fs.openDir('/b/home/u/d');
    const names = (await dh.next(100))?.map((e) => e.name);
    await dh.close();
    assert.deepEqual(names, ['f']);
    assert.deepEqual(f.calls, ['list home/u/d/']);
  });

  it('stats a directory it has not seen, and refuses to open a file as one', async () => {
    f.calls.length = 0;
    await assert.rejects(f.fs.openDir('/b/home/u/file'), (e) => isGatewayError(e, 'NotADirectory'));
    assert.ok(f.calls.includes('probe home/u/file'), f.calls.join(', '));
    await assert.rejects(f.fs.openDir('/b/home/u/missing'), (e) => isGatewayError(e, 'NotFound'));
  });
});

describe('ObjectFileSystem: a store without probe (S3) is asked head and a one-key list instead', () => {
  let root = '';
  let local: LocalStore;
  let calls: string[] = [];
  let withProbe: ObjectFileSystem;
  let without: ObjectFileSystem;
  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'sftp-gw-vfs-'));
    const home = path.join(root, 'b', 'home', 'u');
    mkdirSync(path.join(home, 'd', 'sub'), { recursive: true });
    writeFileSync(path.join(home, 'file'), 'abc');
    local = new LocalStore({ root });
    await local.init();
    const c = counting(local);
    calls = c.calls;
    const hidden = new Proxy(c.store, {
      get: (target, prop, receiver) => (prop === 'probe' ? undefined : Reflect.get(target, prop, receiver)),
    });
    withProbe = userFsOn(local, root);
    without = userFsOn(hidden, root);
  });
  after(async () => {
    await local.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('gives the same answers: file, folder with its date, nothing, and a file refused over a folder', async () => {
    for (const p of ['/b/home/u/file', '/b/home/u/d', '/b/home/u/d/sub']) {
      const a = await withProbe.stat(p);
      calls.length = 0;
      const b = await without.stat(p);
      assert.deepEqual(b, a, p);
      assert.ok(!calls.some((c) => c.startsWith('probe')), calls.join(', '));
      assert.ok(calls.some((c) => c.startsWith('list')), calls.join(', '));
    }
    for (const fs of [withProbe, without]) {
      await assert.rejects(fs.stat('/b/home/u/missing'), (e) => isGatewayError(e, 'NotFound'));
      await assert.rejects(upload(fs, '/b/home/u/d', 'x'), (e) => isGatewayError(e, 'IsADirectory'));
    }
  });
});
