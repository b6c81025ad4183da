import { isIPv4, isIPv6, type Socket } from 'node:net';

/**
 * PROXY protocol (HAProxy, AWS NLB) v1 and v2 on the SSH port.
 *
 * `readProxyHeader` consumes exactly the header from a freshly accepted socket and puts every byte after it
 * back onto the socket (`unshift`), so the SSH server that takes the socket next sees the client's stream
 * unchanged. It never resumes the socket into flowing mode by itself: once the promise settles the socket is
 * in the same state as a freshly accepted one (no `readable` listener, `readableFlowing` back to null), so an
 * `on('data')` or `pipe()` by the next owner starts the flow.
 *
 * Whether to call it at all is the caller's decision: a header is accepted only from configured source
 * addresses (`isTrustedProxy`), and a connection from a trusted source without a valid header is refused.
 *
 * Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
 */

export type ProxyHeader =
  | {
    local: false;
    version: 1 | 2;
    family: 'IPv4' | 'IPv6';
    sourceAddress: string;
    sourcePort: number;
    destAddress: string;
    destPort: number;
  }
  | {
    /** LOCAL command (v2), UNKNOWN (v1) or an address family we do not map: use the socket's own endpoints. */
    local: true;
    version: 1 | 2;
  };

export type ProxyProtocolErrorCode = 'timeout' | 'malformed' | 'closed';

export class ProxyProtocolError extends Error {
  readonly code: ProxyProtocolErrorCode;
  constructor(code: ProxyProtocolErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = 'ProxyProtocolError';
  }
}

export interface ReadProxyHeaderOptions {
  /** How long the whole header may take to arrive. Default 5000 ms. */
  timeoutMs?: number;
}

/** A v1 header is at most 107 bytes including the trailing CRLF. */
export const V1_MAX_LENGTH = 107;
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
export const V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);
const V2_HEADER_LENGTH = 16;

type ParseResult = { kind: 'need-more' } | { kind: 'done'; header: ProxyHeader; length: number };

const malformed = (msg: string) => new ProxyProtocolError('malformed', `PROXY protocol: ${msg}`);

/**
 * Parse a PROXY header at the start of `buf`. Returns `need-more` while `buf` is a valid but incomplete
 * prefix, throws ProxyProtocolError('malformed') as soon as the bytes cannot be a valid header.
 */
export function parseProxyHeader(buf: Buffer): ParseResult {
  if (buf.length === 0) return { kind: 'need-more' };
  if (buf[0] === V1_PREFIX[0]) return parseV1(buf);
  if (buf[0] === V2_SIGNATURE[0]) return parseV2(buf);
  throw malformed('no PROXY header');
}

function parseV1(buf: Buffer): ParseResult {
  const prefixLen = Math.min(buf.length, V1_PREFIX.length);
  if (!buf.subarray(0, prefixLen).equals(V1_PREFIX.subarray(0, prefixLen)))
    throw malformed('bad v1 signature');
  const limit = Math.min(buf.length, V1_MAX_LENGTH);
  let end = -1;
  for (let i = 0; i < limit; i++) {
    const c = buf[i]!;
    if (c === 0x0d) {
      if (i + 1 >= buf.length) return { kind: 'need-more' };
      if (buf[i + 1] !== 0x0a) throw malformed('CR not followed by LF in v1 header');
      end = i;
      break;
    }
    if (c === 0x0a) throw malformed('bare LF in v1 header');
    if (c < 0x20 || c > 0x7e) throw malformed('non-printable byte in v1 header');
  }
  if (end < 0) {
    if (buf.length >= V1_MAX_LENGTH) throw malformed(`v1 header longer than ${V1_MAX_LENGTH} bytes`);
    return { kind: 'need-more' };
  }
  const length = end + 2;
  if (length > V1_MAX_LENGTH) throw malformed(`v1 header longer than ${V1_MAX_LENGTH} bytes`);
  const line = buf.toString('latin1', 0, end);
  const parts = line.split(' ');
  const proto = parts[1];
  if (proto === 'UNKNOWN') return { kind: 'done', header: { local: true, version: 1 }, length };
  if (proto !== 'TCP4' && proto !== 'TCP6')
    throw malformed(`unsupported v1 protocol ${JSON.stringify(proto)}`);
  if (parts.length !== 6) throw malformed('v1 header needs exactly 5 fields after PROXY');
  const [, , src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const family = proto === 'TCP4' ? 'IPv4' : 'IPv6';
  const valid = family === 'IPv4' ? isIPv4 : isIPv6;
  if (!valid(src) || !valid(dst)) throw malformed(`invalid ${family} address in v1 header`);
  return {
    kind: 'done',
    header: {
      local: false,
      version: 1,
      family,
      sourceAddress: family === 'IPv6' ? formatIPv6(ipv6ToBuffer(src)) : src,
      sourcePort: parsePort(sport),
      destAddress: family === 'IPv6' ? formatIPv6(ipv6ToBuffer(dst)) : dst,
      destPort: parsePort(dport),
    },
    length,
  };
}

function parsePort(s: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(s)) throw malformed(`invalid port ${JSON.stringify(s)}`);
  const n = Number(s);
  if (n > 65535) throw malformed(`port out of range: ${n}`);
  return n;
}

