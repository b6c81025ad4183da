import { after } from 'node:test';
import { s3SkipReason, startS3 } from '../support/s3.js';
import { objectStoreContract } from './contract.js';
import { makeS3Store } from './s3-fixture.js';
import { s3SpecificTests } from './s3-specific.js';

// Swift behind the shim that behaves like AWS for current SDKs (S3_COMPAT=1), default gateway settings.
const skip = s3SkipReason();
objectStoreContract(
  'S3Store, AWS-like (Swift + s3compat shim), default settings',
  () => makeS3Store(true),
  skip ? { skip } : {},
);
s3SpecificTests('AWS-like, default settings', true, skip);

after(async () => {
  if (!skip) await (await startS3({ compat: true })).stop();
});
