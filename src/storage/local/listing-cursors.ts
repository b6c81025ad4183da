/**
 * A folder's entries as one listing read them: names in key order, and what each is.
 * Kept compact (one string and one byte per entry) because a cursor may wait a minute for its next page.
 */
export interface FolderSnapshot {
  names: string[];
  kinds: Uint8Array;
}

/** What a folder entry is; sockets, devices and symbolic links are `OTHER` (not objects, skipped). */
export const OTHER = 0;
export const FILE = 1;
export const DIRECTORY = 2;

/** Where a folder listing stopped: the folder as its first page read it, and the next entry's index. */
export interface ListingCursor {
  folder: FolderSnapshot;
  index: number;
}

/**
 * Folder listings in progress, by continuation token, so that page n+1 resumes where page n stopped
 * instead of reading and sorting the whole folder again: a 10,000-entry folder is 10 pages of 1,000, and
 * re-reading it for each made listing it cost O(n²/1000) directory entries.
 *
 * This is a cache, never the source of truth: a token not found here (expired, evicted, another replica
 * on a shared volume) still works, because the store then re-reads the folder and skips to the token.
 * A resumed listing shows the folder's names as its first page saw them (each file is still stat'ed when
 * its page is built, so a file removed since is skipped); S3 gives no snapshot either.
 */
export class ListingCursors {
  readonly #cursors = new Map<string, { cursor: ListingCursor; expires: number }>();
  #entries = 0;

  constructor(
    /** Total folder entries held across cursors (about 50-100 bytes each). */
    private readonly maxEntries = 200_000,
    private readonly ttlMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The cursor stored for `key`, removed: each page stores the next one. */
  take(key: string): ListingCursor | undefined {
    const found = this.#cursors.get(key);
    if (!found) return undefined;
    this.#delete(key, found.cursor);
    return found.expires > this.now() ? found.cursor : undefined;
  }

  put(key: string, cursor: ListingCursor): void {
    const old = this.#cursors.get(key);
    if (old) this.#delete(key, old.cursor);
    const size = cursor.folder.names.length;
    if (size > this.maxEntries) return;
    this.#cursors.set(key, { cursor, expires: this.now() + this.ttlMs });
    this.#entries += size;
    // Insertion order is age order (one TTL for all): expired and oldest cursors are at the front.
    const now = this.now();
    for (const [k, v] of this.#cursors) {
      if (this.#entries <= this.maxEntries && v.expires > now) break;
      this.#delete(k, v.cursor);
    }
  }

  get size(): number {
    return this.#cursors.size;
  }

  #delete(key: string, cursor: ListingCursor): void {
    this.#cursors.delete(key);
    this.#entries -= cursor.folder.names.length;
  }
}
