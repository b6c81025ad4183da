/**
 * `npm run bench`: throughput, small files, listings and memory of the gateway against OpenSSH's sshd,
 * `rclone serve sftp` and direct SDK transfers, all started here on loopback and measured in one run.
 * Never part of `npm test`. See bench/README.md.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { makeFile } from '../test/support/gateway.js';
import {
  cpuBetween,
  cpuSecondsOfMatching,
  exec,
  machineBusySeconds,
  sampleRss,
  treeCpuSecondsOf,
} from './lib/proc.js';
import {
  describeMachine,
  loadAverage,
  MiB,
  mbps,
  type Row,
  requestTable,
  cpuTable,
  listingRss,
  summarizeProfiles,
  table,
  targets,
} from './lib/report.js';
import { formatCounts, S3RequestLog } from './lib/s3log.js';
import { Sdk } from './lib/sdk.js';
import { parseRunTargets, summaryTable } from './lib/summary.js';
import {
  benchKey,
  ROOT,
  type S3Server,
  type SftpServer,
  SSH_OPTS,
  startBenchGateway,
  startRclone,
  startS3,
  startSshd,
  serverDataDir,
  setServerDataDir,
  WORK,
} from './lib/servers.js';

const ALL_WORKLOADS = [
  'connect',
  'channel',
  'put',
  'get',
  'par-put',
  'par-get',
  'small-put',
  'small-get',
  'ls',
  'ls-big',
  'many',
] as const;
type Workload = (typeof ALL_WORKLOADS)[number];
/** Workloads whose time is in requests, not bytes: run with the first cipher unless --all-ciphers. */
const ONE_CIPHER: Workload[] = [
  'par-put',
  'par-get',
  'small-put',
  'small-get',
  'ls',
  'ls-big',
  'many',
];
const ALL_SERVERS = ['openssh', 'gw-local', 'gw-s3', 'rclone', 'sdk'] as const;
/**
 * The small-file workloads run several times on every server (`--small-passes` on the local disk,
 * `--small-passes-s3` on S3), each pass its own row; the last pass counts. The first runs on a server
 * that has just started (the gateway is restarted for every workload), the last on one that has served
 * a while, as a production server has. The gateway's JIT compiler needs thousands of requests to
 * optimize its per-request code: 1,000 small downloads in a fresh process, 4 passes, 3 processes per
 * runtime (2026-12-05), cost 1.00-1.08 CPU-s in the second pass on Node 20, 0.93-1.06 on Node 22 and
 * 0.74-0.79 on Node 24, and 0.63-0.84 in the third and fourth on all three. sshd's C code has no such
 * warm-up; its rows show it.
 */
function passLabel(pass: number, passes: number): string {
  return pass === passes ? '' : `, pass ${pass} of ${passes}`;
}
/**
 * Workloads whose gateway serves one untimed warm-up session first: a put and a get of a 32 MiB file and
 * an `ls -l`, with the first cipher. The gateway is restarted for every workload, and the first
 * 512 MiB transfer of a fresh process paid its JIT and first page faults: the first of two S3 gets in one
 * process cost 4.13 CPU-s, the second 3.41, and with `--ciphers chacha...,aes...` the aes rows won what
 * the chacha rows lost. Without it the first cipher's rows measured a cold process and the second's a
 * warm one; the SDK anchor runs in the bench process, warm from the start. The small-file workloads
 * show their cold pass as a row of its own instead; `connect` measures session set-up as it comes; the
 * memory workloads (`ls-big`, `many`) start cold so that their RSS starts from the same baseline.
 */
const WARMED: Workload[] = ['channel', 'put', 'get', 'par-put', 'par-get', 'ls'];
const WARM_BYTES = 32 * 1024 * 1024;

const USAGE = `usage: npm run bench -- [options]

  --workloads LIST   ${ALL_WORKLOADS.join(',')} (default: all)
  --servers LIST     ${ALL_SERVERS.join(',')} (default: all)
  --ciphers LIST     default aes128-gcm@openssh.com,chacha20-poly1305@openssh.com
  --all-ciphers      also run ${ONE_CIPHER.join(', ')} with every cipher (default: the first only)
  --size MiB         the single put/get and the bare channel (default 512)
  --par N            parallel streams (default 4)      --par-size MiB   each (default 128)
  --small N          small files (default 1000)        --small-kib KiB  each (default 4)
  --small-passes N   passes of the small-file workloads on OpenSSH and the local-store gateway, each
                     a row; the last counts (default 3)
  --small-passes-s3 N  the same on the S3 gateway, rclone and the SDK (default 2: a pass takes 10-20 s
                     there, bound by Swift's time per request, and the second was no faster than the first)
  --list N           entries of the listed folder (default 10000)
  --list-big N       entries of the big S3 listing (default 100000)
  --many N           concurrent uploads (default 64)   --many-size MiB  each (default 64)
  --s3-workers N     Swift proxy and object workers (default 2)
  --rclone-get MiB   cap of each rclone download (default 16: rclone re-opens the object on every
                     out-of-order read and moves ~3 MB/s here, so full sizes would take many minutes)
  --many-servers L   servers of the concurrent-upload run (default openssh,gw-s3,sdk)
  --gateway-config J JSON merged over the gateway's config (e.g. '{"memoryBudgetMiB":64}') for experiments
  --gateway-node-flags F  node flags added after npm start's (e.g. '--max-semi-space-size=4'; the last
                     occurrence of a V8 flag wins) for experiments
  --keep-files       keep the transferred files (by default they are deleted at the end; the next run
                     deletes them at its start; the listing folders are always kept)
  --keep-s3          leave the S3 server running at the end (another bench run may be using it)
  --repeat N         run the selected workloads N times in a row (default 1), sharing the S3 server,
                     sshd and rclone; each round writes its own results file, and a summary file gives
                     every target's figure per round, the median and in how many rounds it was met
  --profile          node --cpu-prof on every gateway process, summaries under bench/work/profiles/
  --out DIR          results folder (default bench/results)
  --data-dir DIR     where sshd's root and the gateway's local store go (default bench/work); the
                     results name its file system, which decides what creating a file costs
`;

