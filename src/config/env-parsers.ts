/**
 * Zod schemas for single environment variables. Each one turns the raw string (or undefined) into a typed
 * value and, when it cannot, adds ONE issue whose message reads well after the variable's name:
 * "expected a positive number, got 'abc'". An empty string counts as unset: Kubernetes renders an empty
 * Secret key or ConfigMap value as "", and that means "not configured", not "configured to nothing".
 */
import { z } from 'zod';

type Raw = string | undefined;

const raw = z.string().optional();

function present(v: Raw): v is string {
  return v !== undefined && v.trim() !== '';
}

/** Echo a bad value back, shortened; secrets pass `secret` so their value is never echoed. */
function shown(v: string, secret = false): string {
  if (secret) return `a value of ${v.length} characters`;
  const t = v.length > 80 ? `${v.slice(0, 77)}...` : v;
  return `'${t}'`;
}

function fail(ctx: z.RefinementCtx, message: string): typeof z.NEVER {
  ctx.addIssue({ code: 'custom', message });
  return z.NEVER;
}

export function optionalString() {
  return raw.transform((v) => (present(v) ? v.trim() : undefined));
}

export function stringWithDefault(def: string) {
  return raw.transform((v) => (present(v) ? v.trim() : def));
}

/** A string that must match `pattern` when given. */
export function patterned(pattern: RegExp, what: string, opts: { secret?: boolean } = {}) {
  return raw.transform((v, ctx) => {
    if (!present(v)) return undefined;
    const t = v.trim();
    if (!pattern.test(t)) return fail(ctx, `expected ${what}, got ${shown(t, opts.secret)}`);
    return t;
  });
}

export function patternedWithDefault(pattern: RegExp, what: string, def: string) {
  return patterned(pattern, what).transform((v) => v ?? def);
}

/**
 * A PostgreSQL connection URL (`postgres://` or `postgresql://`), when given. It carries the password, so
 * a bad value is described by its scheme only, never echoed.
 */
export function postgresUrl() {
  return raw.transform((v, ctx) => {
    if (!present(v)) return undefined;
    const t = v.trim();
    let u: URL;
    try {
      u = new URL(t);
    } catch {
      return fail(
        ctx,
        `expected a postgres://user:password@host:5432/database URL, got ${shown(t, true)} that is not a URL`,
      );
    }
    if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
      return fail(
        ctx,
        `expected a postgres:// or postgresql:// URL (PostgreSQL is the only server database; leave it unset for SQLite at DB_PATH), got a ${u.protocol}// URL`,
      );
    }
    if (!u.hostname) return fail(ctx, 'expected a postgres:// URL with a host name');
    return t;
  });
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T, def: T[number]) {
  return raw.transform((v, ctx): T[number] => {
    if (!present(v)) return def;
    const t = v.trim().toLowerCase();
    const hit = values.find((x) => x === t);
    if (hit === undefined) return fail(ctx, `expected one of ${values.join(', ')}, got ${shown(v.trim())}`);
    return hit;
  });
}

interface NumberRule {
  integer?: boolean;
  min?: number;
  /** min is exclusive (strictly greater). */
  exclusiveMin?: boolean;
  max?: number;
}

function describe(rule: NumberRule): string {
  const kind = rule.integer ? 'integer' : 'number';
  if (rule.min === 0 && rule.exclusiveMin) return `a positive ${kind}`;
  if (rule.min === 0 && rule.max === undefined) return `a non-negative ${kind}`;
  if (rule.min !== undefined && rule.max !== undefined) return `${a(kind)} from ${rule.min} to ${rule.max}`;
  if (rule.min !== undefined) return `${a(kind)} ≥ ${rule.min}`;
  return a(kind);
}

function a(kind: string): string {
  return kind === 'integer' ? 'an integer' : 'a number';
}

function parseNumber(v: string, rule: NumberRule): number | undefined {
  const t = v.trim();
  // Number('') is 0 and Number('0x10') is 16: accept plain decimal notation only.
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return undefined;
  const n = Number(t);
  if (!Number.isFinite(n)) return undefined;
  if (rule.integer && !Number.isInteger(n)) return undefined;
  if (rule.min !== undefined && (rule.exclusiveMin ? n <= rule.min : n < rule.min)) return undefined;
  if (rule.max !== undefined && n > rule.max) return undefined;
  return n;
}

export function optionalNumber(rule: NumberRule) {
  return raw.transform((v, ctx) => {
    if (!present(v)) return undefined;
    const n = parseNumber(v, rule);
    if (n === undefined) return fail(ctx, `expected ${describe(rule)}, got ${shown(v.trim())}`);
    return n;
  });
}

export function numberWithDefault(rule: NumberRule, def: number) {
  return optionalNumber(rule).transform((v) => v ?? def);
}

export const positiveSeconds = (def: number) => numberWithDefault({ min: 0, exclusiveMin: true }, def);
export const positiveInt = (def: number) => numberWithDefault({ integer: true, min: 1 }, def);
export const nonNegativeInt = (def: number) => numberWithDefault({ integer: true, min: 0 }, def);

const truthy = new Set(['true', '1', 'yes']);
const falsy = new Set(['false', '0', 'no']);

export function boolean(def: boolean) {
  return raw.transform((v, ctx) => {
    if (!present(v)) return def;
    const t = v.trim().toLowerCase();
    if (truthy.has(t)) return true;
    if (falsy.has(t)) return false;
    return fail(ctx, `expected true/false/1/0/yes/no, got ${shown(v.trim())}`);
  });
}

export function url(opts: { protocols?: string[]; trailingSlash?: boolean } = {}) {
  const protocols = opts.protocols ?? ['http:', 'https:'];
  return raw.transform((v, ctx) => {
    if (!present(v)) return undefined;
    const t = v.trim();
    let u: URL;
    try {
      u = new URL(t);
    } catch {
      return fail(ctx, `expected a URL, got ${shown(t)}`);
    }
    if (!protocols.includes(u.protocol)) {
      return fail(
        ctx,
        `expected a ${protocols.map((p) => p.replace(':', '')).join(' or ')} URL, got ${shown(t)}`,
      );
    }
    if (opts.trailingSlash && !t.endsWith('/')) return `${t}/`;
    return t;
  });
}

/** A comma-separated list whose every item must match `pattern`. */
export function list(pattern: RegExp, what: string) {
  return raw.transform((v, ctx): string[] => {
    if (!present(v)) return [];
    const items = v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const bad = items.filter((s) => !pattern.test(s));
    if (bad.length > 0) {
      return fail(
        ctx,
        `expected a comma-separated list of ${what}, got ${bad.map((b) => shown(b)).join(', ')}`,
      );
    }
    return [...new Set(items)];
  });
}
