import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HomeConfinement } from '../../src/vfs/access.js';
import { namespaceFor } from '../../src/vfs/factory.js';
import { LogicalNamespace } from '../../src/vfs/namespace.js';
import { isWithin, normalizePath, toStoreLocation } from '../../src/vfs/paths.js';

describe('normalizePath', () => {
  const cases: [string, string, string][] = [
    ['.', '/demo/home/alice', '/demo/home/alice'],
    ['', '/demo/home/alice', '/demo/home/alice'],
    ['x', '/demo/home/alice', '/demo/home/alice/x'],
    ['./x/./y', '/demo/home/alice', '/demo/home/alice/x/y'],
    ['..', '/demo/home/alice', '/demo/home'],
    ['../../../../..', '/demo/home/alice', '/'],
    ['/a//b///c/', '/x', '/a/b/c'],
    ['/a/b/../../..', '/x', '/'],
    ['a/../../b', '/demo', '/b'],
    ['/', '/demo', '/'],
    ['.../x', '/d', '/d/.../x'],
  ];
  for (const [input, cwd, expected] of cases) {
    test(`${JSON.stringify(input)} from ${cwd} is ${expected}`, () =>
      assert.equal(normalizePath(input, cwd), expected));
  }
  test('a NUL byte is refused', () =>
    assert.throws(() => normalizePath('a\0b', '/'), { code: 'InvalidPath' }));
  test('a name over 255 bytes is refused', () => {
    assert.throws(() => normalizePath(`/d/${'x'.repeat(256)}`, '/'), { code: 'InvalidPath' });
    assert.equal(normalizePath(`/d/${'x'.repeat(255)}`, '/'), `/d/${'x'.repeat(255)}`);
    // 128 two-byte characters are 256 bytes.
    assert.throws(() => normalizePath(`/d/${'é'.repeat(128)}`, '/'), { code: 'InvalidPath' });
  });
  test('a path over 1024 bytes is refused', () => {
    const long = `/${Array.from({ length: 11 }, () => 'y'.repeat(100)).join('/')}`;
    assert.throws(() => normalizePath(long, '/'), { code: 'InvalidPath' });
  });
});

describe('confinement', () => {
  test('isWithin compares whole segments', () => {
    assert.equal(isWithin('/demo/home/alice', '/demo/home/alice'), true);
    assert.equal(isWithin('/demo/home/alice/x', '/demo/home/alice'), true);
    assert.equal(isWithin('/demo/home/alice2', '/demo/home/alice'), false);
    assert.equal(isWithin('/demo/home', '/demo/home/alice'), false);
    assert.equal(isWithin('/anything', '/'), true);
  });
  test('HomeConfinement refuses locations outside the home, naming action and path', () => {
    const c = new HomeConfinement('/demo/home/alice');
    c.check('read', { bucket: 'demo', key: 'home/alice/f' }, '/demo/home/alice/f');
    c.check('list', { bucket: 'demo', key: 'home/alice' }, '/demo/home/alice');
    assert.throws(() => c.check('read', { bucket: 'demo', key: 'home/alice2/f' }, '/demo/home/alice2/f'), {
      code: 'PermissionDenied',
      message: /read \/demo\/home\/alice2\/f/,
    });
    assert.throws(() => c.check('list', { bucket: 'demo', key: '' }, '/demo'), { code: 'PermissionDenied' });
    assert.throws(() => c.check('list', { bucket: 'other', key: 'home/alice' }, '/other/home/alice'), {
      code: 'PermissionDenied',
    });
  });
  test('toStoreLocation splits the bucket off', () => {
    assert.deepEqual(toStoreLocation('/demo/a/b'), { bucket: 'demo', key: 'a/b' });
    assert.deepEqual(toStoreLocation('/demo'), { bucket: 'demo', key: '' });
    assert.equal(toStoreLocation('/'), undefined);
  });
});

describe('LOGICAL namespace', () => {
  const ns = new LogicalNamespace([
    { Entry: '/pub', Target: '/bucket/public' },
    { Entry: '/pub/special', Target: '/other/x' },
    { Entry: '/reports/today.csv', Target: '/bucket/r/2026-11-23.csv', Type: 'FILE' },
  ]);
  test('the longest entry wins', () => {
    assert.deepEqual(ns.resolve('/pub/a/b'), {
      kind: 'store',
      location: { bucket: 'bucket', key: 'public/a/b' },
      fileOnly: false,
    });
    assert.deepEqual(ns.resolve('/pub/special/z'), {
      kind: 'store',
      location: { bucket: 'other', key: 'x/z' },
      fileOnly: false,
    });
    assert.deepEqual(ns.resolve('/pub'), {
      kind: 'store',
      location: { bucket: 'bucket', key: 'public' },
      fileOnly: false,
    });
  });
  test('parents of entries are virtual directories; the rest does not exist', () => {
    assert.deepEqual(ns.resolve('/'), { kind: 'virtual', entries: ['pub', 'reports'] });
    assert.deepEqual(ns.resolve('/reports'), { kind: 'virtual', entries: ['today.csv'] });
    assert.deepEqual(ns.resolve('/elsewhere'), { kind: 'none' });
  });
  test('a FILE mapping serves exactly one object', () => {
    assert.deepEqual(ns.resolve('/reports/today.csv'), {
      kind: 'store',
      location: { bucket: 'bucket', key: 'r/2026-11-23.csv' },
      fileOnly: true,
    });
    assert.deepEqual(ns.resolve('/reports/today.csv/x'), { kind: 'none' });
  });
  test('the chroot idiom with ${Transfer:UserName}', () => {
    const chroot = namespaceFor({
      UserName: 'bob',
      HomeDirectoryType: 'LOGICAL',
      HomeDirectoryMappings: [{ Entry: '/', Target: '/bucket/${Transfer:UserName}' }],
    });
    assert.equal(chroot.home, '/');
    assert.deepEqual(chroot.resolve('/'), {
      kind: 'store',
      location: { bucket: 'bucket', key: 'bob' },
      fileOnly: false,
    });
    assert.deepEqual(chroot.resolve('/x/y'), {
      kind: 'store',
      location: { bucket: 'bucket', key: 'bob/x/y' },
      fileOnly: false,
    });
  });
});
