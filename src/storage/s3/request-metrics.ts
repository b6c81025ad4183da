import type { S3Client } from '@aws-sdk/client-s3';

/**
 * Called once per S3 command, after it settled (retries included): `operation` is the API name
 * (`GetObject`, `UploadPart`, ...), `seconds` the time until the response headers (or the error), and
 * `errorCode` the S3 error code (or the error's name) when it failed.
 */
export type S3RequestObserver = (operation: string, seconds: number, errorCode?: string) => void;

/**
 * Adds a middleware to every command of `client` that reports its operation, latency and outcome. The
 * observer must be cheap; a throwing observer is ignored (metrics never fail a request).
 */
export function observeS3Requests(client: S3Client, observer: S3RequestObserver): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = String(context.commandName ?? 'Unknown').replace(/Command$/, '');
      const start = process.hrtime.bigint();
      const report = (errorCode?: string) => {
        try {
          observer(operation, Number(process.hrtime.bigint() - start) / 1e9, errorCode);
        } catch {
          // metrics must not fail the request
        }
      };
      try {
        const result = await next(args);
        report();
        return result;
      } catch (err) {
        report(errorCodeOf(err));
        throw err;
      }
    },
    { step: 'initialize', name: 'sftpGatewayRequestMetrics', priority: 'high' },
  );
}

function errorCodeOf(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { Code?: unknown; name?: unknown; code?: unknown };
    for (const v of [e.Code, e.name, e.code]) {
      if (typeof v === 'string' && v !== '' && v !== 'Error') return v;
    }
  }
  return 'Unknown';
}
