// Runs after `npm install` / `npm ci`. Fixes known bugs in dependencies, each idempotent and verified;
// an unexpected file shape fails the install loudly instead of shipping an unpatched server.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Replaces `broken` by `fixed` in the package file once; already fixed is fine; anything else fails. */
function patch(relativePath, name, broken, fixed, what) {
  const file = require.resolve(relativePath);
  const source = readFileSync(file, 'utf8');
  if (source.includes(fixed)) {
    console.log(`patch-dependencies: ${name} already correct`);
  } else if (source.split(broken).length === 2) {
    writeFileSync(file, source.replace(broken, fixed));
    console.log(`patch-dependencies: fixed ${name} (${what})`);
  } else {
    console.error(
      `patch-dependencies: ${file} has an unexpected shape; check whether ssh2 still needs the ${name} fix`,
    );
    process.exit(1);
  }
}

// ssh2 1.17 advertises server-sig-algs with a missing comma ("...ecdsa-sha2-nistp521rsa-sha2-512,..."),
// so clients never see rsa-sha2-512 and an OpenSSH client limited to it (PubkeyAcceptedAlgorithms, FIPS
// policies) cannot log in with an RSA key. Our SSH server verifies rsa-sha2-512 signatures correctly; only
// the advertisement is wrong.
patch(
  'ssh2/lib/protocol/Protocol.js',
  'ssh2 server-sig-algs',
  '\'ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521\'\n      + \'rsa-sha2-512,',
  '\'ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,\'\n      + \'rsa-sha2-512,',
  'missing comma before rsa-sha2-512',
);

// ssh2 1.17's server disconnects (SERVICE_NOT_AVAILABLE) on a second SSH_MSG_SERVICE_REQUEST for
// "ssh-userauth". RFC 4253 does not forbid repeating it, OpenSSH's sshd answers every one made before
// authentication succeeds, and paramiko sends one per auth_*() call, so paramiko's key-then-password
// login (auth_publickey() then auth_password(), PUBLIC_KEY_AND_PASSWORD) was cut off after the key.
// The fix only drops the "already accepted" condition: a repeated request before authentication gets
// another SERVICE_ACCEPT and changes no state (the auth context, its username/service checks, the
// failure count and MaxAuthTries are untouched); any other service, a request before the key exchange
// or after authentication still disconnects.
patch(
  'ssh2/lib/server.js',
  'ssh2 repeated ssh-userauth SERVICE_REQUEST',
  '          if (exchanges === 0\n              || acceptedAuthSvc\n              || this.authenticated\n              || service !== \'ssh-userauth\') {',
  '          if (exchanges === 0\n              || this.authenticated\n              || service !== \'ssh-userauth\') {',
  'a repeated ssh-userauth SERVICE_REQUEST before authentication is accepted again, as sshd does',
);
