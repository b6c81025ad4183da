/**
 * One SFTP v3 session over an ssh2 session channel. Requests run concurrently and reply out of order;
 * flow control works both ways by pausing the channel's readable side, which makes ssh2 withhold
 * WINDOW_ADJUST so the client stops sending:
 *   - while more WRITE data than `maxPendingWriteBytes` waits on the vfs,
 *   - while replies take more than MAX_REPLY_BYTES: those waiting for the channel to drain plus those
 *     still being produced (a READ counts its requested length from the moment it is dispatched, since
 *     a burst of READs is dispatched long before any of them has data),
 *   - while MAX_IN_FLIGHT requests are unanswered.
 */
import type { Duplex } from 'node:stream';
import { GatewayError } from '../../errors.js';
import type { Logger } from '../../observability/logger.js';
import type { UserFileSystem } from '../../vfs/types.js';
import { PacketCursor, PacketReader, SftpProtocolError } from './codec.js';
import { PacketType, packetTypeName, SERVER_EXTENSIONS, statusName } from './constants.js';
import type { SftpEvent } from './events.js';
import type { WriteBacklog } from './write-backlog.js';
import { handlers, type Request, releaseEntry, type SessionContext, unsupportedRequest } from './handlers.js';
import { type HandleEntry, HandleTable } from './handles.js';
import { ReplyQueue } from './outbound.js';
import { statusPacket, versionPacket } from './replies.js';
import { isExpectedError, toStatus } from './status.js';

export type { SftpEvent } from './events.js';

export interface SftpSessionOptions {
  fs: UserFileSystem;
  /** A child logger already carrying session id, user and source address. */
  logger: Logger;
  /** Stop reading the channel while more written data than this waits on the vfs. Default 16 MiB. */
  maxPendingWriteBytes?: number;
  /** Called just before the channel is ended, e.g. to send the exit status OpenSSH's scp waits for. */
  beforeEnd?: () => void;
  /** Process-wide count of accepted upload data; above its limit every session stops reading. */
  writeBacklog?: WriteBacklog;
  /** Called for every reply: the request type (OPEN, READ, ...) and the reply (OK, DATA, EOF, ...). */
  onReply?: (type: string, status: string) => void;
  /** Audit hook; must not throw (a throwing hook is logged and ignored). */
  onEvent?: (event: SftpEvent) => void;
  /** Called for every request received, e.g. to reset an idle timer. Must be cheap and must not throw. */
  onActivity?: () => void;
}

export interface SftpSession {
  /** Settles once the session has ended and every handle has been closed or aborted. */
  readonly closed: Promise<void>;
  /** True while a file or directory is open or a request is unanswered: a transfer is under way. */
  readonly busy: boolean;
  /** Ends the session: unfinished uploads are aborted, other handles closed, the channel ended. */
  close(reason: string): Promise<void>;
}

export const DEFAULT_MAX_PENDING_WRITE_BYTES = 16 * 1024 * 1024;
/**
 * While the shared write backlog is over its limit, a session may still have this much pending: it stops
 * reading after one of OpenSSH's 255 KiB WRITEs (after two with 256 KiB, 16 MiB more across 64 sessions).
 */
export const BACKLOG_SESSION_ALLOWANCE = 128 * 1024;
/** Fits OpenSSH's 64 in-flight reads of 261,120 bytes, so a well-behaved client is never throttled. */
export const MAX_REPLY_BYTES = 16 * 1024 * 1024;
/** Far above what clients use (OpenSSH keeps 64 in flight), low enough to bound memory. */
export const MAX_IN_FLIGHT = 1024;

export function startSftpSession(channel: Duplex, options: SftpSessionOptions): SftpSession {
  return new Session(channel, options);
}

class Session implements SftpSession, SessionContext {
  readonly fs: UserFileSystem;
  readonly logger: Logger;
  readonly handles = new HandleTable();
  readonly closed: Promise<void>;

