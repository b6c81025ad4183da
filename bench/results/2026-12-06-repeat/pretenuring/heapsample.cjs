const fs = require('fs'); const v8 = require('v8');
if (process.argv[1] && process.argv[1].endsWith('dist/src/main.js')) {
  const out = process.env.HEAPSAMPLE_OUT || '/tmp/heapsample.json';
  const M = 1 << 20; const t0 = Date.now(); const series = [];
  setInterval(() => {
    const mu = process.memoryUsage(); const s = { t: Date.now() - t0, rss: mu.rss / M, ab: mu.arrayBuffers / M };
    for (const sp of v8.getHeapSpaceStatistics()) s[sp.space_name.replace('_space', '')] = +(sp.space_used_size / M).toFixed(2);
    series.push(s); fs.writeFileSync(out, JSON.stringify(series));
  }, 100).unref();
}
