import { GatewayError, isGatewayError } from '../../errors.js';

interface SdkErrorShape {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $fault?: 'client' | 'server';
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  // The SDK's own timeouts (connectionTimeout, socketTimeout) are errors named TimeoutError.
  'TimeoutError',
  'RequestTimeout',
]);

export function s3ErrorCode(err: unknown): string | undefined {
  const e = err as SdkErrorShape | undefined;
  return e?.Code ?? e?.name ?? e?.code;
}

export function s3Status(err: unknown): number | undefined {
  return (err as SdkErrorShape | undefined)?.$metadata?.httpStatusCode;
}

/**
 * The connection failed rather than the store answering: a timeout, a reset, a body cut short. Node
 * reports a response body lost with its connection as `aborted` (ECONNRESET); the SDK's socketTimeout
 * as a TimeoutError.
 */
export function isConnectionError(err: unknown): boolean {
  if (s3Status(err) !== undefined) return false;
  const e = err as { name?: string; code?: string; message?: string } | undefined;
  return (
    NETWORK_CODES.has(e?.name ?? '') ||
    NETWORK_CODES.has(e?.code ?? '') ||
    e?.code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    e?.message === 'aborted'
  );
}

export function isNotFound(err: unknown): boolean {
  const code = s3ErrorCode(err);
  return code === 'NoSuchKey' || code === 'NotFound' || (code !== 'NoSuchBucket' && s3Status(err) === 404);
}

/**
 * Maps an SDK error (after the SDK's own retries) to a GatewayError whose message names the S3 operation
 * and the object, e.g. "S3 PutObject failed for bucket/key: SlowDown: ...". The SDK's messages carry no
 * credentials, so they are safe to show to SFTP clients.
 */
export function mapS3Error(op: string, err: unknown, where?: string): GatewayError {
  if (isGatewayError(err)) return err;
  const e = (err ?? {}) as SdkErrorShape;
  const code = s3ErrorCode(err) ?? 'Error';
  const status = s3Status(err);
  const detail =
    e.message && e.message !== code && e.message !== 'UnknownError' ? `${code}: ${e.message}` : code;
  const message = `S3 ${op} failed${where ? ` for ${where}` : ''}: ${detail}`;
  const options = { cause: err };
  if (code === 'NoSuchKey' || code === 'NotFound' || code === 'NoSuchBucket' || status === 404) {
    return new GatewayError('NotFound', message, options);
  }
  if (code === 'AccessDenied' || code === 'AllAccessDisabled' || status === 403) {
    return new GatewayError('PermissionDenied', message, options);
  }
  if (code === 'PreconditionFailed' || status === 412) {
    return new GatewayError('PreconditionFailed', message, options);
  }
  if (code === 'AbortError') return new GatewayError('Failure', message, options);
  if (
    status === undefined ||
    status >= 500 ||
    NETWORK_CODES.has(code) ||
    code === 'SlowDown' ||
    code === 'ServiceUnavailable'
  ) {
    return new GatewayError('StoreUnavailable', message, options);
  }
  return new GatewayError('Failure', message, options);
}
