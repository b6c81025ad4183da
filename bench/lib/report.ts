import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exec } from './proc.js';
import type { S3Activity } from './s3log.js';

export const MiB = 1024 * 1024;

export interface Row {
  workload: string;
  /** put / get / list / up / down */
  direction: string;
  cipher: string;
  server: string;
  seconds: number;
  bytes?: number;
  files?: number;
  rss?: { start: number; peak: number; end: number; quartiles?: number[] };
  /**
   * CPU seconds during the row: the server's process (the bench's own for the direct SDK; none for sshd,
   * which forks per connection), Swift's processes, and the whole machine's busy core-seconds.
   */
  cpu?: { server?: number; store?: number; machine: number };
  /** S3 requests Swift logged during the row, and the time it spent on them. */
  s3?: S3Activity;
  note?: string;
}

export const mbps = (r: Row) =>
  r.bytes ? r.bytes / 1e6 / r.seconds : undefined;
export const filesps = (r: Row) => (r.files ? r.files / r.seconds : undefined);
/** The figure ratios compare: MB/s for bulk, files (entries) per second otherwise; higher is better. */
export const speed = (r: Row) => mbps(r) ?? filesps(r) ?? 1 / r.seconds;

/**
 * The file system holding `dir`: its type, device and mount point, and for ext4 whether it has a journal.
 * Without one, ext4 skips inodes freed in the last ~35 s when it allocates a new one (`recently_deleted`
 * in fs/ext4/ialloc.c), scanning past each: creating files in a folder where many were just replaced,
 * as an upload that renames a temp file over its target does, costs more there than on ext4 with a journal.
 */
export async function describeFileSystem(dir: string): Promise<string> {
  const { existsSync, readdirSync, realpathSync } = await import('node:fs');
  let at = path.resolve(dir);
  while (!existsSync(at) && path.dirname(at) !== at) at = path.dirname(at);
  const real = realpathSync(at);
  const mounts = (await readFile('/proc/self/mounts', 'utf8').catch(() => ''))
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f.length >= 3)
    .map(([device, mountPoint, type]) => ({ device: device!, mountPoint: mountPoint!.replace(/\\040/g, ' '), type: type! }));
  const inside = (m: { mountPoint: string }) =>
    m.mountPoint === '/' || real === m.mountPoint || real.startsWith(`${m.mountPoint}/`);
  // The last of the longest matching mount points is the one on top.
  const mount = mounts.filter(inside).sort((a, b) => a.mountPoint.length - b.mountPoint.length).at(-1);
  if (!mount) return `? (${real})`;
  let type = mount.type;
  if (type === 'ext4') {
    const device = path.basename(mount.device);
    let journals: string[] = [];
    try {
      journals = readdirSync('/proc/fs/jbd2');
    } catch {
      // No jbd2 at all: no ext4 here has a journal.
    }
    type += journals.some((j) => j.startsWith(`${device}-`)) ? ' (with a journal)' : ' (no journal)';
  }
  return `${type} on ${mount.device}, mounted at ${mount.mountPoint} (${real})`;
}

export async function describeMachine(dataDir: string): Promise<Record<string, string>> {
  const first = async (cmd: string, args: string[]) => {
    const r = await exec(cmd, args);
    return `${r.stdout}${r.stderr}`.trim().split('\n')[0] ?? '?';
  };
  const dpkg = (p: string) =>
    first('dpkg-query', ['-W', '-f', '${Version}', p]);
  const cpus = os.cpus();
  return {
    Date: new Date().toISOString(),
    Host: os.hostname(),
    CPU: `${cpus[0]?.model ?? '?'} (${cpus.length} cores visible to Node, nproc ${(await first('nproc', [])).trim()})`,
    Memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    Kernel: `${os.type()} ${os.release()}`,
    Node: process.version,
    OpenSSH: await first('ssh', ['-V']),
    rclone: await first('rclone', ['version']),
    Swift: `swift-proxy ${await dpkg('swift-proxy')}`,
    'Server data (sshd root, local store)': await describeFileSystem(dataDir),
    'ssh2 native binding': await import('node:fs').then((fs) =>
      fs.existsSync(
        path.join(
          process.cwd(),
          'node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node',
        ),
      )
        ? 'built'
        : 'MISSING (chacha20 in JavaScript)',
    ),
  };
}

export function loadAverage(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');
}

