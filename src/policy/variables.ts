/**
 * Policy variables. AWS Transfer substitutes its `${transfer:*}` variables when the session starts; IAM
 * resolves every other `${key}` from the request context when the request is evaluated. Both are kept
 * apart here: Transfer values are fixed when a policy is compiled, anything else stays a hole to fill
 * per request.
 */

export interface TransferVariables {
  userName: string;
  /** The user's HomeDirectory as configured (`/bucket/home/alice`); absent for LOGICAL users without one. */
  homeDirectory?: string;
}

/**
 * The four values AWS Transfer substitutes, keyed by lower-cased variable name because IAM matches
 * variable names case-insensitively (the AWS docs write `${transfer:HomeFolder}`, the API reference
 * `${Transfer:HomeFolder}`).
 *
 * For HomeDirectory `/bucket/home/alice/`:
 *   transfer:HomeDirectory = `bucket/home/alice/`  (leading `/` removed, the rest verbatim, so
 *                                                   `arn:aws:s3:::${transfer:HomeDirectory}*` is an ARN)
 *   transfer:HomeBucket    = `bucket`
 *   transfer:HomeFolder    = `home/alice`           (no leading or trailing `/`)
 *
 * The user guide's worked example says HomeBucket is `/home` and HomeFolder `/bob/amazon/stuff/`, but
 * with those values its own example policy (`arn:aws:s3:::${transfer:HomeBucket}`, s3:prefix
 * `${transfer:HomeFolder}/*`) could never match an S3 ARN or a ListObjects prefix. The values above are
 * the only reading under which the documented policy does what the page says it does (list and use
 * everything under the home, with or without a trailing slash on HomeDirectory), so that is the one
 * implemented. A HomeDirectory that is empty or just `/` yields no bucket: the three home variables
 * then have no value (see `Template`).
 */
export function transferVariableValues(vars: TransferVariables): Map<string, string> {
  const values = new Map<string, string>([['transfer:username', vars.userName]]);
  const home = vars.homeDirectory;
  if (home === undefined || home === '') return values;
  const withoutLeading = home.replace(/^\/+/, '');
  if (withoutLeading === '') return values;
  const slash = withoutLeading.indexOf('/');
  const bucket = slash < 0 ? withoutLeading : withoutLeading.slice(0, slash);
  const folder = slash < 0 ? '' : withoutLeading.slice(slash + 1).replace(/^\/+|\/+$/g, '');
  values.set('transfer:homedirectory', withoutLeading);
  values.set('transfer:homebucket', bucket);
  values.set('transfer:homefolder', folder);
  return values;
}

/**
 * A policy string after variable parsing. `text` keeps its wildcards (`*`, `?`) where the context
 * gives them meaning; `literal` never has wildcards (substituted values and the `${*}` `${?}` `${$}`
 * escapes); `var` is resolved from the request context at evaluation time.
 */
export type TemplatePart =
  | { readonly kind: 'text'; readonly value: string }
  | { readonly kind: 'literal'; readonly value: string }
  | { readonly kind: 'var'; readonly name: string; readonly fallback?: string };

export interface Template {
  readonly raw: string;
  readonly parts: readonly TemplatePart[];
  /** True when no part depends on the request. */
  readonly isStatic: boolean;
}

const ESCAPES: Record<string, string> = { '*': '*', '?': '?', $: '$' };

export interface TemplateOptions {
  /** Lower-cased name -> value, fixed at compile time (the Transfer variables). */
  readonly fixed: ReadonlyMap<string, string>;
  /**
   * IAM only interprets `${...}` in documents with Version 2012-10-17; in older or version-less
   * documents they are literal text. The Transfer variables are still substituted, since AWS Transfer
   * (not IAM) replaces them.
   */
  readonly iamVariables: boolean;
}

export function parseTemplate(raw: string, opts: TemplateOptions): Template {
  const parts: TemplatePart[] = [];
  let text = '';
  const flush = () => {
    if (text !== '') parts.push({ kind: 'text', value: text });
    text = '';
  };
  let i = 0;
  while (i < raw.length) {
    const start = raw.indexOf('${', i);
    if (start < 0) {
      text += raw.slice(i);
      break;
    }
    text += raw.slice(i, start);
    const ref = readReference(raw, start);
    if (ref === undefined) {
      // An unterminated `${` cannot be a variable; IAM leaves such text alone.
      text += '${';
      i = start + 2;
      continue;
    }
    const lower = ref.name.toLowerCase();
    const fixed = opts.fixed.get(lower);
    if (fixed !== undefined) {
      flush();
      parts.push({ kind: 'literal', value: fixed });
    } else if (!opts.iamVariables && !lower.startsWith('transfer:')) {
      text += raw.slice(start, ref.end);
    } else if (ref.fallback === undefined && ESCAPES[ref.name] !== undefined) {
      flush();
      parts.push({ kind: 'literal', value: ESCAPES[ref.name]! });
    } else {
      flush();
      parts.push({ kind: 'var', name: lower, fallback: ref.fallback });
    }
    i = ref.end;
  }
  flush();
  return { raw, parts, isStatic: parts.every((p) => p.kind !== 'var') };
}

/** Reads `${name}` or `${name, 'default'}` (with `''` for a quote inside the default) at `start`. */
function readReference(
  s: string,
  start: number,
): { name: string; fallback?: string; end: number } | undefined {
  let i = start + 2;
  let name = '';
  while (i < s.length && s[i] !== '}' && s[i] !== ',') name += s[i++];
  name = name.trim();
  if (i >= s.length || name === '') return undefined;
  if (s[i] === '}') return { name, end: i + 1 };
  i++;
  while (s[i] === ' ') i++;
  if (s[i] !== '\'') return undefined;
  i++;
  let fallback = '';
  for (;;) {
    if (i >= s.length) return undefined;
    if (s[i] === '\'') {
      if (s[i + 1] === '\'') {
        fallback += '\'';
        i += 2;
        continue;
      }
      i++;
      break;
    }
    fallback += s[i++];
  }
  while (s[i] === ' ') i++;
  if (s[i] !== '}') return undefined;
  return { name, fallback, end: i + 1 };
}

/** A template with every variable filled in, or undefined when a variable has no value and no default. */
export type ResolvedParts = readonly { readonly wild: boolean; readonly value: string }[];

export function resolveTemplate(t: Template, context: ContextLookup): ResolvedParts | undefined {
  const out: { wild: boolean; value: string }[] = [];
  for (const p of t.parts) {
    if (p.kind === 'text') out.push({ wild: true, value: p.value });
    else if (p.kind === 'literal') out.push({ wild: false, value: p.value });
    else {
      const v = context.single(p.name) ?? p.fallback;
      if (v === undefined) return undefined;
      out.push({ wild: false, value: v });
    }
  }
  return out;
}

/** Case-insensitive access to the request context (IAM condition keys ignore case). */
export class ContextLookup {
  private readonly map = new Map<string, readonly string[]>();
  constructor(context: Readonly<Record<string, string | readonly string[] | undefined>> = {}) {
    for (const [k, v] of Object.entries(context)) {
      if (v === undefined) continue;
      this.map.set(k.toLowerCase(), typeof v === 'string' ? [v] : v);
    }
  }
  values(key: string): readonly string[] | undefined {
    return this.map.get(key.toLowerCase());
  }
  /** IAM refuses to substitute a multivalued key into a variable: it then has no value. */
  single(key: string): string | undefined {
    const v = this.map.get(key.toLowerCase());
    return v !== undefined && v.length === 1 ? v[0] : undefined;
  }
}
