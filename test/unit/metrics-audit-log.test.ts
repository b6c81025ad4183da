import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import {
  ACTIVITY_TYPES,
  audit,
  buildAuditRecord,
  MAX_FIELD_LENGTH,
  newSessionId,
  openModeString,
  sessionAuditor,
  sshKeyFingerprint,
} from '../../src/observability/audit.js';
import { createLogger } from '../../src/observability/logger.js';

// Audit lines are what the metrics listener's operators read next to /metrics; kept in the metrics-*
// test files by the folder ownership of this work.

function capture(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  return { logger: createLogger({ level, destination }), lines, raw };
}

describe('audit log lines', () => {
  it('the activity types of the managed service are all there', () => {
    for (const t of [
      'CONNECTED',
      'AUTH_FAILURE',
      'OPEN',
      'CLOSE',
      'PARTIAL_CLOSE',
      'DELETE',
      'MKDIR',
      'RMDIR',
      'RENAME',
      'SETSTAT',
      'ERROR',
      'DISCONNECTED',
      'EXIT_REASON',
    ]) {
      assert.ok((ACTIVITY_TYPES as readonly string[]).includes(t), t);
    }
  });

  it('writes one JSON line with activity-type and kebab-case fields', () => {
    const { logger, lines } = capture();
    audit(logger, 'CLOSE', {
      'session-id': 'c0ffee0123456789',
      user: 'alice',
      'source-ip': '203.0.113.9',
      path: '/bucket/alice/report.csv',
      'bytes-in': 1024,
      'bytes-out': 0,
      mode: 'WRITE|CREATE|TRUNCATE',
      'duration-ms': 12,
    });
    assert.equal(lines.length, 1);
    const l = lines[0]!;
    assert.equal(l['activity-type'], 'CLOSE');
    assert.equal(l['level'], 'info');
    assert.equal(l['session-id'], 'c0ffee0123456789');
    assert.equal(l['user'], 'alice');
    assert.equal(l['source-ip'], '203.0.113.9');
    assert.equal(l['path'], '/bucket/alice/report.csv');
    assert.equal(l['bytes-in'], 1024);
    assert.equal(l['bytes-out'], 0);
    assert.equal(l['mode'], 'WRITE|CREATE|TRUNCATE');
    assert.equal(l['msg'], 'CLOSE');
    assert.equal(typeof l['time'], 'string');
  });

  it('levels: AUTH_FAILURE and PARTIAL_CLOSE warn, ERROR error; a warn-level logger drops CLOSE', () => {
    const { logger, lines } = capture('warn');
    audit(logger, 'CLOSE', { path: '/a' });
    audit(logger, 'AUTH_FAILURE', { user: 'bob', method: 'password', message: 'bad credentials' });
    audit(logger, 'PARTIAL_CLOSE', { path: '/b' });
    audit(logger, 'ERROR', { message: 'store unavailable', 'error-code': 'StoreUnavailable' });
    assert.deepEqual(
      lines.map((l) => [l['activity-type'], l['level']]),
      [
        ['AUTH_FAILURE', 'warn'],
        ['PARTIAL_CLOSE', 'warn'],
        ['ERROR', 'error'],
      ],
    );
    assert.equal(lines[0]!['msg'], 'AUTH_FAILURE: bad credentials');
  });

  it('never writes a password, secret or key body, even when a caller passes one', () => {
    const { logger, lines, raw } = capture();
    const { publicKey } = generateKeyPairSync('ed25519');
    const keyBody = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    const fields = {
      user: 'carol',
      password: 'hunter2-very-secret',
      secretAccessKey: 'AKIA-SECRET-VALUE',
      'ssh-public-key': keyBody,
      privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----',
      nested: { password: 'x' },
      'ssh-public-key-fingerprint': 'SHA256:abc',
    } as Record<string, unknown>;
    audit(logger, 'CONNECTED', fields as never);
    assert.equal(lines.length, 1);
    for (const secret of ['hunter2', 'AKIA-SECRET', keyBody, 'PRIVATE KEY', 'nested']) {
      assert.ok(!raw[0]!.includes(secret), `${secret} leaked: ${raw[0]}`);
    }
    assert.equal(lines[0]!['ssh-public-key-fingerprint'], 'SHA256:abc');
    assert.equal(lines[0]!['user'], 'carol');
  });

  it('cuts overlong strings and drops non-finite numbers', () => {
    const r = buildAuditRecord('OPEN', {
      path: `/${'x'.repeat(5000)}`,
      'bytes-in': Number.NaN,
      'bytes-out': 7,
    });
    assert.equal((r['path'] as string).length, MAX_FIELD_LENGTH + 1);
    assert.equal('bytes-in' in r, false);
    assert.equal(r['bytes-out'], 7);
    assert.equal(Object.keys(r)[0], 'activity-type');
  });

  it('a session auditor stamps every line with the session context, user set after auth', () => {
    const { logger, lines } = capture();
    const a = sessionAuditor(logger, {
      'session-id': 'abcd',
      'source-ip': '198.51.100.4',
      'source-port': 50022,
    });
    a('CONNECTED', {
      client: 'SSH-2.0-OpenSSH_9.6',
      kex: 'curve25519-sha256',
      ciphers: 'aes256-gcm@openssh.com',
    });
    a.setUser('dave');
    a('MKDIR', { path: '/bucket/dave/new' });
    a('RENAME', { path: '/bucket/dave/a.filepart', 'new-path': '/bucket/dave/a' });
    a('DISCONNECTED');
    assert.equal(lines.length, 4);
    assert.equal(lines[0]!['user'], undefined);
    assert.equal(lines[0]!['kex'], 'curve25519-sha256');
    for (const l of lines) {
      assert.equal(l['session-id'], 'abcd');
      assert.equal(l['source-ip'], '198.51.100.4');
      assert.equal(l['source-port'], 50022);
    }
    assert.equal(lines[1]!['user'], 'dave');
    assert.equal(lines[2]!['new-path'], '/bucket/dave/a');
    assert.equal(a.context.user, 'dave');
  });

  it('the fields of a line override the session context; fields left undefined do not erase it', () => {
    const { logger, lines } = capture();
    const a = sessionAuditor(logger, { 'session-id': 'abcd', 'source-ip': '198.51.100.4', user: 'erin' });
    a('OPEN', { path: '/b/erin/x', user: undefined, 'source-ip': '203.0.113.9', mode: undefined });
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!['user'], 'erin');
    assert.equal(lines[0]!['source-ip'], '203.0.113.9');
    assert.equal('mode' in lines[0]!, false);
    assert.equal(Object.keys(buildAuditRecord('OPEN', { path: '/p' }, { mode: 'READ' }))[0], 'activity-type');
    assert.deepEqual(buildAuditRecord('CLOSE', { path: '/p', mode: 'a' }, { mode: 'b', nested: {} } as never), {
      'activity-type': 'CLOSE',
      path: '/p',
      mode: 'b',
    });
  });

  it('sshKeyFingerprint matches ssh-keygen (SHA256, base64 without padding)', () => {
    // ssh-keygen -lf of an ed25519 key whose blob is known: compute independently.
    const blob = Buffer.from(
      'AAAAC3NzaC1lZDI1NTE5AAAAIA9OY0qV6XYVHaaOiWAcj2spDJVbgjrqDPY4pxd6GnHl',
      'base64',
    );
    const fp = sshKeyFingerprint(blob);
    assert.match(fp, /^SHA256:[A-Za-z0-9+/]{43}$/);
    assert.equal(fp, sshKeyFingerprint(new Uint8Array(blob)));
  });

  it('openModeString and newSessionId', () => {
    assert.equal(openModeString(0x01), 'READ');
    assert.equal(openModeString(0x02 | 0x08 | 0x10), 'WRITE|CREATE|TRUNCATE');
    assert.equal(openModeString(0x02 | 0x04 | 0x20), 'WRITE|APPEND|EXCLUSIVE');
    const a = newSessionId();
    assert.match(a, /^[0-9a-f]{16}$/);
    assert.notEqual(a, newSessionId());
  });
});
