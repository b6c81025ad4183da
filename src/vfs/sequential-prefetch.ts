import type { OpenedObject } from '../storage/object-store.js';
import { baseName, joinPath, parentOf } from './paths.js';

/** Files of at most this size are fetched ahead: a larger file's own transfer hides one request's latency. */
export const PREFETCH_MAX_BYTES = 1024 * 1024;
/** A file fetched ahead is handed to an OPEN only this long after its request was sent. */
export const PREFETCH_MAX_AGE_MS = 1000;
/** Files of a listing remembered for this; a bigger directory is not fetched ahead. */
export const MAX_LEARNT_FILES = 10_000;
/** Listings remembered: `get -r` lists each sub-directory on its way through the parent's files. */
const MAX_LISTINGS = 8;

interface Listing {
  names: string[];
  sizes: number[];
  index: Map<string, number>;
  /** The index of the last file of this listing opened, -1 before the first. */
  last: number;
}

/** Opens the file at a virtual path as OPEN would, or returns undefined when this user may not read it. */
export type PrefetchOpen = (path: string) => Promise<OpenedObject | undefined> | undefined;

interface Ahead {
  sentAt: number;
  opened: Promise<OpenedObject | undefined>;
}

/**
 * Fetches the next small files of a directory while the client downloads the current one. OpenSSH's
 * `get -r` and `mget` (and lftp's mirror, WinSCP's directory download) list a directory, then open its
 * files one at a time in listing order: OPEN, READ, READ, CLOSE, each round trip waiting for the last.
 * On S3 the OPEN is a GET of several milliseconds, so a 1,000-file download is 1,000 GETs in a row.
 *
 * Once a session opens two files of its last complete listing one after the other, the next `depth` small
 * files are fetched, and an OPEN of one of them takes the fetched object. What a client is handed is the
 * object as it was when that GET was sent, at most PREFETCH_MAX_AGE_MS before the OPEN: the same answer an
 * OPEN sent that much earlier would have had. A session's own write, removal or rename drops everything
 * fetched when it ends (until then what was fetched is still the current object). Nothing is fetched for
 * a client that opens files in any other order.
 */
export class SequentialPrefetch {
  readonly #listings = new Map<string, Listing>();
  readonly #ahead = new Map<string, Ahead>();

  constructor(
    private readonly open: PrefetchOpen,
    private readonly depth: number,
    /** Each fetched file's end: an OPEN took it, or it was dropped. */
    private readonly onOutcome: (outcome: 'used' | 'unused') => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** A complete listing of `dir` (virtual path): its files' names and sizes, in listing order. */
  learnListing(dir: string, names: string[], sizes: number[]): void {
    this.#listings.delete(dir);
    if (names.length > MAX_LEARNT_FILES) return;
    this.#listings.set(dir, { names, sizes, index: new Map(names.map((n, i) => [n, i])), last: -1 });
    for (const old of this.#listings.keys()) {
      if (this.#listings.size <= MAX_LISTINGS) break;
      this.#listings.delete(old);
    }
  }

  /**
   * Called for each OPEN for reading: the file fetched ahead for `path` when one is fresh (the caller
   * opens it itself when this is undefined or settles undefined or fails), and fetches the next files
   * when this OPEN follows the previous one in the listing.
   */
  take(path: string): Promise<OpenedObject | undefined> | undefined {
    const now = this.now();
    const ahead = this.#ahead.get(path);
    if (ahead) this.#ahead.delete(path);
    const fresh = ahead && now - ahead.sentAt <= PREFETCH_MAX_AGE_MS ? ahead.opened : undefined;
    if (ahead && !fresh) this.#drop(ahead);
    if (fresh) fresh.then((o) => this.onOutcome(o ? 'used' : 'unused'), () => this.onOutcome('unused'));
    for (const [p, a] of this.#ahead) {
      if (now - a.sentAt <= PREFETCH_MAX_AGE_MS) continue;
      this.#ahead.delete(p);
      this.#drop(a);
    }
    const dir = parentOf(path);
    const listing = this.#listings.get(dir);
    const i = listing?.index.get(baseName(path));
    if (listing === undefined || i === undefined) return fresh;
    if (i === listing.last + 1 && listing.last >= 0) this.#fetchAfter(dir, listing, i, now);
    listing.last = i;
    return fresh;
  }

  /** The session changed something: what was fetched may be stale. */
  invalidate(): void {
    for (const a of this.#ahead.values()) this.#drop(a);
    this.#ahead.clear();
  }

  close(): void {
    this.invalidate();
    this.#listings.clear();
  }

  #fetchAfter(dir: string, listing: Listing, i: number, now: number): void {
    const end = Math.min(listing.names.length, i + 1 + this.depth);
    for (let j = i + 1; j < end; j++) {
      if (listing.sizes[j]! > PREFETCH_MAX_BYTES) continue;
      const path = joinPath(dir, listing.names[j]!);
      if (this.#ahead.has(path)) continue;
      const opened = this.open(path);
      if (!opened) continue;
      opened.catch(() => undefined); // the OPEN that takes it opens the file itself instead
      this.#ahead.set(path, { sentAt: now, opened });
    }
  }

  #drop(a: Ahead): void {
    this.onOutcome('unused');
    void a.opened.then((o) => o?.reader.close()).catch(() => undefined);
  }
}
