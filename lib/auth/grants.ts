// Grants: what a principal may do, as `<scope>:<model-pattern>` or `<scope>` (every model). One
// parser and one matcher, used by the router and the registry alike. A pattern's `*` stands for
// any run of characters (none included); nothing else is special. `admin` implies every scope.
import { errors } from '../errors';

/** The scopes, each naming what it allows. */
export const SCOPES = ['infer', 'read', 'push', 'rollout', 'delete', 'admin'] as const;
/** infer: ModelInfer; read: metadata, readiness, statistics, listing; push, rollout, delete: the registry's model calls; admin: keys, and every other scope. */
export type Scope = (typeof SCOPES)[number];

/** A parsed grant; `pattern` is `*` for a grant written without one. */
export interface Grant {
  readonly scope: Scope;
  readonly pattern: string;
}

/** Longest grant accepted (a model name is at most 128 characters; a pattern may add wildcards). */
export const MAX_GRANT_LENGTH = 256;
/** Most grants one key or token may carry. */
export const MAX_GRANTS = 64;
/** Model-name characters (registry records.ts MODEL_NAME), '/' for team prefixes, and '*'. */
const PATTERN = /^[A-Za-z0-9_.\-/*]+$/;

function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

/** A hostile grant shown in an error: quoted, cut short, control characters escaped. */
function shown(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

/** Parses one grant; throws INVALID_ARGUMENT naming it when it is not a valid grant. */
export function parseGrant(text: string): Grant {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_GRANT_LENGTH) {
    throw errors.invalidArgument(`grant ${shown(String(text))} is invalid: expected <scope> or <scope>:<model-pattern>, at most ${MAX_GRANT_LENGTH} characters`);
  }
  const colon = text.indexOf(':');
  const scope = colon < 0 ? text : text.slice(0, colon);
  const pattern = colon < 0 ? '*' : text.slice(colon + 1);
  if (!isScope(scope)) throw errors.invalidArgument(`grant ${shown(text)} is invalid: unknown scope (one of ${SCOPES.join(', ')})`);
  if (!PATTERN.test(pattern)) {
    throw errors.invalidArgument(`grant ${shown(text)} is invalid: a model pattern is letters, digits, '_', '-', '.', '/' and '*' (any run of characters)`);
  }
  return { scope, pattern };
}

/** Parses a list of grants (at most MAX_GRANTS); throws INVALID_ARGUMENT naming the first bad one. */
export function parseGrants(texts: readonly string[]): Grant[] {
  if (!Array.isArray(texts)) throw errors.invalidArgument('grants must be a list of strings');
  if (texts.length > MAX_GRANTS) throw errors.invalidArgument(`at most ${MAX_GRANTS} grants, not ${texts.length}`);
  return texts.map(parseGrant);
}

/** A grant as written: `infer:mnist*`, or `admin` for one on every model. */
export function grantText(grant: Grant): string {
  return grant.pattern === '*' ? grant.scope : `${grant.scope}:${grant.pattern}`;
}

/**
 * Whether `grants` allow `scope` on `model`. A call that is about no model (the registry's key
 * calls) passes model '' , which only grants on every model (`admin`, `admin:*`) match.
 */
export function allows(grants: readonly Grant[], scope: Scope, model: string): boolean {
  for (const g of grants) {
    if ((g.scope === scope || g.scope === 'admin') && matchesPattern(g.pattern, model)) return true;
  }
  return false;
}

/**
 * Glob match with `*` alone special: the linear two-pointer walk (backtracking only to the last
 * star), so a hostile pattern such as `*a*a*a*a*b` costs O(pattern × name), never exponential.
 */
export function matchesPattern(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  let p = 0;
  let n = 0;
  let star = -1;
  let mark = 0;
  while (n < name.length) {
    if (p < pattern.length && pattern.charCodeAt(p) !== 42 && pattern.charCodeAt(p) === name.charCodeAt(n)) {
      p++;
      n++;
    } else if (p < pattern.length && pattern.charCodeAt(p) === 42) {
      star = p++;
      mark = n;
    } else if (star >= 0) {
      p = star + 1;
      n = ++mark;
    } else return false;
  }
  while (p < pattern.length && pattern.charCodeAt(p) === 42) p++;
  return p === pattern.length;
}
