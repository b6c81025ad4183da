import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CreateUserCommand,
  DeleteUserCommand,
  DescribeServerCommand,
  DescribeUserCommand,
  ImportSshPublicKeyCommand,
  ListServersCommand,
  ListUsersCommand,
  type TransferClient,
  UpdateUserCommand,
} from '@aws-sdk/client-transfer';
import {
  launch,
  makeKey,
  publicKey,
  startGateway,
  type TestGateway,
  tempDir,
} from '../support/gateway.js';
import {
  ADMIN,
  apiConfig,
  apiPort,
  cli,
  rawCall,
  sdkClient,
} from '../support/transfer-api.js';

/**
 * The user API end to end with the real clients: @aws-sdk/client-transfer and the aws CLI (Debian's
 * awscli) pointed at the gateway with --endpoint-url, and OpenSSH sftp logging in as the users they make.
 */

const ROLE = 'arn:aws:iam::176354371281:role/transfer-s3-access';

async function sdkError(
  p: Promise<unknown>,
): Promise<Error & { name: string; $metadata: { httpStatusCode?: number } }> {
  try {
    await p;
  } catch (e) {
    return e as Error & {
      name: string;
      $metadata: { httpStatusCode?: number };
    };
  }
  assert.fail('expected the call to fail');
}

