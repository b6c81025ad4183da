import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  type HeadObjectCommandOutput,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { alreadyExists, GatewayError } from '../../errors.js';
import { type Logger, silentLogger } from '../../observability/logger.js';
import { type MemoryBudget, sharedMemoryBudget } from '../memory-budget.js';
import { partPoolFor } from './part-pool.js';
import type {
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectReader,
  ObjectStore,
  ObjectWriter,
  OpenedObject,
  StoreStatfs,
  WriterOptions,
} from '../object-store.js';
import { AsyncSha256 } from './async-sha256.js';
import { applyPayloadSigning } from './payload-signing.js';
import { type ResolvedS3StoreConfig, resolveS3StoreConfig, type S3StoreConfig } from './config.js';
import { copySource, headObject, objectInfo, type S3Context } from './context.js';
import { isNotFound, mapS3Error, s3Status } from './errors.js';
import { s3HttpAgents } from './http-agents.js';
import { MultipartJanitor } from './janitor.js';
import { S3MultipartWriter } from './multipart-writer.js';
import { pinnedCopy } from './pinned-copy.js';
import { S3ReadAheadReader } from './read-ahead-reader.js';
import { ResumableBody } from './resumable-body.js';
import { parseListingOurselves } from './list-objects.js';
import { observeS3Requests, type S3RequestObserver } from './request-metrics.js';

export interface S3StoreDeps {
  /** Defaults to the process-wide budget. */
  budget?: MemoryBudget;
  /** Upload part buffers' share of `budget` (a MemoryBudget whose parent it is); default: all of it. */
  uploadBudget?: MemoryBudget;
  logger?: Logger;
  /** Observes every S3 request (operation, latency, error code): the gateway's metrics. */
  onRequest?: S3RequestObserver;
}

const DELETE_BATCH = 1000;
const SINGLE_DELETE_CONCURRENCY = 16;

export class S3Store implements ObjectStore {
  readonly kind = 's3' as const;
  readonly config: ResolvedS3StoreConfig;
  readonly client: S3Client;
  readonly janitor: MultipartJanitor;
  readonly #ctx: S3Context;
  readonly #buckets = new Set<string>();
  readonly #writers = new Set<S3MultipartWriter>();
  readonly #readers = new Set<ObjectReader>();

  constructor(config: S3StoreConfig, deps: S3StoreDeps = {}) {
    this.config = resolveS3StoreConfig(config);
    const c = this.config;
    this.client = new S3Client({
      region: c.region,
      ...(c.endpoint ? { endpoint: c.endpoint } : {}),
      ...(c.forcePathStyle !== undefined ? { forcePathStyle: c.forcePathStyle } : {}),
      credentials: c.credentials ?? fromNodeProviderChain(),
      maxAttempts: c.maxAttempts,
      sha256: AsyncSha256,
      // Resolve each command class's middleware stack once, not per request: that resolution copies every
      // entry, and without it the SDK spent 30-40 % more CPU per request on Node 20, 15-20 % more on Node
      // 24 (measured without a network). Middleware is added to the client here, before its first request;
      // a command that carries middleware of its own is sent with ownMiddleware(), which skips the cache.
      cacheMiddleware: true,
      // Stores without flexible checksums reject or mangle what current SDKs send by default.
      requestChecksumCalculation: c.checksums ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED',
      responseChecksumValidation: c.compatibility === 'aws' ? 'WHEN_SUPPORTED' : 'WHEN_REQUIRED',
      requestHandler: {
        // Node's agents, but a socket's late ECONNRESET/EPIPE cannot crash the process (see http-agents.ts).
        ...s3HttpAgents({ keepAlive: true, maxSockets: c.maxSockets }),
        connectionTimeout: 5000,
        // What @smithy/node-http-handler 4.14 does with each (dist-cjs/index.js):
        // - socketTimeout (setSocketTimeout, l. 133-168) is Node's socket.setTimeout on the request's
        //   socket: it fires after that long without a byte read or written, and it stays armed until the
        //   request closes, i.e. through the response body too (its CHANGELOG, 4.14.2: "a body that stalls
        //   after fast headers fails with TimeoutError"). It then destroys the response with a TimeoutError
        //   and rejects the request with it: before the response headers the SDK retries it (TimeoutError
        //   is a transient error in @smithy/core's retry), in a body it is the body's error; mapS3Error
        //   makes it StoreUnavailable. From 6000 ms up it is armed 3 s after the request starts, so it may
        //   fire up to 3 s late. A body its reader has paused is inactive too ("consumer backpressure can
        //   still trigger socketTimeout"): read-ahead-reader.ts and resumable-body.ts resume such bodies.
        // - requestTimeout (setRequestTimeout, l. 84-103) is not an inactivity timeout: it is one timer from
        //   the start of the request until its response headers, cleared then (clearTimeouts in handle's
        //   resolve, l. 313-317). It would cut off a part upload that is slow but moving, and would not see
        //   a body that stalls after its headers; so it is left unset.
        socketTimeout: c.socketTimeout,
      },
    });
    // The SDK's logger middleware builds a redacted copy of every output to hand to a logger that, here,
    // discards it (we log requests ourselves): 80 MB of garbage per 100,000 keys listed.
    this.client.middlewareStack.remove('loggerMiddleware');
    if (deps.onRequest) observeS3Requests(this.client, deps.onRequest);
    applyPayloadSigning(this.client, c.payloadSigning, c.checksums);
    for (const b of c.janitorBuckets) this.#buckets.add(b);
    const budget = deps.budget ?? sharedMemoryBudget();
    this.#ctx = {
      client: this.client,
      config: c,
      budget,
      uploadBudget: deps.uploadBudget ?? budget,
      parts: partPoolFor(budget),
      log: deps.logger ?? silentLogger(),
      noteBucket: (b) => this.#buckets.add(b),
    };
    this.janitor = new MultipartJanitor(this.#ctx, () => this.#buckets);
  }