const f = (v: number | undefined, d = 1) =>
  v === undefined || !Number.isFinite(v) ? '' : v.toFixed(d);
const ratio = (a: Row, b: Row | undefined) =>
  b ? `${(speed(a) / speed(b)).toFixed(2)}×` : '';

/** The anchors of a row: OpenSSH, rclone and the SDK on the same workload and cipher, and the transport. */
export function anchors(rows: Row[], r: Row) {
  const same = (server: string, cipher = r.cipher) =>
    rows.find(
      (o) =>
        o !== r &&
        o.server === server &&
        o.workload === r.workload &&
        o.cipher === cipher,
    );
  const channelDir =
    r.direction === 'put' ? 'up' : r.direction === 'get' ? 'down' : undefined;
  const channelServer = r.server.startsWith('gateway')
    ? 'gateway (ssh2)'
    : r.server === 'OpenSSH sshd'
      ? 'OpenSSH sshd'
      : undefined;
  const transport =
    channelDir &&
    channelServer &&
    !r.workload.startsWith('channel') &&
    !r.workload.includes('small files')
      ? rows.find(
          (o) =>
            o.workload === `channel ${channelDir}` &&
            o.server === channelServer &&
            o.cipher === r.cipher,
        )
      : undefined;
  return {
    openssh: same('OpenSSH sshd'),
    rclone: same('rclone serve sftp (S3)'),
    sdk: same('direct SDK', '-'),
    transport,
  };
}

export function table(rows: Row[]): string {
  const head =
    '| workload | cipher | server | seconds | MB/s | files/s | RSS start → peak MiB | ×OpenSSH | ×rclone | ×SDK | ×transport |';
  const sep = '|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|';
  const lines = rows.map((r) => {
    const a = anchors(rows, r);
    const rss = r.rss
      ? `${f(r.rss.start / MiB, 0)} → ${f(r.rss.peak / MiB, 0)}`
      : '';
    const self = (b: Row | undefined) => (b === r ? undefined : b);
    return `| ${r.workload}${r.note ? ` (${r.note})` : ''} | ${r.cipher} | ${r.server} | ${f(r.seconds, 2)} | ${f(mbps(r))} | ${f(filesps(r), 0)} | ${rss} | ${ratio(r, self(a.openssh))} | ${ratio(r, self(a.rclone))} | ${ratio(r, self(a.sdk))} | ${ratio(r, a.transport)} |`;
  });
  return [head, sep, ...lines].join('\n');
}

/** The issue's targets, each with the figure it is judged on. `cores`: the machine's, for cpuCap. */
export function targets(rows: Row[], cores = os.cpus().length): string {
  const out: string[] = [];
  const check = (
    label: string,
    value: number | undefined,
    goal: number,
    higher = true,
    unit = '×',
    cap?: { ratio: number; why: string },
  ) => {
    if (value === undefined) return;
    const ok = higher ? value >= goal : value <= goal;
    const reach = !ok && cap && cap.ratio < goal ? `; out of reach here: ${cap.why} caps it at ${cap.ratio.toFixed(2)}×` : '';
    out.push(
      `| ${label} | ${value.toFixed(2)}${unit} | ${higher ? '≥' : '≤'} ${goal}${unit} | ${ok ? 'met' : '**missed**'}${reach} |`,
    );
  };
  for (const r of rows) {
    // Only the last pass of the small-file workloads is judged; the earlier ones are in the table.
    if (r.direction === 'connect' || /, pass \d+ of \d+$/.test(r.workload)) continue;
    const a = anchors(rows, r);
    const tag = `${r.workload}, ${r.cipher}`;
    // The issue's "local store ≥ 1.0× OpenSSH" covers its listing too; small files have their own goal.
    if (r.server === 'gateway, local store' && a.openssh) {
      const small = r.workload.includes('small files');
      check(
        `local ${tag} vs OpenSSH`,
        speed(r) / speed(a.openssh),
        small ? 0.8 : 1.0,
      );
    }
    if (r.server === 'gateway, S3') {
      const cap = (anchor: Row) => swiftCap(r, a.sdk, anchor) ?? cpuCap(r, anchor, cores);
      if (a.sdk) check(`S3 ${tag} vs direct SDK`, speed(r) / speed(a.sdk), 0.9, true, '×', cap(a.sdk));
      if (a.rclone)
        check(`S3 ${tag} vs rclone`, speed(r) / speed(a.rclone), 1.5, true, '×', cap(a.rclone));
      if (r.workload.includes('concurrent uploads') && r.rss)
        check(`S3 ${tag} peak RSS`, r.rss.peak / MiB, 300, false, ' MiB');
      if (r.workload.startsWith('ls') && r.rss)
        check(
          `S3 ${tag} RSS growth while listing`,
          (r.rss.peak - r.rss.start) / MiB,
          16,
          false,
          ' MiB',
        );
    }
  }
  return [
    '| target | figure | goal | result |',
    '|---|--:|--:|---|',
    ...out,
  ].join('\n');
}

