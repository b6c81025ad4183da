import { createHash, createPublicKey } from 'node:crypto';
import ssh2 from 'ssh2';

const { utils } = ssh2;

/** Key types the managed service accepts (CreateUser SshPublicKeyBody), and so do we. */
const ACCEPTED_TYPES = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
]);

export const MIN_RSA_BITS = 2048;

export interface AuthorizedKey {
  type: string;
  /** The SSH wire-format public key blob, compared byte for byte at login. */
  blob: Buffer;
  /** `SHA256:...` as OpenSSH prints it. */
  fingerprint: string;
  comment: string;
  /** The key line without the comment, as describe-user returns SshPublicKeyBody. */
  body: string;
  /** ssh2's parsed key, used to verify signatures. */
  parsed: ssh2.ParsedKey;
}

/** Parses one OpenSSH public key line (`type base64 [comment]`); throws an Error with a readable message. */
export function parseAuthorizedKey(line: string): AuthorizedKey {
  const trimmed = line.trim();
  const [type, data, ...rest] = trimmed.split(/\s+/);
  if (!type || !data) throw new Error('expected "<type> <base64 key> [comment]"');
  if (!ACCEPTED_TYPES.has(type)) {
    throw new Error(`unsupported key type "${type}" (accepted: ${[...ACCEPTED_TYPES].join(', ')})`);
  }
  const parsed = utils.parseKey(`${type} ${data}`);
  if (parsed instanceof Error) throw new Error(`not a valid ${type} public key: ${parsed.message}`);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key) throw new Error('no key found');
  if (key.type !== type) throw new Error(`key data is of type ${key.type}, not ${type}`);
  if (type === 'ssh-rsa') {
    const bits = createPublicKey(key.getPublicPEM()).asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS)
      throw new Error(`RSA key of ${bits} bits refused: at least ${MIN_RSA_BITS} are required`);
  }
  const blob = key.getPublicSSH();
  return {
    type,
    blob,
    fingerprint: fingerprintOf(blob),
    comment: rest.join(' '),
    body: `${type} ${data}`,
    parsed: key,
  };
}

export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}
