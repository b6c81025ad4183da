// biome-ignore-all lint/suspicious/noTemplateCurlyInString: IAM policy variables are written as plain ${...} strings.
/**
 * Roles that are NOT defined under `roles:`: the real gateway process on the S3 store (Swift on loopback)
 * gets each session's credentials from STS AssumeRole, with the user's scope-down Policy (Transfer
 * variables substituted) as the session policy and RoleSessionName `<user>.<session-id>`.
 *
 * STS cannot run here (no AWS account, no network), so the test runs a local HTTP stand-in for STS: it
 * parses the AssumeRole request (Query protocol form body), records it, checks it, and answers with the
 * AssumeRoleResponse XML carrying credentials that the local Swift S3 API accepts (test:tester / testing,
 * plus a session token, which Swift's s3api signs over like any other x-amz-* header and otherwise
 * ignores). What the stand-in cannot show is AWS S3 enforcing the session policy; the gateway checks the
 * scope-down Policy itself as well, and that refusal is tested here.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import {
  makeKey,
  publicKey,
  startGateway,
  type TestGateway,
  tempDir,
} from '../support/gateway.js';
import { clearAwsEnv, type S3TestServer, startS3 } from '../support/s3.js';
import { listKeys, s3Storage, sdkClient } from '../support/s3-e2e.js';

clearAwsEnv();

const ROLE = 'arn:aws:iam::123456789012:role/not-local';
const DENIED_ROLE = 'arn:aws:iam::123456789012:role/not-allowed';
const SHORT_ROLE = 'arn:aws:iam::123456789012:role/short-lived';
/** The stand-in never answers for this one. */
const HANG_ROLE = 'arn:aws:iam::123456789012:role/sts-never-answers';

interface AssumeRoleCall {
  params: Record<string, string>;
  authorization: string;
  contentType: string;
}

