import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type GatewayErrorCode, isGatewayError } from '../../src/errors.js';
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

describe('LocalStore file-system specifics', () => {
  let root: string;
  let store: LocalStore;
  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'sftp-gw-local-'));
    mkdirSync(path.join(root, 'b'));
    store = new LocalStore({ root });
    await store.init();
  });
  after(async () => {
    await store.close();
    rmSync(root, { recursive: true, force: true });
  });
  const code = (c: GatewayErrorCode) => (e: unknown) => isGatewayError(e, c);

  it('creates the folders of a deep key on publish, and its info matches head', async () => {
    const info = await store.put('b', 'x/y/z.txt', Buffer.from('hello'));
    assert.equal(readFileSync(path.join(root, 'b/x/y/z.txt'), 'utf8'), 'hello');
    assert.deepEqual(await store.head('b', 'x/y/z.txt'), info);
  });

  it('refuses to publish over a folder, with or without ifNoneMatch', async () => {
    mkdirSync(path.join(root, 'b/dir'));
    await assert.rejects(store.put('b', 'dir', Buffer.from('x')), code('IsADirectory'));
    await assert.rejects(store.put('b', 'dir', Buffer.from('x'), { ifNoneMatch: true }), code('IsADirectory'));
    assert.ok(statSync(path.join(root, 'b/dir')).isDirectory());
  });

  it('refuses a key below a file, and leaves no temp file behind', async () => {
    writeFileSync(path.join(root, 'b/file'), 'f');
    await assert.rejects(store.put('b', 'file/below', Buffer.from('x')), code('NotADirectory'));
    assert.deepEqual(readdirSync(path.join(root, '.sftp-gateway-tmp')), []);
  });

  it('opens a file with open + fstat; a folder or a missing key is no object', async () => {
    await store.put('b', 'o.bin', Buffer.alloc(100, 7));
    const opened = await store.openObject('b', 'o.bin');
    assert.ok(opened);
    assert.equal(opened.info.size, 100);
    assert.deepEqual(opened.info, await store.head('b', 'o.bin'));
    await opened.reader.close();
    assert.equal(await store.openObject('b', 'dir'), undefined);
    assert.equal(await store.openObject('b', 'missing'), undefined);
    assert.equal(await store.openObject('nobucket', 'o.bin'), undefined);
  });

  it('lists a missing bucket as NotFound, an empty folder of an existing one as empty', async () => {
    await assert.rejects(store.list('nobucket', { prefix: '' }), code('NotFound'));
    assert.deepEqual(await store.list('b', { prefix: 'nothing/', maxKeys: 1 }), { objects: [], prefixes: [] });
  });

  it('answers "is anything below this folder" with a continuation token after one key', async () => {
    mkdirSync(path.join(root, 'b/many'));
    for (let i = 0; i < 100; i++) writeFileSync(path.join(root, `b/many/f${i}`), 'x');
    const page = await store.list('b', { prefix: 'many/', maxKeys: 1 });
    assert.deepEqual(page.objects.map((o) => o.key), ['many/']);
    assert.equal(page.nextToken, 'many/');
    const next = await store.list('b', { prefix: 'many/', maxKeys: 1000, continuationToken: page.nextToken });
    assert.equal(next.objects.length, 100);
  });
});
