import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type GatewayErrorCode, isGatewayError } from '../../src/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { LocalStore, type LocalStoreOptions, SMALL_READ_BYTES, SMALL_UPLOAD_BYTES } from '../../src/storage/local/local-store.js';
import { isLocalFileSystem } from '../../src/storage/local/small-commit.js';
import { MemoryBudget } from '../../src/storage/memory-budget.js';
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

// The same guarantees when small uploads go through libuv's thread pool, as on a network file system.
objectStoreContract(
  'LocalStore, small uploads through the thread pool',
  async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'sftp-gw-local-'));
    mkdirSync(path.join(root, 'test'));
    const store = new LocalStore({ root, callsOnLoop: false });
    await store.init();
    return {
      store,
      bucket: 'test',
      cleanup: async () => {
        assert.equal(store.loopCommits, 0);
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

describe('LocalStore small uploads', () => {
  let root: string;
  const stores: LocalStore[] = [];
  before(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'sftp-gw-local-small-'));
    mkdirSync(path.join(root, 'b'));
  });
  after(async () => {
    for (const s of stores) await s.close();
    rmSync(root, { recursive: true, force: true });
  });
  const open = async (options: Partial<LocalStoreOptions> = {}) => {
    const store = new LocalStore({ root, callsOnLoop: true, ...options });
    await store.init();
    stores.push(store);
    return store;
  };
  const temps = () => readdirSync(path.join(root, '.sftp-gateway-tmp'));
  const code = (c: GatewayErrorCode) => (e: unknown) => isGatewayError(e, c);
  const fds = () => readdirSync('/proc/self/fd').length;
  /** close(2) goes through the thread pool unawaited: gives the count a moment to come back to `before`. */
  const settleFds = async (before: number) => {
    for (let i = 0; i < 50 && fds() > before; i++) await new Promise((r) => setTimeout(r, 10));
  };

  it('holds a small upload in memory and commits it on the event loop at complete', async () => {
    const store = await open();
    const writer = store.createWriter('b', 's/one.txt');
    const first = Buffer.from('hello ');
    await writer.write(first);
    first.fill(0); // the caller may reuse its buffer once write resolves
    await writer.write(Buffer.from('world'));
    assert.deepEqual(temps(), [], 'nothing on disk before complete');
    const info = await writer.complete();
    assert.equal(store.loopCommits, 1);
    assert.equal(readFileSync(path.join(root, 'b/s/one.txt'), 'utf8'), 'hello world');
    assert.deepEqual(info, await store.head('b', 's/one.txt'));
    assert.deepEqual(temps(), []);
  });

  it('streams to disk from the first write that does not fit in SMALL_UPLOAD_BYTES', async () => {
    const store = await open();
    const writer = store.createWriter('b', 'large.bin');
    const a = Buffer.alloc(SMALL_UPLOAD_BYTES - 10, 1);
    const b = Buffer.alloc(20, 2);
    await writer.write(a);
    assert.deepEqual(temps(), []);
    await writer.write(b);
    assert.equal(temps().length, 1, 'the temp file exists once the upload no longer fits');
    await writer.write(Buffer.alloc(5, 3));
    await writer.complete();
    assert.equal(store.loopCommits, 0);
    assert.deepEqual(readFileSync(path.join(root, 'b/large.bin')), Buffer.concat([a, b, Buffer.alloc(5, 3)]));
    assert.deepEqual(temps(), []);
  });

  it('draws held bytes from the memory budget, and streams to disk when the budget has no room', async () => {
    const memory = new MemoryBudget(8 * 1024);
    const store = await open({ memory });
    const writer = store.createWriter('b', 'held.bin');
    await writer.write(Buffer.alloc(6 * 1024, 1));
    assert.equal(memory.inUse, 6 * 1024);
    await writer.complete();
    assert.equal(memory.inUse, 0);

    const full = store.createWriter('b', 'full.bin');
    await full.write(Buffer.alloc(6 * 1024, 1));
    const over = store.createWriter('b', 'over.bin');
    await over.write(Buffer.alloc(4 * 1024, 2)); // 6 + 4 KiB do not fit in 8: this one goes to disk
    assert.equal(memory.inUse, 6 * 1024);
    assert.equal(temps().length, 1);
    await over.complete();
    await full.abort('client went away');
    assert.equal(memory.inUse, 0);
    assert.equal(store.loopCommits, 1);
    assert.equal(readFileSync(path.join(root, 'b/over.bin')).length, 4 * 1024);
    assert.ok(!existsSync(path.join(root, 'b/full.bin')));
    assert.deepEqual(temps(), []);
  });

  it('keeps an existing key with ifNoneMatch, and publishes over a missing folder', async () => {
    const store = await open();
    await store.put('b', 'exists.txt', Buffer.from('old'));
    await assert.rejects(store.put('b', 'exists.txt', Buffer.from('new'), { ifNoneMatch: true }), code('AlreadyExists'));
    assert.equal(readFileSync(path.join(root, 'b/exists.txt'), 'utf8'), 'old');
    await store.put('b', 'fresh/deep/new.txt', Buffer.from('new'), { ifNoneMatch: true });
    assert.equal(readFileSync(path.join(root, 'b/fresh/deep/new.txt'), 'utf8'), 'new');
    assert.equal(store.loopCommits, 3);
    assert.deepEqual(temps(), []);
  });

  it('makes its calls through the thread pool for a while after one on the event loop was slow', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      destination: new Writable({
        write(chunk, _enc, done) {
          lines.push(JSON.parse(String(chunk)));
          done();
        },
      }),
    });
    // Every call counts as slow.
    const store = await open({ logger, slowCallMs: -1 });
    const upload = async (key: string, body: string) => {
      const writer = store.createWriter('b', key);
      await writer.write(Buffer.from(body));
      return writer.complete();
    };
    await upload('slow1.txt', '1');
    await upload('slow2.txt', '2');
    assert.ok(await store.head('b', 'slow1.txt'));
    assert.equal(store.loopCommits, 1);
    assert.equal(readFileSync(path.join(root, 'b/slow2.txt'), 'utf8'), '2');
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!['level'], 'warn');
    assert.equal(typeof lines[0]!['call-ms'], 'number');
    assert.equal(lines[0]!['pause-seconds'], 60);
  });

  it('maps a temp file that cannot be written to a store error and leaves nothing behind', async () => {
    const store = await open({ tempDir: path.join(root, 'no-such-parent', 'tmp') });
    rmSync(path.join(root, 'no-such-parent'), { recursive: true });
    await assert.rejects(store.put('b', 'lost.txt', Buffer.from('x')), code('Failure'));
    assert.ok(!existsSync(path.join(root, 'b/lost.txt')));
  });

  it('opens downloads by descriptor, closes each once no read is in flight, and leaks none', async () => {
    for (const callsOnLoop of [true, false]) {
      const store = await open({ callsOnLoop });
      const body = Buffer.alloc(300 * 1024);
      for (let i = 0; i < body.length; i++) body[i] = i % 251;
      await store.put('b', 'read.bin', body);
      const before = fds();
      for (let i = 0; i < 20; i++) {
        const opened = (await store.openObject('b', 'read.bin'))!;
        const target = Buffer.alloc(body.length);
        // CLOSE arrives while a READ is still in the thread pool: that read completes with the right bytes.
        const reading = opened.reader.readInto!(0, target);
        await opened.reader.close();
        assert.equal(await reading, body.length);
        assert.deepEqual(target, body);
        await assert.rejects(opened.reader.read(0, 10), code('Failure'));
      }
      await settleFds(before);
      assert.equal(fds(), before, `callsOnLoop ${callsOnLoop}: descriptors left open`);
    }
  });

  it('reads a small file whole at open, closes its descriptor there, and serves its reads from memory', async () => {
    const readMemory = new MemoryBudget(100 * 1024);
    for (const callsOnLoop of [true, false]) {
      const store = await open({ callsOnLoop, readMemory });
      const body = Buffer.alloc(SMALL_READ_BYTES);
      for (let i = 0; i < body.length; i++) body[i] = i % 253;
      await store.put('b', 'whole.bin', body);
      await store.put('b', 'empty.bin', Buffer.alloc(0));
      const before = fds();
      const opened = (await store.openObject('b', 'whole.bin'))!;
      const empty = (await store.openObject('b', 'empty.bin'))!;
      // Held: the descriptors are closed already, and the bytes are counted in the budget until CLOSE.
      assert.equal(fds(), callsOnLoop ? before : before + 2);
      assert.equal(readMemory.inUse, callsOnLoop ? SMALL_READ_BYTES : 0);
      // The bytes are the version opened, even after a new upload replaces the file.
      await store.put('b', 'whole.bin', Buffer.alloc(10, 7));
      const target = Buffer.alloc(40_000);
      assert.equal(await opened.reader.readInto!(30_000, target), 35_536);
      assert.deepEqual(target.subarray(0, 35_536), body.subarray(30_000));
      assert.equal(await opened.reader.readInto!(SMALL_READ_BYTES, target), 0);
      assert.deepEqual(await opened.reader.read(100, 50), body.subarray(100, 150));
      assert.equal((await opened.reader.read(SMALL_READ_BYTES + 5, 10)).length, 0);
      assert.equal((await empty.reader.read(0, 10)).length, 0);
      await opened.reader.close();
      await opened.reader.close();
      await empty.reader.close();
      assert.equal(readMemory.inUse, 0);
      await assert.rejects(opened.reader.read(0, 10), code('Failure'));
      await assert.rejects(opened.reader.readInto!(0, target), code('Failure'));
      await settleFds(before);
      assert.equal(fds(), before, `callsOnLoop ${callsOnLoop}: descriptors left open`);
    }
  });

  it('keeps a small file on its descriptor when the read budget has no room, and a larger one always', async () => {
    const readMemory = new MemoryBudget(6 * 1024);
    const store = await open({ readMemory });
    await store.put('b', 'four.bin', Buffer.alloc(4 * 1024, 4));
    await store.put('b', 'large.bin', Buffer.alloc(SMALL_READ_BYTES + 1, 5));
    const before = fds();
    const first = (await store.openObject('b', 'four.bin'))!;
    assert.equal(readMemory.inUse, 4 * 1024);
    const second = (await store.openObject('b', 'four.bin'))!; // 4 + 4 KiB do not fit in 6
    const large = (await store.openObject('b', 'large.bin'))!;
    assert.equal(readMemory.inUse, 4 * 1024);
    assert.equal(fds(), before + 2, 'the second small file and the large one read through their descriptors');
    assert.deepEqual(await second.reader.read(0, 8192), Buffer.alloc(4 * 1024, 4));
    assert.deepEqual(await large.reader.read(SMALL_READ_BYTES - 1, 10), Buffer.alloc(2, 5));
    for (const o of [first, second, large]) await o.reader.close();
    assert.equal(readMemory.inUse, 0);
    await settleFds(before);
    assert.equal(fds(), before);
  });

  it('tells local file systems from network and FUSE ones by their statfs type', () => {
    assert.equal(isLocalFileSystem(0xef53), true); // ext4
    assert.equal(isLocalFileSystem(0x58465342), true); // xfs
    assert.equal(isLocalFileSystem(0x01021994), true); // tmpfs
    assert.equal(isLocalFileSystem(0x6969), false); // NFS
    assert.equal(isLocalFileSystem(0xfe534d42), false); // SMB2
    assert.equal(isLocalFileSystem(0x65735546), false); // FUSE (s3fs, sshfs)
    assert.equal(isLocalFileSystem(BigInt(0xef53)), true);
  });
});
