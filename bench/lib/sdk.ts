import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  GetObjectCommand,
  HeadObjectCommand,
  DeleteObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { s3HttpAgents } from '../../src/storage/s3/http-agents.js';
import type { S3Server } from './servers.js';

/** The direct-SDK anchor: the same SDK, settings, part size and concurrency as the gateway's S3 store defaults. */
export class Sdk {
  readonly client: S3Client;
  constructor(
    private readonly s3: S3Server,
    readonly partSize = 8 * 1024 * 1024,
    readonly queueSize = 4,
  ) {
    this.client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: {
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
      },
      // The gateway's agents: a store that resets a connection in the middle of a part (Swift at a full
      // disk) once crashed a bench run here with an unhandled EPIPE (see src/storage/s3/http-agents.ts).
      requestHandler: s3HttpAgents({ keepAlive: true, maxSockets: 256 }),
      // The gateway's setting too (src/storage/s3/s3-store.ts): each command class's middleware resolved once.
      cacheMiddleware: true,
    });
  }

  get bucket(): string {
    return this.s3.bucket;
  }

  async upload(file: string, key: string): Promise<void> {
    await new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: key, Body: createReadStream(file) },
      partSize: this.partSize,
      queueSize: this.queueSize,
    }).done();
  }

  async download(key: string, file: string): Promise<void> {
    const r = await this.client.send(
      new GetObjectCommand({ Bucket: this.bucket, Key: key }),
    );
    await pipeline(r.Body as NodeJS.ReadableStream, createWriteStream(file));
  }

  /** Sequential PutObject of every file of a folder (what one SFTP session does). */
  async putFolder(dir: string, prefix: string): Promise<number> {
    const names = await readdir(dir);
    for (const n of names) {
      const body = await readFile(path.join(dir, n));
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: `${prefix}/${n}`,
          Body: body,
        }),
      );
    }
    return names.length;
  }

  /** Sequential GetObject of every key under a prefix into a folder. */
  async getFolder(prefix: string, dir: string): Promise<number> {
    let n = 0;
    for await (const key of this.keys(`${prefix}/`)) {
      await this.download(key, path.join(dir, path.basename(key)));
      n++;
    }
    return n;
  }

  async* keys(prefix: string): AsyncGenerator<string> {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: prefix,
          Delimiter: '/',
          ContinuationToken: token,
        }),
      );
      for (const o of page.Contents ?? []) yield o.Key!;
      token = page.NextContinuationToken;
    } while (token);
  }

  async count(prefix: string): Promise<number> {
    let n = 0;
    for await (const _ of this.keys(prefix)) n++;
    return n;
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: key }),
      );
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Creates `count` empty objects `prefix/fNNNNNN` with `parallel` requests in flight. Resumable: keys
   * already there are skipped, and a `prefix.populated` marker ends the work for good.
   */
  async populate(prefix: string, count: number, parallel = 32, progress?: (done: number) => void) {
    const doneMarker = `${prefix}.populated`;
    if (await this.exists(doneMarker)) return false;
    const have = new Set<string>();
    for await (const k of this.keys(`${prefix}/`)) have.add(k);
    const todo: string[] = [];
    for (let i = 0; i < count; i++) {
      const key = `${prefix}/f${String(i).padStart(6, '0')}`;
      if (!have.has(key)) todo.push(key);
    }
    let next = 0;
    let done = have.size;
    const worker = async () => {
      for (;;) {
        const key = todo[next++];
        if (key === undefined) return;
        for (let attempt = 0; ; attempt++) {
          try {
            // An explicit length: without it the SDK warns of "a Stream of unknown length" for every empty body.
            await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: '', ContentLength: 0 }));
            break;
          } catch (e) {
            if (attempt >= 20) throw e;
            await new Promise((r) => setTimeout(r, 250 * Math.min(attempt + 1, 8)));
          }
        }
        if (++done % 5000 === 0) progress?.(done);
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: doneMarker, Body: '' }));
    return true;
  }

  /** Deletes every key under `prefix` (no delimiter), 1,000 per request; returns how many. */
  async deleteAll(prefix: string): Promise<number> {
    let n = 0;
    for (;;) {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, MaxKeys: 1000 }),
      );
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
      if (keys.length === 0) return n;
      await this.client.send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys, Quiet: true } }));
      n += keys.length;
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}
