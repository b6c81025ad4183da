import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import net from 'node:net';
import ssh2 from 'ssh2';
import type { AuthorizedKey } from '../auth/public-keys.js';
import { fingerprintOf } from '../auth/public-keys.js';
import type { Logger } from '../observability/logger.js';
import type { UserFileSystem } from '../vfs/types.js';
import { coalesceWrites } from './coalesced-writes.js';
import { isTrustedProxy, readProxyHeader } from './proxy-protocol.js';
import { type PacedChannel, paceChannel } from './send-pacing.js';
import { type SftpEvent, type SftpSession, startSftpSession } from './sftp/session.js';
import { WriteBacklog } from './sftp/write-backlog.js';

/**
 * Whether ssh2 runs its ciphers through its native binding (sshcrypto.node, built by its install script).
 * Without it ssh2 falls back to JavaScript without a word: ChaCha20-Poly1305, OpenSSH's default cipher,
 * then carries about half as much per CPU-second (Node 24, 2 cores: 285 against 491 MB/s up a bare
 * channel; a local download 3.07 against 1.65 gateway CPU-s), so the gateway says so at start.
 */
export function sshNativeCrypto(): boolean {
  const crypto = createRequire(import.meta.url)('ssh2/lib/protocol/crypto.js') as { bindingAvailable: boolean };
  return crypto.bindingAvailable;
}

/**
 * Upload data accepted from clients and not yet taken by the store, across all sessions: what sessions
 * hold while the store makes them wait (for the memory budget, a part upload, the disk). Each session
 * also stops at its own limit; this one keeps 64 waiting sessions from holding 64 times that. 64 x 64 MiB
 * uploads on S3 peaked at 562 MiB RSS with 64 MiB here and 524 MiB with 16 MiB, at the same MB/s.
 */
const WRITE_BACKLOG_LIMIT = 16 * 1024 * 1024;

/**
 * What clients may send ahead, summed over all SFTP channels: each channel gets a share between
 * MIN_CHANNEL_WINDOW and MAX_CHANNEL_WINDOW, so up to 4 sessions get 4 MiB, 8 get 2 MiB, and 64 concurrent
 * uploads hold 16 MiB in flight instead of ssh2's 64 x 2 MiB. 16 MiB rather than 32: what a paused channel
 * holds waits behind the write backlog for a second or more, long enough for its buffers to reach V8's old
 * generation, which frees them only at a full collection; with 32 MiB here and a per-session backlog
 * allowance of 256 KiB, 64 x 64 MiB uploads on S3 held ~27 MiB in paused channels, ~31 MiB of backlog and
 * up to 50 MiB of such garbage, peaking at 276-307 MiB (Node 24, 6 runs); with 16 MiB and 128 KiB,
 * 250-265 MiB (3 runs), at the same MB/s (bench/results/2026-11-23-analysis.md, eighteenth pass).
 * 4 MiB rather than ssh2's (and OpenSSH's) 2 MiB:
 * an upload to S3 stalls whenever the event loop is busy storing a part and the client has used its
 * window; 256 MiB put on S3, 4 interleaved runs each: 89 -> 121 MB/s median (0.56x -> 0.81x the direct
 * SDK), local store and downloads unchanged. Needs the ssh2 patch that reads `maxWindow`
 * (scripts/patch-dependencies.mjs).
 */
const WINDOW_BUDGET = 16 * 1024 * 1024;
const MIN_CHANNEL_WINDOW = 256 * 1024;
const MAX_CHANNEL_WINDOW = 4 * 1024 * 1024;
/** Buffered bytes at which a paused SFTP channel stops refilling its window (see resizeWindows). */
const PAUSED_CHANNEL_MARK = 64 * 1024;

/** An ssh2 channel with the patched, per-channel receive window. */
type WindowedChannel = ssh2.ServerChannel & { maxWindow?: number };
/** An ssh2 connection with the patched window for the session channels it opens next. */
type WindowedConnection = ssh2.Connection & { sessionWindow?: number };

const { Server } = ssh2;

