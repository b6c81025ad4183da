import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
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

  it('answers the one-key probe of a folder from the folder and its first entry', async () => {
    const probe = (prefix: string) => store.list('b', { prefix, maxKeys: 1 });
    mkdirSync(path.join(root, 'b/p/empty'), { recursive: true });
    mkdirSync(path.join(root, 'b/p/sub/inner'), { recursive: true });
    mkdirSync(path.join(root, 'b/p/link'));
    symlinkSync(path.join(root, 'b/o.bin'), path.join(root, 'b/p/link/to-file'));
    const empty = await probe('p/empty/');
    assert.deepEqual(empty.objects.map((o) => o.key), ['p/empty/']);
    assert.equal(empty.nextToken, undefined);
    assert.equal((await probe('p/sub/')).nextToken, 'p/sub/');
    // A symbolic link is no object: the folder holds nothing.
    assert.equal((await probe('p/link/')).nextToken, undefined);
    assert.deepEqual(await probe('p/missing/'), { objects: [], prefixes: [] });
    await assert.rejects(store.list('nobucket', { prefix: 'x/', maxKeys: 1 }), code('NotFound'));
    rmSync(path.join(root, 'b/p'), { recursive: true });
  });

  it('lists a large folder page by page from where each page stopped, and any store resumes a token', async () => {
    mkdirSync(path.join(root, 'b/big'));
    const names: string[] = [];
    for (let i = 0; i < 2500; i++) {
      const name = `e${String(i).padStart(4, '0')}`;
      if (i % 100 === 7) mkdirSync(path.join(root, 'b/big', name));
      else writeFileSync(path.join(root, 'b/big', name), 'x');
      names.push(i % 100 === 7 ? `big/${name}/` : `big/${name}`);
    }
    const listAll = async (s: LocalStore, firstToken?: string) => {
      const seen: string[] = [];
      let token = firstToken;
      do {
        const page = await s.list('b', { prefix: 'big/', delimiter: '/', ...(token ? { continuationToken: token } : {}) });
        seen.push(...page.objects.map((o) => o.key), ...page.prefixes);
        token = page.nextToken;
      } while (token);
      return seen.sort();
    };
    assert.deepEqual(await listAll(store), ['big/', ...names]);

    // The second page resumes the first page's reading of the folder: a file created since, after the
    // token, is not in it (S3 would list it; a fresh listing does), and a file removed since is skipped.
    const first = await store.list('b', { prefix: 'big/', delimiter: '/' });
    assert.equal(first.nextToken, 'big/e0998');
    writeFileSync(path.join(root, 'b/big/e1500x'), 'x');
    rmSync(path.join(root, 'b/big/e1499'));
    const second = await store.list('b', { prefix: 'big/', delimiter: '/', continuationToken: first.nextToken });
    const keys = second.objects.map((o) => o.key);
    assert.equal(keys[0], 'big/e0999');
    assert.ok(!keys.includes('big/e1500x'));
    assert.ok(!keys.includes('big/e1499'));
    assert.equal(keys.length + second.prefixes.length, 1000);
    assert.equal(second.nextToken, 'big/e1999');

    // A store that never saw the token (another replica, or after the cursor expired) reads the folder anew.
    const other = new LocalStore({ root });
    const resumed = await other.list('b', { prefix: 'big/', delimiter: '/', continuationToken: 'big/e0998' });
    assert.ok(resumed.objects.some((o) => o.key === 'big/e1500x'));
    assert.deepEqual(resumed.objects.slice(0, 2).map((o) => o.key), ['big/e0999', 'big/e1000']);
    assert.deepEqual(await listAll(other, 'big/e2405'), ['big/e2406', 'big/e2407/', ...names.slice(2408)]);
    await other.close();
    rmSync(path.join(root, 'b/big'), { recursive: true });
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
