// Runs after `npm install` / `npm ci`. Fixes known bugs in dependencies, each idempotent and verified;
// an unexpected file shape fails the install loudly instead of shipping an unpatched server.
//
// ssh2 1.17 advertises server-sig-algs with a missing comma ("...ecdsa-sha2-nistp521rsa-sha2-512,..."),
// so clients never see rsa-sha2-512 and an OpenSSH client limited to it (PubkeyAcceptedAlgorithms, FIPS
// policies) cannot log in with an RSA key. Our SSH server verifies rsa-sha2-512 signatures correctly; only
// the advertisement is wrong.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const file = require.resolve('ssh2/lib/protocol/Protocol.js');
const source = readFileSync(file, 'utf8');
const broken = '\'ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521\'\n      + \'rsa-sha2-512,';
const fixed = '\'ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,\'\n      + \'rsa-sha2-512,';
if (source.includes(fixed)) {
  console.log('patch-dependencies: ssh2 server-sig-algs already correct');
} else if (source.includes(broken)) {
  writeFileSync(file, source.replace(broken, fixed));
  console.log('patch-dependencies: fixed ssh2 server-sig-algs (missing comma before rsa-sha2-512)');
} else {
  console.error(
    `patch-dependencies: ${file} has an unexpected shape; check whether ssh2 still needs the server-sig-algs fix`,
  );
  process.exit(1);
}
