import { Readable } from 'node:stream';
import type { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { ListPage } from '../object-store.js';

/**
 * ListObjectsV2 pages are read by this parser instead of the SDK's.
 *
 * Why: the SDK's XML parser builds every tag and text character by character. Measured while the
 * gateway listed 100,000 keys (100 pages), it allocated 6.3 MB per 1,000-key page, 630 of the 1,150 MB
 * the whole process allocated; the short-lived garbage was promoted by the young generation's
 * collections faster than the old one was collected, and RSS rose 54 MiB during the listing. A
 * ListBucketResult is a flat, well-known document: its elements are found with indexOf and only the
 * four fields of each object the gateway uses are decoded.
 *
 * The page's bytes are searched as they are and only the fields kept become strings: Key, ETag and Prefix
 * are decoded from their bytes as UTF-8, Size and an ISO LastModified are read digit by digit. Searching a
 * latin1 copy of the page (200 KB, so V8's large-object space) with template-string tag names and one
 * regular-expression replace per entity allocated 836 KB and 3.1 ms per 1,000-key Swift page, 1,411 KB
 * where every ETag is escaped (&quot;, as AWS S3 sends it); now 312 KB / 412 KB and 2.0 ms. A field is
 * never cut out of a page-sized string: slice() would give a view that keeps the whole page alive for as
 * long as the key waits to be sent.
 *
 * Anything this parser does not expect (another root element, a missing Key, an entity it does not
 * know) makes it give up, and the SDK parses that response as before.
 */
export function parseListObjectsV2(body: Buffer | string): ListPage {
  const page = new PageBytes(typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
  const root = page.bytes.indexOf(LIST_BUCKET_RESULT);
  if (root === -1) throw new ListParseError('no ListBucketResult element');
  const result: ListPage = { objects: [], prefixes: [] };
  const last = page.bytes.length;
  for (let at = page.bytes.indexOf(CONTENTS.open, root); at !== -1;) {
    const end = page.bytes.indexOf(CONTENTS.close, at);
    if (end === -1) throw new ListParseError('unterminated Contents');
    const key = page.find(at, end, KEY) ? page.text() : undefined;
    if (key === undefined || key === '') throw new ListParseError('Contents without a Key');
    const lastModified = page.find(at, end, LAST_MODIFIED) ? page.date() : new Date(0);
    if (Number.isNaN(lastModified.getTime())) throw new ListParseError(`bad LastModified ${page.text()}`);
    const size = page.find(at, end, SIZE) ? page.integer() : 0;
    if (!Number.isSafeInteger(size) || size < 0) throw new ListParseError(`bad Size of ${key}`);
    result.objects.push({ key, size, lastModified, etag: page.find(at, end, ETAG) ? page.text() : '' });
    at = page.bytes.indexOf(CONTENTS.open, end);
  }
  for (let at = page.bytes.indexOf(COMMON_PREFIXES.open, root); at !== -1;) {
    const end = page.bytes.indexOf(COMMON_PREFIXES.close, at);
    if (end === -1) throw new ListParseError('unterminated CommonPrefixes');
    if (page.find(at, end, PREFIX)) result.prefixes.push(page.text());
    at = page.bytes.indexOf(COMMON_PREFIXES.open, end);
  }
  const truncated = page.find(root, last, IS_TRUNCATED) ? page.text() : undefined;
  const token = page.find(root, last, NEXT_CONTINUATION_TOKEN) ? page.text() : undefined;
  if (truncated === 'true' && token) result.nextToken = token;
  return result;
}

export class ListParseError extends Error {}

interface Tag {
  readonly id: number;
  readonly name: string;
  /** `<Name`, without the `>`: `<Name/>` and `<Name attr>` start with it too. */
  readonly open: Buffer;
  readonly close: Buffer;
}

let tags = 0;
function tag(name: string): Tag {
  return { id: tags++, name, open: Buffer.from(`<${name}`), close: Buffer.from(`</${name}>`) };
}

const LIST_BUCKET_RESULT = Buffer.from('<ListBucketResult');
/** The repeated elements, opened without attributes: `<Contents>`, not `<Contents` (nor `<ContentsX>`). */
const CONTENTS = { open: Buffer.from('<Contents>'), close: Buffer.from('</Contents>') };
const COMMON_PREFIXES = { open: Buffer.from('<CommonPrefixes>'), close: Buffer.from('</CommonPrefixes>') };
const KEY = tag('Key');
const LAST_MODIFIED = tag('LastModified');
const SIZE = tag('Size');
const ETAG = tag('ETag');
const PREFIX = tag('Prefix');
const IS_TRUNCATED = tag('IsTruncated');
const NEXT_CONTINUATION_TOKEN = tag('NextContinuationToken');

const SLASH = 0x2f;
const GT = 0x3e;
const SPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

/** A page's bytes, and the text of the element find() found last (bytes `start` to `end`). */
class PageBytes {
  start = 0;
  end = 0;
  /**
   * Where each tag's opening was found last and from where that search started. A tag that most
   * elements lack (an S3 server that sends no ETag, say) is then searched to the end of the page once,
   * not once per element.
   */
  private readonly foundAt: number[] = [];
  private readonly searchedFrom: number[] = [];

  constructor(readonly bytes: Buffer) {}

  private indexOf(t: Tag, from: number): number {
    const at = this.foundAt[t.id];
    if (at !== undefined && this.searchedFrom[t.id]! <= from && (at === -1 || at >= from)) return at;
    const found = this.bytes.indexOf(t.open, from);
    this.foundAt[t.id] = found;
    this.searchedFrom[t.id] = from;
    return found;
  }

  /**
   * Finds the first `<name>` element between `from` and `to` (empty text for `<name/>`). Tag names
   * cannot occur inside text ('<' is always escaped there), so a plain search finds elements only.
   */
  find(from: number, to: number, t: Tag): boolean {
    for (;;) {
      const open = this.indexOf(t, from);
      if (open === -1 || open >= to) return false;
      const after = open + t.open.length;
      const c = this.bytes[after]!;
      if (c === SLASH) {
        this.start = this.end = after;
        return true;
      }
      if (c === GT) {
        const close = this.bytes.indexOf(t.close, after);
        if (close === -1 || close > to) throw new ListParseError(`unterminated <${t.name}>`);
        this.start = after + 1;
        this.end = close;
        return true;
      }
      if (SPACE.has(c)) throw new ListParseError(`attributes on <${t.name}>`);
      // A longer tag with the same beginning (<Prefix> vs <PrefixX>): look further.
      from = after;
    }
  }

  /** The found element's text, decoded. */
  text(): string {
    return decodeXmlText(this.bytes.toString('utf8', this.start, this.end));
  }

  /** The found element's text as a non-negative integer; NaN or a negative number if it is not one. */
  integer(): number {
    const n = digits(this.bytes, this.start, this.end - this.start);
    return n >= 0 ? n : Number(this.text());
  }

  /** The found element's time: `YYYY-MM-DDTHH:MM:SS[.mmm]Z` read in place, anything else by Date. */
  date(): Date {
    const b = this.bytes;
    const s = this.start;
    const len = this.end - s;
    if (
      (len === 20 || (len === 24 && b[s + 19] === 0x2e)) &&
      b[s + 4] === 0x2d && b[s + 7] === 0x2d && b[s + 10] === 0x54 &&
      b[s + 13] === 0x3a && b[s + 16] === 0x3a && b[s + len - 1] === 0x5a
    ) {
      const y = digits(b, s, 4);
      const mo = digits(b, s + 5, 2);
      const d = digits(b, s + 8, 2);
      const h = digits(b, s + 11, 2);
      const mi = digits(b, s + 14, 2);
      const sec = digits(b, s + 17, 2);
      const ms = len === 24 ? digits(b, s + 20, 3) : 0;
      // Date.UTC reads years 0-99 as 1900-1999: those go to Date's own parser.
      const valid = y >= 100 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h >= 0 && h <= 23;
      if (valid && mi >= 0 && mi <= 59 && sec >= 0 && sec <= 59 && ms >= 0)
        return new Date(Date.UTC(y, mo - 1, d, h, mi, sec, ms));
    }
    return new Date(this.text());
  }
}

/** The decimal number of `b[at]` to `b[at + n - 1]`, -1 if one is not a digit. */
function digits(b: Buffer, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const d = b[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

const NAMED: [string, string][] = [['quot', '"'], ['amp', '&'], ['lt', '<'], ['gt', '>'], ['apos', '\'']];

/** XML 1.0 text: the five named entities, numeric character references, and CR LF read as LF. */
export function decodeXmlText(text: string): string {
  if (text.includes('<')) throw new ListParseError('markup inside a text element');
  if (text.includes('\r')) text = text.replace(/\r\n?/g, '\n');
  // A loop, not a replace() with a callback: AWS S3 escapes the quotes of every ETag (&quot;), and the
  // regular expression's match arrays were the parser's largest allocation on such pages.
  let amp = text.indexOf('&');
  if (amp === -1) return text;
  let out = '';
  let done = 0;
  while (amp !== -1) {
    const semi = text.indexOf(';', amp);
    const next = text.indexOf('&', amp + 1);
    if (semi === -1 || (next !== -1 && next < semi))
      throw new ListParseError(`unterminated entity ${text.slice(amp, next === -1 ? undefined : next)}`);
    out += text.slice(done, amp) + entity(text, amp, semi);
    done = semi + 1;
    amp = next;
  }
  return out + text.slice(done);
}

/** The character of the reference from `text[amp]` (`&`) to `text[semi]` (`;`). */
function entity(text: string, amp: number, semi: number): string {
  for (const [name, char] of NAMED) if (semi - amp - 1 === name.length && text.startsWith(name, amp + 1)) return char;
  const ref = text.slice(amp + 1, semi);
  const code = /^#x[0-9a-fA-F]+$/.test(ref)
    ? parseInt(ref.slice(2), 16)
    : /^#[0-9]+$/.test(ref)
      ? parseInt(ref.slice(1), 10)
      : NaN;
  if (!Number.isInteger(code) || code > 0x10ffff) throw new ListParseError(`unknown entity &${ref};`);
  return String.fromCodePoint(code);
}

/**
 * Makes `command` hand its 200 response's page to `onPage` and the SDK an empty result to parse. Placed
 * just inside the SDK's deserializer, so retries and error responses go through the SDK unchanged; a
 * page this parser refuses is given back to the SDK whole.
 */
export function parseListingOurselves(command: ListObjectsV2Command, onPage: (page: ListPage) => void): void {
  command.middlewareStack.add(
    (next) => async (args) => {
      const result = await next(args);
      const response = result.response as { statusCode?: number; body?: unknown };
      if (response.statusCode !== 200 || !(response.body instanceof Readable)) return result;
      const chunks: Buffer[] = [];
      for await (const chunk of response.body) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      try {
        onPage(parseListObjectsV2(body));
        response.body = Readable.from([EMPTY_RESULT]);
        listParsing.ours++;
      } catch {
        response.body = Readable.from([body]);
        listParsing.sdk++;
      }
      return result;
    },
    // Low priority in the deserialize step: inside the SDK's deserializer, which is of normal priority.
    { step: 'deserialize', priority: 'low', name: 'sftpGatewayListParser' },
  );
}

/** Pages read by this parser, and pages it gave back to the SDK's (tests read these). */
export const listParsing = { ours: 0, sdk: 0 };

const EMPTY_RESULT = Buffer.from(
  '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></ListBucketResult>',
);
