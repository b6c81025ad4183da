import { open, stat } from 'node:fs/promises';
import { sleep } from './proc.js';

/**
 * Counts the S3 requests Swift's proxy logged while a workload ran (its proxy.log has one line per S3
 * request: `proxy-server: ip ip date METHOD /bucket/key%3Fquery HTTP/1.0 status ...`), so that the table
 * can say how many requests each server spends per file.
 */
export class S3RequestLog {
  constructor(
    private readonly file: string,
    private readonly bucket: string,
  ) {}

  async mark(): Promise<number> {
    return (await stat(this.file).catch(() => ({ size: 0 }))).size;
  }

  async since(offset: number): Promise<Map<string, number>> {
    await sleep(300);
    const counts = new Map<string, number>();
    const fh = await open(this.file, 'r').catch(() => undefined);
    if (!fh) return counts;
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
      }
    } finally {
      await fh.close();
    }
    return counts;
  }
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

export function formatCounts(
  counts: Map<string, number> | undefined,
  perFiles?: number,
): string {
  if (!counts || counts.size === 0) return '';
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) =>
      perFiles ? `${k} ${n} (${(n / perFiles).toFixed(2)}/file)` : `${k} ${n}`,
    )
    .join(', ');
}
