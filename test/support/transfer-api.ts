import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { TransferClient } from '@aws-sdk/client-transfer';
import { SignatureV4 } from '@smithy/signature-v4';
import { type RunResult, run, type TestGateway } from './gateway.js';

/** Helpers to drive the user API with the real clients: the AWS SDK, the aws CLI, and raw signed calls. */

export const ADMIN = {
  accessKeyId: 'AKIAEXAMPLEADMIN0001',
  secretAccessKey: 'change-me-please-0001',
};
export const AWS_CLI = '/usr/bin/aws';

export function apiConfig(extra: Record<string, unknown> = {}) {
  // Copies: the SDK marks credential objects it is given (`$source`), which the config would refuse.
  return {
    host: '127.0.0.1',
    port: 0,
    accessKeys: [
      {
        accessKeyId: ADMIN.accessKeyId,
        secretAccessKey: ADMIN.secretAccessKey,
      },
    ],
    ...extra,
  };
}

/** The user API's port, from the gateway's `user API listening` log line. */
export async function apiPort(gw: TestGateway): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const line = gw
      .logLines()
      .find(
        (l) =>
          l['component'] === 'user-api' && l['msg'] === 'user API listening',
      );
    if (line) return line['port'] as number;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the user API did not start:\n${gw.logs()}`);
}

export function sdkClient(
  endpoint: string,
  credentials: { accessKeyId: string; secretAccessKey: string } = ADMIN,
): TransferClient {
  return new TransferClient({
    endpoint,
    region: 'us-east-1',
    credentials: {
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
    },
    maxAttempts: 1,
  });
}

/** An environment with nothing from this machine's AWS setup (no CA bundle, profiles or metadata lookups). */
export function cliEnv(credentials = ADMIN): NodeJS.ProcessEnv {
  return {
    PATH: process.env['PATH'],
    HOME: process.env['HOME'],
    LANG: 'C.UTF-8',
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_PAGER: '',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_MAX_ATTEMPTS: '1',
  };
}

/** `aws transfer <args> --endpoint-url <endpoint> --output json`; parses stdout when it is JSON. */
export async function cli(
  endpoint: string,
  args: string[],
  credentials = ADMIN,
): Promise<RunResult & { json: Record<string, unknown> | undefined }> {
  const r = await run(
    AWS_CLI,
    ['--endpoint-url', endpoint, '--output', 'json', 'transfer', ...args],
    {
      env: cliEnv(credentials),
      timeoutMs: 60_000,
    },
  );
  let json: Record<string, unknown> | undefined;
  try {
    json = r.stdout.trim()
      ? (JSON.parse(r.stdout) as Record<string, unknown>)
      : undefined;
  } catch {
    json = undefined;
  }
  return { ...r, json };
}

function toBytes(
  d: string | ArrayBuffer | ArrayBufferView,
): string | Uint8Array {
  if (typeof d === 'string') return d;
  if (d instanceof ArrayBuffer) return new Uint8Array(d);
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** SHA-256 for @smithy/signature-v4 on node:crypto. */
export class NodeSha256 {
  private readonly h: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.h =
      secret === undefined
        ? createHash('sha256')
        : createHmac('sha256', toBytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.h.update(toBytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
}

/**
 * A JSON 1.1 call signed by @smithy/signature-v4 but with a body of our choosing (the SDK would drop
 * unknown fields and coerce types), optionally signed at another time.
 */
export async function rawCall(
  port: number,
  operation: string,
  body: string,
  options: { signingDate?: Date; credentials?: typeof ADMIN } = {},
): Promise<{
  status: number;
  body: Record<string, unknown>;
  errorType: string | null;
}> {
  const signer = new SignatureV4({
    credentials: options.credentials ?? ADMIN,
    region: 'us-east-1',
    service: 'transfer',
    sha256: NodeSha256,
  });
  const signed = await signer.sign(
    {
      method: 'POST',
      protocol: 'http:',
      hostname: '127.0.0.1',
      port,
      path: '/',
      query: {},
      headers: {
        host: `127.0.0.1:${port}`,
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': `TransferService.${operation}`,
      },
      body,
    },
    { signingDate: options.signingDate },
  );
  const res = await fetch(`http://127.0.0.1:${port}/`, {
    method: 'POST',
    headers: signed.headers as Record<string, string>,
    body,
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    errorType: res.headers.get('x-amzn-errortype'),
  };
}
