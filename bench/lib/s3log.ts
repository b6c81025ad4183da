import { open, stat } from 'node:fs/promises';
import { sleep } from './proc.js';

/** What Swift's proxy logged for one row: its requests by operation, and how long it spent serving them. */
export interface S3Activity {
  counts: Map<string, number>;
  /**
   * Seconds during which at least one of the row's requests was in Swift's hands (the union of their
   * [start, end] intervals). A client that sends the same requests one after the other cannot finish in
   * less; the rest of the row's time is the client's (the gateway and its SFTP client, or the SDK).
   */
  serving: number;
  /** Mean seconds per request, by operation. */
  mean: Map<string, number>;
}

/**
 * Reads the S3 requests Swift's proxy logged while a workload ran (its proxy.log has one line per S3
 * request: `proxy-server: ip ip date METHOD /bucket/key%3Fquery HTTP/1.0 status ... request_time source
 * log_info start_time end_time policy_index`), so that the tables can say how many requests each server
 * spends per file and how much of the row's time was Swift's.
 */
export class S3RequestLog {
  constructor(
    private readonly file: string,
    private readonly bucket: string,
  ) {}

  async mark(): Promise<number> {
    return (await stat(this.file).catch(() => ({ size: 0 }))).size;
  }

  async since(offset: number): Promise<S3Activity> {
    await sleep(300);
    const counts = new Map<string, number>();
    const total = new Map<string, number>();
    const spans: Array<[number, number]> = [];
    const activity = (): S3Activity => ({
      counts,
      serving: unionSeconds(spans),
      mean: new Map([...total].map(([k, t]) => [k, t / counts.get(k)!])),
    });
    const fh = await open(this.file, 'r').catch(() => undefined);
    if (!fh) return activity();
    try {
      const { size } = await fh.stat();
      const buf = Buffer.alloc(Math.max(0, size - offset));
      await fh.read(buf, 0, buf.length, offset);
      for (const line of buf.toString('utf8').split('\n')) {
        const m =
          /^proxy-server: \S+ \S+ \S+ (GET|PUT|POST|HEAD|DELETE) (\S+) HTTP\/[\d.]+ (\d{3})/.exec(
            line,
          );
        if (!m) continue;
        let p: string;
        try {
          p = decodeURIComponent(m[2]!);
        } catch {
          p = m[2]!;
        }
        if (!p.startsWith(`/${this.bucket}`)) continue;
        // Listing objects being created by another bench run at the same time are not this row's.
        if (m[1] === 'PUT' && /\/list-\d+\/f\d+/.test(p)) continue;
        const op = classify(m[1]!, p);
        const status = Number(m[3]);
        const key = status >= 400 ? `${op} (${status})` : op;
        counts.set(key, (counts.get(key) ?? 0) + 1);
        const f = line.trimEnd().split(' ');
        const start = Number(f[f.length - 3]);
        const end = Number(f[f.length - 2]);
        if (Number.isFinite(start) && Number.isFinite(end) && end >= start) {
          spans.push([start, end]);
          total.set(key, (total.get(key) ?? 0) + (end - start));
        }
      }
    } finally {
      await fh.close();
    }
    return activity();
  }
}

/** Length of the union of the intervals (sorted in place). */
export function unionSeconds(spans: Array<[number, number]>): number {
  spans.sort((a, b) => a[0] - b[0]);
  let sum = 0;
  let from = -Infinity;
  let to = -Infinity;
  for (const [s, e] of spans) {
    if (s > to) {
      if (to > from) sum += to - from;
      from = s;
      to = e;
    } else if (e > to) to = e;
  }
  if (to > from) sum += to - from;
  return sum;
}

function classify(method: string, p: string): string {
  const q = new URLSearchParams(
    p.includes('?') ? p.slice(p.indexOf('?') + 1) : '',
  );
  const xid = q.get('x-id');
  if (xid) return xid;
  if (q.has('list-type')) return 'ListObjectsV2';
  if (method === 'GET' && q.has('uploads')) return 'ListMultipartUploads';
  if (method === 'GET' && q.has('uploadId')) return 'ListParts';
  if (
    method === 'GET' &&
    (q.has('prefix') ||
      q.has('delimiter') ||
      /^\/[^/]+\/?$/.test(p.split('?')[0]!))
  )
    return 'ListObjects';
  if (method === 'POST' && q.has('uploads')) return 'CreateMultipartUpload';
  if (method === 'POST' && q.has('uploadId')) return 'CompleteMultipartUpload';
  if (method === 'POST' && q.has('delete')) return 'DeleteObjects';
  if (method === 'PUT' && q.has('partNumber')) return 'UploadPart';
  if (method === 'DELETE' && q.has('uploadId')) return 'AbortMultipartUpload';
  const bucketOnly = /^\/[^/]+\/?$/.test(p.split('?')[0]!);
  if (method === 'HEAD') return bucketOnly ? 'HeadBucket' : 'HeadObject';
  if (method === 'GET') return 'GetObject';
  if (method === 'PUT') return 'PutObject';
  if (method === 'DELETE') return 'DeleteObject';
  return method;
}

/** `GetObject 1000 (1.00/file, 5.4 ms)`: count, per file when the row has files, mean time in Swift. */
export function formatCounts(activity: S3Activity | undefined, perFiles?: number): string {
  if (!activity || activity.counts.size === 0) return '';
  return [...activity.counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => {
      const ms = activity.mean.get(k);
      const extra = [
        ...(perFiles ? [`${(n / perFiles).toFixed(2)}/file`] : []),
        ...(ms !== undefined ? [`${(ms * 1000).toFixed(1)} ms`] : []),
      ];
      return extra.length ? `${k} ${n} (${extra.join(', ')})` : `${k} ${n}`;
    })
    .join(', ');
}
