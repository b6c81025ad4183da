import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { isMap, LineCounter, type Node, parseDocument } from 'yaml';
import type { z } from 'zod';
import { compilePolicy } from '../policy/index.js';
import { configSchema, type RawConfig, type RoleConfig } from './schema.js';
import { checkUser, type User } from './users.js';

export type { User } from './users.js';

/** One line per problem, `FILE:LINE:COL: field: what is wrong`, so an operator can jump to it. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

export interface GatewayConfig extends Omit<RawConfig, 'users' | 'stateDir' | 'roles' | 'server'> {
  /** `workers: auto` resolved to a count. */
  server: Omit<RawConfig['server'], 'workers'> & { workers: number };
  /** Absolute; always set (defaults to the first host key's folder). */
  stateDir: string;
  /** Absolute path of the file this came from. */
  file: string;
  users: Map<string, User>;
  /** Locally defined roles by ARN. */
  roles: Map<string, RoleConfig>;
}

type Path = (string | number)[];

/** Loads and validates a config file; throws ConfigError listing every problem found. */
export function loadConfig(file: string): GatewayConfig {
  const absolute = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (e) {
    throw new ConfigError([`${file}: cannot read config file: ${(e as NodeJS.ErrnoException).code ?? e}`]);
  }
  return parseConfig(text, absolute);
}

/** Validates config text; `file` names it in messages and anchors relative paths. */
export function parseConfig(text: string, file: string): GatewayConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => {
    if (offset === undefined) return `${file}:1:1`;
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `${at(e.pos[0])}: ${e.message.split('\n')[0]}`));
  }
  /** The position of the deepest node that exists along `p` (a missing field points at its parent). */
  const positionOf = (p: Path): string => {
    for (let n = p.length; n >= 0; n--) {
      const node = doc.getIn(p.slice(0, n), true) as Node | undefined;
      if (node && typeof node === 'object' && 'range' in node && node.range) return at(node.range[0]);
    }
    return at(undefined);
  };
  const keyPositionOf = (parent: Path, key: string): string => {
    const map = doc.getIn(parent, true);
    const pair = isMap(map)
      ? map.items.find((it) => (it.key as { value?: unknown })?.value === key)
      : undefined;
    const range = (pair?.key as Node | undefined)?.range;
    return range ? at(range[0]) : positionOf(parent);
  };
  const problem = (p: Path, message: string) =>
    `${positionOf(p)}: ${formatPath(p) || '(top level)'}: ${message}`;

  const data = doc.toJS() ?? {};
  if (doc.contents && !isMap(doc.contents))
    throw new ConfigError([problem([], 'expected a mapping of settings')]);
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.flatMap((i) =>
        // An unknown key is reported at the key itself, one line each, not at its parent mapping.
        i.code === 'unrecognized_keys'
          ? i.keys.map(
              (k) =>
                `${keyPositionOf(i.path as Path, k)}: ${formatPath([...(i.path as Path), k])}: unknown field`,
            )
          : [problem(i.path as Path, describeIssue(i, valueAt(data, i.path as Path)))],
      ),
    );
  }
  const raw = parsed.data;
  const problems: string[] = [];
  const users = new Map<string, User>();
  raw.users.forEach((u, index) => {
    if (users.has(u.UserName))
      problems.push(problem(['users', index, 'UserName'], `duplicate user "${u.UserName}"`));
    const user = checkUser(u, (p, message) => problems.push(problem(['users', index, ...p], message)));
    users.set(u.UserName, user);
  });
  const roles = new Map<string, RoleConfig>();
  raw.roles.forEach((r, index) => {
    if (roles.has(r.Arn)) problems.push(problem(['roles', index, 'Arn'], `duplicate role "${r.Arn}"`));
    roles.set(r.Arn, r);
    r.Policies.forEach((doc, i) => {
      try {
        // Variables are per user; compiling with a placeholder user checks the document's shape.
        compilePolicy(doc, { label: `role policy`, variables: { userName: 'user' } });
      } catch (e) {
        problems.push(problem(['roles', index, 'Policies', i], (e as Error).message));
      }
    });
  });
  // `auto` is resolved here so that the primary and its workers share one count (same machine, same CPUs).
  // A part larger than a budget is still granted, alone; a share of workers that small is a config mistake
  // (uploads one part at a time), while one process keeps the behaviour it always had.
  const workers = raw.server.workers === 'auto' ? availableParallelism() : raw.server.workers;
  if (workers > 1 && raw.storage.type === 's3' && raw.uploadMemoryMiB / workers < raw.storage.partSizeMiB)
    problems.push(
      problem(
        ['server', 'workers'],
        `${workers} workers share uploadMemoryMiB (${raw.uploadMemoryMiB}) to less than one ` +
          `${raw.storage.partSizeMiB} MiB part each; raise uploadMemoryMiB to at least ${workers * raw.storage.partSizeMiB}`,
      ),
    );
  if (problems.length > 0) throw new ConfigError(problems);

  const dir = path.dirname(file);
  const resolve = (p: string) => path.resolve(dir, p);
  const storage =
    raw.storage.type === 'local'
      ? {
          ...raw.storage,
          root: resolve(raw.storage.root),
          tempDir: raw.storage.tempDir && resolve(raw.storage.tempDir),
        }
      : raw.storage;
  return {
    ...raw,
    file,
    server: { ...raw.server, workers, hostKeys: raw.server.hostKeys.map(resolve) },
    stateDir: resolve(raw.stateDir ?? path.dirname(raw.server.hostKeys[0]!)),
    storage,
    users,
    roles,
  };
}

function formatPath(p: Path): string {
  return p.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

function valueAt(data: unknown, p: Path): unknown {
  let v = data;
  for (const k of p) v = v && typeof v === 'object' ? (v as Record<string | number, unknown>)[k] : undefined;
  return v;
}

function describeIssue(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      return value === undefined ? 'required' : `expected ${issue.expected}`;
    default:
      return issue.message;
  }
}

/** Which file to load: --config, then SFTP_GATEWAY_CONFIG, then config/gateway.yaml. */
export function configPathFrom(argv: { config?: string }, env: NodeJS.ProcessEnv): string {
  return argv.config ?? env['SFTP_GATEWAY_CONFIG'] ?? 'config/gateway.yaml';
}