/** What the SSH layer needs to know about a user: who they are and which keys log them in. */
export interface LoginUser {
  UserName: string;
  keys: AuthorizedKey[];
}

export interface SessionInfo {
  sessionId: string;
  user: string;
  sourceIp: string;
  sourcePort: number;
  /** Empty for password logins. */
  keyFingerprint: string;
  keyType: string;
  /** publickey, password, or publickey+password. */
  method: string;
  logger: Logger;
}

export interface SshGatewayOptions {
  hostKeys: Buffer[];
  banner?: string;
  maxAuthTries: number;
  loginGraceTimeMs: number;
  idleTimeoutMs: number;
  maxChannelsPerConnection: number;
  proxyProtocol?: { enabled: boolean; trustedSources: string[]; timeoutMs: number };
  /** Looked up at every login, so that reloaded users apply to new logins at once. */
  findUser: (
    userName: string,
    login: { sourceIp: string; sessionId: string },
  ) => LoginUser | undefined | Promise<LoginUser | undefined>;
  /** Checks a password; undefined when it is wrong (or the user unknown). */
  passwordLogin?: (
    userName: string,
    password: string,
    login: { sourceIp: string; sessionId: string },
  ) => Promise<LoginUser | undefined>;
  /** SftpAuthenticationMethods, read at each attempt (reloads apply); default PUBLIC_KEY. */
  authMethods?: () => 'PUBLIC_KEY' | 'PASSWORD' | 'PUBLIC_KEY_OR_PASSWORD' | 'PUBLIC_KEY_AND_PASSWORD';
  /** Builds the filesystem of an authenticated session; a failure refuses the session with its message. */
  openFileSystem: (user: LoginUser, info: SessionInfo) => Promise<UserFileSystem>;
  logger: Logger;
  /** Audit and metrics hooks. */
  hooks?: {
    connected?: (info: SessionInfo, negotiated: Negotiated | undefined) => void;
    authFailure?: (details: { user: string; sourceIp: string; method: string; reason: string }) => void;
    sftpEvent?: (info: SessionInfo, event: SftpEvent) => void;
    sftpReply?: (type: string, status: string) => void;
    /** Send pacing was turned off on one of the session's SFTP channels (see send-pacing.ts). */
    pacingStopped?: (info: SessionInfo) => void;
    disconnected?: (info: SessionInfo | undefined, reason: string) => void;
  };
}

export interface Negotiated {
  kex: string;
  cipher: string;
  mac: string;
}

/**
 * The SSH front door: key authentication with login limits ssh2 does not have (max tries, login grace
 * time), idle timeout, a cap on channels, and one SFTP subsystem per session channel running our own SFTP
 * implementation over the raw channel. Connections come through our own net.Server so that a PROXY
 * protocol header can be read before ssh2 sees the stream.
 */
export class SshGateway {
  private readonly ssh: InstanceType<typeof Server>;
  private readonly tcp: net.Server;
  private readonly sessions = new Set<SftpSession>();
  private readonly sftpChannels = new Set<WindowedChannel>();
  private readonly writeBacklog = new WriteBacklog(WRITE_BACKLOG_LIMIT);
  private readonly clients = new Set<ssh2.Connection>();
  private accepting = true;
  /**
   * Started when a TCP connection is accepted, not when ssh2 sees the client's identification, so that a
   * client that never speaks is dropped too; cleared once it has authenticated.
   */
  private readonly graceTimers = new WeakMap<net.Socket, NodeJS.Timeout>();

