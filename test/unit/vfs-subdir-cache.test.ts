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

/** Counts the store calls that ask about existing keys. */
function counting(store: ObjectStore): { store: ObjectStore; calls: string[] } {
  const calls: string[] = [];
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (prop === 'head' || prop === 'list') calls.push(`${String(prop)} ${String(args[1] && typeof args[1] === 'object' ? (args[1] as { prefix: string }).prefix : args[1])}`);
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

describe('ObjectFileSystem: a new file in a directory whose subdirectories the session knows', () => {
  let root: string;
  let local: LocalStore;
  let calls: string[];
  let fs: ObjectFileSystem;
  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'sftp-gw-subdirs-'));
    mkdirSync(path.join(root, 'b', 'home', 'u'), { recursive: true });
    local = new LocalStore({ root });
    await local.init();
    const c = counting(local);
    calls = c.calls;
    fs = userFsOn(c.store, root);
  });
  after(async () => {
    await local.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('after mkdir, uploads into it ask the store nothing about the target', async () => {
    await fs.mkdir('/b/home/u/new');
    calls.length = 0;
    for (let i = 0; i < 3; i++) await upload(fs, `/b/home/u/new/f${i}`, `body ${i}`);
    assert.deepEqual(calls, [], 'no HEAD or LIST per file');
    const st = await fs.stat('/b/home/u/new/f2');
    assert.equal(st.size, 'body 2'.length);
  });

  it('still refuses a file over a subdirectory made by this session', async () => {
    await fs.mkdir('/b/home/u/new/sub');
    await assert.rejects(upload(fs, '/b/home/u/new/sub', 'x'), (e) => isGatewayError(e, 'IsADirectory'));
  });

  it('learns from a complete listing, and refuses a file over a listed subdirectory', async () => {
    mkdirSync(path.join(root, 'b', 'home', 'u', 'listed', 'd'), { recursive: true });
    const dh = await fs.openDir('/b/home/u/listed');
    while (await dh.next(100));
    await dh.close();
    calls.length = 0;
    await upload(fs, '/b/home/u/listed/file', 'ok');
    assert.deepEqual(calls, []);
    await assert.rejects(upload(fs, '/b/home/u/listed/d', 'x'), (e) => isGatewayError(e, 'IsADirectory'));
  });

  it('asks the store when it knows nothing (a directory another session made)', async () => {
    mkdirSync(path.join(root, 'b', 'home', 'u', 'elsewhere', 'd'), { recursive: true });
    calls.length = 0;
    await assert.rejects(upload(fs, '/b/home/u/elsewhere/d', 'x'), (e) => isGatewayError(e, 'IsADirectory'));
    assert.ok(calls.some((c) => c.startsWith('list')), calls.join(', '));
  });
});

describe('ObjectFileSystem: OPENDIR of a directory the session has just seen', () => {
  let root: string;
  let local: LocalStore;
  let calls: string[];
  let fs: ObjectFileSystem;
  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'sftp-gw-opendir-'));
    mkdirSync(path.join(root, 'b', 'home', 'u', 'd'), { recursive: true });
    writeFileSync(path.join(root, 'b', 'home', 'u', 'd', 'f'), 'x');
    writeFileSync(path.join(root, 'b', 'home', 'u', 'file'), 'x');
    local = new LocalStore({ root });
    await local.init();
    const c = counting(local);
    calls = c.calls;
    fs = userFsOn(c.store, root);
  });
  after(async () => {
    await local.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('asks the store only for the listing after a stat (as `ls` sends them)', async () => {
    assert.equal((await fs.stat('/b/home/u/d')).type, 'directory');
    calls.length = 0;
    const dh = await fs.openDir('/b/home/u/d');
    const names = (await dh.next(100))?.map((e) => e.name);
    await dh.close();
    assert.deepEqual(names, ['f']);
    assert.deepEqual(calls, ['list home/u/d/']);
  });

  it('stats a directory it has not seen, and refuses to open a file as one', async () => {
    calls.length = 0;
    await assert.rejects(fs.openDir('/b/home/u/file'), (e) => isGatewayError(e, 'NotADirectory'));
    assert.ok(calls.includes('head home/u/file'), calls.join(', '));
    await assert.rejects(fs.openDir('/b/home/u/missing'), (e) => isGatewayError(e, 'NotFound'));
  });
});
