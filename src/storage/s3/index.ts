export type { ChecksumAlgorithmName, ResolvedS3StoreConfig, S3StoreConfig } from './config.js';
export { partSizeFor, resolveS3StoreConfig } from './config.js';
export { mapS3Error } from './errors.js';
export { type JanitorResult, MultipartJanitor } from './janitor.js';
export { S3Store, type S3StoreDeps } from './s3-store.js';