const { values: opt } = parseArgs({
  options: {
    workloads: { type: 'string', default: ALL_WORKLOADS.join(',') },
    servers: { type: 'string', default: ALL_SERVERS.join(',') },
    ciphers: {
      type: 'string',
      default: 'aes128-gcm@openssh.com,chacha20-poly1305@openssh.com',
    },
    'all-ciphers': { type: 'boolean', default: false },
    size: { type: 'string', default: '512' },
    par: { type: 'string', default: '4' },
    'par-size': { type: 'string', default: '128' },
    small: { type: 'string', default: '1000' },
    'small-kib': { type: 'string', default: '4' },
    'small-passes': { type: 'string', default: '3' },
    'small-passes-s3': { type: 'string', default: '2' },
    list: { type: 'string', default: '10000' },
    'list-big': { type: 'string', default: '100000' },
    many: { type: 'string', default: '64' },
    'many-size': { type: 'string', default: '64' },
    's3-workers': { type: 'string', default: '2' },
    'rclone-get': { type: 'string', default: '16' },
    'many-servers': { type: 'string', default: 'openssh,gw-s3,sdk' },
    repeat: { type: 'string', default: '1' },
    profile: { type: 'boolean', default: false },
    'keep-s3': { type: 'boolean', default: false },
    'keep-files': { type: 'boolean', default: false },
    'gateway-config': { type: 'string', default: '{}' },
    'gateway-node-flags': { type: 'string', default: '' },
    out: { type: 'string', default: path.join(ROOT, 'bench', 'results') },
    'data-dir': { type: 'string', default: WORK },
    help: { type: 'boolean', default: false },
  },
});
if (opt.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
setServerDataDir(opt['data-dir']);
const workloads = new Set(opt.workloads.split(',') as Workload[]);
for (const w of workloads)
  if (!ALL_WORKLOADS.includes(w))
    throw new Error(`unknown workload ${w}\n${USAGE}`);
const servers = new Set(opt.servers.split(','));
const ciphers = opt.ciphers.split(',');
const num = (k: keyof typeof opt) => {
  const v = Number(opt[k]);
  if (!Number.isFinite(v) || v <= 0)
    throw new Error(`--${k} must be a positive number`);
  return v;
};
const size = {
  big: num('size') * MiB,
  par: num('par'),
  parSize: num('par-size') * MiB,
  small: num('small'),
  smallBytes: num('small-kib') * 1024,
  smallPasses: Math.ceil(num('small-passes')),
  smallPassesS3: Math.ceil(num('small-passes-s3')),
  list: num('list'),
  listBig: num('list-big'),
  many: num('many'),
  manySize: num('many-size') * MiB,
  rcloneGet: num('rclone-get') * MiB,
};

const rows: Row[] = [];
/** Every failure of the run; a round's results file lists the ones from `roundFailuresFrom` on. */
const failures: string[] = [];
let roundFailuresFrom = 0;
const log = (msg: string) =>
  process.stderr.write(
    `[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`,
  );

const LOCAL = path.join(WORK, 'local');
const DL = path.join(WORK, 'download');
const runStamp = new Date().toISOString().replace(/[:T]/g, '-').slice(0, 16);
/** The host's name as results files are named after it. */
const HOST = os.hostname().replace(/[^\w.-]/g, '_');
const repeat = num('repeat');
if (!Number.isInteger(repeat)) throw new Error('--repeat must be a whole number');
/** The current round's name for its files: the run's date, with `-r<round>` when there are several. */
let stamp = runStamp;
let profileRoot = path.join(WORK, 'profiles', stamp);

async function ensureFile(file: string, bytes: number): Promise<string> {
  const s = await stat(file).catch(() => undefined);
  if (s?.size !== bytes) await makeFile(file, bytes);
  return file;
}

async function ensureSmallDir(
  dir: string,
  count: number,
  bytes: number,
): Promise<string> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const first = names[0] ? await stat(path.join(dir, names[0])) : undefined;
  if (names.length !== count || first?.size !== bytes) {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    for (let i = 0; i < count; i++)
      await makeFile(path.join(dir, `s${String(i).padStart(5, '0')}`), bytes);
  }
  return dir;
}

/** An empty-file folder for listing on a local disk; created once. */
async function ensureLocalListing(dir: string, count: number): Promise<void> {
  const marker = `${dir}.populated`;
  if (existsSync(marker)) return;
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < count; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, count - i) }, (_, j) =>
        writeFile(path.join(dir, `f${String(i + j).padStart(6, '0')}`), ''),
      ),
    );
  }
  await writeFile(marker, '');
}

let KEY = '';
let s3Log: S3RequestLog | undefined;

