/**
 * Typed errors shared by every layer. Storage and vfs throw these; protocol/sftp/status.ts maps them to
 * SFTP status codes in exactly one place. The message is shown to the SFTP client, so it must be readable
 * and must never contain a secret.
 */
export type GatewayErrorCode =
  | 'NotFound'
  | 'PermissionDenied'
  | 'AlreadyExists'
  | 'NotEmpty'
  | 'NotADirectory'
  | 'IsADirectory'
  | 'InvalidPath'
  | 'Unsupported'
  | 'PreconditionFailed'
  | 'StoreUnavailable'
  | 'QuotaExceeded'
  | 'Failure';

export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  constructor(code: GatewayErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = code;
  }
}

export const notFound = (what: string) => new GatewayError('NotFound', `no such file or directory: ${what}`);
export const permissionDenied = (msg: string) => new GatewayError('PermissionDenied', msg);
export const alreadyExists = (what: string) => new GatewayError('AlreadyExists', `already exists: ${what}`);
export const notEmpty = (what: string) => new GatewayError('NotEmpty', `directory not empty: ${what}`);
export const notADirectory = (what: string) => new GatewayError('NotADirectory', `not a directory: ${what}`);
export const isADirectory = (what: string) => new GatewayError('IsADirectory', `is a directory: ${what}`);
export const invalidPath = (msg: string) => new GatewayError('InvalidPath', msg);
export const unsupported = (msg: string) => new GatewayError('Unsupported', msg);

export function isGatewayError(e: unknown, code?: GatewayErrorCode): e is GatewayError {
  return e instanceof GatewayError && (code === undefined || e.code === code);
}
