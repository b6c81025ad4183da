/**
 * One user's CreateUser constraints beyond the schema's field shapes: keys parse, mappings follow the
 * managed service's rules, the scope-down Policy fits 2048 characters and compiles. Shared by the config
 * loader (FILE:LINE:COL messages) and the user API (`validateUser`, field-path messages).
 */
import { type AuthorizedKey, parseAuthorizedKey } from '../auth/public-keys.js';
import { compilePolicy } from '../policy/index.js';
import { type UserConfig, userSchema } from './schema.js';

export interface User extends Omit<UserConfig, 'SshPublicKeys' | 'SshPublicKeyBody'> {
  keys: AuthorizedKey[];
}

export type FieldPath = (string | number)[];

/** CreateUser's Policy: a JSON string of at most 2048 characters (an object is measured as compact JSON). */
export const MAX_POLICY_CHARS = 2048;

/** Logins the managed service refuses whatever the configuration says. */
export function isRefusedLoginName(name: string): boolean {
  return name === 'root' || !/^[\w][\w@.-]{2,99}$/.test(name);
}

/**
 * Checks a schema-valid user; reports each problem through `problem(path, message)` with `path`
 * relative to the user object. Returns the User (keys parsed, duplicates dropped).
 */
export function checkUser(u: UserConfig, problem: (p: FieldPath, message: string) => void): User {
  const { SshPublicKeys, SshPublicKeyBody, ...rest } = u;
  const keys: AuthorizedKey[] = [];
  const addKey = (line: string, p: FieldPath) => {
    try {
      const key = parseAuthorizedKey(line);
      if (!keys.some((k) => k.blob.equals(key.blob))) keys.push(key);
    } catch (e) {
      problem(p, (e as Error).message);
    }
  };
  SshPublicKeys?.forEach((k, i) => {
    if (typeof k === 'string') addKey(k, ['SshPublicKeys', i]);
    else addKey(k.SshPublicKeyBody, ['SshPublicKeys', i, 'SshPublicKeyBody']);
  });
  if (SshPublicKeyBody !== undefined) addKey(SshPublicKeyBody, ['SshPublicKeyBody']);
  if (u.UserName === 'root') problem(['UserName'], 'logins as root are refused (as in the managed service)');
  if (u.HomeDirectoryType === 'LOGICAL' && u.HomeDirectoryMappings) {
    const root = u.HomeDirectoryMappings.findIndex((m) => m.Entry === '/');
    if (root >= 0 && u.HomeDirectoryMappings.length > 1) {
      problem(['HomeDirectoryMappings', root, 'Entry'], 'an Entry of "/" must be the only mapping');
    }
    const seen = new Set<string>();
    u.HomeDirectoryMappings.forEach((m, i) => {
      if (m.Target.length > 1 && m.Target.endsWith('/')) {
        problem(['HomeDirectoryMappings', i, 'Target'], 'must not end with /');
      }
      if (m.Target.split('/')[1] === '') {
        problem(['HomeDirectoryMappings', i, 'Target'], 'must be /bucket or /bucket/prefix');
      }
      if (seen.has(m.Entry)) problem(['HomeDirectoryMappings', i, 'Entry'], `duplicate Entry "${m.Entry}"`);
      seen.add(m.Entry);
    });
  }
  if (u.Policy !== undefined) {
    const text = typeof u.Policy === 'string' ? u.Policy : JSON.stringify(u.Policy);
    if (text.length > MAX_POLICY_CHARS) {
      problem(['Policy'], `at most ${MAX_POLICY_CHARS} characters (this one has ${text.length} as JSON)`);
    } else {
      try {
        compilePolicy(u.Policy, {
          label: 'Policy',
          variables: { userName: u.UserName, homeDirectory: u.HomeDirectory },
        });
      } catch (e) {
        problem(['Policy'], (e as Error).message);
      }
    }
  }
  return { ...rest, keys };
}

export class UserValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'UserValidationError';
  }
}

/**
 * Validates one user object (AWS Transfer's CreateUser / describe-user field names) and returns the
 * User the gateway runs with. Throws UserValidationError listing every problem as `Field.path: message`.
 * For the user API and the identity provider; the config loader reports the same checks with positions.
 */
export function validateUser(input: unknown): User {
  const parsed = userSchema.safeParse(input);
  if (!parsed.success) {
    throw new UserValidationError(
      parsed.error.issues.flatMap((i) =>
        i.code === 'unrecognized_keys'
          ? i.keys.map((k) => `${formatFieldPath([...(i.path as FieldPath), k])}: unknown field`)
          : [`${formatFieldPath(i.path as FieldPath) || '(user)'}: ${i.message}`],
      ),
    );
  }
  const problems: string[] = [];
  const user = checkUser(parsed.data, (p, m) => problems.push(`${formatFieldPath(p)}: ${m}`));
  if (problems.length > 0) throw new UserValidationError(problems);
  return user;
}

export function formatFieldPath(p: FieldPath): string {
  return p.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}
