/** Helpers shared by the operations end-to-end tests (test/e2e/ops-*.test.ts). */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { type MetricFamily, parsePrometheusText, sampleValue } from '../support/prom-parse.js';
import type { S3TestServer } from '../support/s3.js';

/** The gateway's `storage:` section for the S3 test server (AWS-like lane). */
export function s3Storage(server: S3TestServer): Record<string, unknown> {
  return {
    type: 's3',
    region: server.region,
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    partSizeMiB: 5,
    checkBucket: server.bucket,
  };
}

/** A plain SDK client on the test server, to look behind the gateway's back. */
export function s3Client(server: S3TestServer): S3Client {
  return new S3Client({
    region: server.region,
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export async function listKeys(client: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key!);
}

export async function listUploads(client: S3Client, bucket: string): Promise<string[]> {
  const r = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (r.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
}

/** GETs /metrics and parses it with the strict test parser (a parse error fails the test). */
export async function scrape(port: number): Promise<Map<string, MetricFamily>> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  const type = res.headers.get('content-type') ?? '';
  if (!type.startsWith('text/plain')) throw new Error(`/metrics content type ${type}`);
  return parsePrometheusText(await res.text());
}

/** A sample's value, 0 when the series does not exist yet. */
export function value(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  return sampleValue(families, name, labels) ?? 0;
}

/** Sum of every sample named `name` whose labels include `labels`. */
export function sum(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  let total = 0;
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) total += s.value;
    }
  }
  return total;
}

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `check` every 50 ms until it returns true or `timeoutMs` passes. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface HAProxy {
  port: number;
  logs(): string;
  stop(): Promise<void>;
}

/**
 * Runs the Debian haproxy in the foreground (`-db`) with a generated TCP config on loopback: round robin
 * over `backends`, each with `send-proxy-v2`.
 */
export async function startHAProxy(dir: string, backends: number[]): Promise<HAProxy> {
  const port = await freePort();
  const config = [
    'global',
    '  maxconn 256',
    'defaults',
    '  mode tcp',
    '  timeout connect 5s',
    '  timeout client 120s',
    '  timeout server 120s',
    'frontend sftp',
    `  bind 127.0.0.1:${port}`,
    '  default_backend gateways',
    'backend gateways',
    '  balance roundrobin',
    ...backends.map((p, i) => `  server gw${i} 127.0.0.1:${p} send-proxy-v2`),
    '',
  ].join('\n');
  const file = path.join(dir, 'haproxy.cfg');
  await writeFile(file, config);
  const child = spawn('/usr/sbin/haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(
    () =>
      child.exitCode !== null ||
      new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      }),
    10_000,
    'haproxy to listen',
  );
  if (child.exitCode !== null) throw new Error(`haproxy exited ${child.exitCode}:\n${out}`);
  return {
    port,
    logs: () => out,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