/** The STS stand-in: records every request and answers per RoleArn. */
function startStsStandIn(calls: AssumeRoleCall[]): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => {
      const params = Object.fromEntries(new URLSearchParams(body));
      calls.push({
        params,
        authorization: String(req.headers['authorization'] ?? ''),
        contentType: String(req.headers['content-type'] ?? ''),
      });
      if (params['RoleArn'] === HANG_ROLE) return;
      const requestId = randomBytes(16).toString('hex');
      res.setHeader('content-type', 'text/xml');
      if (
        req.method !== 'POST' ||
        params['Action'] !== 'AssumeRole' ||
        params['Version'] !== '2011-06-15'
      ) {
        res.statusCode = 400;
        return res.end(stsError('InvalidAction', 'stand-in: not an AssumeRole request', requestId));
      }
      if (params['RoleArn'] === DENIED_ROLE) {
        res.statusCode = 403;
        return res.end(
          stsError(
            'AccessDenied',
            `User: arn:aws:iam::123456789012:user/gateway is not authorized to perform: sts:AssumeRole on resource: ${DENIED_ROLE}`,
            requestId,
          ),
        );
      }
      // short-lived: credentials already inside the gateway's refresh window (5 minutes before expiry).
      const lifetime = params['RoleArn'] === SHORT_ROLE ? 120 : Number(params['DurationSeconds'] ?? 3600);
      const expiration = new Date(Date.now() + lifetime * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
      const roleName = params['RoleArn']!.split('/').pop();
      res.end(`<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/${roleName}/${params['RoleSessionName']}</Arn>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:${params['RoleSessionName']}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>test:tester</AccessKeyId>
      <SecretAccessKey>testing</SecretAccessKey>
      <SessionToken>stand-in-session-token-${requestId}</SessionToken>
      <Expiration>${expiration}</Expiration>
    </Credentials>
    <PackedPolicySize>9</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>${requestId}</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>`);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function stsError(code: string, message: string, requestId: string): string {
  return `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>${code}</Code>
    <Message>${message}</Message>
  </Error>
  <RequestId>${requestId}</RequestId>
</ErrorResponse>`;
}

describe('roles not defined locally: STS AssumeRole with the scope-down Policy (S3 store, STS stand-in)', () => {
  let s3: S3TestServer;
  let gw: TestGateway;
  let sts: http.Server;
  let work: string;
  let key: string;
  const calls: AssumeRoleCall[] = [];
  const prefix = `sts-${randomBytes(4).toString('hex')}`;
  /** The per-user scope-down policy of the user guide, on a folder of the test bucket. */
  const scopeDown = JSON.stringify({
    Version: '2012-10-17',
    Statement: [
      {
        Sid: 'AllowListingOfUserFolder',
        Action: ['s3:ListBucket'],
        Effect: 'Allow',
        Resource: ['arn:aws:s3:::${transfer:HomeBucket}'],
        Condition: {
          StringLike: {
            's3:prefix': [`${prefix}/\${transfer:UserName}/*`, `${prefix}/\${transfer:UserName}`],
          },
        },
      },
      {
        Sid: 'HomeDirObjectAccess',
        Effect: 'Allow',
        Action: ['s3:PutObject', 's3:GetObject', 's3:DeleteObject', 's3:GetObjectVersion'],
        Resource: `arn:aws:s3:::\${Transfer:HomeBucket}/${prefix}/\${Transfer:UserName}/*`,
      },
    ],
  });
  const substituted = (user: string) =>
    scopeDown.replace(/\$\{transfer:UserName\}/gi, user).replace(/\$\{transfer:HomeBucket\}/gi, 'test');
  const callsFor = (role: string) => calls.filter((c) => c.params['RoleArn'] === role);
  const sftp = (user: string, commands: string) => gw.sftp(commands, { user, key });

  before(async () => {
    s3 = await startS3({ compat: true });
    sts = await startStsStandIn(calls);
    work = await tempDir('sts');
    key = await makeKey(work, 'user');
    const pub = await publicKey(key);
    const user = (name: string, role: string) => ({
      UserName: name,
      HomeDirectory: `/${s3.bucket}/${prefix}/${name}`,
      Role: role,
      Policy: scopeDown,
      SshPublicKeys: [pub],
    });
    gw = await startGateway({
      users: [
        user('stsuser', ROLE),
        user('stsdenied', DENIED_ROLE),
        user('stsshort', SHORT_ROLE),
        user('stshang', HANG_ROLE),
      ],
      config: {
        storage: s3Storage(s3),
        sts: {
          endpoint: `http://127.0.0.1:${(sts.address() as AddressInfo).port}`,
          region: 'us-east-1',
          durationSeconds: 900,
        },
        logging: { level: 'debug' },
      },
    });
    await writeFile(path.join(work, 'f'), 'assumed-role upload');
  });
  after(async () => {
    await gw?.stop();
    sts?.closeAllConnections();
    sts?.close();
    await s3?.stop();
  });

  test('login, upload and refusals with credentials from AssumeRole; one AssumeRole per session', async () => {
    const r = await sftp(
      'stsuser',
      `pwd\nput ${work}/f up.txt\nls -l\nmkdir d\nrmdir d\nget up.txt ${work}/back\n`,
    );
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}\n${gw.logs().slice(-4000)}`);
    assert.match(r.stdout, new RegExp(`Remote working directory: /test/${prefix}/stsuser`));

    // The upload is in the bucket, as seen with Swift's own credentials.
    const got = await sdkClient(s3).send(
      new GetObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/stsuser/up.txt` }),
    );
    assert.equal(await got.Body!.transformToString(), 'assumed-role upload');

    // Exactly one AssumeRole for this session, carrying the role, the session name and the session policy.
    const first = callsFor(ROLE);
    assert.equal(first.length, 1, JSON.stringify(calls, null, 1));
    const call = first[0]!;
    assert.equal(call.params['Action'], 'AssumeRole');
    assert.equal(call.params['Version'], '2011-06-15');
    assert.equal(call.params['RoleArn'], ROLE);
    assert.match(call.params['RoleSessionName']!, /^stsuser\.[0-9a-f]+$/);
    assert.equal(call.params['DurationSeconds'], '900');
    assert.equal(call.params['Policy'], substituted('stsuser'));
    assert.doesNotMatch(call.params['Policy']!, /\$\{/);
    assert.deepEqual(JSON.parse(call.params['Policy']!), JSON.parse(substituted('stsuser')));
    assert.match(call.contentType, /^application\/x-www-form-urlencoded/);
    // Signed (SigV4, service sts, the configured region) with the gateway's own storage credentials.
    assert.match(call.authorization, /^AWS4-HMAC-SHA256 Credential=test:tester\/\d{8}\/us-east-1\/sts\/aws4_request/);
    const sessionId = call.params['RoleSessionName']!.split('.')[1];
    assert.ok(
      gw.logLines().some((l) => l['session-id'] === sessionId && l['user'] === 'stsuser'),
      'the RoleSessionName carries the session id of the log',
    );
    assert.ok(
      gw.logLines().some((l) => l['msg'] === 'access for this session' && l['access'] === 'assumed-role'),
    );

    // A second login is a new session: its own AssumeRole (RoleSessionName names the session, as in
    // the managed service), the same policy. Credentials are cached per session, not across logins.
    const again = await sftp('stsuser', 'ls\n');
    assert.equal(again.code, 0, again.stderr);
    const second = callsFor(ROLE);
    assert.equal(second.length, 2, 'one AssumeRole per session, however many S3 requests it makes');
    assert.notEqual(second[1]!.params['RoleSessionName'], call.params['RoleSessionName']);
    assert.match(second[1]!.params['RoleSessionName']!, /^stsuser\.[0-9a-f]+$/);
    assert.equal(second[1]!.params['Policy'], substituted('stsuser'));

    // Outside the scope-down policy: refused by the gateway with Permission denied, nothing written.
    const outside = await sftp('stsuser', `put ${work}/f /test/${prefix}/other/planted\n`);
    assert.notEqual(outside.code, 0, outside.stdout);
    assert.match(outside.stderr, /Permission denied/);
    const cdOutside = await sftp('stsuser', `cd /test/${prefix}/other\n`);
    assert.notEqual(cdOutside.code, 0);
    assert.match(cdOutside.stderr, /Permission denied/);
    // sftp's ls globs first and reports a refused glob as "not found".
    const lsOutside = await sftp('stsuser', `ls /test/${prefix}/other\n`);
    assert.notEqual(lsOutside.code, 0);
    assert.match(lsOutside.stderr, /Permission denied|not found/);
    assert.deepEqual(await listKeys(sdkClient(s3), s3.bucket, `${prefix}/other/`), []);
    assert.ok(
      gw
        .logLines()
        .some((l) => l['msg'] === `permission denied: s3:PutObject on /test/${prefix}/other/planted`),
    );
  });

  test('credentials inside the refresh window are renewed, under the same RoleSessionName', async () => {
    const r = await sftp('stsshort', `put ${work}/f a\nput ${work}/f b\nls\n`);
    assert.equal(r.code, 0, r.stderr);
    const short = callsFor(SHORT_ROLE);
    assert.ok(short.length > 1, `expiring credentials are renewed (${short.length} calls)`);
    assert.equal(new Set(short.map((c) => c.params['RoleSessionName'])).size, 1);
    assert.match(short[0]!.params['RoleSessionName']!, /^stsshort\.[0-9a-f]+$/);
    assert.equal(short[0]!.params['Policy'], substituted('stsshort'));
  });

  test('an STS error refuses the session quickly, with the reason in the log', async (t) => {
    const t0 = Date.now();
    const r = await sftp('stsdenied', 'ls\n');
    const elapsed = Date.now() - t0;
    assert.notEqual(r.code, 0, r.stdout);
    assert.ok(elapsed < 30_000, `refused in ${elapsed} ms`);
    const denied = callsFor(DENIED_ROLE);
    assert.equal(denied.length, 1, 'AccessDenied is not retried');
    assert.match(denied[0]!.params['RoleSessionName']!, /^stsdenied\.[0-9a-f]+$/);
    const line = gw
      .logLines()
      .find((l) => l['user'] === 'stsdenied' && l['msg'] === 'cannot start SFTP session');
    assert.ok(line, gw.logs().slice(-4000));
    t.diagnostic(`log: ${String(line['err'])}; client: ${r.stderr.trim()}`);
    assert.ok(String(line['err']).includes(`STS AssumeRole of ${DENIED_ROLE} failed`), String(line['err']));
    assert.match(String(line['err']), /AccessDenied: .*not authorized to perform: sts:AssumeRole/);
    // The client is told too (the subsystem's stderr), then the channel closes.
    assert.match(r.stderr, /STS AssumeRole of .* failed/);
  });

  test('an STS endpoint that never answers refuses the session within the STS timeouts', async (t) => {
    const t0 = Date.now();
    const r = await sftp('stshang', 'ls\n');
    const elapsed = Date.now() - t0;
    t.diagnostic(`refused after ${elapsed} ms, ${callsFor(HANG_ROLE).length} AssumeRole attempts`);
    assert.notEqual(r.code, 0, r.stdout);
    assert.ok(elapsed < 90_000, `refused in ${elapsed} ms`);
    assert.ok(callsFor(HANG_ROLE).length >= 1);
    const line = gw
      .logLines()
      .find((l) => l['user'] === 'stshang' && l['msg'] === 'cannot start SFTP session');
    assert.ok(line, gw.logs().slice(-4000));
    assert.ok(String(line['err']).includes(`STS AssumeRole of ${HANG_ROLE} failed`), String(line['err']));
  });
});
