import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * AWS Signature Version 4 verification (header form, `Authorization: AWS4-HMAC-SHA256 ...`), written from
 * the published algorithm: canonical request -> string to sign -> signing key -> signature. Only node:crypto.
 *
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
 */

export interface SignedRequest {
  method: string;
  /** The request target as received: raw path and query string (`/a%20b?x=1`). */
  url: string;
  /** Header name (any case) -> values as received; several values of one header are joined with ','. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export type SigV4FailureCode =
  | 'MissingAuthenticationToken'
  | 'IncompleteSignature'
  | 'UnrecognizedClient'
  | 'SignatureDoesNotMatch'
  | 'SignatureExpired';

export class SigV4Error extends Error {
  constructor(
    readonly code: SigV4FailureCode,
    message: string,
  ) {
    super(message);
    this.name = 'SigV4Error';
  }
}

export interface VerifyOptions {
  /** The service name in the credential scope (`transfer`); anything else is refused. */
  service: string;
  /** The secret of an access key id, undefined when unknown. */
  secretFor: (accessKeyId: string) => string | undefined;
  now?: Date;
  /** Largest accepted difference between the request's time and ours; AWS: 15 minutes. */
  maxSkewMs?: number;
}

export interface VerifiedRequest {
  accessKeyId: string;
  region: string;
  date: Date;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';

const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

/** RFC 3986 encoding as SigV4 wants it: unreserved characters kept, everything else %XX upper case. */
export function uriEscape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, '%20'));
  } catch {
    return s;
  }
}

/** Canonical URI for every service but S3: normalized, each segment URI-encoded (a second time). */
export function canonicalUri(rawPath: string): string {
  const out: string[] = [];
  for (const seg of rawPath.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  const trailing = rawPath.length > 1 && rawPath.endsWith('/') && out.length > 0 ? '/' : '';
  return `/${out.map(uriEscape).join('/')}${trailing}`;
}

export function canonicalQuery(rawQuery: string): string {
  if (!rawQuery) return '';
  const pairs = rawQuery
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const i = p.indexOf('=');
      const k = i < 0 ? p : p.slice(0, i);
      const v = i < 0 ? '' : p.slice(i + 1);
      return [uriEscape(safeDecode(k)), uriEscape(safeDecode(v))] as const;
    })
    .filter(([k]) => k !== 'X-Amz-Signature');
  pairs.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

function headerValue(headers: SignedRequest['headers'], name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== name) continue;
    if (v === undefined) return undefined;
    return (Array.isArray(v) ? v : [v]).map((x) => x.trim().replace(/\s+/g, ' ')).join(',');
  }
  return undefined;
}

export function canonicalRequest(req: SignedRequest, signedHeaders: string[]): string {
  const q = req.url.indexOf('?');
  const rawPath = q < 0 ? req.url : req.url.slice(0, q);
  const rawQuery = q < 0 ? '' : req.url.slice(q + 1);
  const headerLines = signedHeaders.map((h) => `${h}:${headerValue(req.headers, h) ?? ''}\n`).join('');
  const payloadHash = headerValue(req.headers, 'x-amz-content-sha256') ?? sha256Hex(req.body);
  return [
    req.method.toUpperCase(),
    canonicalUri(rawPath || '/'),
    canonicalQuery(rawQuery),
    headerLines,
    signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
}

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
}

export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return [ALGORITHM, amzDate, scope, sha256Hex(canonical)].join('\n');
}