function sftp(server: SftpServer, cipher: string, commands: string) {
  const args = [
    ...SSH_OPTS,
    '-i',
    KEY,
    '-P',
    String(server.port),
    '-c',
    cipher,
    '-b',
    '-',
    `${server.user}@127.0.0.1`,
  ];
  return exec('sftp', args, { input: commands });
}

function ssh(
  server: { port: number; user: string },
  cipher: string,
  command: string,
) {
  return [
    ...SSH_OPTS,
    '-T',
    '-i',
    KEY,
    '-p',
    String(server.port),
    '-c',
    cipher,
    `${server.user}@127.0.0.1`,
    command,
  ];
}

/** The untimed session a gateway serves before the timed rows of a WARMED workload. */
async function warmUp(s: SftpServer, cipher: string, file: string): Promise<void> {
  const dir = `${s.root}/warm-up`;
  const back = path.join(DL, `warm-up-${s.id}`);
  ok(
    await sftp(s, cipher, `-mkdir ${s.root}\n-mkdir ${dir}\nput ${file} ${dir}/w\nget ${dir}/w ${back}\nls -l ${dir}\nrm ${dir}/w\n`),
    'warm-up session',
  );
  await checkSize(back, WARM_BYTES);
  await rm(back, { force: true });
}

/** Times `body`, sampling the server's RSS, and records a row (or a failure). */
async function measure(
  server: { label: string; pid?: number; id?: string },
  base: Omit<Row, 'seconds' | 'server' | 'rss'>,
  body: () => Promise<void>,
): Promise<void> {
  const onS3 =
    s3Log &&
    (server.id === 'gw-s3' ||
      server.id === 'rclone' ||
      server.label === 'direct SDK');
  const mark = onS3 ? await s3Log!.mark() : 0;
  const sampler = sampleRss(server.pid);
  const cpu0 = cpuSnapshot(server);
  const t0 = performance.now();
  try {
    await body();
    const seconds = (performance.now() - t0) / 1000;
    const rss = sampler.stop();
    const cpu = cpuSince(cpu0, server);
    const s3 = onS3 ? await s3Log!.since(mark) : undefined;
    const row: Row = { ...base, server: server.label, seconds, rss, cpu, s3 };
    rows.push(row);
    const speed = mbps(row)
      ? `${mbps(row)!.toFixed(1)} MB/s`
      : row.files
        ? `${(row.files / seconds).toFixed(0)} files/s`
        : '';
    log(
      `${base.workload} ${base.cipher} ${server.label}: ${seconds.toFixed(2)} s ${speed}${rss ? ` peak RSS ${(rss.peak / MiB).toFixed(0)} MiB` : ''}`,
    );
  } catch (e) {
    sampler.stop();
    const msg = `${base.workload} ${base.cipher} ${server.label}: ${(e as Error).message.slice(0, 500)}`;
    failures.push(msg);
    log(`FAILED ${msg}`);
  }
}

/** Swift's processes are the ones started with a config under the bench's S3 folder. */
const SWIFT_MARKER = path.join(WORK, 's3', 'etc') + '/';

interface CpuSnapshot {
  server: number | undefined;
  self: NodeJS.CpuUsage;
  store: Map<number, number>;
  machine: number;
}

function cpuSnapshot(server: { label: string; pid?: number }): CpuSnapshot {
  return {
    server: server.pid === undefined ? undefined : treeCpuSecondsOf(server.pid),
    self: process.cpuUsage(),
    store: cpuSecondsOfMatching(SWIFT_MARKER),
    machine: machineBusySeconds(),
  };
}

function cpuSince(before: CpuSnapshot, server: { label: string; pid?: number }): Row['cpu'] {
  let own: number | undefined;
  if (server.label === 'direct SDK') {
    const u = process.cpuUsage(before.self);
    own = (u.user + u.system) / 1e6;
  } else if (server.pid !== undefined && before.server !== undefined) {
    const now = treeCpuSecondsOf(server.pid);
    if (now !== undefined) own = now - before.server;
  }
  const store = cpuBetween(before.store, cpuSecondsOfMatching(SWIFT_MARKER));
  return { server: own, store: store > 0 ? store : undefined, machine: machineBusySeconds() - before.machine };
}

function ok(r: { code: number | null; stderr: string }, what: string): void {
  if (r.code !== 0)
    throw new Error(`${what} exited ${r.code}: ${r.stderr.trim().slice(-400)}`);
}

async function checkSize(file: string, bytes: number): Promise<void> {
  const s = await stat(file);
  if (s.size !== bytes)
    throw new Error(`${file}: ${s.size} bytes, expected ${bytes}`);
}

