import type { Logger } from './logger.js';

/** Which ciphers ssh2 runs: its native binding's (OpenSSL) or its JavaScript fallback. */
export type SshCrypto = 'native' | 'javascript';

/**
 * Says at start that ssh2 runs its JavaScript ciphers, and what that costs. Here, not beside
 * sshNativeCrypto(), because the cluster's primary, which never loads ssh2, says it for its workers.
 */
export function warnIfJavaScriptCrypto(logger: Logger, sshCrypto: SshCrypto): void {
  if (sshCrypto !== 'javascript') return;
  logger.warn(
    'ssh2\'s native crypto binding is not loaded, so ciphers fall back to JavaScript and chacha20-poly1305 ' +
      '(OpenSSH\'s default) costs about twice the CPU per byte: install python3, make and g++, then run ' +
      'npm rebuild ssh2',
  );
}