  private readonly reader = new PacketReader();
  private readonly replies: ReplyQueue;
  private readonly maxPendingWriteBytes: number;
  private readonly onEvent: ((event: SftpEvent) => void) | undefined;
  private readonly onActivity: (() => void) | undefined;
  private readonly beforeEnd: (() => void) | undefined;
  private readonly onReply: ((type: string, status: string) => void) | undefined;
  private readonly backlog: WriteBacklog | undefined;
  private readonly unsubscribeBacklog: () => void;
  private resolveClosed!: () => void;
  private initialized = false;
  private closing = false;
  private inputPaused = false;
  private pumping = false;
  private pendingWriteBytes = 0;
  private inFlight = 0;
  private reservedReplyBytes = 0;

  constructor(
    private readonly channel: Duplex,
    options: SftpSessionOptions,
  ) {
    this.fs = options.fs;
    this.logger = options.logger;
    this.maxPendingWriteBytes = options.maxPendingWriteBytes ?? DEFAULT_MAX_PENDING_WRITE_BYTES;
    this.onEvent = options.onEvent;
    this.onActivity = options.onActivity;
    this.beforeEnd = options.beforeEnd;
    this.onReply = options.onReply;
    this.backlog = options.writeBacklog;
    this.unsubscribeBacklog = this.backlog?.onBelowLimit(() => this.pump()) ?? (() => undefined);
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.replies = new ReplyQueue(channel, () => this.pump());
    channel.on('data', this.onData);
    channel.once('end', () => void this.close('channel ended'));
    channel.once('close', () => void this.close('channel closed'));
    // Without a listener an 'error' would be thrown out of the emitter and take the process down.
    channel.on('error', (err: Error) => {
      this.logger.warn({ err }, 'SFTP channel error');
      void this.close('channel error');
    });
  }

  get busy(): boolean {
    return this.handles.size > 0 || this.inFlight > 0;
  }

  close(reason: string): Promise<void> {
    if (this.closing) return this.closed;
    this.closing = true;
    void this.shutdown(reason);
    return this.closed;
  }

  emit(event: SftpEvent): void {
    if (this.onEvent === undefined) return;
    try {
      this.onEvent(event);
    } catch (err) {
      this.logger.error({ err }, 'SFTP audit hook threw');
    }
  }

  private touch(): void {
    if (this.onActivity === undefined) return;
    try {
      this.onActivity();
    } catch (err) {
      this.logger.error({ err }, 'SFTP activity hook threw');
    }
  }

  trackWrite(bytes: number, promise: Promise<void>): void {
    this.pendingWriteBytes += bytes;
    this.backlog?.add(bytes);
    const settled = () => {
      this.pendingWriteBytes -= bytes;
      this.backlog?.release(bytes);
      this.pump();
    };
    promise.then(settled, settled);
  }