async function main(): Promise<void> {
  const loadBefore = loadAverage();
  const machine = await describeMachine(serverDataDir());
  log(`load before: ${loadBefore}`);
  const t0 = performance.now();
  await mkdir(LOCAL, { recursive: true });
  await rm(DL, { recursive: true, force: true });
  await mkdir(DL, { recursive: true });
  const { key, pub } = await benchKey();
  KEY = key;

  const want = (w: Workload) => workloads.has(w);
  const bigFile = await ensureFile(
    path.join(LOCAL, `big-${size.big}.bin`),
    size.big,
  );
  const parFile =
    want('par-put') || want('par-get')
      ? await ensureFile(
          path.join(LOCAL, `par-${size.parSize}.bin`),
          size.parSize,
        )
      : '';
  const smallDir =
    want('small-put') || want('small-get')
      ? await ensureSmallDir(
          path.join(LOCAL, `small-${size.small}x${size.smallBytes}`),
          size.small,
          size.smallBytes,
        )
      : '';
  const capFile =
    servers.has('rclone') && (want('get') || want('par-get'))
      ? await ensureFile(path.join(LOCAL, `cap-${size.rcloneGet}.bin`), size.rcloneGet)
      : '';
  const manyFile = want('many')
    ? await ensureFile(
        path.join(LOCAL, `many-${size.manySize}.bin`),
        size.manySize,
      )
    : '';

  const needS3 =
    servers.has('gw-s3') || servers.has('rclone') || servers.has('sdk');
  const stops: (() => Promise<void>)[] = [];
  const reports: Array<{ file: string; md: string }> = [];
  try {
    let s3: S3Server | undefined;
    let sdk: Sdk | undefined;
    if (needS3) {
      log('starting the S3 server (Swift)');
      s3 = await startS3(num('s3-workers'));
      if (!opt['keep-s3']) stops.push(() => s3!.stop());
      sdk = new Sdk(s3);
      s3Log = new S3RequestLog(
        path.join(WORK, 's3', 'log', 'proxy.log'),
        s3.bucket,
      );
      stops.push(async () => sdk!.destroy());
    }
    const anchors: SftpServer[] = [];
    let sshdData = '';
    if (servers.has('openssh')) {
      const sshd = await startSshd(pub);
      sshdData = sshd.dataDir;
      stops.push(() => sshd.stop());
      anchors.push(sshd);
    }
    let rclone: SftpServer | undefined;
    if (servers.has('rclone') && s3) {
      rclone = await startRclone(s3, pub);
      stops.push(() => rclone!.stop());
      anchors.push(rclone);
    }

    // Listing folders (created once, kept under bench/work/).
    if (want('ls')) {
      if (servers.has('openssh'))
        await ensureLocalListing(
          path.join(sshdData, `list-${size.list}`),
          size.list,
        );
      if (servers.has('gw-local'))
        await ensureLocalListing(
          path.join(serverDataDir(), 'local-data/bench/home', `list-${size.list}`),
          size.list,
        );
    }
    if (sdk && (want('ls') || want('ls-big'))) {
      for (const n of [
        want('ls') ? size.list : 0,
        want('ls-big') ? size.listBig : 0,
      ].filter(Boolean)) {
        const t = performance.now();
        const created = await sdk.populate(`bench/list-${n}`, n, 32, (d) =>
          log(`  ${d} / ${n} objects`),
        );
        if (created)
          log(
            `created ${n} objects for listing in ${((performance.now() - t) / 1000).toFixed(0)} s`,
          );
      }
    }

    // What an interrupted run or --keep-files left: overwriting it would leak its segments on Swift.
    await clearWritten(sdk);
    const warmFile = await ensureFile(path.join(LOCAL, `warm-${WARM_BYTES}.bin`), WARM_BYTES);
    const manyServers = new Set(opt['many-servers'].split(','));
    for (let round = 1; round <= repeat; round++) {
      if (repeat > 1) {
        stamp = `${runStamp}-r${round}`;
        profileRoot = path.join(WORK, 'profiles', stamp);
        log(`=== round ${round} of ${repeat}`);
      }
      if (round > 1 && rclone && s3) {
        // rclone's directory cache still holds the folders the last round's clean-up deleted from S3
        // behind its back (a put into one failed "No such file or directory"): a fresh rclone per round.
        await rclone.stop();
        const fresh = await startRclone(s3, pub);
        anchors[anchors.indexOf(rclone)] = fresh;
        rclone = fresh;
      }
      const roundLoad = round === 1 ? loadBefore : loadAverage();
      const roundStart = performance.now();
      for (const w of ALL_WORKLOADS) {
        if (!want(w)) continue;
        log(`--- ${w}`);
        const gws: SftpServer[] = [];
        for (const kind of ['local', 's3'] as const) {
          if (!servers.has(`gw-${kind}`) || (kind === 's3' && !s3)) continue;
          if (w === 'channel' && kind === 's3') continue;
          if (w === 'ls-big' && kind === 'local') continue;
          if (w === 'many' && !manyServers.has(`gw-${kind}`)) continue;
          gws.push(
            await startBenchGateway(
              kind,
              pub,
              s3,
              opt.profile ? path.join(profileRoot, `${w}-${kind}`) : undefined,
              JSON.parse(opt['gateway-config']) as Record<string, unknown>,
              opt['gateway-node-flags'].split(/\s+/).filter(Boolean),
            ),
          );
        }
        try {
          if (WARMED.includes(w)) for (const g of gws) await warmUp(g, ciphers[0]!, warmFile);
          const targets = [...anchors, ...gws].filter(
            (s) =>
              !(w === 'ls-big' && (s.id === 'openssh' || s.id === 'gw-local')) &&
              !(w === 'many' && !manyServers.has(s.id)),
          );
          const cs =
            ONE_CIPHER.includes(w) && !opt['all-ciphers']
              ? ciphers.slice(0, 1)
              : ciphers;
          const files = { bigFile, capFile, parFile, smallDir, manyFile };
          // The SDK's small-file passes run interleaved with the first cipher's (see runInterleaved).
          const small = w === 'small-put' || w === 'small-get';
          const sdkSteps = sdk && small && cs.length > 0 ? [await sdkSmallFileSteps(w, sdk, files)] : [];
          for (const [i, cipher] of cs.entries())
            await runWorkload(w, cipher, targets, files, i === 0 ? sdkSteps : []);
          if (sdk && !small && cs.length > 0 && (w !== 'many' || manyServers.has('sdk')))
            await runSdk(w, sdk, files);
        } finally {
          for (const g of gws) await g.stop();
        }
      }
      // After every round: the next round writes the same names.
      if (!opt['keep-files'] || round < repeat) await clearWritten(sdk);
      const roundLoadAfter = loadAverage();
      const roundMinutes = (performance.now() - roundStart) / 60_000;
      log(`load after: ${roundLoadAfter}; ${roundMinutes.toFixed(1)} min`);
      reports.push(await writeReport(machine, roundLoad, roundLoadAfter, roundMinutes));
      rows.length = 0;
      roundFailuresFrom = failures.length;
    }
  } finally {
    for (const stop of stops.reverse())
      await stop().catch((e) => log(`stop: ${(e as Error).message}`));
  }

  if (repeat > 1) await writeSummary(reports, (performance.now() - t0) / 60_000);
}

