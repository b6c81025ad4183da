import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../observability/logger.js';
import { ApiError, type TransferErrorType } from './errors.js';
import type { TransferOperations } from './operations.js';
import { SigV4Error, type SigV4FailureCode, verifySigV4 } from './sigv4.js';

/**
 * The user API listener: AWS JSON 1.1 over HTTP, `POST /` with `X-Amz-Target: TransferService.<Operation>`
 * and `Content-Type: application/x-amz-json-1.1`, every request signed with SigV4 (service `transfer`,
 * any region) by one of the configured admin access keys. Point the aws CLI or an SDK at it with
 * `--endpoint-url` / `endpoint`.
 */

export interface AccessKey {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface ApiServerOptions {
  host: string;
  port: number;
  /** Read at every request, so that a config reload rotates keys at once. */
  accessKeys: () => readonly AccessKey[];
  operations: TransferOperations;
  logger: Logger;
  /** For tests: the server's clock. */
  now?: () => Date;
}

export interface ApiServer {
  port: number;
  close(): Promise<void>;
}

const TARGET_PREFIX = 'TransferService.';
const MAX_BODY = 4 * 1024 * 1024;
const CONTENT_TYPE = 'application/x-amz-json-1.1';

const AUTH_ERRORS: Record<SigV4FailureCode, TransferErrorType> = {
  MissingAuthenticationToken: 'MissingAuthenticationTokenException',
  IncompleteSignature: 'IncompleteSignatureException',
  UnrecognizedClient: 'UnrecognizedClientException',
  SignatureDoesNotMatch: 'InvalidSignatureException',
  SignatureExpired: 'InvalidSignatureException',
};

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const logger = options.logger.child({ component: 'user-api' });
  const server = createServer((req, res) => {
    handle(req, res, options, logger).catch((e: Error) => {
      logger.error({ err: e.message }, 'user API request failed');
      if (!res.headersSent) send(res, randomUUID(), new ApiError('InternalServiceError', 'Internal error'));
    });
  });
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ host: options.host, port }, 'user API listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) return undefined;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

function send(
  res: ServerResponse,
  requestId: string,
  result: ApiError | Record<string, unknown> | undefined,
) {
  const headers: Record<string, string> = { 'x-amzn-RequestId': requestId };
  if (result instanceof ApiError) headers['x-amzn-ErrorType'] = `${result.type}:`;
  const body = JSON.stringify(result instanceof ApiError ? result.body() : (result ?? {}));
  headers['Content-Type'] = CONTENT_TYPE;
  headers['Content-Length'] = String(Buffer.byteLength(body));
  res.writeHead(result instanceof ApiError ? result.status : 200, headers);
  res.end(body);
}

async function handle(req: IncomingMessage, res: ServerResponse, o: ApiServerOptions, logger: Logger) {
  const requestId = randomUUID();
  const started = Date.now();
  const target = String(req.headers['x-amz-target'] ?? '');
  const operation = target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : target;
  let accessKeyId: string | undefined;
  const finish = (result: ApiError | Record<string, unknown> | undefined) => {
    send(res, requestId, result);
    const error = result instanceof ApiError ? result : undefined;
    logger[error && error.status >= 500 ? 'error' : 'info'](
      {
        'request-id': requestId,
        operation,
        'access-key-id': accessKeyId,
        'source-ip': req.socket.remoteAddress,
        status: error?.status ?? 200,
        error: error?.type,
        message: error?.message,
        ms: Date.now() - started,
      },
      'user API call',
    );
  };

  const body = await readBody(req);
  if (body === undefined) {
    finish(new ApiError('SerializationException', `Request body larger than ${MAX_BODY} bytes`));
    req.destroy();
    return;
  }
  // Authentication comes first, as in AWS: nothing about the request is told to an unsigned caller.
  try {
    const keys = o.accessKeys();
    const verified = verifySigV4(
      { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headersDistinct, body },
      {
        service: 'transfer',
        secretFor: (id) => keys.find((k) => k.accessKeyId === id)?.secretAccessKey,
        now: o.now?.(),
      },
    );
    accessKeyId = verified.accessKeyId;
  } catch (e) {
    if (!(e instanceof SigV4Error)) throw e;
    finish(new ApiError(AUTH_ERRORS[e.code], e.message));
    return;
  }
  if (req.method !== 'POST' || !target.startsWith(TARGET_PREFIX) || !o.operations.isOperation(operation)) {
    finish(
      new ApiError(
        'UnknownOperationException',
        target ? `Unknown operation ${target}` : 'Missing X-Amz-Target header naming the operation',
      ),
    );
    return;
  }
  let input: unknown = {};
  if (body.length > 0) {
    try {
      input = JSON.parse(body.toString('utf8'));
    } catch (e) {
      finish(
        new ApiError('SerializationException', `Request body is not valid JSON: ${(e as Error).message}`),
      );
      return;
    }
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    finish(new ApiError('SerializationException', 'Request body must be a JSON object'));
    return;
  }
  try {
    finish(await o.operations.call(operation, input));
  } catch (e) {
    if (e instanceof ApiError) finish(e);
    else throw e;
  }
}
