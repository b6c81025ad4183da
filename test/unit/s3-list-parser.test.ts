import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeXmlText, ListParseError, parseListObjectsV2 } from '../../src/storage/s3/list-objects.js';

// Shaped as AWS S3 answers (whitespace between elements as Swift and MinIO send it, none as AWS does).
const PAGE = `<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name>
  <Prefix>home/alice/</Prefix>
  <KeyCount>4</KeyCount>
  <MaxKeys>3</MaxKeys>
  <Delimiter>/</Delimiter>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents><Key>home/alice/</Key><LastModified>2026-11-20T10:00:00.000Z</LastModified><ETag>"d41d8cd98f00b204e9800998ecf8427e"</ETag><Size>0</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents>
    <Key>home/alice/a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#233;&#x1F600;.txt</Key>
    <LastModified>2026-11-21T11:22:33.456Z</LastModified>
    <ETag>&quot;9b2cf535f27731c974343645a3985328-3&quot;</ETag>
    <ChecksumAlgorithm>CRC32</ChecksumAlgorithm>
    <Size>5242880000</Size>
    <Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID><DisplayName>x</DisplayName></Owner>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <CommonPrefixes><Prefix>home/alice/docs/</Prefix></CommonPrefixes>
  <CommonPrefixes><Prefix>home/alice/ünï/</Prefix></CommonPrefixes>
</ListBucketResult>`;