/** The rounds' targets side by side (bench/lib/summary.ts), next to the rounds' results files. */
async function writeSummary(reports: Array<{ file: string; md: string }>, minutes: number): Promise<void> {
  const runs = reports.map((r) => parseRunTargets(path.basename(r.file, '.md'), r.md));
  const file = path.join(opt.out, `${runStamp}-${HOST}-summary.md`);
  const md = [
    `# Benchmark ${runStamp}: ${repeat} rounds, ${minutes.toFixed(1)} min`,
    '',
    `Options: \`${process.argv.slice(2).join(' ')}\`. Each round's rows are in its own file:`,
    ...reports.map((r) => `- ${path.basename(r.file)}`),
    '',
    'Every target\'s figure per round, the median and in how many rounds it was met:',
    '',
    summaryTable(runs),
    '',
  ].join('\n');
  await writeFile(file, md);
  process.stdout.write(`${md}\nwritten to ${path.relative(ROOT, file)}\n`);
}

interface Files {
  bigFile: string;
  capFile: string;
  parFile: string;
  smallDir: string;
  manyFile: string;
}

/** Passes of the small-file workloads on server `id` (see passLabel). */
function smallPassesOf(id: string): number {
  return id === 'openssh' || id === 'gw-local' ? size.smallPasses : size.smallPassesS3;
}

/** The row of a small-file workload's pass `pass` (1-based) of `passes`. */
function smallFilesRow(direction: 'put' | 'get', cipher: string, pass: number, passes: number) {
  return {
    workload: `${direction} ${size.small} small files${passLabel(pass, passes)}`,
    direction,
    cipher,
    files: size.small,
    bytes: size.small * size.smallBytes,
  };
}

/**
 * Deletes what the workloads write (several GiB per run: the 64-upload run alone is 4 GiB per server).
 * On Swift an overwritten multipart object keeps its old segments, which no S3 request can reach or
 * delete: objects overwritten in the bench bucket (by interrupted runs and by probe scripts) had left
 * 62 GiB of them on this machine by 2026-12-05.
 */
async function clearWritten(sdk: Sdk | undefined): Promise<void> {
  for (const dir of ['openssh-root/w', 'local-data/bench/home/w'])
    await rm(path.join(serverDataDir(), dir), { recursive: true, force: true });
  if (sdk) for (const p of ['bench/w-gw/', 'bench/w-rclone/', 'bench/w-sdk/']) await sdk.deleteAll(p);
}

/** One timed pass of a small-file workload on one server (or what prepares or cleans up after it). */
type Step = () => Promise<void>;

/**
 * Runs the servers' passes round-robin, the first pass of every server, then the second...: this VM's
 * speed drifts by a third within minutes, and OpenSSH's 1,000 puts took 0.71 to 1.97 s across runs of one
 * afternoon, so passes run minutes apart compared the drift as much as the servers. The rows are then put
 * back in server order, as the other workloads list them.
 */
async function runInterleaved(sequences: Step[][]): Promise<void> {
  const from = rows.length;
  for (let i = 0; sequences.some((q) => i < q.length); i++)
    for (const q of sequences) if (i < q.length) await q[i]!();
  const mine = rows.splice(from);
  const order = new Set(mine.map((r) => r.server));
  rows.push(...[...order].flatMap((server) => mine.filter((r) => r.server === server)));
}

