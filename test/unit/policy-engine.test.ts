// biome-ignore-all lint/suspicious/noTemplateCurlyInString: IAM policy variables are written as plain ${...} strings.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type AccessChecker,
  checkOperation,
  PolicyEngine,
  PolicyError,
  parsePolicy,
  s3ChecksFor,
  sftpS3ActionTableMarkdown,
  transferVariableValues,
} from '../../src/policy/index.js';

const rolePolicy = {
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'Bucket',
      Effect: 'Allow',
      Action: ['s3:ListBucket', 's3:GetBucketLocation'],
      Resource: 'arn:aws:s3:::shared',
    },
    { Sid: 'Objects', Effect: 'Allow', Action: 's3:*Object', Resource: 'arn:aws:s3:::shared/*' },
    {
      Sid: 'NoArchiveDelete',
      Effect: 'Deny',
      Action: 's3:DeleteObject',
      Resource: 'arn:aws:s3:::shared/*/archive/*',
    },
  ],
};

// The user guide's per-user folder idea, as a scope-down policy (a JSON string, as CreateUser takes it).
const scopeDown = JSON.stringify({
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'ListOwn',
      Effect: 'Allow',
      Action: 's3:ListBucket',
      Resource: 'arn:aws:s3:::${transfer:HomeBucket}',
      Condition: { StringLike: { 's3:prefix': ['${transfer:HomeFolder}/*', '${transfer:HomeFolder}'] } },
    },
    {
      Sid: 'OwnObjects',
      Effect: 'Allow',
      Action: 's3:*',
      Resource: 'arn:aws:s3:::shared/${transfer:UserName}/*',
    },
  ],
});

const engineFor = (user: string) =>
  new PolicyEngine({
    rolePolicies: [rolePolicy],
    sessionPolicy: scopeDown,
    variables: { userName: user, homeDirectory: `/shared/${user}` },
    roleLabel: 'role sftp-users',
  });

describe('transfer variables', () => {
  it('splits HomeDirectory into bucket, folder and an ARN-ready directory', () => {
    assert.deepEqual(
      Object.fromEntries(transferVariableValues({ userName: 'alice', homeDirectory: '/bucket/home/alice' })),
      {
        'transfer:username': 'alice',
        'transfer:homedirectory': 'bucket/home/alice',
        'transfer:homebucket': 'bucket',
        'transfer:homefolder': 'home/alice',
      },
    );
    const trailing = transferVariableValues({ userName: 'a', homeDirectory: '/bucket/home/alice/' });
    assert.equal(trailing.get('transfer:homedirectory'), 'bucket/home/alice/');
    assert.equal(trailing.get('transfer:homefolder'), 'home/alice');
    const bucketOnly = transferVariableValues({ userName: 'a', homeDirectory: '/bucket' });
    assert.equal(bucketOnly.get('transfer:homebucket'), 'bucket');
    assert.equal(bucketOnly.get('transfer:homefolder'), '');
    assert.equal(transferVariableValues({ userName: 'a' }).has('transfer:homebucket'), false);
  });
});