describe('parseListObjectsV2', () => {
  it('reads objects, prefixes and the continuation token of a page', () => {
    const page = parseListObjectsV2(PAGE);
    assert.deepEqual(page, {
      objects: [
        {
          key: 'home/alice/',
          size: 0,
          lastModified: new Date('2026-11-20T10:00:00.000Z'),
          etag: '"d41d8cd98f00b204e9800998ecf8427e"',
        },
        {
          key: `home/alice/a & b <c> "d" 'e' é😀.txt`,
          size: 5242880000,
          lastModified: new Date('2026-11-21T11:22:33.456Z'),
          etag: '"9b2cf535f27731c974343645a3985328-3"',
        },
      ],
      prefixes: ['home/alice/docs/', 'home/alice/ünï/'],
      nextToken: '1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=',
    });
  });

  it('reads a page given as bytes, with multi-byte UTF-8 before the fields it decodes', () => {
    // The parser searches the bytes as latin1 and decodes each field as UTF-8: raw multi-byte characters
    // early in the page must not shift the fields that follow.
    const xml =
      '<ListBucketResult><Prefix>ünï/</Prefix>' +
      '<Contents><Key>ünï/日本語 ☃.txt</Key><LastModified>2026-11-21T11:22:33.000Z</LastModified><ETag>"e1"</ETag><Size>7</Size></Contents>' +
      '<Contents><Key>ünï/b</Key><Size>8</Size><ETag>"e2"</ETag></Contents>' +
      '<IsTruncated>true</IsTruncated><NextContinuationToken>tök</NextContinuationToken></ListBucketResult>';
    const page = parseListObjectsV2(Buffer.from(xml, 'utf8'));
    assert.deepEqual(page, {
      objects: [
        { key: 'ünï/日本語 ☃.txt', size: 7, lastModified: new Date('2026-11-21T11:22:33.000Z'), etag: '"e1"' },
        { key: 'ünï/b', size: 8, lastModified: new Date(0), etag: '"e2"' },
      ],
      prefixes: [],
      nextToken: 'tök',
    });
  });

  it('gives no token for the last page, and an empty result for an empty listing', () => {
    const last = PAGE.replace('<IsTruncated>true</IsTruncated>', '<IsTruncated>false</IsTruncated>');
    assert.equal(parseListObjectsV2(last).nextToken, undefined);
    const empty =
      '<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix/><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>';
    assert.deepEqual(parseListObjectsV2(empty), { objects: [], prefixes: [] });
  });

  it('reads an empty Prefix of a common prefix written as <Prefix/>', () => {
    const xml = '<ListBucketResult><CommonPrefixes><Prefix/></CommonPrefixes></ListBucketResult>';
    assert.deepEqual(parseListObjectsV2(xml).prefixes, ['']);
  });

  it('gives up (and the SDK parses instead) on anything it does not expect', () => {
    const refuse = (xml: string, why: RegExp) =>
      assert.throws(() => parseListObjectsV2(xml), (e) => e instanceof ListParseError && why.test(e.message));
    refuse('<Error><Code>NoSuchBucket</Code></Error>', /no ListBucketResult/);
    refuse('<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>', /without a Key/);
    refuse('<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents></ListBucketResult>', /bad Size/);
    refuse('<ListBucketResult><Contents><Key>a</Key><LastModified>never</LastModified></Contents></ListBucketResult>', /bad LastModified/);
    refuse('<ListBucketResult><Contents><Key>a</Key>', /unterminated Contents/);
    refuse('<ListBucketResult><Contents><Key>a &nbsp; b</Key></Contents></ListBucketResult>', /unknown entity/);
    refuse('<ListBucketResult><Contents><Key enc="x">a</Key></Contents></ListBucketResult>', /attributes/);
    refuse('<ListBucketResult><Contents><Key><![CDATA[a]]></Key></Contents></ListBucketResult>', /markup/);
  });
  it('reads LastModified in place when ISO with Z, and through Date otherwise', () => {
    const at = (text: string) =>
      parseListObjectsV2(
        `<ListBucketResult><Contents><Key>a</Key><LastModified>${text}</LastModified></Contents></ListBucketResult>`,
      ).objects[0]!.lastModified.getTime();
    for (const text of [
      '2026-11-21T11:22:33.456Z',
      '2026-11-21T11:22:33Z',
      '2024-02-29T23:59:59.999Z',
      '1970-01-01T00:00:00.000Z',
      // Not the in-place form: another offset, more fraction digits, a year below 100.
      '2026-11-21T12:22:33.456+01:00',
      '2026-11-21T11:22:33.456789Z',
      '0099-01-02T03:04:05.000Z',
    ])
      assert.equal(at(text), new Date(text).getTime(), text);
    assert.throws(() => at('2026-13-21T11:22:33.456Z'), /bad LastModified 2026-13-21/);
    assert.throws(() => at('2026-11-21T11:22:3x.456Z'), /bad LastModified/);
  });

  it('reads Size as digits in place, and other spellings through Number', () => {
    const size = (text: string) =>
      parseListObjectsV2(`<ListBucketResult><Contents><Key>a</Key><Size>${text}</Size></Contents></ListBucketResult>`)
        .objects[0]!.size;
    assert.equal(size('0'), 0);
    assert.equal(size('9007199254740991'), Number.MAX_SAFE_INTEGER);
    assert.equal(size(' 12 '), 12);
    assert.equal(size(''), 0);
    assert.throws(() => size('9007199254740993'), /bad Size/);
    assert.throws(() => size('1.5'), /bad Size/);
  });

  it('finds a field each element lacks only inside the element that has it', () => {
    // The search for a missing tag is remembered; the element that has one must still get its own.
    const xml =
      '<ListBucketResult>' +
      '<Contents><Key>a</Key><Size>1</Size></Contents>' +
      '<Contents><Key>b</Key><Size>2</Size></Contents>' +
      '<Contents><Key>c</Key><ETag>"c"</ETag><Size>3</Size></Contents>' +
      '<Contents><Key>d</Key><Size>4</Size></Contents>' +
      '<CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes><CommonPrefixes><PrefixX>q/</PrefixX></CommonPrefixes>' +
      '</ListBucketResult>';
    const page = parseListObjectsV2(xml);
    assert.deepEqual(
      page.objects.map((o) => [o.key, o.etag, o.size]),
      [['a', '', 1], ['b', '', 2], ['c', '"c"', 3], ['d', '', 4]],
    );
    assert.deepEqual(page.prefixes, ['p/']);
  });

  it('reads only <Contents> and <CommonPrefixes> elements, not longer names that begin the same', () => {
    const xml =
      '<ListBucketResult><Contents><Key>a</Key></Contents><ContentsInfo>x</ContentsInfo>' +
      '<CommonPrefixesCount>1</CommonPrefixesCount><CommonPrefixes><Prefix>p/</Prefix></CommonPrefixes></ListBucketResult>';
    const page = parseListObjectsV2(xml);
    assert.deepEqual(page.objects.map((o) => o.key), ['a']);
    assert.deepEqual(page.prefixes, ['p/']);
  });
});

describe('decodeXmlText', () => {
  it('decodes named and numeric references and normalizes line ends', () => {
    assert.equal(decodeXmlText('a&amp;b&#65;&#x42;\r\nc\rd'), 'a&bAB\nc\nd');
    assert.equal(decodeXmlText('plain'), 'plain');
  });
  it('refuses a bare ampersand and references out of range', () => {
    assert.throws(() => decodeXmlText('a & b'), ListParseError);
    assert.throws(() => decodeXmlText('&#x110000;'), ListParseError);
    assert.throws(() => decodeXmlText('&constructor;'), /unknown entity &constructor;/);
    assert.throws(() => decodeXmlText('a &amp b'), /unterminated entity &amp b/);
    assert.throws(() => decodeXmlText('&lt&gt;'), /unterminated entity &lt$/);
  });
});
