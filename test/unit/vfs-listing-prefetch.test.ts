import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { GatewayError, isGatewayError } from '../../src/errors.js';
import { LocalStore } from '../../src/storage/local/local-store.js';
import type { ListOptions, ObjectStore } from '../../src/storage/object-store.js';
import type { ObjectFileSystem } from '../../src/vfs/user-fs.js';
import { userFsOn } from '../support/vfs.js';

/**
 * A real local store whose directory listings come back two keys a page (the folder's marker, then
 * a; b, c; d2, e), so that a five-file folder takes three pages; it records each page asked for and can
 * fail one of them.
 */
function paging(store: ObjectStore) {
  const pages: (string | undefined)[] = [];
  const state = { failPage: -1 };
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (prop !== 'list' || typeof v !== 'function') return typeof v === 'function' ? v.bind(target) : v;
      return (bucket: string, options: ListOptions) => {
        if (options.delimiter !== '/') return target.list(bucket, options);
        pages.push(options.continuationToken);
        if (pages.length - 1 === state.failPage)
          return Promise.reject(new GatewayError('Failure', 'the store failed this page'));
        return target.list(bucket, { ...options, maxKeys: 2 });
      };
    },
  });
  return { store: proxy, pages, state };
}

describe('ObjectFileSystem: a listing keeps the next page in flight', () => {
  let root: string;
  let local: LocalStore;
  let fs: ObjectFileSystem;
  let pages: (string | undefined)[];
  let state: { failPage: number };
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'sftp-gw-listing-'));
    mkdirSync(path.join(root, 'b', 'home', 'u', 'd'), { recursive: true });
    for (const n of ['a', 'b', 'c', 'd2', 'e']) writeFileSync(path.join(root, 'b', 'home', 'u', 'd', n), n);
    writeFileSync(path.join(root, 'b', 'home', 'u', 'file'), 'x');
    local = new LocalStore({ root });
    await local.init();
    const p = paging(local);
    pages = p.pages;
    state = p.state;
    fs = userFsOn(p.store, root);
    process.on('unhandledRejection', onUnhandled);
  });
  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    await local.close();
    rmSync(root, { recursive: true, force: true });
  });
  beforeEach(() => {
    pages.length = 0;
    state.failPage = -1;
  });

  it('asks for the first page at OPENDIR and for the next one as soon as a page arrives', async () => {
    const dir = await fs.openDir('/b/home/u/d');
    assert.deepEqual(pages, [undefined], 'the first page is asked for by OPENDIR itself');
    const first = await dir.next(100);
    assert.deepEqual(first?.map((e) => e.name), ['a']);
    assert.equal(pages.length, 2, 'page 2 is in flight before the client asks for it');
    const names = [...first!.map((e) => e.name)];
    for (let batch = await dir.next(100); batch; batch = await dir.next(100)) names.push(...batch.map((e) => e.name));
    assert.deepEqual(names, ['a', 'b', 'c', 'd2', 'e']);
    assert.equal(pages.length, 3, 'nothing is asked for after the last page');
    await dir.close();
  });

  it('reports a failed page at the READDIR that needs it, and again if asked again', async () => {
    state.failPage = 1;
    const dir = await fs.openDir('/b/home/u/d');
    assert.deepEqual((await dir.next(100))?.map((e) => e.name), ['a']);
    await assert.rejects(dir.next(100), /the store failed this page/);
    await assert.rejects(dir.next(100), /the store failed this page/);
    await dir.close();
  });

  it('a listing closed before its prefetched page arrives leaves nothing unhandled', async () => {
    state.failPage = 1;
    const dir = await fs.openDir('/b/home/u/d');
    await dir.next(1);
    await dir.close();
    assert.equal(await dir.next(100), undefined);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(unhandled, []);
  });

  it('OPENDIR of a file or of nothing fails as before, its early page request unhandled by nobody', async () => {
    await assert.rejects(fs.openDir('/b/home/u/file'), (e) => isGatewayError(e, 'NotADirectory'));
    await assert.rejects(fs.openDir('/b/home/u/missing'), (e) => isGatewayError(e, 'NotFound'));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(unhandled, []);
  });
});

describe('ObjectFileSystem: listing entries kept compact between READDIRs', () => {
  let root: string;
  let local: LocalStore;
  let fs: ObjectFileSystem;

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'sftp-gw-listing-'));
    const dir = path.join(root, 'b', 'home', 'u', 'x');
    for (const d of ['a', 'd']) mkdirSync(path.join(dir, d), { recursive: true });
    writeFileSync(path.join(dir, 'b'), 'bb');
    writeFileSync(path.join(dir, 'c'), 'ccc');
    writeFileSync(path.join(dir, 'e'), '');
    local = new LocalStore({ root });
    await local.init();
    fs = userFsOn(paging(local).store, root);
  });
  after(async () => {
    await local.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('hands out directories and files in name order, with sizes and times, a batch at a time', async () => {
    const dir = await fs.openDir('/b/home/u/x');
    const got: string[] = [];
    // One entry per READDIR: the entries of a page are handed out over several calls.
    for (let batch = await dir.next(1); batch; batch = await dir.next(1)) {
      assert.equal(batch.length, 1);
      const [e] = batch;
      got.push(`${e!.name} ${e!.stat.type} ${e!.stat.size}`);
      if (e!.stat.type === 'file') {
        const st = statSync(path.join(root, 'b', 'home', 'u', 'x', e!.name));
        assert.equal(e!.stat.mtime.getTime(), st.mtime.getTime(), `mtime of ${e!.name}`);
      }
    }
    assert.deepEqual(got, ['a directory 0', 'b file 2', 'c file 3', 'd directory 0', 'e file 0']);
    assert.equal(await dir.next(1), undefined);
    await dir.close();
  });
});
