import { isWithin, type StoreLocation, toStoreLocation } from './paths.js';

/**
 * Where a virtual path (what the SFTP client sees) lives:
 * - `store`: an object or prefix in a bucket; `fileOnly` when a LOGICAL FILE mapping serves exactly one object;
 * - `virtual`: a read-only directory that exists only because mappings lie below it (its entries are names);
 * - `none`: nothing is there.
 */
export type Resolution =
  | { kind: 'store'; location: StoreLocation; fileOnly: boolean }
  | { kind: 'virtual'; entries: string[] }
  | { kind: 'none' };

export interface Namespace {
  /** The directory a session starts in. */
  readonly home: string;
  resolve(virtualPath: string): Resolution;
}

/** HomeDirectoryType PATH: virtual paths are store paths, `/bucket/key`. */
export class PathNamespace implements Namespace {
  constructor(readonly home: string) {}

  resolve(virtualPath: string): Resolution {
    const location = toStoreLocation(virtualPath);
    // The root lists no buckets: which ones a user may see is the policy's business, not the listing's.
    return location ? { kind: 'store', location, fileOnly: false } : { kind: 'virtual', entries: [] };
  }
}

export interface Mapping {
  Entry: string;
  Target: string;
  Type?: 'FILE' | 'DIRECTORY';
}

/**
 * HomeDirectoryType LOGICAL: HomeDirectoryMappings build the user's tree. The longest matching Entry
 * wins; parents of entries are virtual directories; nothing outside the mappings is visible.
 */
export class LogicalNamespace implements Namespace {
  readonly home = '/';
  private readonly mappings: { entry: string; target: string; file: boolean }[];

  constructor(mappings: Mapping[]) {
    this.mappings = mappings
      .map((m) => ({ entry: trimSlash(m.Entry), target: trimSlash(m.Target), file: m.Type === 'FILE' }))
      .sort((a, b) => b.entry.length - a.entry.length);
  }

  resolve(virtualPath: string): Resolution {
    for (const m of this.mappings) {
      if (!isWithin(virtualPath, m.entry)) continue;
      if (m.file && virtualPath !== m.entry) return { kind: 'none' };
      const rest = m.entry === '/' ? virtualPath : virtualPath.slice(m.entry.length);
      const location = toStoreLocation(
        m.target === '/' ? rest || '/' : m.target + (rest === '/' ? '' : rest),
      );
      return location ? { kind: 'store', location, fileOnly: m.file } : { kind: 'none' };
    }
    const names = new Set<string>();
    const prefix = virtualPath === '/' ? '/' : `${virtualPath}/`;
    for (const m of this.mappings) {
      if (m.entry.startsWith(prefix)) names.add(m.entry.slice(prefix.length).split('/')[0]!);
    }
    return names.size > 0 ? { kind: 'virtual', entries: [...names].sort() } : { kind: 'none' };
  }
}

function trimSlash(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}