describe('PolicyEngine: role AND scope-down', () => {
  const alice = engineFor('alice');
  it('allows what both allow', () => {
    const r = alice.isAllowed('s3:GetObject', 'arn:aws:s3:::shared/alice/a.txt');
    assert.equal(r.allowed, true, r.reason);
    assert.match(r.reason, /role sftp-users policy statement 1 "Objects"/);
    assert.match(r.reason, /scope-down policy statement 1 "OwnObjects"/);
  });
  it('refuses what the scope-down does not allow even though the role does', () => {
    const r = alice.isAllowed('s3:GetObject', 'arn:aws:s3:::shared/bob/a.txt');
    assert.equal(r.allowed, false);
    assert.equal(r.role, 'allow');
    assert.equal(r.session, 'implicit-deny');
    assert.match(r.reason, /not allowed by the scope-down policy/);
  });
  it('refuses what the role does not allow even though the scope-down does', () => {
    const r = alice.isAllowed('s3:PutBucketPolicy', 'arn:aws:s3:::shared/alice/x');
    assert.equal(r.allowed, false);
    assert.match(r.reason, /not allowed by any role policy/);
  });
  it('an explicit deny in the role wins over both allows', () => {
    const r = alice.isAllowed('s3:DeleteObject', 'arn:aws:s3:::shared/alice/archive/old.zip');
    assert.equal(r.allowed, false);
    assert.equal(r.role, 'deny');
    assert.match(r.reason, /explicitly denied by role sftp-users policy statement 2 "NoArchiveDelete"/);
  });
  it('without a scope-down policy the role alone decides', () => {
    const e = new PolicyEngine({ rolePolicies: [rolePolicy], variables: { userName: 'x' } });
    assert.equal(e.hasSessionPolicy, false);
    assert.equal(e.isAllowed('s3:GetObject', 'arn:aws:s3:::shared/bob/a').allowed, true);
  });
  it('no role policies means nothing is allowed', () => {
    const e = new PolicyEngine({ rolePolicies: [], sessionPolicy: scopeDown, variables: { userName: 'x' } });
    assert.equal(e.isAllowed('s3:GetObject', 'arn:aws:s3:::shared/x/a').allowed, false);
  });
  it('an external role leaves only the scope-down to check locally', () => {
    const e = new PolicyEngine({
      rolePolicies: 'external',
      sessionPolicy: scopeDown,
      variables: { userName: 'x', homeDirectory: '/shared/x' },
    });
    assert.equal(e.isAllowed('s3:GetObject', 'arn:aws:s3:::shared/x/a').allowed, true);
    assert.equal(e.isAllowed('s3:GetObject', 'arn:aws:s3:::shared/y/a').allowed, false);
  });
  it('rejects a malformed scope-down policy when constructed', () => {
    assert.throws(
      () =>
        new PolicyEngine({
          rolePolicies: [rolePolicy],
          sessionPolicy: '{"Version":',
          variables: { userName: 'x' },
        }),
      (e: unknown) => e instanceof PolicyError && /scope-down policy: not valid JSON/.test(e.message),
    );
  });
});

