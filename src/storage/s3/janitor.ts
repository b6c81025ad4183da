import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
} from '@aws-sdk/client-s3';
import type { S3Context } from './context.js';
import { isNotFound, mapS3Error, s3ErrorCode } from './errors.js';
import { journalKey } from './journal.js';

export interface JanitorResult {
  aborted: number;
  staleMarks: number;
}

/**
 * Aborts the gateway's own multipart uploads that a crash or a lost abort left behind, so that nothing
 * billable outlives its session for long. Only uploads with a journal mark (journal.ts) are touched:
 * other writers' uploads in the same bucket are left alone.
 */
export class MultipartJanitor {
  readonly #ctx: S3Context;
  readonly #buckets: () => Iterable<string>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(ctx: S3Context, buckets: () => Iterable<string>) {
    this.#ctx = ctx;
    this.#buckets = buckets;
  }

  /** Runs now and then every `janitorInterval`; the timer does not keep the process alive. */
  start(): void {
    if (this.#timer) return;
    const tick = () => {
      this.#running ??= this.runAll().finally(() => {
        this.#running = undefined;
      });
    };
    tick();
    this.#timer = setInterval(tick, this.#ctx.config.janitorInterval);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  async runAll(): Promise<void> {
    for (const bucket of new Set(this.#buckets())) {
      try {
        const r = await this.runOnce(bucket);
        if (r.aborted > 0 || r.staleMarks > 0) {
          this.#ctx.log.info({ bucket, ...r }, 'multipart janitor aborted stale uploads');
        }
      } catch (err) {
        this.#ctx.log.warn(
          { bucket, err: mapS3Error('ListMultipartUploads', err, bucket).message },
          'janitor failed',
        );
      }
    }
  }

  /** One pass over one bucket; `now` is injectable so tests need not wait for uploads to age. */
  async runOnce(bucket: string, now: Date = new Date()): Promise<JanitorResult> {
    const { client, config } = this.#ctx;
    const cutoff = now.getTime() - config.multipartMaxAge;
    const result: JanitorResult = { aborted: 0, staleMarks: 0 };
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await client.send(
        new ListMultipartUploadsCommand({
          Bucket: bucket,
          KeyMarker: keyMarker,
          UploadIdMarker: uploadIdMarker,
        }),
      );
      for (const u of page.Uploads ?? []) {
        if (!u.Key || !u.UploadId || !u.Initiated || u.Initiated.getTime() > cutoff) continue;
        const mark = journalKey(config.journalPrefix, u.UploadId);
        if (!(await this.#exists(bucket, mark))) continue;
        try {
          await client.send(
            new AbortMultipartUploadCommand({ Bucket: bucket, Key: u.Key, UploadId: u.UploadId }),
          );
        } catch (err) {
          if (s3ErrorCode(err) !== 'NoSuchUpload') throw err;
        }
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: mark }));
        result.aborted++;
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    // A mark older than the cutoff belongs to an upload that has ended or was just aborted above.
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: config.journalPrefix, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) {
        if (o.Key && o.LastModified && o.LastModified.getTime() <= cutoff) {
          await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key }));
          result.staleMarks++;
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return result;
  }

  async #exists(bucket: string, key: string): Promise<boolean> {
    try {
      await this.#ctx.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }
}
