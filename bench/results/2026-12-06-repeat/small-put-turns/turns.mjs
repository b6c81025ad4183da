// Per-file decomposition of SFTP small puts (gateway on S3) and of the SDK's PutObject loop, from a
// loopback pcap (tcpdump -i lo -s 200 tcp). Usage: node turns.mjs file.pcap
import { readFileSync } from 'node:fs';
const buf = readFileSync(process.argv[2]);
const nano = buf.readUInt32LE(0) === 0xa1b23c4d;
const pkts = [];
for (let off = 24; off + 16 <= buf.length; ) {
  const t = buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) / (nano ? 1e9 : 1e6), incl = buf.readUInt32LE(off + 8);
  const p = off + 16 + 14; off += 16 + incl;
  const ihl = (buf[p] & 15) * 4, total = buf.readUInt16BE(p + 2), tcp = p + ihl;
  const doff = (buf[tcp + 12] >> 4) * 4, len = total - ihl - doff;
  if (len <= 0) continue;
  pkts.push({ t, sport: buf.readUInt16BE(tcp), dport: buf.readUInt16BE(tcp + 2), len, head: buf.subarray(tcp + doff, Math.min(off, tcp + doff + 24)).toString('latin1') });
}
const count = (f) => { const m = new Map(); for (const k of pkts) { const v = f(k); if (v !== undefined) m.set(v, (m.get(v) ?? 0) + 1); } return [...m].sort((a, b) => b[1] - a[1]); };
const sshPort = count((k) => (k.head.startsWith('SSH-2.0-') ? k.sport : undefined)).map((x) => x[0]);
// The S3 endpoint: where bucket-addressed requests go (Swift's backends get /<device>/... paths).
const proxyC = count((k) => (/^(PUT|GET|HEAD|POST|DELETE) \/[a-z]/.test(k.head) && !/^\w+ \/d\d/.test(k.head) ? k.dport : undefined));
const proxy = proxyC.length ? proxyC[0][0] : -1;
const puts = []; // {start, resp, client port}
const open = new Map();
for (const k of pkts) {
  if (k.dport === proxy && /^[A-Z]+ \//.test(k.head)) { const r = { start: k.t, method: k.head.split(' ')[0], port: k.sport }; open.set(k.sport, r); if (r.method === 'PUT') puts.push(r); }
  else if (k.sport === proxy && k.head.startsWith('HTTP/1.1 ') && !k.head.startsWith('HTTP/1.1 100')) { const r = open.get(k.dport); if (r && r.resp === undefined) r.resp = k.t; }
}
const q = (a, p) => { const b = [...a].sort((x, y) => x - y); return b[Math.min(b.length - 1, Math.floor(b.length * p))]; };
const fmt = (name, a) => console.log(`${name.padEnd(34)} n ${String(a.length).padStart(4)}  median ${q(a, 0.5).toFixed(0).padStart(6)} µs  p90 ${q(a, 0.9).toFixed(0).padStart(6)}  sum ${(a.reduce((x, y) => x + y, 0) / 1e6).toFixed(2)} s`);
// SSH sessions with >1000 turns
const bySession = new Map();
for (const k of pkts) {
  const port = sshPort.find((p) => k.sport === p || k.dport === p); if (port === undefined) continue;
  const peer = k.sport === port ? k.dport : k.sport;
  let s = bySession.get(peer); if (!s) bySession.set(peer, (s = { port, turns: [] }));
  const dir = k.sport === port ? 'S' : 'C'; const last = s.turns.at(-1);
  if (last && last.dir === dir) { last.end = k.t; last.bytes += k.len; } else s.turns.push({ dir, t: k.t, end: k.t, bytes: k.len });
}
const windows = [];
for (const [, s] of bySession) {
  const T = s.turns; if (T.length < 3000) continue;
  const t0 = T[0].t, t1 = T.at(-1).end; windows.push([t0, t1]);
  const P = puts.filter((r) => r.start >= t0 && r.start <= t1 && r.resp);
  const m = { open: [], write: [], close: [], closeToPut: [], swift: [], respToStatus: [], cliOpen: [], cliWrite: [], cliClose: [], perFile: [] };
  let pi = 0, prevStatusT;
  // per file: C(open) S(handle) C(write ~4 KiB) S(status) C(close) S(status), with the PUT between the last two
  for (let i = 0; i + 5 < T.length; i++) {
    const [o, h, w, ws, c, cs] = T.slice(i, i + 6);
    if (!(o.dir === 'C' && h.dir === 'S' && w.dir === 'C' && w.bytes > 4096 && ws.dir === 'S' && c.dir === 'C' && cs.dir === 'S')) continue;
    while (pi < P.length && P[pi].start < c.end) pi++;
    let put = P[pi]; if (!put || put.resp > cs.t) { if (P.length) continue; put = undefined; }
    const prev = T[i - 1];
    if (prev && prev.dir === 'S') m.cliOpen.push((o.t - prev.end) * 1e6);
    m.open.push((h.t - o.end) * 1e6); m.cliWrite.push((w.t - h.end) * 1e6); m.write.push((ws.t - w.end) * 1e6);
    m.cliClose.push((c.t - ws.end) * 1e6);
    if (put) { m.closeToPut.push((put.start - c.end) * 1e6); m.swift.push((put.resp - put.start) * 1e6); m.respToStatus.push((cs.t - put.resp) * 1e6); }
    else m.close.push((cs.t - c.end) * 1e6);
    if (prevStatusT !== undefined) m.perFile.push((cs.t - prevStatusT) * 1e6);
    prevStatusT = cs.t; i += 5;
  }
  console.log(`\n== SFTP session, ${(t1 - t0).toFixed(2)} s, ${m.open.length} files decomposed`);
  for (const [k, a] of Object.entries(m)) if (a.length) fmt(k, a);
}
const sdk = puts.filter((r) => r.resp && !windows.some(([a, b]) => r.start >= a && r.start <= b));
const runs = []; let run = [];
for (const r of sdk) { if (run.length && r.start - run.at(-1).resp > 1) { runs.push(run); run = []; } run.push(r); }
if (run.length) runs.push(run);
for (const rr of runs.filter((x) => x.length >= 500)) {
  const swift = rr.map((r) => (r.resp - r.start) * 1e6), gap = [];
  for (let i = 1; i < rr.length; i++) gap.push((rr[i].start - rr[i - 1].resp) * 1e6);
  console.log(`\n== SDK loop, ${rr.length} PUTs in ${(rr.at(-1).resp - rr[0].start).toFixed(2)} s`);
  fmt('swift (PUT out -> response)', swift); fmt('response -> next PUT out', gap);
}
