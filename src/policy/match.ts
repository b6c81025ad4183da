/**
 * IAM wildcard matching. `*` matches any run of characters (including `/` and `:`, so
 * `arn:aws:s3:::bucket/*` covers every key at any depth) and `?` exactly one. Wildcards may sit
 * anywhere, including the middle of an ARN. Only `text` parts carry wildcards: substituted values and
 * `${*}`-style escapes always match themselves.
 */
import type { ResolvedParts } from './variables.js';

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function globToRegexSource(s: string): string {
  let out = '';
  for (const ch of s) {
    if (ch === '*') out += '[\\s\\S]*';
    else if (ch === '?') out += '[\\s\\S]';
    else out += escapeRegex(ch);
  }
  return out;
}

export function partsToRegex(parts: ResolvedParts, ignoreCase: boolean): RegExp {
  const src = parts.map((p) => (p.wild ? globToRegexSource(p.value) : escapeRegex(p.value))).join('');
  return new RegExp(`^${src}$`, ignoreCase ? 'iu' : 'u');
}

/** The parts as one plain string, wildcards taken literally: what the `...Equals` operators compare. */
export function partsToString(parts: ResolvedParts): string {
  return parts.map((p) => p.value).join('');
}

/** Whole-string glob match of a plain pattern (no variables), e.g. an action name. */
export function globMatch(pattern: string, value: string, ignoreCase: boolean): boolean {
  return partsToRegex([{ wild: true, value: pattern }], ignoreCase).test(value);
}
