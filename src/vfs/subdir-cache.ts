import type { StoreLocation } from './paths.js';

/** How long a directory's set of subdirectories is trusted after it was learnt. */
export const SUBDIR_KNOWLEDGE_MS = 30_000;
const MAX_DIRECTORIES = 256;
/** Directories with more subdirectories than this are not remembered. */
export const MAX_LEARNT_SUBDIRS = 10_000;

/**
 * What one session knows of the subdirectories of the directories it created or listed in full, so that
 * opening a new file there for writing needs no request to ask whether a directory of that name exists
 * (on S3 a LIST per uploaded file, as many requests as the upload itself).
 *
 * A set is a superset of the truth when learnt: this session adds its own mkdirs and directory renames,
 * and deletions only shrink the truth. Another session's mkdir is missed for up to SUBDIR_KNOWLEDGE_MS;
 * the cost is a file and a directory of the same name, which object storage allows anyway and which the
 * same race with a request per file leaves possible too.
 */
export class SubdirCache {
  private readonly known = new Map<string, { at: number; names: Set<string> }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** True when `name` is known not to be a subdirectory of `dir`; false when unknown or it is one. */
  knownNotADirectory(dir: StoreLocation, name: string): boolean {
    const k = this.known.get(cacheKey(dir));
    if (!k) return false;
    if (this.now() - k.at > SUBDIR_KNOWLEDGE_MS) {
      this.known.delete(cacheKey(dir));
      return false;
    }
    return !k.names.has(name);
  }

  /** `dir`'s subdirectories were exactly `names` at `at` (a complete listing started then, or a mkdir). */
  learn(dir: StoreLocation, names: Iterable<string>, at: number = this.now()): void {
    const set = new Set(names);
    if (set.size > MAX_LEARNT_SUBDIRS) return;
    const key = cacheKey(dir);
    this.known.delete(key);
    if (this.known.size >= MAX_DIRECTORIES) {
      const oldest = this.known.keys().next().value;
      if (oldest !== undefined) this.known.delete(oldest);
    }
    this.known.set(key, { at, names: set });
  }

  /** This session made `name` a directory inside `dir` (mkdir, or a directory renamed there). */
  added(dir: StoreLocation, name: string): void {
    this.known.get(cacheKey(dir))?.names.add(name);
  }
}

function cacheKey(dir: StoreLocation): string {
  return `${dir.bucket}\0${dir.key}`;
}
