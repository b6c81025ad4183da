/**
 * Requests and replies over a cluster IPC channel (primary <-> one worker). Each side answers the kinds it
 * has handlers for; messages that are not ours (prom-client's, Node's own) are left alone.
 */

interface Envelope {
  sftpGateway: 1;
  id: number;
  kind: string;
  reply?: true;
  body?: unknown;
  error?: string;
}

export type Handler = (body: unknown) => unknown;

export class Channel {
  #next = 1;
  readonly #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  readonly #handlers = new Map<string, Handler>();

  constructor(private readonly send: (message: Envelope) => void) {}

  handle(kind: string, handler: Handler): this {
    this.#handlers.set(kind, handler);
    return this;
  }

  /** Resolves with the other side's answer; rejects on its error, on timeout, or when the channel closes. */
  request<T>(kind: string, body: unknown, timeoutMs: number): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`no answer to ${kind} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        this.send({ sftpGateway: 1, id, kind, body });
      } catch (e) {
        this.#settle(id, undefined, (e as Error).message);
      }
    });
  }

  /** Feed every message of the channel here; returns false for messages that are not ours. */
  receive(message: unknown): boolean {
    if (!isEnvelope(message)) return false;
    if (message.reply) {
      this.#settle(message.id, message.body, message.error);
      return true;
    }
    const handler = this.#handlers.get(message.kind);
    const answer = (body: unknown, error?: string) => {
      try {
        this.send({ sftpGateway: 1, id: message.id, kind: message.kind, reply: true, body, error });
      } catch {
        // The other side is gone; it cannot be waiting for this answer any more.
      }
    };
    if (!handler) {
      answer(undefined, `no handler for ${message.kind}`);
      return true;
    }
    Promise.resolve()
      .then(() => handler(message.body))
      .then(
        (body) => answer(body),
        (e: unknown) => answer(undefined, e instanceof Error ? e.message : String(e)),
      );
    return true;
  }

  /** Fails every request still waiting (the other side exited). */
  close(reason: string): void {
    for (const id of [...this.#pending.keys()]) this.#settle(id, undefined, reason);
  }

  #settle(id: number, body: unknown, error: string | undefined): void {
    const pending = this.#pending.get(id);
    if (!pending) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    if (error !== undefined) pending.reject(new Error(error));
    else pending.resolve(body);
  }
}

function isEnvelope(m: unknown): m is Envelope {
  return (
    typeof m === 'object' &&
    m !== null &&
    (m as Envelope).sftpGateway === 1 &&
    typeof (m as Envelope).id === 'number' &&
    typeof (m as Envelope).kind === 'string'
  );
}
