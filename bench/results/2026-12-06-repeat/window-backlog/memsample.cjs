const fs = require('fs');
if (process.argv[1] && process.argv[1].endsWith('dist/src/main.js')) {
  const out = process.env.MEMSAMPLE_OUT || '/tmp/sg/memsample.json';
  const M = 1 << 20;
  const heapRss = () => {
    const s = fs.readFileSync('/proc/self/smaps', 'utf8');
    const i = s.indexOf('[heap]');
    if (i < 0) return 0;
    const m = /Rss:\s+(\d+)/.exec(s.slice(i));
    return m ? Number(m[1]) * 1024 : 0;
  };
  const t0 = Date.now();
  const series = [];
  setInterval(() => {
    const mu = process.memoryUsage();
    const ssh = globalThis.__ssh;
    const backing = new Set(); let chan = 0, sockR = 0, sockW = 0, nch = 0, chanW = 0;
    if (ssh) {
      for (const c of ssh.sftpChannels) { nch++; chan += c._readableState?.length ?? 0;
        const rb = c._readableState?.buffer; const items = [];
        if (Array.isArray(rb)) items.push(...rb.slice(c._readableState.bufferIndex ?? 0));
        else if (rb && rb.head) { for (let n = rb.head; n; n = n.next) items.push(n.data); }
        for (const b of items) { if (b && b.buffer) { backing.add(b.buffer); } }
      }
      for (const cl of ssh.clients) { const s = cl._sock; if (s) { sockR += s.readableLength; sockW += s.writableLength; } }
    }
    const b = globalThis.__budgets;
    const pools = (globalThis.__pools ?? []).reduce((a, p) => a + p.pooledBytes, 0);
    series.push({
      t: Date.now() - t0, rss: mu.rss / M, ab: mu.arrayBuffers / M, ext: mu.external / M, heap: heapRss() / M,
      v8: mu.heapTotal / M, backlog: (ssh?.writeBacklog.size ?? 0) / M, chan: chan / M, chanW: chanW / M, chanBacking: [...backing].reduce((a,b)=>a+b.byteLength,0) / M, nback: backing.size, nch,
      sockR: sockR / M, sockW: sockW / M, budget: (b?.budget.inUse ?? 0) / M, up: (b?.uploadBudget.inUse ?? 0) / M, pools: pools / M,
    });
    fs.writeFileSync(out, JSON.stringify(series));
  }, 250).unref();
}
