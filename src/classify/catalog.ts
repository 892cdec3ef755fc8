/**
 * NVIDIA's XID catalog and DCGM's health-incident codes, loaded from data/ (the project's copies of
 * NVIDIA's and DCGM's published tables), validated with zod, cached after the first load. Rules read the data; no XID is hand-coded.
 *
 * The catalog's `reset_gpu` action (NVIDIA's RESET_GPU bucket) becomes the finding action `reboot` (the
 * fallback when a GPU reset cannot run); the remediation policy resets the GPU first for these XIDs
 * (remediate/policy.ts ResetXids). The catalog's own word is kept in `catalogAction`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { Action, Severity } from '../domain/finding.js';
import { parseCsvRecords } from './csv.js';

export const XidCatalogRow = z.object({
  xid: z.string().regex(/^\d+$/, 'xid must be an integer').transform(Number),
  name: z.string().min(1),
  category: z.string(),
  default_severity: z.enum(['critical', 'warning', 'info']),
  recommended_action: z.enum(['none', 'monitor', 'restart_app', 'reset_gpu', 'reboot', 'replace']),
  source_note: z.string(),
});
export type XidCatalogRow = z.infer<typeof XidCatalogRow>;

export interface XidEntry {
  xid: number;
  name: string;
  /** NVIDIA's cause categories, `HW|Driver|…`. */
  category: string;
  severity: Severity;
  action: Action;
  /** The catalog's own action word (`reset_gpu` is kept here). */
  catalogAction: XidCatalogRow['recommended_action'];
  note: string;
}

export interface XidCatalog {
  get(xid: number): XidEntry | undefined;
  all(): readonly XidEntry[];
}

export function catalogActionToAction(a: XidCatalogRow['recommended_action']): Action {
  return a === 'reset_gpu' ? 'reboot' : a;
}

export class CatalogError extends Error {
  readonly code = 'CATALOG';
  constructor(message: string) {
    super(message);
    this.name = 'CatalogError';
  }
}

export function xidCatalogFromCsv(text: string, source = 'xid catalog'): XidCatalog {
  const byXid = new Map<number, XidEntry>();
  parseCsvRecords(text).forEach((rec, i) => {
    const r = XidCatalogRow.safeParse(rec);
    if (!r.success) {
      throw new CatalogError(
        `${source} row ${i + 2}: ${r.error.issues.map((x) => `${x.path.join('.')}: ${x.message}`).join('; ')}`,
      );
    }
    const row = r.data;
    if (byXid.has(row.xid)) throw new CatalogError(`${source} row ${i + 2}: duplicate XID ${row.xid}`);
    byXid.set(row.xid, {
      xid: row.xid,
      name: row.name,
      category: row.category,
      severity: row.default_severity,
      action: catalogActionToAction(row.recommended_action),
      catalogAction: row.recommended_action,
      note: row.source_note,
    });
  });
  const list = [...byXid.values()].sort((a, b) => a.xid - b.xid);
  return { get: (xid) => byXid.get(xid), all: () => list };
}

// ---------------------------------------------------------------- DCGM_FR codes

export const DcgmFrRow = z.object({
  code: z.string().regex(/^\d+$/).transform(Number),
  name: z.string().startsWith('DCGM_FR_'),
  dcgm_severity: z.string(),
  dcgm_category: z.string(),
  comment: z.string(),
  message_format: z.string(),
  next_steps: z.string(),
});

export interface DcgmFrEntry {
  code: number;
  name: string;
  /** DCGM_ERROR_ISOLATE / RESET / TRIAGE / MONITOR / CONFIG / UNKNOWN. */
  dcgmSeverity: string;
  category: string;
  message: string;
  nextSteps: string;
}

export interface DcgmFrCatalog {
  byName(name: string): DcgmFrEntry | undefined;
  byCode(code: number): DcgmFrEntry | undefined;
  /** The code whose message format matches this health-incident text, when one does. */
  match(message: string): DcgmFrEntry | undefined;
}

const PRINTF_RE = /%[-+ #0]*\d*(?:\.\d+)?(?:ll|l|z|h|hh)?[udisfxXcpg]/g;
/** Formats with fewer literal characters than this would match almost anything. */
const MIN_LITERAL = 10;

function formatMatcher(format: string): { re: RegExp; literal: number } | undefined {
  const pieces = format.trim().replace(/\.$/, '').split(PRINTF_RE);
  const literal = pieces.join('').replace(/\s+/g, '').length;
  if (literal < MIN_LITERAL) return undefined;
  const body = pieces
    .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, '\\s+'))
    .join('(.+?)');
  return { re: new RegExp(`^${body}\\.?$`, 'i'), literal };
}

export function dcgmFrCatalogFromCsv(text: string, source = 'DCGM_FR codes'): DcgmFrCatalog {
  const byName = new Map<string, DcgmFrEntry>();
  const byCode = new Map<number, DcgmFrEntry>();
  const matchers: { re: RegExp; literal: number; entry: DcgmFrEntry }[] = [];
  parseCsvRecords(text).forEach((rec, i) => {
    const r = DcgmFrRow.safeParse(rec);
    if (!r.success)
      throw new CatalogError(`${source} row ${i + 2}: ${r.error.issues[0]?.message ?? 'invalid'}`);
    const e: DcgmFrEntry = {
      code: r.data.code,
      name: r.data.name,
      dcgmSeverity: r.data.dcgm_severity,
      category: r.data.dcgm_category,
      message: r.data.message_format,
      nextSteps: r.data.next_steps,
    };
    byName.set(e.name, e);
    byCode.set(e.code, e);
    const m = formatMatcher(e.message);
    if (m) matchers.push({ ...m, entry: e });
  });
  // Most specific format first.
  matchers.sort((a, b) => b.literal - a.literal);
  return {
    byName: (name) => byName.get(name),
    byCode: (code) => byCode.get(code),
    match: (message) => matchers.find((m) => m.re.test(message.trim()))?.entry,
  };
}

// ---------------------------------------------------------------- loading

/** data/ is at the repo root: `../../data` from src/classify, one more level from dist/src/classify. */
export function dataFile(name: string): string {
  for (const rel of ['../../data/', '../../../data/']) {
    const p = fileURLToPath(new URL(rel + name, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new CatalogError(`data file ${name} not found next to ${fileURLToPath(import.meta.url)}`);
}

let xidCache: XidCatalog | undefined;
let frCache: DcgmFrCatalog | undefined;

/** The XID catalog from data/xid-catalog.csv (or `path`), loaded once. */
export function loadXidCatalog(path?: string): XidCatalog {
  if (path !== undefined) return xidCatalogFromCsv(readFileSync(path, 'utf8'), path);
  xidCache ??= xidCatalogFromCsv(readFileSync(dataFile('xid-catalog.csv'), 'utf8'), 'data/xid-catalog.csv');
  return xidCache;
}

/** DCGM health-incident codes from data/dcgm-fr-codes.csv (or `path`), loaded once. */
export function loadDcgmFrCatalog(path?: string): DcgmFrCatalog {
  if (path !== undefined) return dcgmFrCatalogFromCsv(readFileSync(path, 'utf8'), path);
  frCache ??= dcgmFrCatalogFromCsv(
    readFileSync(dataFile('dcgm-fr-codes.csv'), 'utf8'),
    'data/dcgm-fr-codes.csv',
  );
  return frCache;
}
