/**
 * The bench's summary across runs (bench/lib/summary.ts) reads the targets tables the bench writes: a
 * synthetic pair of runs for the arithmetic and the verdicts, and two committed results files (dated,
 * never rewritten) for the format the bench really writes.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { meets, median, parseRunTargets, SummaryError, summaryTable } from '../../bench/lib/summary.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function run(node: string, rows: Array<[string, string, string]>): string {
  return [
    '# Benchmark',
    '',
    '| machine | |',
    '|---|---|',
    `| Node | ${node} |`,
    '',
    '## Targets (issue 8)',
    '',
    '| target | figure | goal | result |',
    '|---|--:|--:|---|',
    ...rows.map(([t, f, g]) => `| ${t} | ${f} | ${g} | x |`),
    '',
    '## RSS during listings (MiB, sampled every 100 ms)',
    '| not | a | target | row |',
  ].join('\n');
}

describe('bench summary across runs', () => {
  it('lists each run, the median and in how many runs a target was met', () => {
    const a = parseRunTargets('a', run('v20.20.2', [
      ['local put vs OpenSSH', '1.60×', '≥ 1×'],
      ['S3 get vs direct SDK', '0.67×', '≥ 0.9×'],
      ['peak RSS', '266.23 MiB', '≤ 300 MiB'],
    ]));
    const b = parseRunTargets('b', run('v24.21.0', [
      ['local put vs OpenSSH', '0.95×', '≥ 1×'],
      ['S3 get vs direct SDK', '0.83×', '≥ 0.9×'],
      ['peak RSS', '294.73 MiB', '≤ 300 MiB'],
      ['only in b', '2.00×', '≥ 1.5×'],
    ]));
    assert.equal(a.node, 'v20.20.2');
    assert.equal(a.figures.size, 3, 'rows after the next section are not targets');
    const lines = summaryTable([a, b]).split('\n');
    assert.equal(lines[0], '| target | goal | a (v20.20.2) | b (v24.21.0) | median | met |');
    assert.equal(lines[2], '| local put vs OpenSSH | ≥ 1× | 1.60× | 0.95× | 1.27× | **1 of 2** |');
    assert.equal(lines[3], '| S3 get vs direct SDK | ≥ 0.9× | 0.67× | 0.83× | 0.75× | **none** |');
    assert.equal(lines[4], '| peak RSS | ≤ 300 MiB | 266.23 MiB | 294.73 MiB | 280.48 MiB | all |');
    assert.equal(lines[5], '| only in b | ≥ 1.5× |  | 2.00× | 2.00× | all |');
  });

  it('judges ≥ and ≤ goals, and takes the middle of odd and even counts', () => {
    assert.equal(meets(0.9, '≥ 0.9×'), true);
    assert.equal(meets(0.89, '≥ 0.9×'), false);
    assert.equal(meets(300, '≤ 300 MiB'), true);
    assert.equal(meets(300.5, '≤ 300 MiB'), false);
    assert.throws(() => meets(1, '= 1×'), SummaryError);
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
  });

  it('takes a run without targets (anchors only) and says so when no run has any', () => {
    const empty = parseRunTargets('anchors-only', run('v20.20.2', []));
    assert.equal(empty.figures.size, 0);
    assert.match(summaryTable([empty]), /^No targets in these runs/);
    const some = parseRunTargets('some', run('v20.20.2', [['t', '1.00×', '≥ 1×']]));
    assert.equal(summaryTable([empty, some]).split('\n')[2], '| t | ≥ 1× |  | 1.00× | 1.00× | all |');
  });

  it('names the file and line of what it cannot read', () => {
    assert.throws(() => parseRunTargets('no-targets.md', '# Benchmark\n'), /no-targets.md: no "## Targets/);
    assert.throws(
      () => parseRunTargets('bad.md', run('v20.20.2', [['x', 'fast', '≥ 1×']])),
      /bad.md:11: figure "fast" is not a number/,
    );
  });

  it('reads the results files the bench writes', async () => {
    const files = ['2026-12-05-05-15-vm.md', '2026-12-05-05-25-vm.md'];
    const runs = await Promise.all(
      files.map(async (f) => parseRunTargets(f, await readFile(path.join(ROOT, 'bench', 'results', f), 'utf8'))),
    );
    assert.equal(runs[0]!.node, 'v20.20.2');
    assert.equal(runs[1]!.figures.get('local put 1 file, aes128-gcm@openssh.com vs OpenSSH'), 1.78);
    assert.equal(runs[1]!.goals.get('S3 64 concurrent uploads, aes128-gcm@openssh.com peak RSS'), '≤ 300 MiB');
    const table = summaryTable(runs);
    const row = table.split('\n').find((l) => l.startsWith('| S3 get 4 streams, aes128-gcm@openssh.com vs direct SDK |'));
    assert.equal(row, '| S3 get 4 streams, aes128-gcm@openssh.com vs direct SDK | ≥ 0.9× | 0.47× | 0.47× | 0.47× | **none** |');
  });
});
