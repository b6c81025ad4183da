/**
 * Errors of the AWS JSON 1.1 protocol as AWS Transfer sends them: HTTP status, `x-amzn-ErrorType` header
 * and a body `{"__type": "<Name>", "Message": "..."}`. The SDKs and the CLI pick the error class from
 * `__type` (or the header), so the names are those of the API model.
 */

export type TransferErrorType =
  // Modeled errors of the Transfer operations (status codes from the API model's httpError traits).
  | 'InvalidRequestException'
  | 'ResourceExistsException'
  | 'ResourceNotFoundException'
  | 'InvalidNextTokenException'
  | 'ServiceUnavailableException'
  | 'InternalServiceError'
  | 'ThrottlingException'
  // Common errors of every AWS JSON service (authentication, protocol).
  | 'MissingAuthenticationTokenException'
  | 'IncompleteSignatureException'
  | 'InvalidSignatureException'
  | 'UnrecognizedClientException'
  | 'UnknownOperationException'
  | 'SerializationException';

const STATUS: Record<TransferErrorType, number> = {
  InvalidRequestException: 400,
  ResourceExistsException: 409,
  ResourceNotFoundException: 404,
  InvalidNextTokenException: 400,
  ServiceUnavailableException: 503,
  // The API model gives InternalServiceError `httpError: 503` (it is a server fault either way).
  InternalServiceError: 503,
  ThrottlingException: 429,
  MissingAuthenticationTokenException: 403,
  IncompleteSignatureException: 403,
  InvalidSignatureException: 403,
  UnrecognizedClientException: 403,
  UnknownOperationException: 400,
  SerializationException: 400,
};

export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly type: TransferErrorType,
    message: string,
    /** Extra members of the error shape (Resource, ResourceType). */
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
    this.name = type;
    this.status = STATUS[type];
  }

  body(): Record<string, string> {
    return { __type: this.type, Message: this.message, ...this.fields };
  }
}

export const invalidRequest = (message: string) => new ApiError('InvalidRequestException', message);

export const userNotFound = (userName: string, serverId: string) =>
  new ApiError('ResourceNotFoundException', `Unknown user '${userName}' for server '${serverId}'`, {
    Resource: userName,
    ResourceType: 'User',
  });

export const serverNotFound = (serverId: string) =>
  new ApiError('ResourceNotFoundException', `Unknown server '${serverId}'`, {
    Resource: serverId,
    ResourceType: 'Server',
  });

export const userExists = (userName: string, serverId: string) =>
  new ApiError('ResourceExistsException', `User already exists: '${userName}' on server '${serverId}'`, {
    Resource: userName,
    ResourceType: 'User',
  });