  /** Starts the multipart janitor: a pass now, then every `janitorInterval`. Stopped by close(). */
  startJanitor(): void {
    this.janitor.start();
  }

  async bucketExists(bucket: string): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: bucket }));
      return true;
    } catch (err) {
      if (s3Status(err) === 404) return false;
      throw mapS3Error('HeadBucket', err, bucket);
    }
  }

  head(bucket: string, key: string): Promise<ObjectInfo | undefined> {
    return headObject(this.client, bucket, key);
  }

  async list(bucket: string, options: ListOptions): Promise<ListPage> {
    try {
      const command = new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: options.prefix,
        Delimiter: options.delimiter,
        ContinuationToken: options.continuationToken,
        MaxKeys: options.maxKeys ?? 1000,
      });
      let parsed: ListPage | undefined;
      parseListingOurselves(command, (page) => (parsed = page));
      const r = await this.client.send(command, ownMiddleware());
      if (parsed) return parsed;
      const page: ListPage = {
        objects: (r.Contents ?? []).map((o) => ({
          key: o.Key!,
          size: o.Size ?? 0,
          lastModified: o.LastModified ?? new Date(0),
          etag: o.ETag ?? '',
        })),
        prefixes: (r.CommonPrefixes ?? []).map((p) => p.Prefix!).filter((p) => p !== undefined),
      };
      if (r.IsTruncated && r.NextContinuationToken) page.nextToken = r.NextContinuationToken;
      return page;
    } catch (err) {
      throw mapS3Error('ListObjectsV2', err, `${bucket}/${options.prefix}`);
    }
  }

  async openReader(bucket: string, _key: string, info: ObjectInfo): Promise<ObjectReader> {
    return this.#track(new S3ReadAheadReader(this.#ctx, bucket, info));
  }

  async openObject(
    bucket: string,
    key: string,
    options: { speculative?: boolean } = {},
  ): Promise<OpenedObject | undefined> {
    const reader = await S3ReadAheadReader.open(this.#ctx, bucket, key, options.speculative);
    return reader && { info: reader.info, reader: this.#track(reader) };
  }

  #track(reader: S3ReadAheadReader): S3ReadAheadReader {
    this.#readers.add(reader);
    const close = reader.close.bind(reader);
    reader.close = async () => {
      this.#readers.delete(reader);
      await close();
    };
    return reader;
  }

  async getStream(
    bucket: string,
    key: string,
    range: { start: number; end?: number; etag?: string },
  ): Promise<Readable> {
    if (range.end !== undefined && range.end <= range.start) return Readable.from([]);
    const where = `${bucket}/${key}`;
    const get = (from: number, etag: string | undefined, abortSignal?: AbortSignal) =>
      this.client.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          Range: `bytes=${from}-${range.end !== undefined ? range.end - 1 : ''}`,
          ...(etag ? { IfMatch: etag } : {}),
        }),
        { abortSignal },
      );
    try {
      const r = await get(range.start, range.etag);
      const body = r.Body as Readable;
      // The caller may pause the stream for longer than the socket timeout: a resumed GET is pinned to
      // the version this one began with, the caller's or, without one, the one the store answered.
      const etag = range.etag ?? r.ETag;
      if (!etag) return body;
      const end = r.ContentLength !== undefined ? range.start + r.ContentLength : undefined;
      // ResumableBody maps a failed re-open's error itself.
      return new ResumableBody(body, { start: range.start, end, where }, async (from, signal) =>
        (await get(from, etag, signal)).Body as Readable,
      );
    } catch (err) {
      // A range starting at the end of the object (e.g. `bytes=0-` of an empty one) is unsatisfiable.
      if (s3Status(err) === 416) {
        const info = await this.head(bucket, key);
        if (!info) throw mapS3Error('GetObject', err, where);
        if (range.etag && info.etag !== range.etag) {
          throw new GatewayError('PreconditionFailed', `S3 GetObject failed for ${where}: object changed`);
        }
        return Readable.from([]);
      }
      throw mapS3Error('GetObject', err, where);
    }
  }

  async put(
    bucket: string,
    key: string,
    body: Buffer,
    options: Omit<WriterOptions, 'base'> = {},
  ): Promise<ObjectInfo> {
    const c = this.config;
    const where = `${bucket}/${key}`;
    const ifNoneMatch = options.ifNoneMatch === true;
    if (ifNoneMatch && c.conditionalWrites === 'none' && (await this.head(bucket, key))) {
      throw alreadyExists(where);
    }
    try {
      const r = await this.client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentLength: body.length,
          ...(options.metadata ? { Metadata: options.metadata } : {}),
          ...(ifNoneMatch && c.conditionalWrites !== 'none' ? { IfNoneMatch: '*' } : {}),
          ...(c.checksums ? { ChecksumAlgorithm: c.checksumAlgorithm } : {}),
        }),
      );
      return { key, size: body.length, lastModified: new Date(), etag: r.ETag ?? '' };
    } catch (err) {
      if (ifNoneMatch && s3Status(err) === 412) throw alreadyExists(where);
      throw mapS3Error('PutObject', err, where);
    }
  }

  createWriter(bucket: string, key: string, options: WriterOptions = {}): ObjectWriter {
    const w = new S3MultipartWriter(this.#ctx, bucket, key, options, (done) => this.#writers.delete(done), {
      sourceBucket: options.base?.bucket,
    });
    this.#writers.add(w);
    return w;
  }

  async copy(
    source: { bucket: string; key: string; etag?: string },
    target: { bucket: string; key: string },
  ): Promise<ObjectInfo> {
    const from = `${source.bucket}/${source.key}`;
    let head: HeadObjectCommandOutput;
    try {
      head = await this.client.send(
        new HeadObjectCommand({
          Bucket: source.bucket,
          Key: source.key,
          ...(source.etag ? { IfMatch: source.etag } : {}),
        }),
      );
    } catch (err) {
      throw mapS3Error('HeadObject', err, from);
    }
    const info = objectInfo(source.key, head);
    if (info.size > this.config.copyPartThreshold) {
      const w = new S3MultipartWriter(
        this.#ctx,
        target.bucket,
        target.key,
        { base: { info, length: info.size }, ...(head.Metadata ? { metadata: head.Metadata } : {}) },
        (done) => this.#writers.delete(done),
        { sourceBucket: source.bucket, pieceSize: this.config.copyPartSize },
      );
      this.#writers.add(w);
      return w.complete();
    }
    try {
      const pin = { bucket: source.bucket, key: source.key, etag: info.etag };
      const r = await pinnedCopy(this.#ctx, pin, (pinned) =>
        this.client.send(
          new CopyObjectCommand({
            Bucket: target.bucket,
            Key: target.key,
            CopySource: copySource(source.bucket, source.key),
            ...(pinned ? { CopySourceIfMatch: info.etag } : {}),
            MetadataDirective: 'COPY',
          }),
        ),
      );
      return {
        key: target.key,
        size: info.size,
        lastModified: r.CopyObjectResult?.LastModified ?? new Date(),
        etag: r.CopyObjectResult?.ETag ?? '',
      };
    } catch (err) {
      throw mapS3Error('CopyObject', err, `${from} -> ${target.bucket}/${target.key}`);
    }
  }

  async delete(bucket: string, keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    if (this.config.deleteMode === 'single') {
      let next = 0;
      const worker = async () => {
        while (next < keys.length) {
          const key = keys[next++]!;
          try {
            await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
          } catch (err) {
            if (!isNotFound(err)) throw mapS3Error('DeleteObject', err, `${bucket}/${key}`);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(SINGLE_DELETE_CONCURRENCY, keys.length) }, worker));
      return;
    }
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      const command = new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
      });
      if (this.config.deleteMode === 'batch-md5') addContentMd5(command);
      let errors: { Key?: string; Code?: string; Message?: string }[];
      try {
        errors = (await this.client.send(command, ownMiddleware())).Errors ?? [];
      } catch (err) {
        throw mapS3Error('DeleteObjects', err, bucket);
      }
      const real = errors.filter((e) => e.Code !== 'NoSuchKey');
      if (real.length > 0) {
        const e = real[0]!;
        throw mapS3Error(
          'DeleteObjects',
          {
            Code: e.Code,
            message: e.Message,
            $metadata: { httpStatusCode: e.Code === 'AccessDenied' ? 403 : 400 },
          },
          `${bucket}/${e.Key} (and ${real.length - 1} more)`,
        );
      }
    }
  }

  async statfs(_bucket: string): Promise<StoreStatfs> {
    // S3 has no capacity; clients (df, WinSCP) only need plausible, large numbers.
    const blocks = 2 ** 40;
    return {
      blockSize: 4096,
      totalBlocks: blocks,
      freeBlocks: blocks,
      totalFiles: 2 ** 40,
      freeFiles: 2 ** 40,
      nameMax: 1024,
    };
  }

  async check(): Promise<void> {
    const abortSignal = AbortSignal.timeout(this.config.checkTimeout);
    const op = this.config.checkBucket ? 'HeadBucket' : 'ListBuckets';
    try {
      if (this.config.checkBucket) {
        await this.client.send(new HeadBucketCommand({ Bucket: this.config.checkBucket }), { abortSignal });
      } else {
        await this.client.send(new ListBucketsCommand({ MaxBuckets: 1 }), { abortSignal });
      }
    } catch (err) {
      const status = s3Status(err);
      // Any answer below 500 (e.g. AccessDenied for ListBuckets under a narrow policy) proves the store is up.
      if (status !== undefined && status < 500 && status !== 404) return;
      const mapped = mapS3Error(op, err, this.config.endpoint ?? 'AWS S3');
      throw new GatewayError('StoreUnavailable', mapped.message, { cause: err });
    }
  }

  async close(): Promise<void> {
    await this.janitor.stop();
    await Promise.allSettled([...this.#writers].map((w) => w.abort('store closed')));
    await Promise.allSettled([...this.#readers].map((r) => r.close()));
    this.client.destroy();
  }
}

/**
 * Options for a command with middleware of its own. The client caches one resolved handler per command
 * class (`cacheMiddleware`) and would reuse this command's middleware, closures and all, for the next
 * command of its class; any options object, even an empty one, makes `send` resolve the command's own.
 */
const ownMiddleware = (): Record<string, never> => ({});

/** Plain Swift and older Ceph refuse DeleteObjects without Content-MD5, which current SDKs no longer send. */
function addContentMd5(command: DeleteObjectsCommand): void {
  command.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { body?: unknown; headers?: Record<string, string> };
      const body = request.body;
      if (request.headers && (typeof body === 'string' || body instanceof Uint8Array)) {
        request.headers['content-md5'] = createHash('md5').update(body).digest('base64');
      }
      return next(args);
    },
    { step: 'build', name: 'sftpGatewayContentMd5', priority: 'low' },
  );
}
