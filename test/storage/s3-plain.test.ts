import { after } from 'node:test';
import { s3SkipReason, startS3 } from '../support/s3.js';
import { objectStoreContract } from './contract.js';
import { makeS3Store } from './s3-fixture.js';
import { s3SpecificTests } from './s3-specific.js';

// Swift as Debian ships it (S3_COMPAT=0), with the gateway's compatibility settings.
const skip = s3SkipReason();
objectStoreContract(
  'S3Store, plain Swift, compatibility: generic',
  () => makeS3Store(false),
  skip ? { skip } : {},
);
s3SpecificTests('plain Swift, compatibility: generic', false, skip);

after(async () => {
  if (!skip) await (await startS3({ compat: false })).stop();
});
