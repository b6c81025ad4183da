import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../observability/logger.js';
import {
  CachedUserStore,
  NoSuchUserError,
  newServerId,
  parseStoredUser,
  SERVER_ID,
  type StoredUser,
  UserExistsError,
} from './store.js';

interface FileContent {
  version: 1;
  users: StoredUser[];
}

/**
 * The default user store: one JSON file (`<stateDir>/users.json`), rewritten atomically (temporary file,
 * fsync, rename) on every change, and re-read when its size or mtime changes (another process sharing the
 * folder). The ServerId lives next to it in `server-id`.
 */
export class FileUserStore extends CachedUserStore {
  readonly kind = 'file' as const;
  private timer: NodeJS.Timeout | undefined;
  private seen = '';
  private id: string | undefined;

  constructor(
    readonly file: string,
    logger: Logger,
    private readonly pollMs = 1000,
  ) {
    super(logger);
  }

  async start(): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true });
    await this.reload();
    this.timer = setInterval(() => {
      this.reloadIfChanged().catch((e: Error) =>
        this.logger.warn({ component: 'user-store', err: e.message }, 'cannot re-read the user store'),
      );
    }, this.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async refresh(): Promise<void> {
    await this.reloadIfChanged();
  }

  async serverId(): Promise<string> {
    if (this.id) return this.id;
    const file = path.join(path.dirname(this.file), 'server-id');
    const existing = await readFile(file, 'utf8').then(
      (t) => t.trim(),
      () => undefined,
    );
    if (existing && SERVER_ID.test(existing)) {
      this.id = existing;
      return existing;
    }
    const id = newServerId();
    await writeAtomic(file, `${id}\n`);
    this.id = id;
    return id;
  }

  create(user: StoredUser): Promise<void> {
    return this.serialize(async () => {
      const users = await this.read();
      if (users.some((u) => u.UserName === user.UserName)) throw new UserExistsError(user.UserName);
      users.push(user);
      await this.write(users);
    });
  }

  update(userName: string, change: (user: StoredUser) => StoredUser): Promise<StoredUser> {
    return this.serialize(async () => {
      const users = await this.read();
      const i = users.findIndex((u) => u.UserName === userName);
      if (i < 0) throw new NoSuchUserError(userName);
      const next = change(structuredClone(users[i]!));
      users[i] = next;
      await this.write(users);
      return next;
    });
  }

  delete(userName: string): Promise<void> {
    return this.serialize(async () => {
      const users = await this.read();
      const rest = users.filter((u) => u.UserName !== userName);
      if (rest.length === users.length) throw new NoSuchUserError(userName);
      await this.write(rest);
    });
  }

  private async signature(): Promise<string> {
    const s = await stat(this.file).catch(() => undefined);
    return s ? `${s.size}:${s.mtimeMs}:${s.ino}` : 'absent';
  }

  private async reloadIfChanged(): Promise<void> {
    if ((await this.signature()) !== this.seen) await this.serialize(() => this.reload());
  }

  /** The file's users, freshly read; also refreshes the cache. */
  private async read(): Promise<StoredUser[]> {
    await this.reload();
    return this.list().map((u) => structuredClone(u));
  }

  private async reload(): Promise<void> {
    const sig = await this.signature();
    if (sig === this.seen) return;
    let users: StoredUser[] = [];
    if (existsSync(this.file)) {
      const text = await readFile(this.file, 'utf8');
      const content = JSON.parse(text) as FileContent;
      users = (content.users ?? []).map((u, i) => parseStoredUser(JSON.stringify(u), `${this.file} [${i}]`));
    }
    this.replaceAll(users);
    this.seen = sig;
  }

  private replaceAll(users: StoredUser[]): void {
    const names = new Set(users.map((u) => u.UserName));
    for (const name of [...this.entries.keys()]) if (!names.has(name)) this.forget(name);
    for (const u of users) {
      const old = this.entries.get(u.UserName);
      const version = JSON.stringify(u);
      if (!old || old.version !== version) this.remember(u, version);
    }
  }

  private async write(users: StoredUser[]): Promise<void> {
    users.sort((a, b) => (a.UserName < b.UserName ? -1 : a.UserName > b.UserName ? 1 : 0));
    const content: FileContent = { version: 1, users };
    await writeAtomic(this.file, `${JSON.stringify(content, null, 2)}\n`);
    this.replaceAll(users);
    this.seen = await this.signature();
  }
}

/** Writes a temporary file in the same folder, fsyncs it, renames it over `file`, fsyncs the folder. */
export async function writeAtomic(file: string, text: string): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true });
  const temp = path.join(dir, `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temp, file);
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw e;
  }
  const d = await open(dir, 'r').catch(() => undefined);
  await d
    ?.sync()
    .catch(() => undefined)
    .finally(() => d.close());
}