  register(entry: HandleEntry): Buffer {
    if (this.closing) {
      void releaseEntry(this, entry, 'session closed');
      throw new GatewayError('Failure', 'session is closing');
    }
    return this.handles.add(entry);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closing) return;
    this.reader.push(chunk);
    this.pump();
  };

  private mustPause(): boolean {
    return (
      this.pendingWriteBytes > this.maxPendingWriteBytes ||
      // Only sessions with data of their own waiting stop for the shared backlog: a session whose writes
      // are being taken (say, filling a part buffer it has already reserved) must go on, or the writers
      // holding the memory budget would wait for data held up behind the writers waiting for it.
      (this.backlog?.over === true && this.pendingWriteBytes > BACKLOG_SESSION_ALLOWANCE) ||
      this.replies.queuedBytes + this.reservedReplyBytes > MAX_REPLY_BYTES ||
      this.inFlight >= MAX_IN_FLIGHT
    );
  }

  /**
   * Dispatches every complete buffered packet unless a limit is reached; pauses or resumes the channel to
   * match. Called on new data and whenever something that limits us settles.
   */
  private pump(): void {
    if (this.pumping || this.closing) return;
    this.pumping = true;
    try {
      for (;;) {
        if (this.mustPause()) {
          if (!this.inputPaused) {
            this.inputPaused = true;
            this.channel.pause();
          }
          return;
        }
        const body = this.reader.next();
        if (body === undefined) break;
        this.dispatch(body);
        if (this.closing) return;
      }
      if (this.inputPaused) {
        this.inputPaused = false;
        this.channel.resume();
      }
    } catch (err) {
      this.protocolError(err);
    } finally {
      this.pumping = false;
    }
  }

  private dispatch(body: Buffer): void {
    this.touch();
    const type = body[0]!;
    const cursor = new PacketCursor(body, 1);
    if (!this.initialized) {
      if (type !== PacketType.INIT) throw new SftpProtocolError(`${packetTypeName(type)} before INIT`);
      const clientVersion = cursor.uint32();
      this.initialized = true;
      this.logger.debug({ op: 'INIT', clientVersion }, 'SFTP session started');
      this.replies.send(versionPacket(SERVER_EXTENSIONS));
      return;
    }
    if (type === PacketType.INIT) throw new SftpProtocolError('duplicate INIT');

    const req: Request = { id: cursor.uint32(), type, name: packetTypeName(type) };
    const handler = handlers.get(type) ?? unsupportedRequest;
    let reply: Promise<Buffer>;
    try {
      reply = handler(this, req, cursor);
    } catch (err) {
      if (err instanceof SftpProtocolError) throw err;
      reply = Promise.reject(err);
    }
    this.inFlight++;
    this.reservedReplyBytes += req.replyBytes ?? 0;
    if (req.order) {
      const { previous, sent } = req.order;
      const result = reply;
      reply = previous.then(() => result);
      // Registered before the reply handler below, so `sent` runs first, but the next READ's reply waits
      // at least one more microtask for `previous`, by which time this one is in the reply queue.
      reply.then(sent, sent);
    }
    reply.then(
      (packet) => this.finish(req, packet),
      (err: unknown) => {
        if (err instanceof SftpProtocolError) {
          this.settled(req);
          this.protocolError(err);
          return;
        }
        const status = toStatus(err);
        if (!isExpectedError(err))
          this.logger.error({ err, op: req.name, path: req.path }, 'SFTP request failed');
        this.finish(req, statusPacket(req.id, status.code, status.message), status.message);
      },
    );
  }

  private settled(req: Request): void {
    this.inFlight--;
    this.reservedReplyBytes -= req.replyBytes ?? 0;
  }

  private finish(req: Request, packet: Buffer, message?: string): void {
    this.settled(req);
    if (this.closing) return;
    if (this.onReply) this.onReply(req.name, replyStatus(packet));
    if (this.logger.isLevelEnabled('debug')) {
      this.logger.debug(
        { op: req.name, id: req.id, path: req.path, status: replyStatus(packet), message },
        'SFTP request',
      );
    }
    this.replies.send(packet);
    this.pump();
  }

  /** The byte stream cannot be trusted any more: log, report, and end the session. */
  private protocolError(err: unknown): void {
    if (this.closing) return;
    const message = err instanceof Error ? err.message : String(err);
    this.logger.warn({ reason: message }, 'malformed SFTP packet, ending the session');
    this.emit({ type: 'ERROR', operation: 'PROTOCOL', message });
    this.channel.destroy();
    void this.close(`protocol error: ${message}`);
  }

  private async shutdown(reason: string): Promise<void> {
    this.channel.off('data', this.onData);
    this.unsubscribeBacklog();
    this.replies.close();
    const open = this.handles.removeAll();
    if (open.length > 0)
      this.logger.debug({ reason, handles: open.length }, 'SFTP session ending with open handles');
    await Promise.all(open.map((entry) => releaseEntry(this, entry, reason)));
    if (!this.channel.destroyed && this.channel.writable) {
      try {
        this.beforeEnd?.();
      } catch (err) {
        this.logger.warn({ err }, 'SFTP beforeEnd hook threw');
      }
      this.channel.end();
    }
    this.logger.debug({ reason }, 'SFTP session ended');
    this.resolveClosed();
  }
}

/** For the request log: the status name of a STATUS reply, else the reply type (DATA, NAME, ...). */
function replyStatus(packet: Buffer): string {
  const type = packet[4]!;
  if (type !== PacketType.STATUS) return packetTypeName(type);
  return statusName(packet.readUInt32BE(9));
}