/**
 * The best ratio to `anchor` a request-bound S3 row could reach with Swift as fast as it served the direct
 * SDK. Small uploads are sequential for every server: the client sends the next file once the last one's
 * CLOSE is answered, and a server answers it once the object is stored. A listing's pages follow each
 * other. The SDK sends the fewest requests the job allows, one after the other, so the seconds Swift
 * spent serving them are time no server sending them through this Swift with the same SDK (the gateway's
 * S3 client) can go below. (Without the SDK a request ends a little sooner: 12.3-12.8 ms per bare signed
 * 4 KiB PUT against 13.0-16.3 through the SDK, fourteenth pass of results/2026-11-23-analysis.md.) Small
 * downloads are not capped this way: a server may fetch the next files ahead, several at once (the
 * gateway does). Bulk rows are bound by CPU instead: cpuCap.
 */
export function swiftCap(
  r: Row,
  sdk: Row | undefined,
  anchor: Row,
): { ratio: number; why: string } | undefined {
  const requestBound = /^put \d+ small files/.test(r.workload) || r.workload.startsWith('ls');
  const serving = sdk?.s3?.serving;
  if (!requestBound || !sdk?.s3 || !serving || serving <= 0) return undefined;
  const requests = [...sdk.s3.counts.values()].reduce((n, c) => n + c, 0);
  return {
    // The row's own work, done in the time Swift took: its speed scaled by seconds / serving.
    ratio: (speed(r) * r.seconds) / serving / speed(anchor),
    why: `Swift's ${serving.toFixed(2)} s serving the ${requests} requests the direct SDK (the gateway's S3 client) made for the same ${r.files ? `${r.files} ${r.workload.startsWith('ls') ? 'entries' : 'files'}` : 'work'}`,
  };
}

/**
 * The best ratio to `anchor` a bulk row could reach with the CPU work measured during it: the machine's
 * busy core-seconds (the gateway, Swift, the OpenSSH clients, the bench itself) spread over every core with
 * none idle. A bulk S3 transfer through the gateway runs Swift, the gateway and the clients' SSH on the
 * same cores, where the direct SDK runs no SSH at all; when that work cannot fit in the time the target
 * allows, only less work gets there. The reason names the gateway's own share of it.
 */
