// Runs after `npm install` / `npm ci`. Fixes known bugs in dependencies, each idempotent and verified;
// an unexpected file shape fails the install loudly instead of shipping an unpatched server.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * Replaces `broken` by `fixed` in the package file, where it occurs exactly `occurrences` times (once
 * unless told); already fixed is fine; anything else fails.
 */
function patch(relativePath, name, broken, fixed, what, occurrences = 1) {
  const file = require.resolve(relativePath);
  const source = readFileSync(file, 'utf8');
  if (source.includes(fixed)) {
    console.log(`patch-dependencies: ${name} already correct`);
  } else if (source.split(broken).length === occurrences + 1) {
    writeFileSync(file, source.replaceAll(broken, fixed));
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

// ssh2 1.17 refills every channel's receive window to a fixed 2 MiB. 64 uploads then hold up to 128 MiB
// that clients may send while the gateway has stopped reading. The patch lets the gateway give a channel
// a smaller window (`channel.maxWindow`, bytes) when many share the process's memory; refills still wait
// until half of it is used. Without the property, ssh2 behaves exactly as before (its call sites already
// wait for half of the 2 MiB).
patch(
  'ssh2/lib/Channel.js',
  'ssh2 per-channel receive window',
  'function windowAdjust(self) {\n  if (self.outgoing.state === \'closed\')\n    return;\n  const amt = MAX_WINDOW - self.incoming.window;',
  'function windowAdjust(self) {\n  if (self.outgoing.state === \'closed\')\n    return;\n  const max = (self.maxWindow === undefined ? MAX_WINDOW : self.maxWindow);\n  if (self.incoming.window > max / 2)\n    return;\n  const amt = max - self.incoming.window;',
  'a channel may set maxWindow below 2 MiB',
);

// ssh2 1.17 opens every session channel with a 2 MiB receive window, so 64 clients starting uploads at
// once may each send 2 MiB before the gateway has a say. The patch lets the gateway set the window a new
// session channel opens with (`connection.sessionWindow`, bytes); unset, it stays 2 MiB.
patch(
  'ssh2/lib/server.js',
  'ssh2 initial session window',
  '                  const instance = new Session(this, info, localChan);\n                  this._chanMgr.update(localChan, instance);\n\n                  proto.channelOpenConfirm(info.sender,\n                                           localChan,\n                                           MAX_WINDOW,\n                                           PACKET_SIZE);',
  '                  const instance = new Session(this, info, localChan);\n                  this._chanMgr.update(localChan, instance);\n                  const initWindow = (this.sessionWindow === undefined\n                                      ? MAX_WINDOW\n                                      : this.sessionWindow);\n                  instance._chanInfo.incoming.window = initWindow;\n\n                  proto.channelOpenConfirm(info.sender,\n                                           localChan,\n                                           initWindow,\n                                           PACKET_SIZE);',
  'the gateway may open session channels with a smaller window',
);

// ssh2 1.17 fills each outgoing packet's padding (4-19 bytes) with its own crypto.randomFillSync call:
// 4.7 us per packet here, mostly OpenSSL's fork check (a getpid system call per call), which was 4.3 % of
// the gateway's CPU serving 1,000 small files and 2-4 % of a bulk download's. The patch takes padding from
// a 64 KiB block of the same CSPRNG's output, refilled when used up: each byte is used once, so the
// padding is exactly as random as before (RFC 4253 section 6), at 0.2 us per packet.
const paddingBlock =
  '\n// sftp-s3-gateway patch: padding from a block of CSPRNG output, each byte used once.\n' +
  'const PADDING_BLOCK = Buffer.allocUnsafe(64 * 1024);\n' +
  'let paddingPos = PADDING_BLOCK.length;\n' +
  'function fillPadding(packet, offset, len) {\n' +
  '  if (paddingPos + len > PADDING_BLOCK.length) {\n' +
  '    randomFillSync(PADDING_BLOCK);\n' +
  '    paddingPos = 0;\n' +
  '  }\n' +
  '  PADDING_BLOCK.copy(packet, offset, paddingPos, paddingPos + len);\n' +
  '  paddingPos += len;\n' +
  '}\n';
const cryptoRequires = 'const { readUInt32BE, writeUInt32BE } = require(\'./utils.js\');\n';
patch(
  'ssh2/lib/protocol/crypto.js',
  'ssh2 packet padding block',
  cryptoRequires,
  cryptoRequires + paddingBlock,
  'fillPadding() defined',
);
patch(
  'ssh2/lib/protocol/crypto.js',
  'ssh2 packet padding',
  'randomFillSync(packet, 5 + payloadLen, padLen);',
  'fillPadding(packet, 5 + payloadLen, padLen);',
  'one randomFillSync per 64 KiB, not per packet',
  7,
);
