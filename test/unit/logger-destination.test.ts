import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BatchedDestination } from '../../src/observability/logger.js';

const loggerModule = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/observability/logger.js');

describe('stdout log destination', () => {
  it('writes a line after a quiet spell at the end of its turn, after the turn\'s own work', async () => {
    const writes: string[] = [];
    const dest = new BatchedDestination({ write: (s: string) => writes.push(s) }, 20);
    const order: string[] = [];
    dest.write('{"a":1}\n');
    process.nextTick(() => order.push(`tick: ${writes.length} writes`));
    dest.write('{"b":2}\n');
    assert.deepEqual(writes, []);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(order, ['tick: 0 writes']);
    assert.deepEqual(writes, ['{"a":1}\n{"b":2}\n']);
    dest.close();
  });

  it('writes the lines that follow at most once per interval, and at once on flush()', async () => {
    const writes: string[] = [];
    const dest = new BatchedDestination({ write: (s: string) => writes.push(s) }, 300);
    dest.write('1\n');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(writes, ['1\n']);
    dest.write('2\n');
    await new Promise((resolve) => setImmediate(resolve));
    dest.write('3\n');
    assert.deepEqual(writes, ['1\n'], 'held: the last write was less than 300 ms ago');
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.deepEqual(writes, ['1\n', '2\n3\n']);
    dest.write('4\n');
    dest.flush(); // pino's logger.flush()
    assert.deepEqual(writes, ['1\n', '2\n3\n', '4\n']);
    dest.close();
  });

  it('writes at once when 64 KiB are held', () => {
    const writes: string[] = [];
    const dest = new BatchedDestination({ write: (s: string) => writes.push(s) }, 20);
    const line = `${JSON.stringify({ msg: 'x'.repeat(1000) })}\n`;
    for (let i = 0; i < 70; i++) dest.write(line);
    assert.equal(writes.length, 1);
    assert.ok(writes[0]!.length >= 64 * 1024);
    dest.flushSync();
    assert.equal(writes.join('').length, 70 * line.length);
    dest.close();
  });

  // Real processes: the lines of the last turn must reach stdout however the process ends.
  for (const [how, end, status] of [
    ['process.exit', 'process.exit(3);', 3],
    ['an uncaught exception', 'throw new Error("boom");', 1],
    ['the event loop running dry', '', 0],
  ] as const) {
    it(`writes what was logged before ${how}`, () => {
      const script = [
        `const { createLogger } = await import(${JSON.stringify(loggerModule)});`,
        'const logger = createLogger({ writeIntervalMs: 1000 });',
        // Line 0 goes out at the end of its turn; 1 and 2 are held for the interval, on an unref'd timer.
        'logger.info({ i: 0 }, "held");',
        'await new Promise((resolve) => setImmediate(resolve));',
        'for (let i = 1; i < 3; i++) logger.info({ i }, "held");',
        end,
      ].join('\n');
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      assert.equal(r.status, status, r.stderr);
      const lines = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { i: number; msg: string });
      assert.deepEqual(lines.map((l) => [l.i, l.msg]), [[0, 'held'], [1, 'held'], [2, 'held']]);
    });
  }

  it('logs process warnings as JSON lines on stdout instead of Node\'s text on stderr', () => {
    const script = [
      `const { createLogger, logProcessWarnings } = await import(${JSON.stringify(loggerModule)});`,
      'const logger = createLogger({ writeIntervalMs: 0 });',
      'logProcessWarnings(logger);',
      'process.emitWarning(\'two\\nlines\', { type: \'TestWarning\', code: \'T1\', detail: \'why\' });',
      'new Buffer(1);', // a deprecation, which Node emits itself
    ].join('\n');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    const lines = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(
      lines.map((l) => [l['level'], l['warning'], l['code'], l['detail'], l['msg']]),
      [
        ['warn', 'TestWarning', 'T1', 'why', 'two\nlines'],
        ['warn', 'DeprecationWarning', 'DEP0005', undefined, lines[1]?.['msg']],
      ],
    );
    assert.match(String(lines[1]?.['msg']), /Buffer\(\) is deprecated/);
  });
});
