// biome-ignore-all lint/suspicious/noTemplateCurlyInString: IAM policy variables are written as plain ${...} strings.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compilePolicy,
  type Decision,
  evaluate,
  type RequestContext,
  s3BucketArn,
  s3ObjectArn,
  type TransferVariables,
} from '../../src/policy/index.js';

type Case = [name: string, action: string, resource: string, context: RequestContext, expected: Decision];

function runTable(policy: unknown, variables: TransferVariables | undefined, cases: Case[]) {
  const compiled = compilePolicy(policy, { variables });
  for (const [name, action, resource, context, expected] of cases) {
    it(name, () => assert.equal(evaluate([compiled], { action, resource, context }), expected));
  }
}

const list = (_bucket: string, prefix: string): RequestContext => ({
  's3:prefix': prefix,
  's3:delimiter': '/',
});

// The session policy of the AWS Transfer user guide, "Creating a session policy for an Amazon S3 bucket".
const docsSessionPolicy = {
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'AllowListingOfUserFolder',
      Action: ['s3:ListBucket'],
      Effect: 'Allow',
      Resource: ['arn:aws:s3:::${transfer:HomeBucket}'],
      Condition: { StringLike: { 's3:prefix': ['${transfer:HomeFolder}/*', '${transfer:HomeFolder}'] } },
    },
    {
      Sid: 'HomeDirObjectAccess',
      Effect: 'Allow',
      Action: [
        's3:PutObject',
        's3:GetObject',
        's3:DeleteObject',
        's3:DeleteObjectVersion',
        's3:GetObjectVersion',
        's3:GetObjectACL',
        's3:PutObjectACL',
      ],
      Resource: 'arn:aws:s3:::${transfer:HomeDirectory}*',
    },
  ],
};

describe('AWS docs session policy, HomeDirectory with trailing slash (as the docs assume)', () => {
  runTable(docsSessionPolicy, { userName: 'alice', homeDirectory: '/bucket/home/alice/' }, [
    ['list own home', 's3:ListBucket', s3BucketArn('bucket'), list('bucket', 'home/alice/'), 'allow'],
    [
      'list own subfolder',
      's3:ListBucket',
      s3BucketArn('bucket'),
      list('bucket', 'home/alice/sub/'),
      'allow',
    ],
    [
      'list own home without slash',
      's3:ListBucket',
      s3BucketArn('bucket'),
      list('bucket', 'home/alice'),
      'allow',
    ],
    [
      'list another user',
      's3:ListBucket',
      s3BucketArn('bucket'),
      list('bucket', 'home/bob/'),
      'implicit-deny',
    ],
    ['list the parent', 's3:ListBucket', s3BucketArn('bucket'), list('bucket', 'home/'), 'implicit-deny'],
    ['list the root', 's3:ListBucket', s3BucketArn('bucket'), list('bucket', ''), 'implicit-deny'],
    ['list without prefix key', 's3:ListBucket', s3BucketArn('bucket'), {}, 'implicit-deny'],
    [
      'list another bucket',
      's3:ListBucket',
      s3BucketArn('other'),
      list('other', 'home/alice/'),
      'implicit-deny',
    ],
    ['read own file', 's3:GetObject', s3ObjectArn('bucket', 'home/alice/a.txt'), {}, 'allow'],
    ['write deep file', 's3:PutObject', s3ObjectArn('bucket', 'home/alice/x/y/z.bin'), {}, 'allow'],
    ['delete own file', 's3:DeleteObject', s3ObjectArn('bucket', 'home/alice/a.txt'), {}, 'allow'],
    ['action name in another case', 's3:getobject', s3ObjectArn('bucket', 'home/alice/a.txt'), {}, 'allow'],
    ['ACL action in docs case', 's3:GetObjectAcl', s3ObjectArn('bucket', 'home/alice/a.txt'), {}, 'allow'],
    ['read another user', 's3:GetObject', s3ObjectArn('bucket', 'home/bob/a.txt'), {}, 'implicit-deny'],
    [
      'read alice2 (prefix sibling)',
      's3:GetObject',
      s3ObjectArn('bucket', 'home/alice2/a.txt'),
      {},
      'implicit-deny',
    ],
    ['unlisted action', 's3:PutBucketPolicy', s3BucketArn('bucket'), {}, 'implicit-deny'],
    ['resource case differs', 's3:GetObject', s3ObjectArn('bucket', 'Home/alice/a.txt'), {}, 'implicit-deny'],
  ]);
});

