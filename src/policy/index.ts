export type { CompiledCondition } from './conditions.js';
export {
  type ConditionBlock,
  type Effect,
  type PolicyDocument,
  PolicyError,
  type PolicyStatement,
  parsePolicy,
} from './document.js';
export {
  type AccessChecker,
  type AccessResult,
  PolicyEngine,
  type PolicyEngineOptions,
} from './engine.js';
export {
  type CompiledPolicy,
  type CompiledStatement,
  type CompileOptions,
  compilePolicy,
  type Decision,
  type Explanation,
  evaluate,
  explain,
  type PolicyRequest,
  type RequestContext,
} from './evaluate.js';
export {
  checkOperation,
  denialOf,
  type OperationDenial,
  type S3Check,
  SFTP_S3_ACTION_TABLE,
  type SftpOperation,
  s3BucketArn,
  s3ChecksFor,
  s3ObjectArn,
  sftpS3ActionTableMarkdown,
} from './s3-actions.js';
export { type TransferVariables, transferVariableValues } from './variables.js';