export function cpuCap(r: Row, anchor: Row, cores: number): { ratio: number; why: string } | undefined {
  const work = r.cpu?.machine;
  if (work === undefined || work <= 0 || cores <= 0 || r.workload.includes('small files') || r.workload.startsWith('ls'))
    return undefined;
  const gateway = r.cpu?.server === undefined ? '' : ` (the gateway's ${r.cpu.server.toFixed(2)})`;
  return {
    ratio: (speed(r) * r.seconds) / (work / cores) / speed(anchor),
    why: `the row's ${work.toFixed(2)} busy core-seconds${gateway} on ${cores} cores`,
  };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** Top self-time functions of every .cpuprofile under `dir` (one folder per gateway run). */
export async function summarizeProfiles(
  dir: string,
  top = 15,
): Promise<string> {
  const out: string[] = [];
  let folders: string[];
  try {
    folders = (await readdir(dir)).sort();
  } catch {
    return '';
  }
  for (const folder of folders) {
    const files = (
      await readdir(path.join(dir, folder)).catch(() => [])
    ).filter((n) => n.endsWith('.cpuprofile'));
    for (const file of files) {
      const p = JSON.parse(
        await readFile(path.join(dir, folder, file), 'utf8'),
      ) as {
        nodes: ProfileNode[];
        startTime: number;
        endTime: number;
        samples: number[];
      };
      const self = new Map<string, number>();
      let total = 0;
      let idle = 0;
      for (const n of p.nodes) {
        const hits = n.hitCount ?? 0;
        if (!hits) continue;
        total += hits;
        const cf = n.callFrame;
        if (cf.functionName === '(idle)') idle += hits;
        const where = cf.url ? `${shortUrl(cf.url)}:${cf.lineNumber + 1}` : '';
        const key = `${cf.functionName || '(anonymous)'}|${where}`;
        self.set(key, (self.get(key) ?? 0) + hits);
      }
      const busy = total - idle;
      const seconds = (p.endTime - p.startTime) / 1e6;
      out.push(
        `#### ${folder} (${file}): ${seconds.toFixed(1)} s profiled, busy ${((100 * busy) / total).toFixed(0)}% of samples`,
        '',
        '| function | where | % of busy samples |',
        '|---|---|--:|',
      );
      const sorted = [...self.entries()]
        .filter(([k]) => !k.startsWith('(idle)'))
        .sort((a, b) => b[1] - a[1])
        .slice(0, top);
      for (const [k, hits] of sorted) {
        const [fn, where] = k.split('|');
        out.push(`| ${fn} | ${where} | ${((100 * hits) / busy).toFixed(1)} |`);
      }
      out.push('');
    }
  }
  return out.join('\n');
}

function shortUrl(url: string): string {
  const u = url.replace(/^file:\/\//, '');
  const i = u.indexOf('/node_modules/');
  if (i >= 0) return u.slice(i + 1);
  const d = u.indexOf('/dist/');
  if (d >= 0) return u.slice(d + 1);
  return u;
}

/** S3 requests per row, for the rows that went to S3, and how much of the row Swift spent serving them. */
export function requestTable(
  rows: Row[],
  format: (c: S3Activity, files?: number) => string,
): string {
  const lines = rows
    .filter((r) => r.s3 && r.s3.counts.size > 0)
    .map(
      (r) =>
        `| ${r.workload} | ${r.cipher} | ${r.server} | ${format(r.s3!, r.files)} | ${r.s3!.serving.toFixed(2)} | ${Math.min(100, (100 * r.s3!.serving) / r.seconds).toFixed(0)} % |`,
    );
  return markdownTable(
    '| workload | cipher | server | S3 requests (Swift proxy log: count, per file, mean time in Swift) | Swift serving s | of the row |',
    '|---|---|---|---|--:|--:|',
    lines,
  );
}

/** A Markdown table of `lines` under `head` and `sep`, or '' when there are no lines. */
function markdownTable(head: string, sep: string, lines: string[]): string {
  return lines.length ? [head, sep, ...lines].join('\n') : '';
}

/** RSS over time for the listing rows: start, 25 / 50 / 75 % of the duration, end, peak (MiB). */
export function listingRss(rows: Row[]): string {
  const lines = rows
    .filter((r) => r.direction === 'list' && r.rss?.quartiles)
    .map((r) => {
      const m = (v: number) => (v / MiB).toFixed(0);
      const q = r.rss!.quartiles!.map(m).join(' | ');
      return `| ${r.workload} | ${r.server} | ${m(r.rss!.start)} | ${q} | ${m(r.rss!.end)} | ${m(r.rss!.peak)} |`;
    });
  return markdownTable(
    '| workload | server | start | 25 % | 50 % | 75 % | end | peak |',
    '|---|---|--:|--:|--:|--:|--:|--:|',
    lines,
  );
}

/**
 * CPU seconds of each row: the server's process, Swift's, and the whole machine's busy core-seconds
 * against what its cores could give in the row's time (2 cores × seconds here). When the machine is near
 * saturation, every CPU-second the server spends is taken from Swift (and the client).
 */
export function cpuTable(rows: Row[], cores: number): string {
  const s = (v: number | undefined) => (v === undefined ? '' : v.toFixed(2));
  const lines = rows
    .filter((r) => r.cpu)
    .map((r) => {
      const c = r.cpu!;
      const busy = Math.min(100, (100 * c.machine) / (cores * r.seconds));
      const perGB = r.bytes && c.server !== undefined ? (c.server / (r.bytes / 1e9)).toFixed(2) : '';
      return `| ${r.workload} | ${r.cipher} | ${r.server} | ${r.seconds.toFixed(2)} | ${s(c.server)} | ${perGB} | ${s(c.store)} | ${busy.toFixed(0)} % |`;
    });
  return markdownTable(
    '| workload | cipher | server | seconds | server CPU s | server CPU s per GB | Swift CPU s | machine busy |',
    '|---|---|---|--:|--:|--:|--:|--:|',
    lines,
  );
}