describe('SFTP operations -> S3 checks', () => {
  it('maps every operation to the documented actions', () => {
    const brief = (op: Parameters<typeof s3ChecksFor>[0]) =>
      s3ChecksFor(op).map(
        (c) =>
          `${c.action} ${c.resource}${c.context['s3:prefix'] !== undefined ? ` prefix=${c.context['s3:prefix']} delimiter=${c.context['s3:delimiter']}` : ''}`,
      );
    assert.deepEqual(brief({ op: 'list', bucket: 'b', key: 'home/alice' }), [
      's3:ListBucket arn:aws:s3:::b prefix=home/alice/ delimiter=/',
    ]);
    assert.deepEqual(brief({ op: 'list', bucket: 'b', key: '' }), [
      's3:ListBucket arn:aws:s3:::b prefix= delimiter=/',
    ]);
    assert.deepEqual(brief({ op: 'read', bucket: 'b', key: 'k' }), ['s3:GetObject arn:aws:s3:::b/k']);
    assert.deepEqual(brief({ op: 'write', bucket: 'b', key: 'k' }), ['s3:PutObject arn:aws:s3:::b/k']);
    assert.deepEqual(brief({ op: 'remove', bucket: 'b', key: 'k' }), ['s3:DeleteObject arn:aws:s3:::b/k']);
    assert.deepEqual(brief({ op: 'mkdir', bucket: 'b', key: 'd' }), ['s3:PutObject arn:aws:s3:::b/d/']);
    assert.deepEqual(brief({ op: 'rmdir', bucket: 'b', key: 'd/' }), ['s3:DeleteObject arn:aws:s3:::b/d/']);
    assert.deepEqual(brief({ op: 'append', bucket: 'b', key: 'k' }), [
      's3:GetObject arn:aws:s3:::b/k',
      's3:PutObject arn:aws:s3:::b/k',
    ]);
    assert.deepEqual(brief({ op: 'rename', bucket: 'b', key: 'a', toBucket: 'b', toKey: 'c' }), [
      's3:GetObject arn:aws:s3:::b/a',
      's3:PutObject arn:aws:s3:::b/c',
      's3:DeleteObject arn:aws:s3:::b/a',
    ]);
  });

  it('two users sharing a bucket cannot reach each other', () => {
    const alice = engineFor('alice');
    assert.equal(checkOperation(alice, { op: 'list', bucket: 'shared', key: 'alice' }), undefined);
    assert.equal(checkOperation(alice, { op: 'list', bucket: 'shared', key: 'alice/sub' }), undefined);
    assert.equal(checkOperation(alice, { op: 'mkdir', bucket: 'shared', key: 'alice/new' }), undefined);
    assert.equal(checkOperation(alice, { op: 'write', bucket: 'shared', key: 'alice/f' }), undefined);
    for (const op of [
      { op: 'list', bucket: 'shared', key: 'bob' },
      { op: 'list', bucket: 'shared', key: '' },
      { op: 'read', bucket: 'shared', key: 'bob/f' },
      { op: 'write', bucket: 'shared', key: 'bob/f' },
      { op: 'remove', bucket: 'shared', key: 'bob/f' },
      { op: 'rmdir', bucket: 'shared', key: 'bob' },
    ] as const) {
      assert.notEqual(checkOperation(alice, op), undefined, JSON.stringify(op));
    }
  });

  it('names the first denied action and the path', () => {
    const alice = engineFor('alice');
    const renameOut = checkOperation(alice, {
      op: 'rename',
      bucket: 'shared',
      key: 'alice/f',
      toBucket: 'shared',
      toKey: 'bob/f',
    });
    assert.equal(renameOut?.action, 's3:PutObject');
    assert.equal(renameOut?.path, '/shared/bob/f');
    assert.equal(renameOut?.message, 's3:PutObject denied on /shared/bob/f');
    const archive = checkOperation(alice, {
      op: 'rename',
      bucket: 'shared',
      key: 'alice/archive/f',
      toBucket: 'shared',
      toKey: 'alice/f',
    });
    assert.equal(archive?.action, 's3:DeleteObject');
    assert.match(archive?.reason ?? '', /NoArchiveDelete/);
    const listOther = checkOperation(alice, { op: 'list', bucket: 'shared', key: 'bob' });
    assert.equal(listOther?.message, 's3:ListBucket denied on /shared/bob/');
  });

  it('works with any AccessChecker', () => {
    const seen: string[] = [];
    const stub: AccessChecker = {
      isAllowed: (action, resource) => {
        seen.push(`${action} ${resource}`);
        return { allowed: true, reason: 'stub', role: 'allow' };
      },
    };
    assert.equal(checkOperation(stub, { op: 'rmdir', bucket: 'b', key: 'd' }), undefined);
    assert.deepEqual(seen, ['s3:DeleteObject arn:aws:s3:::b/d/']);
  });

  it('renders the README table', () => {
    const md = sftpS3ActionTableMarkdown();
    assert.match(md, /^\| SFTP operation \| S3 permission checked \|/);
    assert.match(
      md,
      /rename.*s3:GetObject on the source \+ s3:PutObject on the target \+ s3:DeleteObject on the source/,
    );
  });
});