  constructor(private readonly options: SshGatewayOptions) {
    this.ssh = new Server(
      {
        hostKeys: options.hostKeys,
        banner: options.banner,
        ident: 'SFTP-S3-Gateway',
        algorithms: {
          // TransferSecurityPolicy-2024-01's choices plus chacha20-poly1305, which OpenSSH prefers.
          kex: [
            'curve25519-sha256',
            'curve25519-sha256@libssh.org',
            'ecdh-sha2-nistp256',
            'ecdh-sha2-nistp384',
            'ecdh-sha2-nistp521',
            'diffie-hellman-group-exchange-sha256',
            'diffie-hellman-group16-sha512',
            'diffie-hellman-group18-sha512',
            'diffie-hellman-group14-sha256',
          ],
          cipher: [
            'aes128-gcm@openssh.com',
            'aes256-gcm@openssh.com',
            'chacha20-poly1305@openssh.com',
            'aes128-ctr',
            'aes192-ctr',
            'aes256-ctr',
          ],
          hmac: [
            'hmac-sha2-256-etm@openssh.com',
            'hmac-sha2-512-etm@openssh.com',
            'hmac-sha2-256',
            'hmac-sha2-512',
          ],
        },
      },
      (client, info) => this.onClient(client, info),
    );
    // TCP_NODELAY: SSH sends many small packets (a VERSION, a STATUS, a channel close) that must not wait
    // for the ACK of the one before; with Nagle on, the peer's 40 ms delayed ACK held up every session's
    // start and end (a `pwd` session took 160 ms, 80 of them such waits).
    this.tcp = net.createServer({ noDelay: true }, (socket) => void this.onSocket(socket));
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.tcp.once('error', reject);
      this.tcp.listen(port, host, () => {
        this.tcp.off('error', reject);
        resolve((this.tcp.address() as net.AddressInfo).port);
      });
    });
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  /** Stops accepting connections; existing sessions go on. */
  stopAccepting(): Promise<void> {
    this.accepting = false;
    // Not `close(callback)`: its callback waits until every open connection has ended, which would hold
    // a graceful shutdown past its deadline. The listening socket itself closes at once.
    this.tcp.close();
    return Promise.resolve();
  }

  /** Waits until every session has ended by itself, or `deadlineMs` passes. */
  async drain(deadlineMs: number): Promise<boolean> {
    // Sessions with nothing open are closed at once; only transfers under way get the deadline.
    const until = Date.now() + deadlineMs;
    const busy = () => [...this.sessions].some((s) => s.busy);
    while (busy() && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    return !busy();
  }

  /** Ends every session: unfinished uploads are aborted, never completed half-way. */
  async closeAll(reason: string): Promise<void> {
    await Promise.all([...this.sessions].map((s) => s.close(reason)));
    for (const c of this.clients) c.end();
  }

  private async onSocket(socket: net.Socket): Promise<void> {
    socket.on('error', () => undefined);
    if (!this.accepting) {
      socket.destroy();
      return;
    }
    const proxy = this.options.proxyProtocol;
    if (proxy?.enabled) {
      const peer = socket.remoteAddress ?? '';
      if (!isTrustedProxy(peer, proxy.trustedSources)) {
        this.options.logger.warn(
          { 'source-ip': peer },
          'PROXY protocol header expected from a trusted source only: connection refused',
        );
        socket.destroy();
        return;
      }
      try {
        const header = await readProxyHeader(socket, { timeoutMs: proxy.timeoutMs });
        if (!header.local) {
          // ssh2 and our logs read the client's address from the socket.
          Object.defineProperty(socket, 'remoteAddress', { value: header.sourceAddress });
          Object.defineProperty(socket, 'remotePort', { value: header.sourcePort });
        }
      } catch (e) {
        this.options.logger.warn(
          { 'source-ip': peer, err: (e as Error).message },
          'bad PROXY protocol header',
        );
        socket.destroy();
        return;
      }
    }
    this.graceTimers.set(
      socket,
      setTimeout(() => {
        this.options.logger.info(
          { 'activity-type': 'EXIT_REASON', 'source-ip': socket.remoteAddress },
          `not authenticated within ${this.options.loginGraceTimeMs / 1000} s`,
        );
        socket.destroy();
      }, this.options.loginGraceTimeMs),
    );
    socket.once('close', () => clearTimeout(this.graceTimers.get(socket)));
    coalesceWrites(socket);
    this.ssh.injectSocket(socket);
  }

  private onClient(client: ssh2.Connection, info: ssh2.ClientInfo): void {
    const { options } = this;
    const sessionId = randomBytes(8).toString('hex');
    const sourceIp = info.ip;
    const log = options.logger.child({ 'session-id': sessionId, 'source-ip': sourceIp });
    this.clients.add(client);
    let failures = 0;
    let session: SessionInfo | undefined;
    let loginUser: LoginUser | undefined;
    let negotiated: Negotiated | undefined;
    let channels = 0;
    let endReason = 'client disconnected';

    // The login grace timer started when the TCP connection was accepted (onSocket).
    const socket = (client as unknown as { _sock?: net.Socket })._sock;
    const graceTimer = socket ? this.graceTimers.get(socket) : undefined;
    let idleTimer: NodeJS.Timeout | undefined;
    const touch = () => idleTimer?.refresh();

    client.on('handshake', (n) => {
      negotiated = { kex: n.kex, cipher: n.cs.cipher, mac: n.cs.mac };
    });

    // One identity lookup per user name and connection: the key query and the signed request share it.
    const lookups = new Map<string, Promise<LoginUser | undefined>>();
    const lookup = (name: string) => {
      let p = lookups.get(name);
      if (!p) {
        p = Promise.resolve(options.findUser(name, { sourceIp, sessionId })).catch((e) => {
          log.warn({ user: name, err: (e as Error).message }, 'user lookup failed');
          return undefined;
        });
        lookups.set(name, p);
      }
      return p;
    };
    /** PUBLIC_KEY_AND_PASSWORD: the user whose key was accepted, waiting for the password. */
    let keyPassed: { user: LoginUser; key: AuthorizedKey } | undefined;
    const methods = () => options.authMethods?.() ?? 'PUBLIC_KEY';
    const allowed = (): ssh2.AuthenticationType[] => {
      switch (methods()) {
        case 'PUBLIC_KEY':
          return ['publickey'];
        case 'PASSWORD':
          return ['password'];
        case 'PUBLIC_KEY_OR_PASSWORD':
          return ['publickey', 'password'];
        case 'PUBLIC_KEY_AND_PASSWORD':
          return keyPassed ? ['password'] : ['publickey'];
      }
    };
    const loggedIn = (user: LoginUser, method: string, key?: AuthorizedKey) => {
      loginUser = user;
      session = {
        sessionId,
        user: user.UserName,
        sourceIp,
        sourcePort: info.port,
        keyFingerprint: key ? fingerprintOf(key.blob) : '',
        keyType: key?.type ?? '',
        method,
        logger: log.child({ user: user.UserName }),
      };
    };

    client.on('authentication', (ctx) => {
      const refuse = (reason: string) => {
        if (ctx.method !== 'none') {
          failures++;
          options.hooks?.authFailure?.({ user: ctx.username, sourceIp, method: ctx.method, reason });
        }
        if (failures >= options.maxAuthTries) {
          endReason = `too many authentication failures (${failures})`;
          log.info({ 'activity-type': 'EXIT_REASON', user: ctx.username }, endReason);
          // As sshd does: the attempt that reaches the limit gets a disconnect, not another failure reply
          // the client could answer with one more try.
          client.end();
          return;
        }
        ctx.reject(allowed());
      };
      if (!allowed().includes(ctx.method as ssh2.AuthenticationType)) {
        refuse(`method ${ctx.method} not allowed`);
        return;
      }
      if (ctx.method === 'password') {
        const password = ctx.password;
        const wanted = keyPassed?.user.UserName;
        if (wanted !== undefined && wanted !== ctx.username) {
          refuse('the password must be for the user whose key was accepted');
          return;
        }
        if (!options.passwordLogin) {
          refuse('password logins are not configured');
          return;
        }
        void options
          .passwordLogin(ctx.username, password, { sourceIp, sessionId })
          .catch((e) => {
            log.warn({ user: ctx.username, err: (e as Error).message }, 'password check failed');
            return undefined;
          })
          .then((user) => {
            if (!user) {
              refuse('wrong password or unknown user');
              return;
            }
            if (keyPassed) loggedIn(user, 'publickey+password', keyPassed.key);
            else loggedIn(user, 'password');
            ctx.accept();
          });
        return;
      }
      if (ctx.method !== 'publickey') {
        refuse(`method ${ctx.method} not allowed`);
        return;
      }
      const pk = ctx;
      void lookup(pk.username).then((user) => {
        // An unknown user and a wrong key take the same path and get the same answer.
        const key = user?.keys.find((k) => k.blob.equals(pk.key.data));
        if (!user || !key) {
          refuse(user ? 'key not authorized' : 'unknown user');
          return;
        }
        if (!pk.signature) {
          pk.accept();
          return;
        }
        if (key.type === 'ssh-rsa' && !pk.hashAlgo) {
          refuse('ssh-rsa signatures (SHA-1) are refused; use rsa-sha2-256 or rsa-sha2-512');
          return;
        }
        if (key.parsed.verify(pk.blob!, pk.signature, pk.hashAlgo) !== true) {
          refuse('bad signature');
          return;
        }
        if (methods() === 'PUBLIC_KEY_AND_PASSWORD') {
          // Partial success: the key is right, now the password (OpenSSH AuthenticationMethods publickey,password).
          keyPassed = { user, key };
          pk.reject(['password'], true);
          return;
        }
        loggedIn(user, 'publickey', key);
        pk.accept();
      });
    });

    client.on('ready', () => {
      clearTimeout(graceTimer);
      if (!session) return;
      options.hooks?.connected?.(session, negotiated);
      idleTimer = setTimeout(() => {
        endReason = `idle for ${options.idleTimeoutMs / 1000} s`;
        session?.logger.info({ 'activity-type': 'EXIT_REASON' }, endReason);
        client.end();
      }, options.idleTimeoutMs);
    });

    client.on('session', (accept, reject) => {
      if (!session || !loginUser || ++channels > options.maxChannelsPerConnection) {
        reject();
        return;
      }
      // The channel opens with the smallest window, not ssh2's 2 MiB (patched ssh2): sessions that start
      // together cannot all send 2 MiB before their number is known. The first refill (on the first data)
      // raises it to the channel's share.
      (client as WindowedConnection).sessionWindow = MIN_CHANNEL_WINDOW;
      const sshSession = accept();
      const current = session;
      const user = loginUser;
      sshSession.on('subsystem', (acceptSub, rejectSub, req) => {
        if (req.name !== 'sftp') {
          rejectSub();
          return;
        }
        const channel = acceptSub();
        // Fill only as much of the client's window as its path needs (see send-pacing.ts).
        paceChannel(channel as unknown as PacedChannel, {
          onStop: (state) => {
            current.logger.debug(
              { sent: state.sent, consumed: state.consumed, held: state.held },
              'send pacing off for this channel: the client waited to refill its window',
            );
            this.options.hooks?.pacingStopped?.(current);
          },
        });
        void this.runSftp(channel, user, current, touch);
      });
      // Bench only (issue 8, bench/): SFTP_GATEWAY_BENCH_CHANNEL=1 enables `exec sink` / `exec source N`
      // to time the bare SSH transport. Off by default; never set it in production.
      if (BENCH_CHANNEL) sshSession.on('exec', (acc, rej, req) => benchExec(acc, rej, req.command));
      for (const type of ['exec', 'shell', 'pty', 'x11', 'env', 'auth-agent'] as const) {
        if (BENCH_CHANNEL && type === 'exec') continue;
        sshSession.on(type as 'exec', (_accept: unknown, rejectReq?: () => void) => rejectReq?.());
      }
    });

    client.on('request', (_accept, reject) => reject?.());
    client.on('tcpip', (_accept, reject) => reject());
    client.on('openssh.streamlocal', (_accept, reject) => reject());
    client.on('error', (err) => {
      endReason = err.message;
      log.debug({ err: err.message }, 'connection error');
    });
    client.on('close', () => {
      clearTimeout(graceTimer);
      if (idleTimer) clearTimeout(idleTimer);
      this.clients.delete(client);
      options.hooks?.disconnected?.(session, endReason);
    });
  }

  private async runSftp(
    channel: WindowedChannel,
    user: LoginUser,
    info: SessionInfo,
    touch: () => void,
  ): Promise<void> {
    // Counted from the start, so even the first requests (INIT, sent before the vfs is ready) refill the
    // window only up to this channel's share.
    this.sftpChannels.add(channel);
    this.resizeWindows();
    try {
      await this.serveSftp(channel, user, info, touch);
    } finally {
      this.sftpChannels.delete(channel);
      this.resizeWindows();
    }
  }

  private async serveSftp(
    channel: WindowedChannel,
    user: LoginUser,
    info: SessionInfo,
    touch: () => void,
  ): Promise<void> {
    let fs: UserFileSystem;
    try {
      fs = await this.options.openFileSystem(user, info);
    } catch (e) {
      info.logger.error({ 'activity-type': 'ERROR', err: (e as Error).message }, 'cannot start SFTP session');
      channel.stderr.write(`sftp-s3-gateway: ${(e as Error).message}\n`);
      channel.exit(1);
      channel.end();
      return;
    }
    const sftp = startSftpSession(channel, {
      fs,
      logger: info.logger,
      onEvent: (event) => {
        touch();
        this.options.hooks?.sftpEvent?.(info, event);
      },
      onActivity: touch,
      // OpenSSH's sftp-server exits 0 when the client is done; scp reports failure without an exit status.
      beforeEnd: () => channel.exit(0),
      onReply: this.options.hooks?.sftpReply,
      writeBacklog: this.writeBacklog,
    });
    this.sessions.add(sftp);
    await sftp.closed;
    this.sessions.delete(sftp);
    await fs.close?.().catch(() => undefined);
  }

  /**
   * Shares WINDOW_BUDGET among the open SFTP channels (whole 32 KiB packets each). ssh2 refills a window
   * until its stream buffers a high-water mark's worth (2 MiB by default), also while the session has
   * paused the channel: with the mark at the window, a paused channel held about two windows (64 MiB of
   * the peak with 64 concurrent uploads on S3). With a small mark it stops refilling as soon as data
   * waits, so a paused channel holds at most about one window; a flowing channel passes data on at once
   * and is not affected.
   */
  private resizeWindows(): void {
    const share = Math.floor(WINDOW_BUDGET / Math.max(1, this.sftpChannels.size) / 32768) * 32768;
    const window = Math.max(MIN_CHANNEL_WINDOW, Math.min(MAX_CHANNEL_WINDOW, share));
    for (const channel of this.sftpChannels) {
      channel.maxWindow = window;
      (channel as unknown as { _readableState: { highWaterMark: number } })._readableState.highWaterMark =
        PAUSED_CHANNEL_MARK;
    }
  }
}

/** Bench only: read once at startup, false unless the bench harness sets SFTP_GATEWAY_BENCH_CHANNEL=1. */
const BENCH_CHANNEL = process.env['SFTP_GATEWAY_BENCH_CHANNEL'] === '1';

/** Bench only: `sink` discards what the client sends; `source N` sends N zero bytes. Nothing else runs. */
function benchExec(accept: () => ssh2.ServerChannel, reject: () => void, command: string): void {
  const m = /^(?:sink|source (\d{1,15}))$/.exec(command);
  if (!m) {
    reject();
    return;
  }
  const ch = accept();
  const done = () => {
    ch.exit(0);
    ch.end();
  };
  if (m[1] === undefined) {
    ch.on('data', () => undefined);
    ch.on('end', done);
    return;
  }
  let left = Number(m[1]);
  const block = Buffer.alloc(256 * 1024);
  const pump = () => {
    while (left > 0) {
      const b = left >= block.length ? block : block.subarray(0, left);
      left -= b.length;
      if (!ch.write(b)) {
        ch.once('drain', pump);
        return;
      }
    }
    done();
  };
  pump();
}