async function runWorkload(
  w: Workload,
  cipher: string,
  targets: SftpServer[],
  f: Files,
  alongside: Step[][] = [],
) {
  const interleaved: Step[][] = [];
  for (const s of targets) {
    // One folder per cipher: no object is overwritten within a run (on Swift an overwritten multipart
    // object leaves its old segments behind).
    const root = `${s.root}/${cipher.split(/[-@]/)[0]}`;
    await sftp(s, cipher, `-mkdir ${s.root}\n-mkdir ${root}\n`);
    const dl = path.join(DL, s.id);
    await mkdir(dl, { recursive: true });
    switch (w) {
      case 'connect':
        // Session setup (TCP, key exchange, auth, SFTP init, one request): a fixed cost in every other row.
        await measure(s, { workload: 'connect: 5 sessions, pwd', direction: 'connect', cipher, files: 5 }, async () => {
          for (let i = 0; i < 5; i++) ok(await sftp(s, cipher, 'pwd\n'), 'sftp pwd');
        });
        break;
      case 'channel': {
        const isGw = s.id.startsWith('gw');
        const label = isGw
          ? 'gateway (ssh2)'
          : s.id === 'openssh'
            ? 'OpenSSH sshd'
            : undefined;
        if (!label) break;
        await measure(
          { label, pid: s.pid },
          { workload: 'channel up', direction: 'up', cipher, bytes: size.big },
          async () => {
            const r = await exec(
              'ssh',
              ssh(s, cipher, isGw ? 'sink' : 'cat > /dev/null'),
              {
                stdinFile: f.bigFile,
              },
            );
            ok(r, 'ssh');
          },
        );
        await measure(
          { label, pid: s.pid },
          {
            workload: 'channel down',
            direction: 'down',
            cipher,
            bytes: size.big,
          },
          async () => {
            const r = await exec(
              'ssh',
              ssh(
                s,
                cipher,
                isGw ? `source ${size.big}` : `head -c ${size.big} /dev/zero`,
              ),
              {
                stdoutNull: true,
              },
            );
            ok(r, 'ssh');
          },
        );
        break;
      }
      case 'put':
        await measure(
          s,
          { workload: 'put 1 file', direction: 'put', cipher, bytes: size.big },
          async () =>
            ok(
              await sftp(s, cipher, `put ${f.bigFile} ${root}/big.bin\n`),
              'sftp put',
            ),
        );
        break;
      case 'get': {
        // rclone downloads are capped (--rclone-get): see the usage text.
        const capped = s.id === 'rclone' && size.rcloneGet < size.big;
        const bytes = capped ? size.rcloneGet : size.big;
        const remote = capped ? `${root}/cap.bin` : `${root}/big.bin`;
        if (capped || !workloads.has('put'))
          ok(await sftp(s, cipher, `put ${capped ? f.capFile : f.bigFile} ${remote}\n`), 'sftp put');
        const out = path.join(dl, 'big.bin');
        await rm(out, { force: true });
        await measure(
          s,
          { workload: 'get 1 file', direction: 'get', cipher, bytes, note: capped ? `${bytes / MiB} MiB` : undefined },
          async () => {
            ok(await sftp(s, cipher, `get ${remote} ${out}\n`), 'sftp get');
            await checkSize(out, bytes);
          },
        );
        await rm(out, { force: true });
        break;
      }
      case 'par-put':
        await measure(
          s,
          {
            workload: `put ${size.par} streams`,
            direction: 'put',
            cipher,
            bytes: size.par * size.parSize,
          },
          async () => {
            const rs = await Promise.all(
              Array.from({ length: size.par }, (_, i) =>
                sftp(s, cipher, `put ${f.parFile} ${root}/par-${i}.bin\n`),
              ),
            );
            for (const r of rs) ok(r, 'sftp put');
          },
        );
        break;
      case 'par-get': {
        const capped = s.id === 'rclone' && size.rcloneGet < size.parSize;
        const each = capped ? size.rcloneGet : size.parSize;
        const name = (i: number) => (capped ? `${root}/cap-${i}.bin` : `${root}/par-${i}.bin`);
        if (capped || !workloads.has('par-put'))
          for (let i = 0; i < size.par; i++)
            ok(await sftp(s, cipher, `put ${capped ? f.capFile : f.parFile} ${name(i)}\n`), 'put');
        await measure(
          s,
          {
            workload: `get ${size.par} streams`,
            direction: 'get',
            cipher,
            bytes: size.par * each,
            note: capped ? `${each / MiB} MiB each` : undefined,
          },
          async () => {
            const rs = await Promise.all(
              Array.from({ length: size.par }, (_, i) =>
                sftp(s, cipher, `get ${name(i)} ${path.join(dl, `par-${i}.bin`)}\n`),
              ),
            );
            for (const r of rs) ok(r, 'sftp get');
            for (let i = 0; i < size.par; i++) await checkSize(path.join(dl, `par-${i}.bin`), each);
          },
        );
        await rm(dl, { recursive: true, force: true });
        break;
      }
      case 'small-put': {
        // See passLabel: every pass but the last goes to a folder of its own (no overwrites).
        const steps: Step[] = [];
        for (let pass = 1, passes = smallPassesOf(s.id); pass <= passes; pass++) {
          const into = pass === passes ? root : `${root}/pass-${pass}`;
          steps.push(async () => {
            if (into !== root) ok(await sftp(s, cipher, `-mkdir ${into}\n`), 'sftp mkdir');
            await measure(s, smallFilesRow('put', cipher, pass, passes), async () =>
              ok(await sftp(s, cipher, `put -r ${f.smallDir} ${into}\n`), 'sftp put -r'),
            );
          });
        }
        interleaved.push(steps);
        break;
      }
      case 'small-get': {
        if (!workloads.has('small-put'))
          ok(
            await sftp(s, cipher, `put -r ${f.smallDir} ${root}\n`),
            'put -r',
          );
        const out = path.join(dl, 'small');
        const steps: Step[] = [];
        for (let pass = 1, passes = smallPassesOf(s.id); pass <= passes; pass++) {
          steps.push(async () => {
            await rm(out, { recursive: true, force: true });
            await measure(
              s,
              smallFilesRow('get', cipher, pass, passes),
              async () => {
                ok(
                  await sftp(s, cipher, `get -r ${root}/${path.basename(f.smallDir)} ${out}\n`),
                  'sftp get -r',
                );
                const n = (await readdir(out)).length;
                if (n !== size.small)
                  throw new Error(`got ${n} files, expected ${size.small}`);
              },
            );
            if (pass === passes) await rm(out, { recursive: true, force: true });
          });
        }
        interleaved.push(steps);
        break;
      }
      case 'ls':
      case 'ls-big': {
        const n = w === 'ls' ? size.list : size.listBig;
        await measure(
          s,
          {
            workload: `ls -l ${n} entries`,
            direction: 'list',
            cipher,
            files: n,
          },
          async () => {
            const r = await sftp(s, cipher, `ls -l ${s.listRoot}/list-${n}\n`);
            ok(r, 'sftp ls');
            // `sftp -b` echoes the command line first.
            if (r.lines < n)
              throw new Error(`listed ${r.lines} lines, expected ${n}`);
          },
        );
        break;
      }
      case 'many':
        await measure(
          s,
          {
            workload: `${size.many} concurrent uploads`,
            direction: 'put',
            cipher,
            bytes: size.many * size.manySize,
            files: size.many,
          },
          async () => {
            const rs = await Promise.all(
              Array.from({ length: size.many }, (_, i) =>
                sftp(s, cipher, `put ${f.manyFile} ${root}/many-${i}.bin\n`),
              ),
            );
            for (const r of rs) ok(r, 'sftp put');
          },
        );
        break;
    }
  }
  if (interleaved.length > 0 || alongside.length > 0) await runInterleaved([...interleaved, ...alongside]);
}