/** `20150830T123600Z` -> Date, undefined when malformed. */
export function parseAmzDate(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function formatAmzDate(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
}

/** Parses `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`. */
export function parseAuthorization(value: string) {
  if (!value.startsWith(`${ALGORITHM} `)) return undefined;
  const fields = new Map<string, string>();
  for (const part of value.slice(ALGORITHM.length + 1).split(',')) {
    const i = part.indexOf('=');
    if (i > 0) fields.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return {
    credential: fields.get('Credential'),
    signedHeaders: fields.get('SignedHeaders'),
    signature: fields.get('Signature'),
  };
}

/** The signature the request should carry, given the secret (exported for tests and clients). */
export function computeSignature(
  req: SignedRequest,
  o: { secret: string; amzDate: string; region: string; service: string; signedHeaders: string[] },
): string {
  const day = o.amzDate.slice(0, 8);
  const scope = `${day}/${o.region}/${o.service}/aws4_request`;
  const sts = stringToSign(o.amzDate, scope, canonicalRequest(req, o.signedHeaders));
  return createHmac('sha256', signingKey(o.secret, day, o.region, o.service))
    .update(sts, 'utf8')
    .digest('hex');
}

/**
 * Verifies a SigV4-signed request; throws SigV4Error with AWS's wording on any failure. The checks come in
 * AWS's order: the header is there and well formed, the access key is known, the signature matches, and
 * the request is not more than `maxSkewMs` away from our clock.
 */
export function verifySigV4(req: SignedRequest, options: VerifyOptions): VerifiedRequest {
  const authorization = headerValue(req.headers, 'authorization');
  if (!authorization) throw new SigV4Error('MissingAuthenticationToken', 'Missing Authentication Token');
  const auth = parseAuthorization(authorization);
  if (!auth) {
    throw new SigV4Error(
      'IncompleteSignature',
      `Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header and the ${ALGORITHM} algorithm. Authorization=${authorization.split(' ')[0]}`,
    );
  }
  const missing = (['Credential', 'SignedHeaders', 'Signature'] as const).filter(
    (k) => !auth[k === 'Credential' ? 'credential' : k === 'SignedHeaders' ? 'signedHeaders' : 'signature'],
  );
  if (missing.length > 0) {
    throw new SigV4Error(
      'IncompleteSignature',
      `Authorization header requires ${missing.map((m) => `'${m}'`).join(', ')} parameter(s).`,
    );
  }
  const scopeParts = auth.credential!.split('/');
  if (scopeParts.length !== 5 || scopeParts[4] !== 'aws4_request') {
    throw new SigV4Error(
      'IncompleteSignature',
      `Credential should be scoped to a valid region, service and terminator (aws4_request). Credential=${auth.credential}`,
    );
  }
  const [accessKeyId, day, region, service] = scopeParts as [string, string, string, string, string];
  const amzDateHeader = headerValue(req.headers, 'x-amz-date');
  const dateHeader = headerValue(req.headers, 'date');
  const httpDate = dateHeader ? new Date(dateHeader) : undefined;
  const amzDate =
    amzDateHeader ?? (httpDate && !Number.isNaN(httpDate.getTime()) ? formatAmzDate(httpDate) : undefined);
  const date = amzDate ? parseAmzDate(amzDate) : undefined;
  if (!amzDate || !date) {
    throw new SigV4Error(
      'IncompleteSignature',
      'Authorization header requires existence of either a \'X-Amz-Date\' or a \'Date\' header.',
    );
  }
  if (service !== options.service) {
    throw new SigV4Error(
      'SignatureDoesNotMatch',
      `Credential should be scoped to correct service: '${options.service}'.`,
    );
  }
  if (day !== amzDate.slice(0, 8)) {
    throw new SigV4Error(
      'SignatureDoesNotMatch',
      `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${day}' != '${amzDate.slice(0, 8)}', from '${amzDate}'.`,
    );
  }
  const signedHeaders = auth.signedHeaders!.split(';').map((h) => h.trim().toLowerCase());
  if (!signedHeaders.includes('host')) {
    throw new SigV4Error(
      'SignatureDoesNotMatch',
      '\'Host\' or \':authority\' must be a \'SignedHeader\' in the AWS Authorization.',
    );
  }
  const declared = headerValue(req.headers, 'x-amz-content-sha256');
  if (declared !== undefined && declared !== sha256Hex(req.body)) {
    // The signature covers the declared hash, so the body itself must match it (no UNSIGNED-PAYLOAD here).
    throw new SigV4Error(
      'SignatureDoesNotMatch',
      'The provided \'x-amz-content-sha256\' header does not match what was computed.',
    );
  }
  const secret = options.secretFor(accessKeyId);
  if (secret === undefined) {
    throw new SigV4Error('UnrecognizedClient', 'The security token included in the request is invalid.');
  }
  const expected = computeSignature(req, { secret, amzDate, region, service, signedHeaders });
  const given = Buffer.from(auth.signature!, 'utf8');
  const want = Buffer.from(expected, 'utf8');
  if (given.length !== want.length || !timingSafeEqual(given, want)) {
    throw new SigV4Error(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.',
    );
  }
  const now = options.now ?? new Date();
  const maxSkew = options.maxSkewMs ?? 15 * 60 * 1000;
  if (Math.abs(now.getTime() - date.getTime()) > maxSkew) {
    const fmt = (d: Date) => formatAmzDate(d);
    const earlier = date.getTime() < now.getTime();
    throw new SigV4Error(
      'SignatureExpired',
      earlier
        ? `Signature expired: ${amzDate} is now earlier than ${fmt(new Date(now.getTime() - maxSkew))} (${fmt(now)} - 15 min.)`
        : `Signature not yet current: ${amzDate} is still later than ${fmt(new Date(now.getTime() + maxSkew))} (${fmt(now)} + 15 min.)`,
    );
  }
  return { accessKeyId, region, date };
}