function parseV2(buf: Buffer): ParseResult {
  const sigLen = Math.min(buf.length, V2_SIGNATURE.length);
  if (!buf.subarray(0, sigLen).equals(V2_SIGNATURE.subarray(0, sigLen))) throw malformed('bad v2 signature');
  if (buf.length < V2_HEADER_LENGTH) {
    // Validate what we already have, so garbage fails fast rather than at the timeout.
    if (buf.length > 12 && buf[12]! >> 4 !== 2) throw malformed(`unsupported v2 version ${buf[12]! >> 4}`);
    return { kind: 'need-more' };
  }
  const verCmd = buf[12]!;
  const version = verCmd >> 4;
  const command = verCmd & 0x0f;
  if (version !== 2) throw malformed(`unsupported v2 version ${version}`);
  if (command !== 0 && command !== 1) throw malformed(`unsupported v2 command ${command}`);
  const famProto = buf[13]!;
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  if (family > 3) throw malformed(`unsupported v2 address family ${family}`);
  if (transport > 2) throw malformed(`unsupported v2 transport ${transport}`);
  const addrLen = buf.readUInt16BE(14);
  const length = V2_HEADER_LENGTH + addrLen;
  if (buf.length < length) return { kind: 'need-more' };
  const body = buf.subarray(V2_HEADER_LENGTH, length);

  // LOCAL: health checks from the proxy itself; the address block (if any) is to be ignored.
  if (command === 0) return { kind: 'done', header: { local: true, version: 2 }, length };

  let addrBytes: number;
  let header: ProxyHeader;
  if (family === 1 || family === 2) {
    if (transport !== 1) throw malformed('v2 PROXY over a non-stream transport');
    if (family === 1) {
      addrBytes = 12;
      if (addrLen < addrBytes) throw malformed(`v2 AF_INET address block too short (${addrLen})`);
      header = {
        local: false,
        version: 2,
        family: 'IPv4',
        sourceAddress: formatIPv4(body.subarray(0, 4)),
        destAddress: formatIPv4(body.subarray(4, 8)),
        sourcePort: body.readUInt16BE(8),
        destPort: body.readUInt16BE(10),
      };
    } else {
      addrBytes = 36;
      if (addrLen < addrBytes) throw malformed(`v2 AF_INET6 address block too short (${addrLen})`);
      header = {
        local: false,
        version: 2,
        family: 'IPv6',
        sourceAddress: formatIPv6(body.subarray(0, 16)),
        destAddress: formatIPv6(body.subarray(16, 32)),
        sourcePort: body.readUInt16BE(32),
        destPort: body.readUInt16BE(34),
      };
    }
  } else {
    // AF_UNSPEC, or AF_UNIX which says nothing useful about a TCP client: the receiver uses the real
    // connection endpoints (spec 2.2). The TLVs after a UNIX block are skipped with the rest.
    return { kind: 'done', header: { local: true, version: 2 }, length };
  }
  // TLVs (AWS NLB sends 0xEA with the VPC endpoint id, HAProxy may send ALPN, authority, CRC, NOOP ...):
  // skipped, but they have to be well-formed.
  let off = addrBytes;
  while (off < body.length) {
    if (off + 3 > body.length) throw malformed('truncated v2 TLV');
    const tlvLen = body.readUInt16BE(off + 1);
    off += 3 + tlvLen;
    if (off > body.length) throw malformed('v2 TLV overruns the header');
  }
  return { kind: 'done', header, length };
}