/** The direct SDK's passes of a small-file workload, to run interleaved with the SFTP servers' passes. */
async function sdkSmallFileSteps(w: 'small-put' | 'small-get', sdk: Sdk, f: Files): Promise<Step[]> {
  const s = { label: 'direct SDK' };
  const cipher = '-';
  const steps: Step[] = [];
  const passes = smallPassesOf('sdk');
  if (w === 'small-put') {
    for (let pass = 1; pass <= passes; pass++) {
      const into = pass === passes ? 'bench/w-sdk/small' : `bench/w-sdk/pass-${pass}/small`;
      steps.push(() =>
        measure(s, smallFilesRow('put', cipher, pass, passes), async () => {
          await sdk.putFolder(f.smallDir, into);
        }),
      );
    }
    return steps;
  }
  if (!workloads.has('small-put')) await sdk.putFolder(f.smallDir, 'bench/w-sdk/small');
  const out = path.join(DL, 'sdk', 'small');
  for (let pass = 1; pass <= passes; pass++) {
    steps.push(async () => {
      await rm(out, { recursive: true, force: true });
      await mkdir(out, { recursive: true });
      await measure(s, smallFilesRow('get', cipher, pass, passes), async () => {
        const n = await sdk.getFolder('bench/w-sdk/small', out);
        if (n !== size.small) throw new Error(`got ${n} objects, expected ${size.small}`);
      });
    });
  }
  return steps;
}

/** The direct-SDK ceiling for the same workload (no SSH, no cipher); small files: sdkSmallFileSteps. */
async function runSdk(w: Workload, sdk: Sdk, f: Files) {
  const s = { label: 'direct SDK' };
  const dl = path.join(DL, 'sdk');
  await mkdir(dl, { recursive: true });
  const cipher = '-';
  switch (w) {
    case 'put':
      await measure(
        s,
        { workload: 'put 1 file', direction: 'put', cipher, bytes: size.big },
        () => sdk.upload(f.bigFile, 'bench/w-sdk/big.bin'),
      );
      break;
    case 'get':
      if (!workloads.has('put'))
        await sdk.upload(f.bigFile, 'bench/w-sdk/big.bin');
      await measure(
        s,
        { workload: 'get 1 file', direction: 'get', cipher, bytes: size.big },
        async () => {
          await sdk.download('bench/w-sdk/big.bin', path.join(dl, 'big.bin'));
          await checkSize(path.join(dl, 'big.bin'), size.big);
        },
      );
      break;
    case 'par-put':
      await measure(
        s,
        {
          workload: `put ${size.par} streams`,
          direction: 'put',
          cipher,
          bytes: size.par * size.parSize,
        },
        async () => {
          await Promise.all(
            Array.from({ length: size.par }, (_, i) =>
              sdk.upload(f.parFile, `bench/w-sdk/par-${i}.bin`),
            ),
          );
        },
      );
      break;
    case 'par-get':
      if (!workloads.has('par-put'))
        for (let i = 0; i < size.par; i++)
          await sdk.upload(f.parFile, `bench/w-sdk/par-${i}.bin`);
      await measure(
        s,
        {
          workload: `get ${size.par} streams`,
          direction: 'get',
          cipher,
          bytes: size.par * size.parSize,
        },
        async () => {
          await Promise.all(
            Array.from({ length: size.par }, (_, i) =>
              sdk.download(
                `bench/w-sdk/par-${i}.bin`,
                path.join(dl, `par-${i}.bin`),
              ),
            ),
          );
        },
      );
      break;
    case 'ls':
    case 'ls-big': {
      const n = w === 'ls' ? size.list : size.listBig;
      await measure(
        s,
        { workload: `ls -l ${n} entries`, direction: 'list', cipher, files: n },
        async () => {
          const got = await sdk.count(`bench/list-${n}/`);
          if (got !== n) throw new Error(`listed ${got} keys, expected ${n}`);
        },
      );
      break;
    }
    case 'many':
      await measure(
        s,
        {
          workload: `${size.many} concurrent uploads`,
          direction: 'put',
          cipher,
          bytes: size.many * size.manySize,
          files: size.many,
        },
        async () => {
          await Promise.all(
            Array.from({ length: size.many }, (_, i) =>
              sdk.upload(f.manyFile, `bench/w-sdk/many-${i}.bin`),
            ),
          );
        },
      );
      break;
    default:
      break;
  }
  await rm(dl, { recursive: true, force: true });
}

