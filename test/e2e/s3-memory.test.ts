/**
 * Bounded memory on the S3 store: 8 concurrent OpenSSH uploads of 64 MiB through one gateway with a
 * 64 MiB memory budget of which uploads may hold 24 MiB. The budget and the upload share (read from
 * /metrics) never exceed their limits, the process's RSS (sampled from /proc/<pid>/status) stays far
 * below what the same uploads would take unbounded, and every file arrives intact.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { S3Client } from '@aws-sdk/client-s3';
import { makeFile, sha256File, tempDir } from '../support/gateway.js';
import { parsePrometheusText, sampleValue } from '../support/prom-parse.js';
import { clearAwsEnv, type S3TestServer, startS3 } from '../support/s3.js';
import { MiB, objectSha256, type S3Gateway, sdkClient, startS3Gateway } from '../support/s3-e2e.js';

clearAwsEnv();

async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  return Number(kb) * 1024;
}

describe('memory budget on the S3 store', () => {
  let s3: S3TestServer;
  let client: S3Client;
  let g: S3Gateway;
  let work: string;

  before(async () => {
    s3 = await startS3({ compat: true });
    client = sdkClient(s3);
    g = await startS3Gateway(s3, { config: { memoryBudgetMiB: 64, uploadMemoryMiB: 24 } });
    work = await tempDir('s3-mem');
  });
  after(async () => {
    await g?.gw.stop();
    client?.destroy();
    await s3?.stop();
  });

  test('8 concurrent 64 MiB uploads, memoryBudgetMiB 64, uploadMemoryMiB 24: the bounds hold, files intact', async (t) => {
    const files = 8;
    const size = 64 * MiB;
    const srcs = await Promise.all(
      Array.from({ length: files }, async (_, i) => {
        const f = path.join(work, `m${i}`);
        await makeFile(f, size + i);
        return f;
      }),
    );
    const pid = g.gw.process.pid!;
    const metricsUrl = `http://127.0.0.1:${g.gw.metricsPort}/metrics`;
    const baseline = await rssBytes(pid);
    let peakRss = baseline;
    let peakInUse = 0;
    let peakUploads = 0;
    let limit: number | undefined;
    let uploadLimit: number | undefined;
    let uploadsWaiting = 0;
    let sawWaiting = 0;
    let samples = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peakRss = Math.max(peakRss, await rssBytes(pid).catch(() => 0));
        const text = await (await fetch(metricsUrl)).text();
        const m = parsePrometheusText(text);
        const inUse = sampleValue(m, 'sftp_gateway_memory_budget_bytes', { state: 'in_use' }) ?? 0;
        limit = sampleValue(m, 'sftp_gateway_memory_budget_bytes', { state: 'limit' });
        uploadLimit = sampleValue(m, 'sftp_gateway_upload_memory_bytes', { state: 'limit' });
        peakUploads = Math.max(peakUploads, sampleValue(m, 'sftp_gateway_upload_memory_bytes', { state: 'in_use' }) ?? 0);
        uploadsWaiting = Math.max(uploadsWaiting, sampleValue(m, 'sftp_gateway_upload_memory_waiting_requests') ?? 0);
        sawWaiting = Math.max(sawWaiting, sampleValue(m, 'sftp_gateway_memory_budget_waiting_requests') ?? 0);
        peakInUse = Math.max(peakInUse, inUse);
        samples++;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const results = await Promise.all(srcs.map((src, i) => g.sftp(`put ${src} m${i}\n`)));
    sampling = false;
    await sampler;
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    for (let i = 0; i < files; i++) {
      assert.equal(await objectSha256(client, s3.bucket, `${g.prefix}/m${i}`), await sha256File(srcs[i]!));
    }
    t.diagnostic(
      `samples ${samples}; budget in use peak ${(peakInUse / MiB).toFixed(1)} MiB of ${(limit ?? 0) / MiB} MiB; ` +
        `uploads' share peak ${(peakUploads / MiB).toFixed(1)} MiB, waiting peak ${uploadsWaiting}; ` +
        `waiting requests peak ${sawWaiting}; RSS baseline ${(baseline / MiB).toFixed(0)} MiB, ` +
        `peak ${(peakRss / MiB).toFixed(0)} MiB (+${((peakRss - baseline) / MiB).toFixed(0)} MiB)`,
    );
    assert.equal(limit, 64 * MiB, 'the budget is the configured 64 MiB');
    assert.ok(samples >= 5, 'the metrics were sampled during the uploads');
    assert.ok(peakInUse > 0, 'the uploads drew on the budget');
    assert.ok(peakInUse <= 64 * MiB, `budget in use ${peakInUse} stayed within the limit`);
    assert.equal(uploadLimit, 24 * MiB, 'the upload share is the configured 24 MiB');
    assert.ok(peakUploads > 0, 'the uploads drew on their share');
    // Nothing but upload parts draws on the budget here: the whole budget in use stays within the share.
    assert.ok(peakUploads <= 24 * MiB, `upload share in use ${peakUploads} stayed within its 24 MiB`);
    assert.ok(peakInUse <= 24 * MiB, `budget in use ${peakInUse} stayed within the upload share`);
    assert.ok(uploadsWaiting > 0, '8 uploads wanting 5 parts each waited for the 3-part share');
    // Unbounded, 8 uploads × (4 parts in flight + 1 filling) × 8 MiB would be 320 MiB of part buffers on
    // top of what the sessions, sockets and the SDK take (and released buffers stay resident until a GC).
    assert.ok(
      peakRss - baseline < 320 * MiB,
      `RSS grew by ${((peakRss - baseline) / MiB).toFixed(0)} MiB, more than the budget explains`,
    );
  });
});