function formatIPv4(b: Buffer): string {
  return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
}

/** RFC 5952 text form of a 16-byte IPv6 address (IPv4-mapped as ::ffff:a.b.c.d). */
export function formatIPv6(b: Buffer): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${formatIPv4(b.subarray(12, 16))}`;
  }
  // Longest run of at least two zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Parse a textual IPv6 address (with optional embedded IPv4 tail, no zone) into 16 bytes. */
function ipv6ToBuffer(text: string): Buffer {
  const out = Buffer.alloc(16);
  let s = text;
  const lastColon = s.lastIndexOf(':');
  const maybeV4 = s.slice(lastColon + 1);
  if (maybeV4.includes('.')) {
    // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
    const v4 = parseIPv4Octets(maybeV4);
    if (!v4) throw new TypeError(`invalid IPv6 address ${text}`);
    const hi = ((v4[0]! << 8) | v4[1]!).toString(16);
    const lo = ((v4[2]! << 8) | v4[3]!).toString(16);
    s = `${s.slice(0, lastColon + 1)}${hi}:${lo}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) throw new TypeError(`invalid IPv6 address ${text}`);
  const parseGroups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = parseGroups(halves[0]!);
  const rest = halves.length === 2 ? parseGroups(halves[1]!) : [];
  const total = head.length + rest.length;
  if (halves.length === 1 ? total !== 8 : total > 7) throw new TypeError(`invalid IPv6 address ${text}`);
  const groups: number[] = [];
  for (const g of head) groups.push(parseHexGroup(g, text));
  if (halves.length === 2) for (let i = 0; i < 8 - total; i++) groups.push(0);
  for (const g of rest) groups.push(parseHexGroup(g, text));
  groups.forEach((g, i) => {
    out.writeUInt16BE(g, i * 2);
  });
  return out;
}

function parseHexGroup(g: string, text: string): number {
  if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new TypeError(`invalid IPv6 address ${text}`);
  return Number.parseInt(g, 16);
}

function parseIPv4Octets(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out.push(n);
  }
  return out;
}

/**
 * Read a PROXY protocol v1 or v2 header from `socket` and return it. Bytes after the header are unshifted
 * back onto the socket. Rejects with ProxyProtocolError: 'malformed' as soon as the bytes cannot be a
 * header, 'timeout' after `timeoutMs`, 'closed' if the socket ends or fails first. The socket is not
 * destroyed on failure: the caller logs and destroys it.
 */
