import type { StoredUser, UserStore } from './store.js';

/**
 * A user store that, after each change it makes succeeds, awaits `changed()` before answering: with
 * several workers, the one serving the user API has the others re-read the store, so a user created
 * through the API can log in on whichever worker the next connection lands on.
 */
export function notifyingUserStore(inner: UserStore, changed: () => Promise<void>): UserStore {
  return {
    get kind() {
      return inner.kind;
    },
    start: () => inner.start(),
    stop: () => inner.stop(),
    refresh: () => inner.refresh(),
    find: (userName) => inner.find(userName),
    get: (userName) => inner.get(userName),
    list: () => inner.list(),
    serverId: () => inner.serverId(),
    async create(user: StoredUser) {
      await inner.create(user);
      await changed();
    },
    async update(userName, change) {
      const updated = await inner.update(userName, change);
      await changed();
      return updated;
    },
    async delete(userName) {
      await inner.delete(userName);
      await changed();
    },
  };
}
