import { isGatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { ObjectStore } from '../storage/object-store.js';
import {
  CachedUserStore,
  NoSuchUserError,
  newServerId,
  parseStoredUser,
  SERVER_ID,
  type StoredUser,
  UserExistsError,
} from './store.js';

/**
 * The user store for several replicas: one JSON object per user under a prefix of a bucket
 * (`<prefix>users/<UserName>.json`), plus `<prefix>server-id`. Every replica lists the prefix every
 * `pollMs` and re-reads the objects whose ETag changed, so a change made through any replica reaches
 * every other one within about `pollMs` plus one round trip. Creation is a conditional write
 * (If-None-Match), so two replicas cannot both create the same user; updates are last-writer-wins.
 */
export class ObjectUserStore extends CachedUserStore {
  readonly kind = 's3' as const;
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private id: string | undefined;

  constructor(
    private readonly store: ObjectStore,
    readonly bucket: string,
    readonly prefix: string,
    logger: Logger,
    private readonly pollMs = 1000,
    /**
     * `poll: false`: list only at start and on refresh() (a worker whose primary relays changes, so that
     * N workers do not list the bucket N times a second). `onChange`: a poll found users changed elsewhere.
     */
    private readonly options: { poll?: boolean; onChange?: () => void } = {},
  ) {
    super(logger);
  }

  private keyOf(userName: string): string {
    return `${this.prefix}users/${userName}.json`;
  }

  async start(): Promise<void> {
    await this.poll();
    if (this.options.poll === false) return;
    this.timer = setInterval(() => {
      if (this.polling) return;
      const seen = this.generation;
      this.polling = this.poll()
        .then(() => {
          if (this.generation !== seen) this.options.onChange?.();
        })
        .catch((e: Error) =>
          this.logger.warn(
            { component: 'user-store', bucket: this.bucket, err: e.message },
            'cannot refresh users from the bucket',
          ),
        )
        .finally(() => {
          this.polling = undefined;
        });
    }, this.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.polling;
  }

  async refresh(): Promise<void> {
    // A poll already under way may have listed the prefix before the change: wait for it, then list again.
    await this.polling;
    const run = this.poll();
    const settled: Promise<void> = run
      .catch(() => undefined)
      .finally(() => {
        if (this.polling === settled) this.polling = undefined;
      });
    this.polling = settled;
    await run;
  }

  async serverId(): Promise<string> {
    if (this.id) return this.id;
    const key = `${this.prefix}server-id`;
    for (let attempt = 0; attempt < 3; attempt++) {
      const existing = (await this.readText(key))?.trim();
      if (existing && SERVER_ID.test(existing)) {
        this.id = existing;
        return existing;
      }
      try {
        const id = newServerId();
        await this.store.put(this.bucket, key, Buffer.from(`${id}\n`), { ifNoneMatch: !existing });
        this.id = id;
        return id;
      } catch (e) {
        if (!isGatewayError(e, 'AlreadyExists')) throw e;
        // Another replica won the race: read its id.
      }
    }
    throw new Error(`cannot settle the ServerId in s3://${this.bucket}/${key}`);
  }

  create(user: StoredUser): Promise<void> {
    return this.serialize(async () => {
      const key = this.keyOf(user.UserName);
      if (this.entries.has(user.UserName) || (await this.store.head(this.bucket, key))) {
        throw new UserExistsError(user.UserName);
      }
      try {
        const info = await this.store.put(this.bucket, key, body(user), { ifNoneMatch: true });
        this.remember(user, info.etag);
      } catch (e) {
        if (isGatewayError(e, 'AlreadyExists')) throw new UserExistsError(user.UserName);
        throw e;
      }
    });
  }

  update(userName: string, change: (user: StoredUser) => StoredUser): Promise<StoredUser> {
    return this.serialize(async () => {
      const key = this.keyOf(userName);
      const current = await this.readUser(key);
      if (!current) {
        this.forget(userName);
        throw new NoSuchUserError(userName);
      }
      const next = change(current.record);
      const info = await this.store.put(this.bucket, key, body(next));
      this.remember(next, info.etag);
      return next;
    });
  }

  delete(userName: string): Promise<void> {
    return this.serialize(async () => {
      const key = this.keyOf(userName);
      if (!(await this.store.head(this.bucket, key))) {
        this.forget(userName);
        throw new NoSuchUserError(userName);
      }
      await this.store.delete(this.bucket, [key]);
      this.forget(userName);
    });
  }

  /** Lists the prefix and brings the cache in line with it. */
  private async poll(): Promise<void> {
    const listPrefix = `${this.prefix}users/`;
    const found = new Map<string, string>();
    let token: string | undefined;
    do {
      const page = await this.store.list(this.bucket, { prefix: listPrefix, continuationToken: token });
      for (const o of page.objects) {
        if (!o.key.endsWith('.json')) continue;
        found.set(o.key.slice(listPrefix.length, -'.json'.length), o.etag);
      }
      token = page.nextToken;
    } while (token);
    for (const [name, entry] of this.entries) {
      if (!found.has(name) && entry.version !== undefined) this.forget(name);
    }
    for (const [name, etag] of found) {
      if (this.entries.get(name)?.version === etag) continue;
      try {
        const read = await this.readUser(this.keyOf(name));
        if (!read) this.forget(name);
      } catch (e) {
        this.logger.warn(
          { component: 'user-store', user: name, err: (e as Error).message },
          'cannot read a stored user',
        );
      }
    }
  }

  /** Reads one user object and refreshes the cache with it. */
  private async readUser(key: string): Promise<{ record: StoredUser; etag: string } | undefined> {
    const info = await this.store.head(this.bucket, key);
    if (!info) return undefined;
    const text = await this.readText(key);
    if (text === undefined) return undefined;
    const record = parseStoredUser(text, `s3://${this.bucket}/${key}`);
    this.remember(record, info.etag);
    return { record: structuredClone(record), etag: info.etag };
  }

  private async readText(key: string): Promise<string | undefined> {
    try {
      const stream = await this.store.getStream(this.bucket, key, { start: 0 });
      const chunks: Buffer[] = [];
      for await (const c of stream) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    } catch (e) {
      if (isGatewayError(e, 'NotFound')) return undefined;
      throw e;
    }
  }
}

function body(user: StoredUser): Buffer {
  return Buffer.from(`${JSON.stringify(user, null, 2)}\n`);
}
