import { invalidPath } from '../errors.js';

/** OpenSSH and S3 agree on 255 bytes for one name; S3 keys are at most 1024 bytes. */
export const MAX_NAME_BYTES = 255;
export const MAX_PATH_BYTES = 1024;

/**
 * Normalizes a client path to an absolute virtual path: relative paths start at `cwd`; `.`, `..` and
 * repeated or trailing slashes are resolved; `..` at the root stays at the root (as POSIX does). NUL
 * bytes and over-long names are refused before anything else sees the path.
 */
export function normalizePath(input: string, cwd: string): string {
  if (input.includes('\0')) throw invalidPath('path contains a NUL byte');
  const joined = input.startsWith('/') ? input : `${cwd}/${input}`;
  const out: string[] = [];
  for (const segment of joined.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      out.pop();
      continue;
    }
    if (Buffer.byteLength(segment) > MAX_NAME_BYTES) {
      throw invalidPath(`name longer than ${MAX_NAME_BYTES} bytes: ${segment.slice(0, 40)}...`);
    }
    out.push(segment);
  }
  const result = `/${out.join('/')}`;
  if (Buffer.byteLength(result) > MAX_PATH_BYTES)
    throw invalidPath(`path longer than ${MAX_PATH_BYTES} bytes`);
  return result;
}

/** True when `path` is `root` or lies below it (both normalized). */
export function isWithin(path: string, root: string): boolean {
  return root === '/' || path === root || path.startsWith(`${root}/`);
}

export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** Where a store path (`/bucket/key...`) lives; key "" is the bucket's root. */
export interface StoreLocation {
  bucket: string;
  key: string;
}

/** `/bucket/a/b` -> {bucket, key: 'a/b'}; `/` has no bucket. */
export function toStoreLocation(storePath: string): StoreLocation | undefined {
  const [bucket, ...rest] = storePath.split('/').slice(1);
  if (!bucket) return undefined;
  return { bucket, key: rest.join('/') };
}

/** The key prefix that lists a directory's contents: "" for a bucket root, else `key/`. */
export function dirPrefix(key: string): string {
  return key === '' ? '' : `${key}/`;
}
