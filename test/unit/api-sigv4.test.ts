import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../support/transfer-api.js';
import {
  canonicalRequest,
  computeSignature,
  type SignedRequest,
  SigV4Error,
  verifySigV4,
} from '../../src/api/sigv4.js';

/**
 * SigV4 verification against AWS's published test suite (aws-sig-v4-test-suite: key AKIDEXAMPLE, region
 * us-east-1, service "service", 20150830T123600Z, host example.amazonaws.com) and against requests signed
 * by @smithy/signature-v4, the signer inside every AWS SDK for JavaScript.
 */

const SUITE_SECRET = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY';
const SUITE_DATE = new Date('2015-08-30T12:36:00Z');
const SCOPE = 'AKIDEXAMPLE/20150830/us-east-1/service/aws4_request';

interface Vector {
  name: string;
  method: string;
  url: string;
  headers?: Record<string, string | string[]>;
  body?: string;
  signedHeaders: string;
  signature: string;
}

const VECTORS: Vector[] = [
  {
    name: 'get-vanilla',
    method: 'GET',
    url: '/',
    signedHeaders: 'host;x-amz-date',
    signature: '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
  },
  {
    name: 'get-vanilla-query-order-key-case',
    method: 'GET',
    url: '/?Param2=value2&Param1=value1',
    signedHeaders: 'host;x-amz-date',
    signature: 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500',
  },
  {
    name: 'get-vanilla-query-order-value',
    method: 'GET',
    url: '/?Param1=value2&Param1=value1',
    signedHeaders: 'host;x-amz-date',
    signature: '5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694',
  },
  {
    name: 'get-unreserved',
    method: 'GET',
    url: '/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz',
    signedHeaders: 'host;x-amz-date',
    signature: '07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f',
  },
  {
    name: 'get-header-key-duplicate (values arrive as separate header lines)',
    method: 'GET',
    url: '/',
    headers: { 'My-Header1': ['value2', 'value2', 'value1'] },
    signedHeaders: 'host;my-header1;x-amz-date',
    signature: 'c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea',
  },
  {
    name: 'post-x-www-form-urlencoded',
    method: 'POST',
    url: '/',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'Param1=value1',
    signedHeaders: 'content-type;host;x-amz-date',
    signature: 'ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a',
  },
];

function suiteRequest(v: Vector, signature = v.signature): SignedRequest {
  return {
    method: v.method,
    url: v.url,
    headers: {
      Host: 'example.amazonaws.com',
      'X-Amz-Date': '20150830T123600Z',
      ...v.headers,
      Authorization: `AWS4-HMAC-SHA256 Credential=${SCOPE}, SignedHeaders=${v.signedHeaders}, Signature=${signature}`,
    },
    body: Buffer.from(v.body ?? ''),
  };
}

const suiteOptions = {
  service: 'service',
  secretFor: (id: string) => (id === 'AKIDEXAMPLE' ? SUITE_SECRET : undefined),
  now: SUITE_DATE,
};

function sigv4Error(fn: () => unknown): SigV4Error {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SigV4Error, String(e));
    return e;
  }
  assert.fail('expected a SigV4Error');
}

