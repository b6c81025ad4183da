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
 * The page is searched as a latin1 string (one character per byte, so its offsets are byte offsets)
 * and every field is decoded from the bytes as UTF-8 into a string of its own. A field cut out of the
 * page's text with slice() would be a view that keeps the whole ~200 KB page alive for as long as the
 * key waits to be sent: measured, 64 such pages (13 MiB) piled up in the old generation during a
 * 100,000-key listing.
 *
 * Anything this parser does not expect (another root element, a missing Key, an entity it does not
 * know) makes it give up, and the SDK parses that response as before.
 */
export function parseListObjectsV2(body: Buffer | string): ListPage {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const page = new PageText(bytes);
  const xml = page.text;
  const root = xml.indexOf('<ListBucketResult');
  if (root === -1) throw new ListParseError('no ListBucketResult element');
  const result: ListPage = { objects: [], prefixes: [] };
  for (let at = xml.indexOf('<Contents>', root); at !== -1;) {
    const end = xml.indexOf('</Contents>', at);
    if (end === -1) throw new ListParseError('unterminated Contents');
    const key = page.child(at, end, 'Key');
    if (key === undefined || key === '') throw new ListParseError('Contents without a Key');
    const modified = page.child(at, end, 'LastModified');
    const lastModified = modified === undefined ? new Date(0) : new Date(modified);
    if (Number.isNaN(lastModified.getTime())) throw new ListParseError(`bad LastModified ${modified}`);
    const size = Number(page.child(at, end, 'Size') ?? '0');
    if (!Number.isSafeInteger(size) || size < 0) throw new ListParseError(`bad Size of ${key}`);
    result.objects.push({ key, size, lastModified, etag: page.child(at, end, 'ETag') ?? '' });
    at = xml.indexOf('<Contents>', end);
  }
  for (let at = xml.indexOf('<CommonPrefixes>', root); at !== -1;) {
    const end = xml.indexOf('</CommonPrefixes>', at);
    if (end === -1) throw new ListParseError('unterminated CommonPrefixes');
    const prefix = page.child(at, end, 'Prefix');
    if (prefix !== undefined) result.prefixes.push(prefix);
    at = xml.indexOf('<CommonPrefixes>', end);
  }
  const truncated = page.child(root, xml.length, 'IsTruncated');
  const token = page.child(root, xml.length, 'NextContinuationToken');
  if (truncated === 'true' && token) result.nextToken = token;
  return result;
}

export class ListParseError extends Error {}

/** A page's bytes, and the same bytes as a latin1 string to search: its offsets are byte offsets. */
class PageText {
  readonly text: string;

  constructor(private readonly bytes: Buffer) {
    this.text = bytes.toString('latin1');
  }

  /**
   * The decoded text of the first `<name>` element between `from` and `to`, '' for `<name/>`. Tag names
   * cannot occur inside text ('<' is always escaped there), so a plain search finds elements only.
   */
  child(from: number, to: number, name: string): string | undefined {
    const xml = this.text;
    const open = xml.indexOf(`<${name}`, from);
    if (open === -1 || open >= to) return undefined;
    const after = open + name.length + 1;
    const c = xml[after];
    if (c === '/') return '';
    if (c !== '>') {
      // A longer tag with the same beginning (<Prefix> vs <PrefixX>) or one with attributes: look further.
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') throw new ListParseError(`attributes on <${name}>`);
      return this.child(after, to, name);
    }
    const close = xml.indexOf(`</${name}>`, after);
    if (close === -1 || close > to) throw new ListParseError(`unterminated <${name}>`);
    return decodeXmlText(this.bytes.toString('utf8', after + 1, close));
  }
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: '\'' };

/** XML 1.0 text: the five named entities, numeric character references, and CR LF read as LF. */
export function decodeXmlText(text: string): string {
  if (text.includes('<')) throw new ListParseError('markup inside a text element');
  if (text.includes('\r')) text = text.replace(/\r\n?/g, '\n');
  if (!text.includes('&')) return text;
  return text.replace(/&([^;&]*);?/g, (all, ref: string) => {
    if (!all.endsWith(';')) throw new ListParseError(`unterminated entity ${all}`);
    const named = NAMED[ref];
    if (named !== undefined) return named;
    const code = /^#x[0-9a-fA-F]+$/.test(ref)
      ? parseInt(ref.slice(2), 16)
      : /^#[0-9]+$/.test(ref)
        ? parseInt(ref.slice(1), 10)
        : NaN;
    if (!Number.isInteger(code) || code > 0x10ffff) throw new ListParseError(`unknown entity ${all}`);
    return String.fromCodePoint(code);
  });
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
