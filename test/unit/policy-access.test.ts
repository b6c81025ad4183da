// biome-ignore-all lint/suspicious/noTemplateCurlyInString: IAM policy variables are written as plain ${...} strings.
/**
 * The vfs -> S3 mapping under policies: which FsAction needs which S3 permission, the STAT rule, the
 * PERMISSION_DENIED message, and the config/user validation around policies.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { usersFromDocument } from '../../src/cli/import.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { UserValidationError, validateUser } from '../../src/config/users.js';
import { isGatewayError } from '../../src/errors.js';
import { roleSessionName } from '../../src/identity/credentials.js';
import { userFromResponse } from '../../src/identity/provider.js';
import { substitutedSessionPolicy } from '../../src/identity/session-access.js';
import { PolicyEngine } from '../../src/policy/index.js';
import type { FsAction } from '../../src/vfs/access.js';
import { decide, PolicyAccess } from '../../src/vfs/policy-access.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq4MZ1Q0tEL8mXFKiOhRJRFLmSHV1vGZ6eSLrm9GmgD test';

const role = {
  Version: '2012-10-17',
  Statement: [
    { Effect: 'Allow', Action: 's3:ListBucket', Resource: 'arn:aws:s3:::shared' },
    {
      Effect: 'Allow',
      Action: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      Resource: 'arn:aws:s3:::shared/*',
    },
  ],
};

// The user guide's per-user scope-down policy (`${transfer:UserName}` folders in one bucket).
const scopeDown = {
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'AllowListingOfUserFolder',
      Effect: 'Allow',
      Action: 's3:ListBucket',
      Resource: 'arn:aws:s3:::shared',
      Condition: { StringLike: { 's3:prefix': ['${transfer:UserName}/*', '${transfer:UserName}'] } },
    },
    {
      Sid: 'HomeDirObjectAccess',
      Effect: 'Allow',
      Action: ['s3:PutObject', 's3:GetObject', 's3:DeleteObject'],
      Resource: 'arn:aws:s3:::shared/${transfer:UserName}/*',
    },
  ],
};

const engine = new PolicyEngine({
  rolePolicies: [role],
  sessionPolicy: JSON.stringify(scopeDown),
  variables: { userName: 'alice', homeDirectory: '/shared/alice' },
});

describe('FsAction -> S3 checks under the role AND the per-user scope-down policy', () => {
  const table: [FsAction, string, boolean, string?][] = [
    ['list', 'alice', true],
    ['list', 'alice/sub', true],
    ['list', 'bob', false, 's3:ListBucket'],
    ['list', '', false, 's3:ListBucket'],
    ['read', 'alice/f', true],
    ['read', 'bob/f', false, 's3:GetObject'],
    ['write', 'alice/f', true],
    ['write', 'bob/f', false, 's3:PutObject'],
    ['write', 'alicex/f', false, 's3:PutObject'],
    ['delete', 'alice/f', true],
    ['delete', 'bob/f', false, 's3:DeleteObject'],
    ['mkdir', 'alice/new', true],
    ['mkdir', 'bob/new', false, 's3:PutObject'],
    ['rmdir', 'alice/new', true],
    ['rmdir', 'bob/new', false, 's3:DeleteObject'],
    // STAT: GetObject on the key, or ListBucket of key/ or of its parent.
    ['stat', 'alice', true],
    ['stat', 'alice/f', true],
    ['stat', 'bob', false],
    ['stat', 'bob/f', false],
    ['stat', '', false],
  ];
  for (const [action, key, allowed, s3Action] of table) {
    it(`${action} shared/${key}: ${allowed ? 'allowed' : 'denied'}`, () => {
      const denial = decide(engine, action, { bucket: 'shared', key });
      assert.equal(denial === undefined, allowed, denial?.reason);
      if (s3Action) assert.equal(denial?.action, s3Action);
    });
  }

  it('list sends s3:prefix dir/ and s3:delimiter /', () => {
    const seen: unknown[] = [];
    decide(
      {
        isAllowed: (action, resource, context) => {
          seen.push({ action, resource, context });
          return { allowed: true, reason: '', role: 'allow' };
        },
      },
      'list',
      { bucket: 'b', key: 'x/y' },
    );
    assert.deepEqual(seen, [
      {
        action: 's3:ListBucket',
        resource: 'arn:aws:s3:::b',
        context: { 's3:prefix': 'x/y/', 's3:delimiter': '/' },
      },
    ]);
  });

  it('mkdir and rmdir check the dir/ marker key', () => {
    for (const [action, s3] of [
      ['mkdir', 's3:PutObject'],
      ['rmdir', 's3:DeleteObject'],
    ] as const) {
      const seen: string[] = [];
      decide(
        {
          isAllowed: (a, r) => {
            seen.push(`${a} ${r}`);
            return { allowed: true, reason: '', role: 'allow' };
          },
        },
        action,
        { bucket: 'b', key: 'd' },
      );
      assert.deepEqual(seen, [`${s3} arn:aws:s3:::b/d/`]);
    }
  });

  it('a denial is PermissionDenied naming the action and the path, and is reported', () => {
    const denials: unknown[] = [];
    const access = new PolicyAccess(engine, (d) => denials.push(d));
    assert.throws(
      () => access.check('read', { bucket: 'shared', key: 'bob/secret' }, '/shared/bob/secret'),
      (e: unknown) =>
        isGatewayError(e, 'PermissionDenied') &&
        /s3:GetObject/.test(e.message) &&
        /\/shared\/bob\/secret/.test(e.message),
    );
    assert.equal(denials.length, 1);
    assert.equal(access.checksEachKey, true);
  });

  it('an explicit Deny in the role beats the scope-down Allow', () => {
    const e = new PolicyEngine({
      rolePolicies: [
        role,
        {
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Deny', Action: 's3:DeleteObject', Resource: 'arn:aws:s3:::shared/*/keep/*' },
          ],
        },
      ],
      sessionPolicy: scopeDown,
      variables: { userName: 'alice' },
    });
    assert.equal(decide(e, 'delete', { bucket: 'shared', key: 'alice/keep/x' })?.action, 's3:DeleteObject');
    assert.equal(decide(e, 'delete', { bucket: 'shared', key: 'alice/x' }), undefined);
  });
});

describe('user validation (CreateUser rules) and config policies', () => {
  it('validateUser returns the User with parsed keys', () => {
    const u = validateUser({
      UserName: 'carol',
      HomeDirectory: '/b/carol',
      SshPublicKeyBody: KEY,
      Policy: scopeDown,
    });
    assert.equal(u.keys.length, 1);
    assert.equal(u.UserName, 'carol');
  });

  it('validateUser lists every problem', () => {
    assert.throws(
      () => validateUser({ UserName: '-x', HomeDirectory: 'nope', Policy: '{"Statement": 3}', Bogus: 1 }),
      (e: unknown) => e instanceof UserValidationError && e.problems.length >= 3,
    );
    assert.throws(() => validateUser({ UserName: 'root', HomeDirectory: '/b/root' }), /root/);
  });

  it('a Policy above 2048 characters and a malformed policy are load errors with FILE:LINE:COL', () => {
    const big = {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Action: 's3:GetObject',
          Resource: Array.from({ length: 80 }, (_, i) => `arn:aws:s3:::bucket/${i}/*`),
        },
      ],
    };
    const tooBig = `users:
  - UserName: alice
    HomeDirectory: /b/alice
    Policy: ${JSON.stringify(JSON.stringify(big))}
`;
    assert.throws(
      () => parseConfig(tooBig, '/etc/gw.yaml'),
      /\/etc\/gw\.yaml:4:\d+: users\[0\]\.Policy: .*2048/,
    );
    const asObject = `users:
  - UserName: alice
    HomeDirectory: /b/alice
    Policy: ${JSON.stringify(big)}
`;
    assert.throws(
      () => parseConfig(asObject, '/etc/gw.yaml'),
      /\/etc\/gw\.yaml:4:\d+: users\[0\]\.Policy: at most 2048 characters/,
    );
    const yaml = `users:
  - UserName: bob
    HomeDirectory: /b/bob
    Policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Action: s3:GetObject
roles:
  - Arn: arn:aws:iam::000000000000:role/r
    Policies:
      - Version: "2012-10-17"
        Statement:
          - Effect: Maybe
            Action: "*"
            Resource: "*"
`;
    assert.throws(
      () => parseConfig(yaml, '/etc/gw.yaml'),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /\/etc\/gw\.yaml:5:\d+: users\[0\]\.Policy: .*Resource/);
        assert.match(e.message, /\/etc\/gw\.yaml:12:\d+: roles\[0\]\.Policies\[0\]: .*Effect/);
        return true;
      },
    );
  });

  it('roles, sts, identityProvider and sftpAuthenticationMethods load', () => {
    const c = parseConfig(
      `server: {sftpAuthenticationMethods: PUBLIC_KEY_AND_PASSWORD}
sts: {endpoint: "http://127.0.0.1:1", region: us-east-1}
identityProvider: {url: "http://127.0.0.1:2/auth", timeoutSeconds: 2}
roles:
  - Arn: arn:aws:iam::000000000000:role/sftp-users
    Policies: ['${JSON.stringify(role)}']
`,
      '/x.yaml',
    );
    assert.equal(c.roles.get('arn:aws:iam::000000000000:role/sftp-users')?.Policies.length, 1);
    assert.equal(c.server.sftpAuthenticationMethods, 'PUBLIC_KEY_AND_PASSWORD');
    assert.equal(c.identityProvider?.type, 'AWS_LAMBDA');
  });
});

describe('identity provider answers, session policy, import', () => {
  it('the AWS_LAMBDA shape becomes a LOGICAL user (HomeDirectoryDetails is a JSON string)', () => {
    const u = userFromResponse('dave', {
      Role: 'arn:aws:iam::000000000000:role/r',
      HomeDirectoryType: 'LOGICAL',
      HomeDirectoryDetails: JSON.stringify([{ Entry: '/', Target: '/b/${Transfer:UserName}' }]),
      PublicKeys: [KEY],
    });
    assert.equal(u.HomeDirectoryMappings?.[0]?.Target, '/b/${Transfer:UserName}');
    assert.equal(u.keys.length, 1);
  });

  it('the session policy for STS has the Transfer variables substituted; RoleSessionName fits 64', () => {
    const text = substitutedSessionPolicy(
      validateUser({ UserName: 'alice', HomeDirectory: '/shared/alice', Policy: scopeDown }),
    );
    assert.ok(text);
    assert.doesNotMatch(text, /transfer:/i);
    assert.match(text, /arn:aws:s3:::shared\/alice\/\*/);
    const name = roleSessionName('x'.repeat(100), '0123456789abcdef');
    assert.ok(name.length <= 64 && name.endsWith('.0123456789abcdef'));
  });

  it('describe-user output imports (keys flattened, Policy kept, Arn dropped)', () => {
    const r = usersFromDocument(
      {
        ServerId: 's-01234567890abcdef',
        User: {
          Arn: 'arn:aws:transfer:us-east-1:176354371281:user/s-01234567890abcdef/my_user',
          HomeDirectory: '/bucket_name/home/mydirectory',
          HomeDirectoryType: 'PATH',
          Policy: JSON.stringify(scopeDown),
          Role: 'arn:aws:iam::176354371281:role/AWS-Transfer-FTP',
          SshPublicKeys: [
            {
              DateImported: '2024-01-01T00:00:00Z',
              SshPublicKeyBody: KEY,
              SshPublicKeyId: 'key-0123456789abcdef0',
            },
          ],
          Tags: [{ Key: 'Group', Value: 'UserGroup1' }],
          UserName: 'my_user',
        },
      },
      'u.json',
    );
    assert.deepEqual(r.problems, []);
    assert.equal(r.users[0]?.['Arn'], undefined);
    assert.deepEqual(r.users[0]?.['SshPublicKeys'], [KEY]);
    assert.equal(typeof r.users[0]?.['Policy'], 'object');
  });
});
