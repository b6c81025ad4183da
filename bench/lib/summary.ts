/**
 * The targets of several bench runs side by side. One run on a shared 2-core machine moves by tens of
 * percent from the next, so a target is read across runs: each run's figure, the median, and in how
 * many runs it was met. The input is the results files the bench writes (bench/results/*.md), so any
 * committed set of runs can be summarized again.
 */

/** One run's results file, as far as the summary needs it. */
export interface RunTargets {
  /** The file's name, or the label given for it. */
  label: string;
  /** The Node version the run's machine table names ('' when absent). */
  node: string;
  /** Target label -> figure, in the order of the file. */
  figures: Map<string, number>;
  /** Target label -> goal as written ('≥ 0.9×', '≤ 300 MiB'). */
  goals: Map<string, string>;
}

export class SummaryError extends Error {}

const TARGETS_HEADING = '## Targets (issue 8)';

/** Reads the machine table's Node version and the targets table of one results file. */
export function parseRunTargets(label: string, markdown: string): RunTargets {
  const lines = markdown.split('\n');
  const node = /^\| Node \| (v[\d.]+) \|/m.exec(markdown)?.[1] ?? '';
  const start = lines.indexOf(TARGETS_HEADING);
  if (start === -1) throw new SummaryError(`${label}: no "${TARGETS_HEADING}" section`);
  const figures = new Map<string, number>();
  const goals = new Map<string, string>();
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('## ')) break;
    if (!line.startsWith('| ') || line.startsWith('| target ') || line.startsWith('|---')) continue;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (cells.length !== 4) throw new SummaryError(`${label}:${i + 1}: expected 4 cells in "${line}"`);
    const [target, figure, goal] = cells as [string, string, string, string];
    const value = Number.parseFloat(figure);
    if (!Number.isFinite(value)) throw new SummaryError(`${label}:${i + 1}: figure "${figure}" is not a number`);
    figures.set(target, value);
    goals.set(target, goal);
  }
  // A run of anchors only (no gateway rows) has an empty table: it is a run all the same.
  return { label, node, figures, goals };
}

/** Whether `value` meets a goal written as '≥ 0.9×' or '≤ 300 MiB'. */
export function meets(value: number, goal: string): boolean {
  const m = /^([≥≤]) ([\d.]+)/.exec(goal);
  if (!m) throw new SummaryError(`goal "${goal}" is neither ≥ nor ≤ a number`);
  const bound = Number(m[2]);
  return m[1] === '≥' ? value >= bound : value <= bound;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * A Markdown table: one row per target (in the first run's order, then any only later runs have), a
 * column per run, the median of the runs that have the target, and "met in k of n". A target a run does
 * not have (another workload selection) is blank there and not counted.
 */
export function summaryTable(runs: RunTargets[]): string {
  if (runs.length === 0) throw new SummaryError('no runs to summarize');
  const order: string[] = [];
  for (const run of runs) for (const t of run.figures.keys()) if (!order.includes(t)) order.push(t);
  if (order.length === 0) return 'No targets in these runs (the gateway did not run a workload with a target).';
  const head = `| target | goal | ${runs.map((r) => r.label + (r.node ? ` (${r.node})` : '')).join(' | ')} | median | met |`;
  const sep = `|---|--:|${runs.map(() => '--:|').join('')}--:|---|`;
  const rows = order.map((target) => {
    const goal = runs.find((r) => r.goals.has(target))!.goals.get(target)!;
    const unit = goal.endsWith('MiB') ? ' MiB' : '×';
    const values = runs.map((r) => r.figures.get(target));
    const present = values.filter((v): v is number => v !== undefined);
    const met = present.filter((v) => meets(v, goal)).length;
    const cells = values.map((v) => (v === undefined ? '' : `${v.toFixed(2)}${unit}`));
    const verdict = met === present.length ? 'all' : met === 0 ? '**none**' : `**${met} of ${present.length}**`;
    return `| ${target} | ${goal} | ${cells.join(' | ')} | ${median(present).toFixed(2)}${unit} | ${verdict} |`;
  });
  return [head, sep, ...rows].join('\n');
}
