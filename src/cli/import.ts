/**
 * `sftp-s3-gateway import describe-user.json [...]`: turns `aws transfer describe-user` outputs (or
 * CreateUser request bodies) into the `users:` section of the config, field names unchanged. Every user
 * is checked with the same rules as the config loader; problems are reported per file.
 */
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { UserValidationError, validateUser } from '../config/users.js';

/** Fields the config keeps; describe-user's Arn and the key ids/dates are dropped or simplified. */
const KEEP = [
  'UserName',
  'HomeDirectory',
  'HomeDirectoryType',
  'HomeDirectoryMappings',
  'Role',
  'Policy',
  'PosixProfile',
  'Tags',
  'Description',
] as const;

export interface ImportResult {
  users: Record<string, unknown>[];
  problems: string[];
}

/** One describe-user output (`{ServerId, User: {...}}`), a bare user, or a CreateUser request. */
export function usersFromDocument(doc: unknown, source: string): ImportResult {
  const problems: string[] = [];
  const users: Record<string, unknown>[] = [];
  const list = Array.isArray(doc)
    ? doc
    : doc && typeof doc === 'object' && 'Users' in doc && Array.isArray((doc as { Users: unknown }).Users)
      ? (doc as { Users: unknown[] }).Users
      : [doc];
  list.forEach((item, i) => {
    const where = list.length > 1 ? `${source}[${i}]` : source;
    const raw = (
      item && typeof item === 'object' && 'User' in item ? (item as { User: unknown }).User : item
    ) as Record<string, unknown> | undefined;
    if (!raw || typeof raw !== 'object') {
      problems.push(`${where}: not a user object`);
      return;
    }
    const out: Record<string, unknown> = {};
    for (const k of KEEP) if (raw[k] !== undefined && raw[k] !== null) out[k] = raw[k];
    const keys: string[] = [];
    if (Array.isArray(raw['SshPublicKeys'])) {
      for (const k of raw['SshPublicKeys'] as unknown[]) {
        const body = typeof k === 'string' ? k : (k as { SshPublicKeyBody?: string })?.SshPublicKeyBody;
        if (body) keys.push(body);
      }
    }
    if (typeof raw['SshPublicKeyBody'] === 'string') keys.push(raw['SshPublicKeyBody']);
    if (keys.length > 0) out['SshPublicKeys'] = keys;
    // describe-user returns the Policy as a JSON string; keep it readable in YAML as an object.
    if (typeof out['Policy'] === 'string') {
      try {
        out['Policy'] = JSON.parse(out['Policy'] as string);
      } catch {
        // left as a string: validation reports it
      }
    }
    try {
      validateUser(out);
      users.push(out);
    } catch (e) {
      const list = e instanceof UserValidationError ? e.problems : [(e as Error).message];
      for (const p of list) problems.push(`${where}: ${p}`);
    }
  });
  return { users, problems };
}

export function importFiles(files: string[]): ImportResult {
  const users: Record<string, unknown>[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      problems.push(`${file}: ${(e as Error).message}`);
      continue;
    }
    const r = usersFromDocument(doc, file);
    problems.push(...r.problems);
    for (const u of r.users) {
      if (seen.has(u['UserName'] as string)) {
        problems.push(`${file}: duplicate user "${u['UserName']}"`);
        continue;
      }
      seen.add(u['UserName'] as string);
      users.push(u);
    }
  }
  return { users, problems };
}

/** The CLI: YAML on stdout, problems on stderr, exit 1 when any file had problems. */
export function runImport(files: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): number {
  if (files.length === 0) {
    err.write('usage: sftp-s3-gateway import describe-user.json [more.json ...] > users.yaml\n');
    return 2;
  }
  const { users, problems } = importFiles(files);
  for (const p of problems) err.write(`${p}\n`);
  out.write(stringify({ users }, { lineWidth: 0 }));
  return problems.length > 0 ? 1 : 0;
}
