import { type ChildProcess, spawn } from 'node:child_process';
import { openSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';

export interface Exec {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
  /** Lines on stdout (counted while streaming; stdout itself is kept only up to 1 MiB). */
  lines: number;
}

/**
 * Runs a command and times it from spawn to exit. `stdinFile` feeds a file as stdin (no copy through
 * this process); `stdoutNull` sends stdout to /dev/null.
 */
export function exec(
  cmd: string,
  args: string[],
  options: {
    input?: string;
    stdinFile?: string;
    stdoutNull?: boolean;
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    timeoutMs?: number;
  } = {},
): Promise<Exec> {
  return new Promise((resolve) => {
    const stdin = options.stdinFile ? openSync(options.stdinFile, 'r') : 'pipe';
    const stdout = options.stdoutNull ? openSync('/dev/null', 'w') : 'pipe';
    const t0 = performance.now();
    const child = spawn(cmd, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: [stdin, stdout, 'pipe'],
    });
    let out = '';
    let err = '';
    let lines = 0;
    child.stdout?.on('data', (d: Buffer) => {
      for (let i = d.indexOf(10); i !== -1; i = d.indexOf(10, i + 1)) lines++;
      if (out.length < 1024 * 1024) out += d.toString();
    });
    child.stderr!.on('data', (d: Buffer) => {
      if (err.length < 1024 * 1024) err += d.toString();
    });
    const timer = setTimeout(
      () => child.kill('SIGKILL'),
      options.timeoutMs ?? 30 * 60_000,
    );
    // A command that exits without reading its stdin must not crash the harness (EPIPE).
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? '');
    child.on('error', (e) => {
      err += String(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout: out,
        stderr: err,
        seconds: (performance.now() - t0) / 1000,
        lines,
      });
    });
  });
}

export async function mustExec(
  cmd: string,
  args: string[],
  options: Parameters<typeof exec>[2] = {},
) {
  const r = await exec(cmd, args, options);
  if (r.code !== 0)
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-2000)}`,
    );
  return r;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export async function waitForPort(
  port: number,
  timeoutMs = 20_000,
  proc?: ChildProcess,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (proc && proc.exitCode !== null)
      throw new Error(`process exited (${proc.exitCode}) before listening`);
    if (Date.now() > until)
      throw new Error(
        `nothing listening on port ${port} after ${timeoutMs} ms`,
      );
    await sleep(50);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** VmRSS of a process in bytes, or undefined when it is gone. */
export function rssOf(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(
      readFileSync(`/proc/${pid}/status`, 'utf8'),
    );
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** A process and its descendants (the gateway's workers with `server.workers`), from /proc's children lists. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${out[i]}/task`);
    } catch {
      continue;
    }
    for (const task of tasks) {
      try {
        const children = readFileSync(`/proc/${out[i]}/task/${task}/children`, 'utf8').trim();
        if (children) out.push(...children.split(' ').map(Number));
      } catch {
        // The task ended while being read.
      }
    }
  }
  return out;
}

/** `measure` of a process plus its live descendants' (0 for one gone meanwhile); undefined when the process is gone. */
function sumOverTree(pid: number, measure: (pid: number) => number | undefined): number | undefined {
  const own = measure(pid);
  if (own === undefined) return undefined;
  return processTree(pid).slice(1).reduce((sum, p) => sum + (measure(p) ?? 0), own);
}

/** RSS of a process and its descendants, summed; undefined when the process is gone. */
export function treeRssOf(pid: number): number | undefined {
  return sumOverTree(pid, rssOf);
}

/** CPU seconds of a process and its live descendants (a child that exited takes its share with it). */
export function treeCpuSecondsOf(pid: number): number | undefined {
  return sumOverTree(pid, cpuSecondsOf);
}

export interface RssStats {
  /** Before the workload started. */
  start: number;
  peak: number;
  end: number;
  samples: number;
  /** RSS at 25, 50 and 75 % of the run's duration (to tell steady growth from GC slack). */
  quartiles: number[];
}

/** Samples the RSS of a process and its descendants every `intervalMs` until `stop()`. */
export function sampleRss(
  pid: number | undefined,
  intervalMs = 100,
): { stop(): RssStats | undefined } {
  if (pid === undefined) return { stop: () => undefined };
  const start = treeRssOf(pid) ?? 0;
  let peak = start;
  let last = start;
  let samples = 1;
  const series: number[] = [start];
  const timer = setInterval(() => {
    const v = treeRssOf(pid);
    if (v === undefined) return;
    samples++;
    series.push(v);
    last = v;
    if (v > peak) peak = v;
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      const v = treeRssOf(pid);
      if (v !== undefined) {
        last = v;
        if (v > peak) peak = v;
      }
      series.push(last);
      const at = (f: number) => series[Math.min(series.length - 1, Math.round(f * (series.length - 1)))]!;
      return { start, peak, end: last, samples, quartiles: [at(0.25), at(0.5), at(0.75)] };
    },
  };
}

/** Stops a child we started: SIGTERM, then SIGKILL after `graceMs`. */
export async function stopChild(
  child: ChildProcess,
  graceMs = 15_000,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

const CLOCK_TICKS = 100; // USER_HZ, the unit of /proc/<pid>/stat times on Linux

/** CPU seconds (user + system) a process has used so far, or undefined when it is gone. */
export function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may hold spaces and parentheses: utime and stime are 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** CPU seconds of every process whose command line contains `marker` (e.g. a Swift config folder). */
export function cpuSecondsOfMatching(marker: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (!cmdline.includes(marker)) continue;
    const s = cpuSecondsOf(Number(name));
    if (s !== undefined) out.set(Number(name), s);
  }
  return out;
}

/** CPU used by a set of processes between two snapshots; processes started in between count whole. */
export function cpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, s] of after) sum += Math.max(0, s - (before.get(pid) ?? 0));
  return sum;
}

/** Busy core-seconds of the whole machine so far: all time but idle and iowait (/proc/stat). */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return (total - (v[3] ?? 0) - (v[4] ?? 0)) / CLOCK_TICKS;
}
