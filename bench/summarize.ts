/**
 * `npm run bench:summary -- FILE...`: the issue's targets across several bench results files
 * (bench/results/*.md), each run's figure, the median and in how many runs each target was met. See
 * bench/lib/summary.ts for why.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseRunTargets, SummaryError, summaryTable } from './lib/summary.js';

const files = process.argv.slice(2);
if (files.length === 0 || files.includes('--help')) {
  process.stdout.write('usage: npm run bench:summary -- bench/results/<run>.md [more runs...]\n');
  process.exit(files.length === 0 ? 2 : 0);
}
try {
  const runs = await Promise.all(
    files.map(async (f) => parseRunTargets(path.basename(f, '.md'), await readFile(f, 'utf8'))),
  );
  process.stdout.write(`${summaryTable(runs)}\n`);
} catch (e) {
  if (!(e instanceof SummaryError) && (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  process.stderr.write(`bench:summary: ${(e as Error).message}\n`);
  process.exit(1);
}