describe('user API (file store): aws CLI and SDK against the gateway', () => {
  let gw: TestGateway;
  let endpoint: string;
  let port: number;
  let sdk: TransferClient;
  let serverId: string;
  let key1: string;
  let key2: string;

  before(async () => {
    gw = await startGateway({ config: { api: apiConfig() } });
    port = await apiPort(gw);
    endpoint = `http://127.0.0.1:${port}`;
    sdk = sdkClient(endpoint);
    key1 = await makeKey(gw.dir, 'my_user_key1');
    key2 = await makeKey(gw.dir, 'my_user_key2', 'ecdsa');
    // The docs sample's home bucket; a local store has a folder per bucket.
    await mkdir(path.join(gw.dir, 'data', 'bucket_name'), { recursive: true });
  });

  after(async () => {
    sdk?.destroy();
    await gw?.stop();
  });

  test('list-servers and describe-server name one stable server', async () => {
    const r = await cli(endpoint, ['list-servers']);
    assert.equal(r.code, 0, r.stderr);
    const servers = r.json!['Servers'] as Record<string, unknown>[];
    assert.equal(servers.length, 1);
    serverId = servers[0]!['ServerId'] as string;
    assert.match(serverId, /^s-[0-9a-f]{17}$/);
    assert.equal(
      servers[0]!['Arn'],
      `arn:aws:transfer:us-east-1:000000000000:server/${serverId}`,
    );
    const d = await sdk.send(new DescribeServerCommand({ ServerId: serverId }));
    assert.equal(d.Server?.State, 'ONLINE');
    assert.deepEqual(d.Server?.Protocols, ['SFTP']);
    assert.equal(d.Server?.IdentityProviderType, 'SERVICE_MANAGED');
    assert.match(d.Server?.HostKeyFingerprint ?? '', /^SHA256:/);
    assert.equal(d.Server?.UserCount, 1);
    assert.equal(
      (await readFile(path.join(gw.dir, 'state', 'server-id'), 'utf8')).trim(),
      serverId,
    );
    const unknown = await sdkError(
      sdk.send(new DescribeServerCommand({ ServerId: 's-0123456789abcdef0' })),
    );
    assert.equal(unknown.name, 'ResourceNotFoundException');
    assert.equal(unknown.$metadata.httpStatusCode, 404);
  });

  test('create-user with the docs\' sample request, then log in with sftp', async () => {
    // The CreateUser sample request of the API reference, with this server's id and a fresh key.
    const request = {
      HomeDirectory: '/bucket_name/home/mydirectory',
      HomeDirectoryType: 'PATH',
      Role: ROLE,
      ServerId: serverId,
      SshPublicKeyBody: await publicKey(key1),
      Tags: [{ Key: 'Group', Value: 'Admins' }],
      UserName: 'my_user',
    };
    const file = path.join(gw.dir, 'create-user.json');
    await writeFile(file, JSON.stringify(request));
    const r = await cli(endpoint, [
      'create-user',
      '--cli-input-json',
      `file://${file}`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.json, { ServerId: serverId, UserName: 'my_user' });

    const again = await cli(endpoint, [
      'create-user',
      '--cli-input-json',
      `file://${file}`,
    ]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /ResourceExistsException/);

    await writeFile(path.join(gw.dir, 'hello.txt'), 'hello from my_user\n');
    const s = await gw.sftp(
      `pwd\nput ${path.join(gw.dir, 'hello.txt')} hello.txt\nls\n`,
      {
        user: 'my_user',
        key: key1,
      },
    );
    assert.equal(s.code, 0, s.stderr);
    assert.match(
      s.stdout,
      /Remote working directory: \/bucket_name\/home\/mydirectory/,
    );
    assert.equal(
      await readFile(
        path.join(
          gw.dir,
          'data',
          'bucket_name',
          'home',
          'mydirectory',
          'hello.txt',
        ),
        'utf8',
      ),
      'hello from my_user\n',
    );
    const stored = JSON.parse(
      await readFile(path.join(gw.dir, 'state', 'users.json'), 'utf8'),
    );
    assert.deepEqual(
      stored.users.map((u: { UserName: string }) => u.UserName),
      ['my_user'],
    );
  });

  test('import a second key, delete the first: only the second logs in', async () => {
    const imported = await sdk.send(
      new ImportSshPublicKeyCommand({
        ServerId: serverId,
        UserName: 'my_user',
        SshPublicKeyBody: await publicKey(key2),
      }),
    );
    assert.match(imported.SshPublicKeyId ?? '', /^key-[0-9a-f]{17}$/);
    const dup = await sdkError(
      sdk.send(
        new ImportSshPublicKeyCommand({
          ServerId: serverId,
          UserName: 'my_user',
          SshPublicKeyBody: await publicKey(key2),
        }),
      ),
    );
    assert.equal(dup.name, 'ResourceExistsException');

    const described = await sdk.send(
      new DescribeUserCommand({ ServerId: serverId, UserName: 'my_user' }),
    );
    const keys = described.User?.SshPublicKeys ?? [];
    assert.equal(keys.length, 2);
    assert.ok(
      keys[0]!.DateImported instanceof Date &&
        Math.abs(keys[0]!.DateImported.getTime() - Date.now()) < 120_000,
    );
    const first = keys.find(
      (k) => k.SshPublicKeyId !== imported.SshPublicKeyId,
    )!;

    const del = await cli(endpoint, [
      'delete-ssh-public-key',
      '--server-id',
      serverId,
      '--user-name',
      'my_user',
      '--ssh-public-key-id',
      first.SshPublicKeyId!,
    ]);
    assert.equal(del.code, 0, del.stderr);
    const gone = await cli(endpoint, [
      'delete-ssh-public-key',
      '--server-id',
      serverId,
      '--user-name',
      'my_user',
      '--ssh-public-key-id',
      first.SshPublicKeyId!,
    ]);
    assert.match(gone.stderr, /ResourceNotFoundException/);

    const refused = await gw.sftp('pwd\n', { user: 'my_user', key: key1 });
    assert.notEqual(refused.code, 0, 'the deleted key must no longer log in');
    // Into the test's folder: OpenSSH's sftp takes `-` for a local file name, not stdout.
    const fetched = path.join(gw.dir, 'fetched.txt');
    const ok = await gw.sftp(`get hello.txt ${fetched}\n`, {
      user: 'my_user',
      key: key2,
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await readFile(fetched, 'utf8'), 'hello from my_user\n');

    const d = await cli(endpoint, [
      'describe-user',
      '--server-id',
      serverId,
      '--user-name',
      'my_user',
    ]);
    assert.equal(d.code, 0, d.stderr);
    const user = d.json!['User'] as Record<string, unknown>;
    assert.equal(
      user['Arn'],
      `arn:aws:transfer:us-east-1:000000000000:user/${serverId}/my_user`,
    );
    assert.equal(user['HomeDirectory'], '/bucket_name/home/mydirectory');
    assert.equal(user['Role'], ROLE);
    assert.deepEqual(
      (user['SshPublicKeys'] as { SshPublicKeyId: string }[]).map(
        (k) => k.SshPublicKeyId,
      ),
      [imported.SshPublicKeyId],
    );
    assert.deepEqual(user['Tags'], [{ Key: 'Group', Value: 'Admins' }]);
  });

  test('list-users pages with MaxResults and NextToken (SDK and CLI)', async () => {
    for (const name of ['user01', 'user02', 'user03', 'user04']) {
      await sdk.send(
        new CreateUserCommand({
          ServerId: serverId,
          UserName: name,
          Role: ROLE,
          HomeDirectory: `/demo/home/${name}`,
        }),
      );
    }
    const names: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await sdk.send(
        new ListUsersCommand({
          ServerId: serverId,
          MaxResults: 2,
          NextToken: token,
        }),
      );
      assert.ok((page.Users?.length ?? 0) <= 2);
      names.push(...(page.Users ?? []).map((u) => u.UserName!));
      token = page.NextToken;
      pages++;
    } while (token);
    assert.deepEqual(names, [
      'alice',
      'my_user',
      'user01',
      'user02',
      'user03',
      'user04',
    ]);
    assert.equal(pages, 3);

    const bad = await sdkError(
      sdk.send(
        new ListUsersCommand({ ServerId: serverId, NextToken: 'not-a-token' }),
      ),
    );
    assert.equal(bad.name, 'InvalidNextTokenException');
    const tooMany = await sdkError(
      sdk.send(new ListUsersCommand({ ServerId: serverId, MaxResults: 1001 })),
    );
    assert.equal(tooMany.name, 'InvalidRequestException');

    // The CLI follows NextToken itself; --page-size 2 makes it take three pages.
    const r = await cli(endpoint, [
      'list-users',
      '--server-id',
      serverId,
      '--page-size',
      '2',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const listed = r.json!['Users'] as Record<string, unknown>[];
    assert.deepEqual(
      listed.map((u) => u['UserName']),
      names,
    );
    const mine = listed.find((u) => u['UserName'] === 'my_user')!;
    assert.equal(mine['SshPublicKeyCount'], 1);
    const calls = gw
      .logLines()
      .filter((l) => l['operation'] === 'ListUsers' && l['status'] === 200);
    assert.ok(
      calls.length >= 6,
      `expected paged ListUsers calls, saw ${calls.length}`,
    );
  });

  test('tag-resource, untag-resource, list-tags-for-resource', async () => {
    const arn = `arn:aws:transfer:us-east-1:000000000000:user/${serverId}/my_user`;
    const t = await cli(endpoint, [
      'tag-resource',
      '--arn',
      arn,
      '--tags',
      'Key=env,Value=prod',
      'Key=Group,Value=Ops',
    ]);
    assert.equal(t.code, 0, t.stderr);
    let l = await cli(endpoint, ['list-tags-for-resource', '--arn', arn]);
    assert.deepEqual(l.json!['Tags'], [
      { Key: 'Group', Value: 'Ops' },
      { Key: 'env', Value: 'prod' },
    ]);
    const u = await cli(endpoint, [
      'untag-resource',
      '--arn',
      arn,
      '--tag-keys',
      'Group',
    ]);
    assert.equal(u.code, 0, u.stderr);
    l = await cli(endpoint, ['list-tags-for-resource', '--arn', arn]);
    assert.deepEqual(l.json!['Tags'], [{ Key: 'env', Value: 'prod' }]);
    const other = await cli(endpoint, [
      'list-tags-for-resource',
      '--arn',
      `arn:aws:transfer:us-east-1:000000000000:user/${serverId}/nobody`,
    ]);
    assert.match(other.stderr, /ResourceNotFoundException/);
  });

  test('update-user changes the home for new logins; config users are read-only', async () => {
    await sdk.send(
      new UpdateUserCommand({
        ServerId: serverId,
        UserName: 'user01',
        HomeDirectory: '/demo/home/renamed',
      }),
    );
    const d = await sdk.send(
      new DescribeUserCommand({ ServerId: serverId, UserName: 'user01' }),
    );
    assert.equal(d.User?.HomeDirectory, '/demo/home/renamed');

    const ro = await sdkError(
      sdk.send(
        new UpdateUserCommand({
          ServerId: serverId,
          UserName: 'alice',
          HomeDirectory: '/demo/x',
        }),
      ),
    );
    assert.equal(ro.name, 'InvalidRequestException');
    assert.match(ro.message, /config file .*read-only/);
    const del = await cli(endpoint, [
      'delete-user',
      '--server-id',
      serverId,
      '--user-name',
      'alice',
    ]);
    assert.match(del.stderr, /InvalidRequestException.*read-only/);
    const exists = await sdkError(
      sdk.send(
        new CreateUserCommand({
          ServerId: serverId,
          UserName: 'alice',
          Role: ROLE,
          HomeDirectory: '/demo/a',
        }),
      ),
    );
    assert.equal(exists.name, 'ResourceExistsException');
    const alice = await sdk.send(
      new DescribeUserCommand({ ServerId: serverId, UserName: 'alice' }),
    );
    assert.equal(alice.User?.SshPublicKeys?.length, 1);
    assert.match(
      alice.User?.SshPublicKeys?.[0]?.SshPublicKeyId ?? '',
      /^key-[0-9a-f]{17}$/,
    );
  });

  test('malformed requests are InvalidRequestException with a message naming the field', async () => {
    const cases: [string, Record<string, unknown>, RegExp][] = [
      [
        'bad UserName',
        {
          ServerId: serverId,
          UserName: '-bad',
          Role: ROLE,
          HomeDirectory: '/demo/x',
        },
        /UserName/,
      ],
      [
        'short UserName',
        {
          ServerId: serverId,
          UserName: 'ab',
          Role: ROLE,
          HomeDirectory: '/demo/x',
        },
        /UserName/,
      ],
      [
        'bad key body',
        {
          ServerId: serverId,
          UserName: 'keyless',
          Role: ROLE,
          HomeDirectory: '/demo/x',
          SshPublicKeyBody: 'ssh-rsa AAAA',
        },
        /SshPublicKeyBody/,
      ],
      [
        'unknown field',
        {
          ServerId: serverId,
          UserName: 'extra',
          Role: ROLE,
          HomeDirectory: '/demo/x',
          Shell: '/bin/sh',
        },
        /Shell: unknown field/,
      ],
      [
        'wrong type',
        {
          ServerId: serverId,
          UserName: 'typed',
          Role: ROLE,
          HomeDirectory: 42,
        },
        /HomeDirectory: expected string, got number/,
      ],
      [
        'bad Role',
        {
          ServerId: serverId,
          UserName: 'norole',
          Role: 'admin',
          HomeDirectory: '/demo/x',
        },
        /Role/,
      ],
      [
        'PATH without home',
        { ServerId: serverId, UserName: 'nohome', Role: ROLE },
        /HomeDirectory/,
      ],
    ];
    for (const [name, body, message] of cases) {
      const r = await rawCall(port, 'CreateUser', JSON.stringify(body));
      assert.equal(r.status, 400, name);
      assert.equal(r.body['__type'], 'InvalidRequestException', name);
      assert.equal(r.errorType?.split(':')[0], 'InvalidRequestException', name);
      assert.match(
        String(r.body['Message']),
        message,
        `${name}: ${r.body['Message']}`,
      );
    }
    const typed = await rawCall(
      port,
      'ListUsers',
      JSON.stringify({ ServerId: serverId, MaxResults: 'ten' }),
    );
    assert.equal(typed.body['__type'], 'InvalidRequestException');
    const badKey = await sdkError(
      sdk.send(
        new ImportSshPublicKeyCommand({
          ServerId: serverId,
          UserName: 'my_user',
          SshPublicKeyBody: 'not a key',
        }),
      ),
    );
    assert.equal(badKey.name, 'InvalidRequestException');
    assert.match(badKey.message, /SshPublicKeyBody/);
    const notJson = await rawCall(port, 'ListUsers', '{"ServerId":');
    assert.equal(notJson.body['__type'], 'SerializationException');
    const unknownOp = await rawCall(port, 'CreateServer', '{}');
    assert.equal(unknownOp.body['__type'], 'UnknownOperationException');
  });

  test('bad signatures, unknown keys and skewed clocks are refused as AWS refuses them', async () => {
    const wrongSecret = sdkClient(endpoint, {
      ...ADMIN,
      secretAccessKey: 'not-the-secret',
    });
    const e1 = await sdkError(wrongSecret.send(new ListServersCommand({})));
    wrongSecret.destroy();
    assert.equal(e1.name, 'InvalidSignatureException');
    assert.equal(e1.$metadata.httpStatusCode, 403);
    assert.match(e1.message, /signature we calculated does not match/);

    const unknown = sdkClient(endpoint, {
      accessKeyId: 'AKIAUNKNOWNKEY000001',
      secretAccessKey: 'x',
    });
    const e2 = await sdkError(unknown.send(new ListServersCommand({})));
    unknown.destroy();
    assert.equal(e2.name, 'UnrecognizedClientException');
    assert.equal(e2.$metadata.httpStatusCode, 403);

    const cliBad = await cli(endpoint, ['list-servers'], {
      ...ADMIN,
      secretAccessKey: 'wrong-secret',
    });
    assert.notEqual(cliBad.code, 0);
    assert.match(cliBad.stderr, /InvalidSignatureException/);

    const skewed = await rawCall(port, 'ListServers', '{}', {
      signingDate: new Date(Date.now() - 20 * 60_000),
    });
    assert.equal(skewed.status, 403);
    assert.equal(skewed.body['__type'], 'InvalidSignatureException');
    assert.match(
      String(skewed.body['Message']),
      /^Signature expired: \d{8}T\d{6}Z is now earlier than/,
    );
    const fine = await rawCall(port, 'ListServers', '{}', {
      signingDate: new Date(Date.now() - 10 * 60_000),
    });
    assert.equal(fine.status, 200);

    const unsigned = await fetch(`${endpoint}/`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'TransferService.ListServers',
      },
      body: '{}',
    });
    assert.equal(unsigned.status, 403);
    assert.equal(
      ((await unsigned.json()) as Record<string, unknown>)['__type'],
      'MissingAuthenticationTokenException',
    );
  });

  test('delete-user: that login now fails; the ServerId survives a restart', async () => {
    const r = await cli(endpoint, [
      'delete-user',
      '--server-id',
      serverId,
      '--user-name',
      'my_user',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const s = await gw.sftp('pwd\n', { user: 'my_user', key: key2 });
    assert.notEqual(s.code, 0, 'a deleted user must not log in');
    const d = await sdkError(
      sdk.send(
        new DescribeUserCommand({ ServerId: serverId, UserName: 'my_user' }),
      ),
    );
    assert.equal(d.name, 'ResourceNotFoundException');
    const again = await sdkError(
      sdk.send(
        new DeleteUserCommand({ ServerId: serverId, UserName: 'my_user' }),
      ),
    );
    assert.equal(again.name, 'ResourceNotFoundException');

    await gw.stop();
    gw = await launch(gw.dir, gw.configFile, gw.key);
    port = await apiPort(gw);
    endpoint = `http://127.0.0.1:${port}`;
    const after = await cli(endpoint, ['list-users', '--server-id', serverId]);
    assert.equal(after.code, 0, after.stderr);
    assert.deepEqual(
      (after.json!['Users'] as Record<string, unknown>[]).map(
        (u) => u['UserName'],
      ),
      ['alice', 'user01', 'user02', 'user03', 'user04'],
    );
  });
});

describe('user API (bucket store): two replicas see each other within two seconds', () => {
  let a: TestGateway;
  let b: TestGateway;

  before(async () => {
    // Two gateways on one storage root stand in for two replicas on one bucket.
    const shared = await tempDir('replicas');
    await mkdir(path.join(shared, 'users-bucket'), { recursive: true });
    await mkdir(path.join(shared, 'demo'), { recursive: true });
    const config = {
      storage: { type: 'local', root: shared },
      userStore: { type: 's3', bucket: 'users-bucket', prefix: 'gw/' },
      api: apiConfig(),
    };
    a = await startGateway({ config });
    b = await startGateway({ config });
  });

  after(async () => {
    await a?.stop();
    await b?.stop();
  });

  test('a user created through one replica logs in on the other; deleted, it is refused there', async () => {
    const endpointA = `http://127.0.0.1:${await apiPort(a)}`;
    const endpointB = `http://127.0.0.1:${await apiPort(b)}`;
    const sdkA = sdkClient(endpointA);
    const sdkB = sdkClient(endpointB);
    try {
      const idA = (await sdkA.send(new ListServersCommand({}))).Servers?.[0]
        ?.ServerId;
      const idB = (await sdkB.send(new ListServersCommand({}))).Servers?.[0]
        ?.ServerId;
      assert.match(idA ?? '', /^s-[0-9a-f]{17}$/);
      assert.equal(
        idA,
        idB,
        'replicas sharing a user store share the ServerId',
      );
      const key = await makeKey(a.dir, 'carol_key');
      await sdkA.send(
        new CreateUserCommand({
          ServerId: idA!,
          UserName: 'carol',
          Role: ROLE,
          HomeDirectory: '/demo/home/carol',
          SshPublicKeyBody: await publicKey(key),
        }),
      );
      assert.ok(existsSync(path.join(a.dir, '..')));
      const seen = Date.now();
      let login = await b.sftp('pwd\n', { user: 'carol', key });
      while (login.code !== 0 && Date.now() - seen < 2500) {
        await new Promise((r) => setTimeout(r, 200));
        login = await b.sftp('pwd\n', { user: 'carol', key });
      }
      assert.equal(
        login.code,
        0,
        `replica B did not let carol in within 2.5 s: ${login.stderr}`,
      );
      const described = await sdkB.send(
        new DescribeUserCommand({ ServerId: idB!, UserName: 'carol' }),
      );
      assert.equal(described.User?.HomeDirectory, '/demo/home/carol');

      await sdkA.send(
        new DeleteUserCommand({ ServerId: idA!, UserName: 'carol' }),
      );
      const deleted = Date.now();
      let refused = await b.sftp('pwd\n', { user: 'carol', key });
      while (refused.code === 0 && Date.now() - deleted < 2500) {
        await new Promise((r) => setTimeout(r, 200));
        refused = await b.sftp('pwd\n', { user: 'carol', key });
      }
      assert.notEqual(
        refused.code,
        0,
        'replica B still lets a deleted user in',
      );
    } finally {
      sdkA.destroy();
      sdkB.destroy();
    }
  });
});