async function writeReport(
  machine: Record<string, string>,
  loadBefore: string,
  loadAfter: string,
  minutes: number,
): Promise<{ file: string; md: string }> {
  const busy = Math.max(
    ...[loadBefore, loadAfter].flatMap((l) => l.split(' / ').map(Number)),
  );
  const cores = os.cpus().length;
  const caveat =
    busy > 0.5
      ? `> **Other work was running on this machine during the run** (load average ${loadBefore} before, ${loadAfter} after, on ${cores} cores). Absolute figures are noise; the ratios, measured in the same run, are what to read, and even they move by tens of percent from run to run under such load.`
      : `> Load average ${loadBefore} before, ${loadAfter} after, on ${cores} cores.`;
  const argv = process.argv.slice(2).join(' ') || '(defaults)';
  let profiles = '';
  if (opt.profile) {
    profiles = await summarizeProfiles(profileRoot);
    await writeFile(path.join(profileRoot, 'summary.md'), profiles);
  }
  const md = [
    `# Benchmark ${machine['Date']} on ${machine['Host']}`,
    '',
    caveat,
    '',
    '| machine | |',
    '|---|---|',
    ...Object.entries(machine).map(([k, v]) => `| ${k} | ${v} |`),
    `| Options | \`${argv}\` |`,
    `| Duration | ${minutes.toFixed(1)} min |`,
    '',
    'All servers on 127.0.0.1; the client is OpenSSH `sftp -b` (one session per process, default 64 requests',
    'in flight) with `-c <cipher>` for every server. MB/s = 10^6 bytes/s. files/s counts files transferred or',
    'entries listed. RSS is the server process sampled every 100 ms (/proc/<pid>/status VmRSS): the gateway',
    'process (restarted for every workload) and rclone; sshd forks per connection and is not sampled. Before',
    `the rows of ${WARMED.join(', ')}, each gateway serves one untimed warm-up session (put and get of 32 MiB,`,
    '`ls -l`, first cipher): a fresh process pays its JIT in the first transfer (see bench/README.md).',
    'Ratios compare the speed (MB/s, else files/s) with the anchor on the same workload and cipher: ×OpenSSH =',
    'sshd + internal-sftp on the local disk, ×rclone = `rclone serve sftp` on the same Swift, ×SDK = lib-storage',
    'Upload / GetObject / ListObjectsV2 straight to Swift (no SSH; part size 8 MiB, 4 in flight, as the',
    'gateway\'s defaults), ×transport = the bare SSH channel of the same server\'s SSH stack',
    '(`exec sink` / `exec source N` in the gateway\'s ssh2, `cat > /dev/null` / `head -c N /dev/zero` in sshd).',
    '',
    table(rows),
    '',
    '## Targets (issue 8)',
    '',
    targets(rows),
    '',
    '## RSS during listings (MiB, sampled every 100 ms)',
    '',
    listingRss(rows),
    '',
    '## CPU per workload',
    '',
    'Server CPU is the gateway\'s or rclone\'s process (sshd forks per connection and is not counted; for the',
    'direct SDK, the bench process that runs it). Swift CPU is all of Swift\'s processes. Machine busy is the',
    `share of the machine's ${os.cpus().length} cores in use during the row, client and Swift included.`,
    '',
    cpuTable(rows, os.cpus().length),
    '',
    '## S3 requests per workload',
    '',
    requestTable(rows, formatCounts),
    '',
    ...(failures.length > roundFailuresFrom
      ? ['## Failures', '', ...failures.slice(roundFailuresFrom).map((f) => `- ${f}`), '']
      : []),
    ...(profiles
      ? ['## CPU profiles of the gateway (self time)', '', profiles]
      : []),
  ].join('\n');
  await mkdir(opt.out, { recursive: true });
  const file = path.join(opt.out, `${stamp}-${HOST}.md`);
  await writeFile(file, md);
  await writeFile(path.join(opt.out, 'latest.md'), md);
  // The raw rows, to re-render or compare runs later (bench/work/ is not committed).
  await writeFile(
    path.join(WORK, `rows-${stamp}.json`),
    JSON.stringify(
      rows.map((r) => ({
        ...r,
        s3: r.s3
          ? { counts: Object.fromEntries(r.s3.counts), serving: r.s3.serving, mean: Object.fromEntries(r.s3.mean) }
          : undefined,
      })),
      null,
      1,
    ),
  );
  process.stdout.write(
    `${md}\n\nwritten to ${path.relative(ROOT, file)} and latest.md\n`,
  );
  return { file, md };
}

main().then(
  () => process.exit(failures.length ? 1 : 0),
  (e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exit(2);
  },
);