describe('malformed documents are rejected with a readable message', () => {
  const cases: [string, unknown, RegExp][] = [
    ['not JSON', '{nope', /policy: not valid JSON/],
    ['not an object', '[1]', /policy: must be a JSON object, got an array/],
    ['bad Version', { Version: '2020-01-01', Statement: [] }, /Version must be "2012-10-17" or "2008-10-17"/],
    ['missing Statement', { Version: '2012-10-17' }, /Statement is missing/],
    ['unknown top-level field', { Statment: [] }, /unknown top-level field "Statment"/],
    ['statement not an object', { Statement: ['x'] }, /Statement\[0\]: must be an object, got string "x"/],
    [
      'bad Effect',
      { Statement: [{ Effect: 'allow', Action: '*', Resource: '*' }] },
      /Statement\[0\]: Effect must be "Allow" or "Deny", got string "allow"/,
    ],
    [
      'missing Effect',
      { Statement: [{ Action: '*', Resource: '*' }] },
      /Effect must be "Allow" or "Deny", got nothing/,
    ],
    [
      'Action and NotAction',
      { Statement: [{ Effect: 'Allow', Action: '*', NotAction: 's3:*', Resource: '*' }] },
      /Statement\[0\]: exactly one of Action or NotAction/,
    ],
    [
      'no Resource',
      { Statement: [{ Effect: 'Allow', Action: '*' }] },
      /exactly one of Resource or NotResource/,
    ],
    [
      'Action not a string',
      { Statement: [{ Effect: 'Allow', Action: ['s3:GetObject', 3], Resource: '*' }] },
      /Statement\[0\]: Action\[1\] must be a non-empty string, got number 3/,
    ],
    [
      'Action without service',
      { Statement: [{ Effect: 'Allow', Action: 'GetObject', Resource: '*' }] },
      /Action "GetObject" is not of the form service:Action/,
    ],
    [
      'Resource not an ARN',
      { Statement: [{ Effect: 'Allow', Action: '*', Resource: 'bucket/*' }] },
      /Resource "bucket\/\*" is not an ARN/,
    ],
    [
      'Principal',
      { Statement: [{ Effect: 'Allow', Principal: '*', Action: '*', Resource: '*' }] },
      /Principal is not allowed/,
    ],
    [
      'unknown operator, names statement and Sid',
      {
        Statement: [
          { Effect: 'Allow', Action: '*', Resource: '*' },
          {
            Sid: 'Two',
            Effect: 'Allow',
            Action: '*',
            Resource: '*',
            Condition: { StringSortOf: { 'k:x': 'v' } },
          },
        ],
      },
      /policy: Statement\[1\] \(Sid "Two"\): unknown or unsupported condition operator "StringSortOf"/,
    ],
    [
      'condition value object',
      {
        Statement: [
          { Effect: 'Allow', Action: '*', Resource: '*', Condition: { StringEquals: { 'k:x': { a: 1 } } } },
        ],
      },
      /Condition.StringEquals.k:x must be a string, number or boolean/,
    ],
    [
      'bad Null value',
      { Statement: [{ Effect: 'Allow', Action: '*', Resource: '*', Condition: { Null: { 'k:x': 'yes' } } }] },
      /"yes" must be "true" or "false"/,
    ],
    [
      'bad CIDR',
      {
        Statement: [
          {
            Effect: 'Allow',
            Action: '*',
            Resource: '*',
            Condition: { IpAddress: { 'aws:SourceIp': '10.0.0.0/99' } },
          },
        ],
      },
      /is not an IP address or CIDR block/,
    ],
    [
      'duplicate Sid',
      {
        Statement: [
          { Sid: 'A', Effect: 'Allow', Action: '*', Resource: '*' },
          { Sid: 'A', Effect: 'Deny', Action: '*', Resource: '*' },
        ],
      },
      /Statement\[1\]: duplicate Sid "A"/,
    ],
  ];
  for (const [name, doc, message] of cases) {
    it(name, () => {
      assert.throws(
        () => new PolicyEngine({ rolePolicies: [doc], variables: { userName: 'x' } }),
        (e: unknown) => e instanceof PolicyError && message.test(e.message),
      );
    });
  }
  it('accepts a single Statement object, string Action/Resource, and no Version', () => {
    const doc = parsePolicy({
      Statement: { Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/*' },
    });
    assert.equal(doc.version, undefined);
    assert.deepEqual(doc.statements[0]?.action, ['s3:GetObject']);
  });
});