describe('AWS docs session policy, HomeDirectory without trailing slash (the caveat the docs warn about)', () => {
  runTable(docsSessionPolicy, { userName: 'alice', homeDirectory: '/bucket/home/alice' }, [
    ['list own home', 's3:ListBucket', s3BucketArn('bucket'), list('bucket', 'home/alice/'), 'allow'],
    ['read own file', 's3:GetObject', s3ObjectArn('bucket', 'home/alice/a.txt'), {}, 'allow'],
    // `${transfer:HomeDirectory}*` becomes `bucket/home/alice*`, which also covers alice2's objects.
    ['alice2 objects are reachable', 's3:GetObject', s3ObjectArn('bucket', 'home/alice2/a.txt'), {}, 'allow'],
    [
      'alice2 listing is not',
      's3:ListBucket',
      s3BucketArn('bucket'),
      list('bucket', 'home/alice2/'),
      'implicit-deny',
    ],
  ]);
});

describe('the scope-down policy of the older user guide page (Optional_path and HomeBucket/HomeFolder)', () => {
  const policy = {
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'AllowListingOfUserFolder',
        Action: ['s3:ListBucket'],
        Effect: 'Allow',
        Resource: ['arn:aws:s3:::${transfer:HomeBucket}'],
        Condition: { StringLike: { 's3:prefix': ['${transfer:HomeFolder}/*', '${transfer:HomeFolder}'] } },
      },
      {
        Sid: 'AllowReadWriteToUserFolder',
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:GetObjectVersion'],
        // Written in mixed case on purpose: IAM matches variable names case-insensitively.
        Resource: 'arn:aws:s3:::${Transfer:HOMEBUCKET}/${transfer:homefolder}/*',
      },
    ],
  };
  runTable(policy, { userName: 'bob', homeDirectory: '/data/users/bob' }, [
    ['list home', 's3:ListBucket', s3BucketArn('data'), list('data', 'users/bob/'), 'allow'],
    ['read', 's3:GetObject', s3ObjectArn('data', 'users/bob/f'), {}, 'allow'],
    ['read sibling', 's3:GetObject', s3ObjectArn('data', 'users/bobby/f'), {}, 'implicit-deny'],
    ['variable names are case-insensitive', 's3:PutObject', s3ObjectArn('data', 'users/bob/g'), {}, 'allow'],
  ]);
});

describe('per-user folder policy with ${transfer:UserName}', () => {
  const policy = {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: 'arn:aws:s3:::shared',
        Condition: { StringLike: { 's3:prefix': ['${Transfer:UserName}/*', '${TRANSFER:USERNAME}'] } },
      },
      {
        Effect: 'Allow',
        Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
        Resource: 'arn:aws:s3:::shared/${transfer:UserName}/*',
      },
    ],
  };
  runTable(policy, { userName: 'carol', homeDirectory: '/shared/carol' }, [
    ['own folder', 's3:PutObject', s3ObjectArn('shared', 'carol/report.csv'), {}, 'allow'],
    ['other folder', 's3:PutObject', s3ObjectArn('shared', 'dave/report.csv'), {}, 'implicit-deny'],
    ['list own', 's3:ListBucket', s3BucketArn('shared'), list('shared', 'carol/'), 'allow'],
    ['list other', 's3:ListBucket', s3BucketArn('shared'), list('shared', 'dave/'), 'implicit-deny'],
  ]);
});