export function readProxyHeader(socket: Socket, options: ReadProxyHeaderOptions = {}): Promise<ProxyHeader> {
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise<ProxyHeader>((resolve, reject) => {
    let buffered: Buffer = Buffer.alloc(0);
    let settled = false;

    const cleanup = () => {
      settled = true;
      clearTimeout(timer);
      socket.removeListener('readable', onReadable);
      socket.removeListener('end', onEnd);
      socket.removeListener('close', onEnd);
      socket.removeListener('error', onError);
    };
    const fail = (err: Error) => {
      if (settled) return;
      cleanup();
      // Whatever was read stays consumed: the connection is to be dropped anyway.
      reject(err);
    };
    const onEnd = () =>
      fail(new ProxyProtocolError('closed', 'PROXY protocol: connection closed before the header'));
    const onError = (err: Error) =>
      fail(
        new ProxyProtocolError('closed', `PROXY protocol: socket error before the header: ${err.message}`),
      );
    const onReadable = () => {
      if (settled) return;
      for (;;) {
        const chunk = socket.read() as Buffer | string | null;
        if (chunk === null) return;
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
        buffered = buffered.length === 0 ? bytes : Buffer.concat([buffered, bytes]);
        let result: ParseResult;
        try {
          result = parseProxyHeader(buffered);
        } catch (err) {
          fail(err as Error);
          return;
        }
        if (result.kind === 'done') {
          cleanup();
          const rest = buffered.subarray(result.length);
          if (rest.length > 0) socket.unshift(rest);
          resolve(result.header);
          return;
        }
      }
    };
    const timer = setTimeout(
      () =>
        fail(new ProxyProtocolError('timeout', `PROXY protocol: no complete header within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('readable', onReadable);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Trusted sources

interface ParsedIp {
  v6: boolean;
  value: bigint;
}

function parseIp(text: string): ParsedIp | undefined {
  let s = text.trim();
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (isIPv4(s)) {
    const o = parseIPv4Octets(s);
    if (!o) return undefined;
    return { v6: false, value: BigInt(((o[0]! << 24) >>> 0) + (o[1]! << 16) + (o[2]! << 8) + o[3]!) };
  }
  if (!isIPv6(s)) return undefined;
  const b = ipv6ToBuffer(s);
  const value = b.readBigUInt64BE(0) * 2n ** 64n + b.readBigUInt64BE(8);
  // IPv4-mapped (::ffff:a.b.c.d) is the IPv4 address, as a dual-stack listener reports IPv4 clients.
  if (value >> 32n === 0xffffn) return { v6: false, value: value & 0xffffffffn };
  return { v6: true, value };
}

interface Cidr {
  v6: boolean;
  network: bigint;
  mask: bigint;
}

function parseCidr(entry: string): Cidr {
  const slash = entry.indexOf('/');
  const addrText = slash >= 0 ? entry.slice(0, slash) : entry;
  const ip = parseIp(addrText);
  if (!ip) throw new TypeError(`invalid address in trusted source ${JSON.stringify(entry)}`);
  const addrIsMappedV4 = !ip.v6 && addrText.includes(':');
  const bits = ip.v6 ? 128 : 32;
  let prefix = bits;
  if (slash >= 0) {
    const p = entry.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p)) throw new TypeError(`invalid prefix length in ${JSON.stringify(entry)}`);
    prefix = Number(p);
    if (addrIsMappedV4) {
      // ::ffff:10.0.0.0/104 is 10.0.0.0/8.
      if (prefix < 96 || prefix > 128)
        throw new TypeError(`invalid prefix length in ${JSON.stringify(entry)}`);
      prefix -= 96;
    } else if (prefix > bits) throw new TypeError(`invalid prefix length in ${JSON.stringify(entry)}`);
  }
  const all = (1n << BigInt(bits)) - 1n;
  const mask = prefix === 0 ? 0n : (all << BigInt(bits - prefix)) & all;
  return { v6: ip.v6, network: ip.value & mask, mask };
}

/**
 * Compile an allow-list of addresses and CIDRs ("10.0.0.0/8", "192.168.1.5", "fd00::/8", "::1") into a
 * matcher. Throws TypeError on an invalid entry, so a config loader can report it. IPv4-mapped IPv6
 * addresses (::ffff:127.0.0.1) match IPv4 entries and vice versa.
 */
export function compileTrustedSources(allowList: readonly string[]): (address: string) => boolean {
  const cidrs = allowList.map(parseCidr);
  return (address: string) => {
    const ip = parseIp(address);
    if (!ip) return false;
    return cidrs.some((c) => c.v6 === ip.v6 && (ip.value & c.mask) === c.network);
  };
}

/** Whether `address` (a socket's remoteAddress) is in `allowList`. Throws TypeError on an invalid entry. */
export function isTrustedProxy(address: string | undefined, allowList: readonly string[]): boolean {
  if (address === undefined) return false;
  return compileTrustedSources(allowList)(address);
}
