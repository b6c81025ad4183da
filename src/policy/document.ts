/**
 * IAM policy documents: shape validation and normalization. Both role policies (from the config) and
 * scope-down policies (CreateUser's `Policy`, a JSON string) arrive here, so a mistake must be reported
 * with enough precision (statement index, Sid, field) for an operator to fix the file.
 */

export class PolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyError';
  }
}

export type Effect = 'Allow' | 'Deny';

/** A condition block: operator -> condition key -> values, all normalized to strings. */
export type ConditionBlock = Record<string, Record<string, string[]>>;

export interface PolicyStatement {
  readonly sid?: string;
  readonly effect: Effect;
  /** Exactly one of action / notAction is set. */
  readonly action?: readonly string[];
  readonly notAction?: readonly string[];
  /** Exactly one of resource / notResource is set. */
  readonly resource?: readonly string[];
  readonly notResource?: readonly string[];
  readonly condition?: ConditionBlock;
}

export interface PolicyDocument {
  /** Undefined when the document omits it; IAM then reads it as 2008-10-17. */
  readonly version?: '2012-10-17' | '2008-10-17';
  readonly id?: string;
  readonly statements: readonly PolicyStatement[];
}

const DOCUMENT_KEYS = new Set(['Version', 'Id', 'Statement']);
const STATEMENT_KEYS = new Set([
  'Sid',
  'Effect',
  'Action',
  'NotAction',
  'Resource',
  'NotResource',
  'Condition',
]);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * Accepts the document as an object or as the JSON string CreateUser takes. Throws PolicyError naming
 * the statement and field at fault.
 */
export function parsePolicy(input: unknown, label = 'policy'): PolicyDocument {
  let doc = input;
  if (typeof input === 'string') {
    try {
      doc = JSON.parse(input);
    } catch (e) {
      throw new PolicyError(`${label}: not valid JSON (${(e as Error).message})`);
    }
  }
  if (!isPlainObject(doc)) throw new PolicyError(`${label}: must be a JSON object, got ${describe(doc)}`);

  for (const key of Object.keys(doc)) {
    if (!DOCUMENT_KEYS.has(key)) {
      throw new PolicyError(`${label}: unknown top-level field "${key}" (expected Version, Id, Statement)`);
    }
  }

  let version: PolicyDocument['version'];
  if (doc.Version !== undefined) {
    if (doc.Version !== '2012-10-17' && doc.Version !== '2008-10-17') {
      throw new PolicyError(
        `${label}: Version must be "2012-10-17" or "2008-10-17", got ${describe(doc.Version)}`,
      );
    }
    version = doc.Version;
  }
  if (doc.Id !== undefined && typeof doc.Id !== 'string') {
    throw new PolicyError(`${label}: Id must be a string, got ${describe(doc.Id)}`);
  }
  if (doc.Statement === undefined) throw new PolicyError(`${label}: Statement is missing`);
  const rawStatements = Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];

  const sids = new Set<string>();
  const statements = rawStatements.map((raw, i) => {
    const st = parseStatement(raw, `${label}: Statement[${i}]`);
    if (st.sid !== undefined && st.sid !== '') {
      // IAM refuses duplicate Sids; catching it here keeps "which statement denied?" answers unambiguous.
      if (sids.has(st.sid)) throw new PolicyError(`${label}: Statement[${i}]: duplicate Sid "${st.sid}"`);
      sids.add(st.sid);
    }
    return st;
  });
  return { version, id: doc.Id as string | undefined, statements };
}

function parseStatement(raw: unknown, where: string): PolicyStatement {
  if (!isPlainObject(raw)) throw new PolicyError(`${where}: must be an object, got ${describe(raw)}`);
  if (typeof raw.Sid === 'string' && raw.Sid !== '') where = `${where} (Sid "${raw.Sid}")`;

  for (const key of Object.keys(raw)) {
    if (key === 'Principal' || key === 'NotPrincipal') {
      throw new PolicyError(`${where}: ${key} is not allowed in a role or session policy`);
    }
    if (!STATEMENT_KEYS.has(key)) throw new PolicyError(`${where}: unknown field "${key}"`);
  }
  if (raw.Sid !== undefined && typeof raw.Sid !== 'string') {
    throw new PolicyError(`${where}: Sid must be a string, got ${describe(raw.Sid)}`);
  }
  if (raw.Effect !== 'Allow' && raw.Effect !== 'Deny') {
    throw new PolicyError(
      `${where}: Effect must be "Allow" or "Deny", got ${raw.Effect === undefined ? 'nothing' : describe(raw.Effect)}`,
    );
  }

  const action = stringList(raw, 'Action', where);
  const notAction = stringList(raw, 'NotAction', where);
  if ((action === undefined) === (notAction === undefined)) {
    throw new PolicyError(`${where}: exactly one of Action or NotAction is required`);
  }
  for (const a of action ?? notAction ?? []) {
    if (a !== '*' && !/^[A-Za-z0-9*?_.-]+:[A-Za-z0-9*?_-]*$/.test(a)) {
      throw new PolicyError(
        `${where}: ${action ? 'Action' : 'NotAction'} "${a}" is not of the form service:Action (or "*")`,
      );
    }
  }
  const resource = stringList(raw, 'Resource', where);
  const notResource = stringList(raw, 'NotResource', where);
  if ((resource === undefined) === (notResource === undefined)) {
    throw new PolicyError(`${where}: exactly one of Resource or NotResource is required`);
  }
  for (const r of resource ?? notResource ?? []) {
    if (r !== '*' && !r.startsWith('arn:')) {
      throw new PolicyError(
        `${where}: ${resource ? 'Resource' : 'NotResource'} "${r}" is not an ARN (or "*")`,
      );
    }
  }

  return {
    sid: raw.Sid as string | undefined,
    effect: raw.Effect,
    action,
    notAction,
    resource,
    notResource,
    condition: raw.Condition === undefined ? undefined : parseCondition(raw.Condition, where),
  };
}

function stringList(raw: Record<string, unknown>, field: string, where: string): string[] | undefined {
  const v = raw[field];
  if (v === undefined) return undefined;
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) throw new PolicyError(`${where}: ${field} must not be empty`);
  list.forEach((item, j) => {
    if (typeof item !== 'string' || item === '') {
      const at = Array.isArray(v) ? `${field}[${j}]` : field;
      throw new PolicyError(`${where}: ${at} must be a non-empty string, got ${describe(item)}`);
    }
  });
  return list as string[];
}

function parseCondition(raw: unknown, where: string): ConditionBlock {
  if (!isPlainObject(raw))
    throw new PolicyError(`${where}: Condition must be an object, got ${describe(raw)}`);
  const out: ConditionBlock = {};
  for (const [operator, keys] of Object.entries(raw)) {
    if (!isPlainObject(keys)) {
      throw new PolicyError(
        `${where}: Condition.${operator} must be an object of key: value(s), got ${describe(keys)}`,
      );
    }
    const byKey: Record<string, string[]> = {};
    for (const [key, values] of Object.entries(keys)) {
      const list = Array.isArray(values) ? values : [values];
      // IAM accepts JSON booleans and numbers as condition values ("aws:SecureTransport": false).
      byKey[key] = list.map((item, j) => {
        if (typeof item === 'string') return item;
        if (typeof item === 'boolean' || (typeof item === 'number' && Number.isFinite(item)))
          return String(item);
        const at = Array.isArray(values) ? `[${j}]` : '';
        throw new PolicyError(
          `${where}: Condition.${operator}.${key}${at} must be a string, number or boolean, got ${describe(item)}`,
        );
      });
    }
    out[operator] = byKey;
  }
  return out;
}