describe('SigV4 verification: AWS test suite vectors', () => {
  for (const v of VECTORS) {
    test(v.name, () => {
      const req = suiteRequest(v);
      const computed = computeSignature(req, {
        secret: SUITE_SECRET,
        amzDate: '20150830T123600Z',
        region: 'us-east-1',
        service: 'service',
        signedHeaders: v.signedHeaders.split(';'),
      });
      assert.equal(computed, v.signature);
      const ok = verifySigV4(req, suiteOptions);
      assert.deepEqual(ok, {
        accessKeyId: 'AKIDEXAMPLE',
        region: 'us-east-1',
        date: SUITE_DATE,
      });
    });
  }

  test('post-x-www-form-urlencoded canonical request, line by line', () => {
    const v = VECTORS.find((x) => x.name === 'post-x-www-form-urlencoded')!;
    assert.equal(
      canonicalRequest(suiteRequest(v), v.signedHeaders.split(';')),
      [
        'POST',
        '/',
        '',
        'content-type:application/x-www-form-urlencoded',
        'host:example.amazonaws.com',
        'x-amz-date:20150830T123600Z',
        '',
        'content-type;host;x-amz-date',
        '9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e',
      ].join('\n'),
    );
  });

  test('a flipped signature digit, another body or another header value is SignatureDoesNotMatch', () => {
    const v = VECTORS[0]!;
    const flipped = v.signature.replace(/^./, (c) => (c === '0' ? '1' : '0'));
    assert.equal(
      sigv4Error(() => verifySigV4(suiteRequest(v, flipped), suiteOptions))
        .code,
      'SignatureDoesNotMatch',
    );
    const post = VECTORS.find((x) => x.name === 'post-x-www-form-urlencoded')!;
    const tampered = {
      ...suiteRequest(post),
      body: Buffer.from('Param1=value2'),
    };
    assert.equal(
      sigv4Error(() => verifySigV4(tampered, suiteOptions)).code,
      'SignatureDoesNotMatch',
    );
    const otherHost = suiteRequest(v);
    otherHost.headers['Host'] = 'evil.example.com';
    assert.equal(
      sigv4Error(() => verifySigV4(otherHost, suiteOptions)).code,
      'SignatureDoesNotMatch',
    );
  });

  test('an unknown access key is UnrecognizedClient, checked before the signature', () => {
    const e = sigv4Error(() =>
      verifySigV4(suiteRequest(VECTORS[0]!), {
        ...suiteOptions,
        secretFor: () => undefined,
      }),
    );
    assert.equal(e.code, 'UnrecognizedClient');
    assert.equal(
      e.message,
      'The security token included in the request is invalid.',
    );
  });

  test('more than 15 minutes of clock skew either way is SignatureExpired; 14 minutes is fine', () => {
    const req = suiteRequest(VECTORS[0]!);
    const at = (minutes: number) =>
      new Date(SUITE_DATE.getTime() + minutes * 60_000);
    verifySigV4(req, { ...suiteOptions, now: at(14) });
    verifySigV4(req, { ...suiteOptions, now: at(-14) });
    const late = sigv4Error(() =>
      verifySigV4(req, { ...suiteOptions, now: at(16) }),
    );
    assert.equal(late.code, 'SignatureExpired');
    assert.match(
      late.message,
      /^Signature expired: 20150830T123600Z is now earlier than 20150830T123700Z/,
    );
    const early = sigv4Error(() =>
      verifySigV4(req, { ...suiteOptions, now: at(-16) }),
    );
    assert.equal(early.code, 'SignatureExpired');
    assert.match(early.message, /^Signature not yet current/);
  });

  test('missing or malformed Authorization, wrong service, scope date mismatch', () => {
    const req = suiteRequest(VECTORS[0]!);
    const without = {
      ...req,
      headers: { ...req.headers, Authorization: undefined },
    };
    assert.equal(
      sigv4Error(() => verifySigV4(without, suiteOptions)).code,
      'MissingAuthenticationToken',
    );
    const basic = {
      ...req,
      headers: { ...req.headers, Authorization: 'Basic Zm9vOmJhcg==' },
    };
    assert.equal(
      sigv4Error(() => verifySigV4(basic, suiteOptions)).code,
      'IncompleteSignature',
    );
    const partial = {
      ...req,
      headers: {
        ...req.headers,
        Authorization: `AWS4-HMAC-SHA256 Credential=${SCOPE}`,
      },
    };
    assert.match(
      sigv4Error(() => verifySigV4(partial, suiteOptions)).message,
      /'SignedHeaders', 'Signature'/,
    );
    assert.equal(
      sigv4Error(() =>
        verifySigV4(req, { ...suiteOptions, service: 'transfer' }),
      ).code,
      'SignatureDoesNotMatch',
    );
    const otherDay = {
      ...req,
      headers: { ...req.headers, 'X-Amz-Date': '20150831T003600Z' },
    };
    assert.match(
      sigv4Error(() =>
        verifySigV4(otherDay, {
          ...suiteOptions,
          now: new Date('2015-08-31T00:36:00Z'),
        }),
      ).message,
      /Date in Credential scope/,
    );
  });
});

describe('SigV4 verification: requests signed by @smithy/signature-v4', () => {
  const credentials = {
    accessKeyId: 'AKIAEXAMPLEADMIN0001',
    secretAccessKey: 'change-me-please',
  };

  async function sign(
    region: string,
    body: string,
    path = '/',
    query: Record<string, string> = {},
  ) {
    const signer = new SignatureV4({
      credentials,
      region,
      service: 'transfer',
      sha256: NodeSha256,
    });
    const signed = await signer.sign({
      method: 'POST',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port: 8080,
      path,
      query,
      headers: {
        host: '127.0.0.1:8080',
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'TransferService.ListServers',
        'user-agent': 'aws-sdk-js/3  extra   spaces',
      },
      body,
    });
    const qs = new URLSearchParams(query).toString();
    return {
      method: signed.method,
      url: `${signed.path}${qs ? `?${qs}` : ''}`,
      headers: signed.headers as Record<string, string>,
      body: Buffer.from(body),
    };
  }

  const options = {
    service: 'transfer',
    secretFor: (id: string) =>
      id === credentials.accessKeyId ? credentials.secretAccessKey : undefined,
  };

  for (const region of ['us-east-1', 'eu-west-3', 'local']) {
    test(`any region is accepted (${region})`, async () => {
      const req = await sign(region, '{"MaxResults":5}');
      assert.equal(verifySigV4(req, options).region, region);
    });
  }

  test('paths and query strings with characters to escape', async () => {
    const req = await sign('us-east-1', '', '/a b/ü/', {
      'x y': 'ä&=',
      b: '2',
    });
    verifySigV4(req, options);
  });

  test('a body changed after signing is refused', async () => {
    const req = await sign('us-east-1', '{"MaxResults":5}');
    assert.equal(
      sigv4Error(() =>
        verifySigV4({ ...req, body: Buffer.from('{"MaxResults":6}') }, options),
      ).code,
      'SignatureDoesNotMatch',
    );
  });
});