describe('IAM edge cases', () => {
  describe('explicit deny beats allow, in any order', () => {
    runTable(
      {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Deny', Action: 's3:DeleteObject', Resource: 'arn:aws:s3:::b/locked/*' },
          { Effect: 'Allow', Action: 's3:*', Resource: '*' },
        ],
      },
      undefined,
      [
        ['denied', 's3:DeleteObject', s3ObjectArn('b', 'locked/x'), {}, 'deny'],
        ['allowed elsewhere', 's3:DeleteObject', s3ObjectArn('b', 'free/x'), {}, 'allow'],
        ['other action', 's3:GetObject', s3ObjectArn('b', 'locked/x'), {}, 'allow'],
      ],
    );
    it('across policies too', () => {
      const allow = compilePolicy({ Statement: { Effect: 'Allow', Action: '*', Resource: '*' } });
      const deny = compilePolicy({ Statement: { Effect: 'Deny', Action: 's3:Get*', Resource: '*' } });
      assert.equal(evaluate([allow, deny], { action: 's3:GetObject', resource: 'arn:aws:s3:::b/k' }), 'deny');
      assert.equal(evaluate([deny, allow], { action: 's3:GetObject', resource: 'arn:aws:s3:::b/k' }), 'deny');
      assert.equal(evaluate([], { action: 's3:GetObject', resource: 'arn:aws:s3:::b/k' }), 'implicit-deny');
    });
  });

  describe('NotAction and NotResource', () => {
    runTable(
      {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', NotAction: ['s3:Delete*', 's3:PutBucket*'], Resource: 'arn:aws:s3:::b/*' },
          {
            Effect: 'Deny',
            Action: 's3:PutObject',
            NotResource: ['arn:aws:s3:::b/inbox/*', 'arn:aws:s3:::b/tmp/?'],
          },
        ],
      },
      undefined,
      [
        ['NotAction allows get', 's3:GetObject', s3ObjectArn('b', 'x'), {}, 'allow'],
        ['NotAction excludes delete', 's3:DeleteObject', s3ObjectArn('b', 'x'), {}, 'implicit-deny'],
        ['NotAction case-insensitive', 's3:deleteobject', s3ObjectArn('b', 'x'), {}, 'implicit-deny'],
        ['NotResource exempts inbox', 's3:PutObject', s3ObjectArn('b', 'inbox/f'), {}, 'allow'],
        ['NotResource ? matches one char', 's3:PutObject', s3ObjectArn('b', 'tmp/1'), {}, 'allow'],
        ['NotResource ? not two', 's3:PutObject', s3ObjectArn('b', 'tmp/12'), {}, 'deny'],
        ['deny outside', 's3:PutObject', s3ObjectArn('b', 'outbox/f'), {}, 'deny'],
      ],
    );
  });

  describe('wildcards in the middle of ARNs, crossing slashes', () => {
    runTable(
      {
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/*/reports/*.csv' }],
      },
      undefined,
      [
        ['one level', 's3:GetObject', s3ObjectArn('b', 'acme/reports/q1.csv'), {}, 'allow'],
        ['several levels', 's3:GetObject', s3ObjectArn('b', 'eu/acme/reports/2024/q1.csv'), {}, 'allow'],
        ['wrong suffix', 's3:GetObject', s3ObjectArn('b', 'acme/reports/q1.txt'), {}, 'implicit-deny'],
        [
          'regex metacharacters are literal',
          's3:GetObject',
          s3ObjectArn('b', 'a/reports/x(1).csv'),
          {},
          'allow',
        ],
        ['other bucket', 's3:GetObject', s3ObjectArn('c', 'acme/reports/q1.csv'), {}, 'implicit-deny'],
      ],
    );
  });

  describe('missing condition keys, negated operators and IfExists', () => {
    runTable(
      {
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'Eq',
            Effect: 'Allow',
            Action: 'test:Eq',
            Resource: '*',
            Condition: { StringEquals: { 'k:x': 'v' } },
          },
          {
            Sid: 'Ne',
            Effect: 'Allow',
            Action: 'test:Ne',
            Resource: '*',
            Condition: { StringNotEquals: { 'k:x': ['v', 'w'] } },
          },
          {
            Sid: 'IfEx',
            Effect: 'Allow',
            Action: 'test:IfEx',
            Resource: '*',
            Condition: { StringLikeIfExists: { 'k:x': 'a*' } },
          },
          {
            Sid: 'NullT',
            Effect: 'Allow',
            Action: 'test:NullT',
            Resource: '*',
            Condition: { Null: { 'k:x': 'true' } },
          },
          {
            Sid: 'NullF',
            Effect: 'Allow',
            Action: 'test:NullF',
            Resource: '*',
            Condition: { Null: { 'k:x': false } },
          },
          {
            Sid: 'And',
            Effect: 'Allow',
            Action: 'test:And',
            Resource: '*',
            Condition: { StringEquals: { 'k:x': '1', 'k:y': '2' }, StringLike: { 'k:z': '*' } },
          },
          {
            Sid: 'Ic',
            Effect: 'Allow',
            Action: 'test:Ic',
            Resource: '*',
            Condition: { StringEqualsIgnoreCase: { 'k:x': 'MiXeD' } },
          },
        ],
      },
      undefined,
      [
        ['StringEquals, key missing -> no match', 'test:Eq', 'arn:x', {}, 'implicit-deny'],
        [
          'StringEquals, key undefined -> no match',
          'test:Eq',
          'arn:x',
          { 'k:x': undefined },
          'implicit-deny',
        ],
        ['StringEquals, key present', 'test:Eq', 'arn:x', { 'k:x': 'v' }, 'allow'],
        ['condition keys are case-insensitive', 'test:Eq', 'arn:x', { 'K:X': 'v' }, 'allow'],
        ['condition values are case-sensitive', 'test:Eq', 'arn:x', { 'k:x': 'V' }, 'implicit-deny'],
        ['StringNotEquals, key missing -> matches', 'test:Ne', 'arn:x', {}, 'allow'],
        ['StringNotEquals, equal to one value', 'test:Ne', 'arn:x', { 'k:x': 'w' }, 'implicit-deny'],
        ['StringNotEquals, equal to none', 'test:Ne', 'arn:x', { 'k:x': 'z' }, 'allow'],
        ['IfExists, key missing', 'test:IfEx', 'arn:x', {}, 'allow'],
        ['IfExists, key present and like', 'test:IfEx', 'arn:x', { 'k:x': 'abc' }, 'allow'],
        ['IfExists, key present and unlike', 'test:IfEx', 'arn:x', { 'k:x': 'bc' }, 'implicit-deny'],
        ['Null true, missing', 'test:NullT', 'arn:x', {}, 'allow'],
        ['Null true, present', 'test:NullT', 'arn:x', { 'k:x': '' }, 'implicit-deny'],
        ['Null false, present', 'test:NullF', 'arn:x', { 'k:x': 'a' }, 'allow'],
        ['Null false, missing', 'test:NullF', 'arn:x', {}, 'implicit-deny'],
        ['keys and operators are ANDed', 'test:And', 'arn:x', { 'k:x': '1', 'k:y': '2', 'k:z': '' }, 'allow'],
        [
          'one key fails -> no match',
          'test:And',
          'arn:x',
          { 'k:x': '1', 'k:y': '3', 'k:z': '' },
          'implicit-deny',
        ],
        ['one key missing -> no match', 'test:And', 'arn:x', { 'k:x': '1', 'k:y': '2' }, 'implicit-deny'],
        ['StringEqualsIgnoreCase', 'test:Ic', 'arn:x', { 'k:x': 'mixed' }, 'allow'],
      ],
    );
  });

  describe('a Deny with a negated operator fires when the key is absent', () => {
    runTable(
      {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::b' },
          {
            Effect: 'Deny',
            Action: 's3:ListBucket',
            Resource: 'arn:aws:s3:::b',
            Condition: { StringNotLike: { 's3:prefix': 'pub/*' } },
          },
        ],
      },
      undefined,
      [
        ['prefix inside', 's3:ListBucket', s3BucketArn('b'), list('b', 'pub/x/'), 'allow'],
        ['prefix outside', 's3:ListBucket', s3BucketArn('b'), list('b', 'priv/'), 'deny'],
        ['no prefix key', 's3:ListBucket', s3BucketArn('b'), {}, 'deny'],
      ],
    );
  });

  describe('ForAnyValue / ForAllValues', () => {
    runTable(
      {
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: 'test:Any',
            Resource: '*',
            Condition: { 'ForAnyValue:StringEquals': { 'k:tags': ['a', 'b'] } },
          },
          {
            Effect: 'Allow',
            Action: 'test:All',
            Resource: '*',
            Condition: { 'ForAllValues:StringLike': { 'k:tags': ['a*'] } },
          },
        ],
      },
      undefined,
      [
        ['any: one matches', 'test:Any', 'arn:x', { 'k:tags': ['z', 'b'] }, 'allow'],
        ['any: none', 'test:Any', 'arn:x', { 'k:tags': ['z'] }, 'implicit-deny'],
        ['any: missing', 'test:Any', 'arn:x', {}, 'implicit-deny'],
        ['all: every one', 'test:All', 'arn:x', { 'k:tags': ['a1', 'a2'] }, 'allow'],
        ['all: one fails', 'test:All', 'arn:x', { 'k:tags': ['a1', 'b'] }, 'implicit-deny'],
        ['all: missing is vacuously true', 'test:All', 'arn:x', {}, 'allow'],
      ],
    );
  });

  describe('other operators', () => {
    runTable(
      {
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: 'test:Ip',
            Resource: '*',
            Condition: { IpAddress: { 'aws:SourceIp': ['10.0.0.0/8', '2001:db8::/32'] } },
          },
          {
            Effect: 'Allow',
            Action: 'test:Num',
            Resource: '*',
            Condition: { NumericLessThanEquals: { 'k:n': '10' } },
          },
          {
            Effect: 'Allow',
            Action: 'test:Bool',
            Resource: '*',
            Condition: { Bool: { 'aws:SecureTransport': true } },
          },
          {
            Effect: 'Allow',
            Action: 'test:Date',
            Resource: '*',
            Condition: { DateLessThan: { 'aws:CurrentTime': '2030-01-01T00:00:00Z' } },
          },
          {
            Effect: 'Allow',
            Action: 'test:Arn',
            Resource: '*',
            Condition: { ArnLike: { 'aws:SourceArn': 'arn:aws:s3:::b*' } },
          },
        ],
      },
      undefined,
      [
        ['ip inside', 'test:Ip', 'arn:x', { 'aws:SourceIp': '10.1.2.3' }, 'allow'],
        ['ipv6 inside', 'test:Ip', 'arn:x', { 'aws:SourceIp': '2001:db8::1' }, 'allow'],
        ['ip outside', 'test:Ip', 'arn:x', { 'aws:SourceIp': '192.168.1.1' }, 'implicit-deny'],
        ['not an ip', 'test:Ip', 'arn:x', { 'aws:SourceIp': 'nope' }, 'implicit-deny'],
        ['numeric', 'test:Num', 'arn:x', { 'k:n': '7' }, 'allow'],
        ['numeric over', 'test:Num', 'arn:x', { 'k:n': '11' }, 'implicit-deny'],
        ['bool', 'test:Bool', 'arn:x', { 'aws:SecureTransport': 'true' }, 'allow'],
        ['bool false', 'test:Bool', 'arn:x', { 'aws:SecureTransport': 'false' }, 'implicit-deny'],
        ['date', 'test:Date', 'arn:x', { 'aws:CurrentTime': '2026-05-01T00:00:00Z' }, 'allow'],
        ['date after', 'test:Date', 'arn:x', { 'aws:CurrentTime': '2031-05-01T00:00:00Z' }, 'implicit-deny'],
        ['arn', 'test:Arn', 'arn:x', { 'aws:SourceArn': 'arn:aws:s3:::bucket' }, 'allow'],
        ['arn other', 'test:Arn', 'arn:x', { 'aws:SourceArn': 'arn:aws:s3:::other' }, 'implicit-deny'],
      ],
    );
  });

  describe('request-context variables, defaults and escapes', () => {
    runTable(
      {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Action: 'test:Var', Resource: 'arn:aws:s3:::b/${aws:PrincipalTag/team}/*' },
          {
            Effect: 'Allow',
            Action: 'test:Default',
            Resource: 'arn:aws:s3:::b-${aws:PrincipalTag/team, \'company-wide\'}',
          },
          { Effect: 'Allow', Action: 'test:Star', Resource: 'arn:aws:s3:::b/literal${*}star' },
          {
            Effect: 'Deny',
            Action: 'test:Var',
            Resource: '*',
            Condition: { StringNotEquals: { 'k:team': '${aws:PrincipalTag/team}' } },
          },
        ],
      },
      undefined,
      [
        [
          'variable from context',
          'test:Var',
          s3ObjectArn('b', 'red/x'),
          { 'aws:PrincipalTag/team': 'red', 'k:team': 'red' },
          'allow',
        ],
        [
          'variable value is literal, not a wildcard',
          'test:Var',
          s3ObjectArn('b', 'red/x'),
          { 'aws:principaltag/team': '*', 'k:team': '*' },
          'implicit-deny',
        ],
        [
          'no value: resource matches nothing, negated condition matches (deny)',
          'test:Var',
          s3ObjectArn('b', 'red/x'),
          { 'k:team': 'red' },
          'deny',
        ],
        ['default value used', 'test:Default', s3BucketArn('b-company-wide'), {}, 'allow'],
        [
          'default not used when present',
          'test:Default',
          s3BucketArn('b-blue'),
          { 'aws:PrincipalTag/team': 'blue' },
          'allow',
        ],
        ['${*} is a literal star', 'test:Star', s3ObjectArn('b', 'literal*star'), {}, 'allow'],
        ['${*} is not a wildcard', 'test:Star', s3ObjectArn('b', 'literalXstar'), {}, 'implicit-deny'],
      ],
    );
    it('variables are literal text in a 2008-10-17 document, except the Transfer ones', () => {
      const p = compilePolicy(
        {
          Version: '2008-10-17',
          Statement: [
            { Effect: 'Allow', Action: 's3:GetObject', Resource: 'arn:aws:s3:::b/${aws:username}/*' },
            { Effect: 'Allow', Action: 's3:PutObject', Resource: 'arn:aws:s3:::b/${transfer:UserName}/*' },
          ],
        },
        { variables: { userName: 'eve' } },
      );
      const ctx = { 'aws:username': 'eve' };
      assert.equal(
        evaluate([p], { action: 's3:GetObject', resource: 'arn:aws:s3:::b/eve/k', context: ctx }),
        'implicit-deny',
      );
      assert.equal(
        evaluate([p], { action: 's3:GetObject', resource: 'arn:aws:s3:::b/${aws:username}/k' }),
        'allow',
      );
      assert.equal(evaluate([p], { action: 's3:PutObject', resource: 'arn:aws:s3:::b/eve/k' }), 'allow');
    });
  });

  it('accepts the policy as a JSON string, as CreateUser takes it', () => {
    const p = compilePolicy(JSON.stringify(docsSessionPolicy), {
      variables: { userName: 'alice', homeDirectory: '/bucket/home/alice/' },
    });
    assert.equal(
      evaluate([p], { action: 's3:GetObject', resource: s3ObjectArn('bucket', 'home/alice/f') }),
      'allow',
    );
    assert.equal(
      evaluate([p], { action: 's3:GetObject', resource: s3ObjectArn('bucket', 'home/bob/f') }),
      'implicit-deny',
    );
  });
});
