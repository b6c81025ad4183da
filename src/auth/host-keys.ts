import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';

const { utils } = ssh2;

export interface HostKey {
  file: string;
  type: string;
  private: Buffer;
}

/**
 * Reads each host key file, generating a missing one on first start (ed25519 unless the file name says
 * rsa or ecdsa) so that the key, and clients' known_hosts entries, survive restarts. Replicas share keys
 * by mounting the same files.
 */
export function loadOrCreateHostKeys(files: string[]): HostKey[] {
  return files.map((file) => {
    if (!existsSync(file)) generate(file);
    const data = readFileSync(file);
    const parsed = utils.parseKey(data);
    if (parsed instanceof Error) throw new Error(`${file}: not a usable private host key: ${parsed.message}`);
    const key = Array.isArray(parsed) ? parsed[0]! : parsed;
    if (!key.isPrivateKey()) throw new Error(`${file}: is a public key; a private host key is needed`);
    return { file, type: key.type, private: data };
  });
}

function generate(file: string): void {
  const name = path.basename(file);
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  // ssh2's generator drops a leading zero byte of an ed25519 public key (about 1 key in 256), which
  // yields a private key file it cannot parse back. Generate until the pair round-trips.
  for (let attempt = 1; ; attempt++) {
    const pair = name.includes('rsa')
      ? utils.generateKeyPairSync('rsa', { bits: 3072 })
      : name.includes('ecdsa')
        ? utils.generateKeyPairSync('ecdsa', { bits: 256 })
        : utils.generateKeyPairSync('ed25519');
    const parsedPrivate = utils.parseKey(pair.private);
    const parsedPublic = utils.parseKey(pair.public);
    if (!(parsedPrivate instanceof Error) && !(parsedPublic instanceof Error)) {
      writeFileSync(file, pair.private, { mode: 0o600, flag: 'wx' });
      writeFileSync(`${file}.pub`, `${pair.public}\n`, { mode: 0o644 });
      return;
    }
    if (attempt >= 10) throw new Error(`${file}: could not generate a usable host key`);
  }
}
