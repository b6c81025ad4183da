// CPU per keep-alive PUT of 4 KiB on loopback against a trivial Node server in another process.
const gap = Number(process.argv[2] ?? 0);
import http from 'node:http';
import { spawn } from 'node:child_process';
const srv = spawn(process.execPath, ['-e', `require('http').createServer((q, s) => { q.resume(); q.on('end', () => { s.writeHead(200, {etag: '"x"'}); s.end(); }); }).listen(39300, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
await new Promise((r) => srv.stdout.once('data', r));
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const body = Buffer.alloc(4096, 7);
const one = () => new Promise((resolve, reject) => {
  const req = http.request({ host: '127.0.0.1', port: 39300, method: 'PUT', path: '/test/k', agent, headers: { 'content-length': '4096', 'x-amz-date': '20261206T000000Z', authorization: 'AWS4-HMAC-SHA256 Credential=x/20261206/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=' + 'a'.repeat(64) } }, (res) => { res.resume(); res.on('end', resolve); });
  req.on('error', reject); req.end(body);
});
for (let i = 0; i < 500; i++) await one();
for (let round = 0; round < 3; round++) {
  const n = gap ? 300 : 2000, c0 = process.cpuUsage(), t0 = performance.now();
  for (let i = 0; i < n; i++) { await one(); if (gap) await new Promise((r) => setTimeout(r, gap)); }
  const c = process.cpuUsage(c0);
  console.log(`bare http: ${((performance.now() - t0) / n * 1000).toFixed(0)} µs each, CPU ${((c.user + c.system) / n).toFixed(0)} µs (user ${(c.user / n).toFixed(0)}, sys ${(c.system / n).toFixed(0)})`);
}
srv.kill();
