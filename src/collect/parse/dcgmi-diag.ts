/**
 * `dcgmi diag -r <level> -j`, as DCGM 4.x prints it (dcgmi/Diag.cpp HelperJsonBuildOutput; keys in
 * nvvs/include/NvvsJsonStrings.h; test/fixtures/dcgmi-diag-r2-fail.source.md has the details):
 *
 *   {"DCGM Diagnostic": {"test_categories": [{"category", "tests": [{"name", "results": [{"entity_group": "GPU",
 *     "entity_id", "status", "warnings": [{"warning", "error_id", "error_category", "error_severity"}],
 *     "info": ["…"]}], "test_summary": {"status", "warnings"}}]}]}, "entity_groups": […], "metadata": {…}}
 *
 * A run that failed before any test prints `{"DCGM Diagnostic": {"runtime_error": "…"}}`. DCGM 3.x named the
 * root "DCGM GPU Diagnostic" and a result's GPU `gpu_id`; both are read.
 *
 * Statuses: JSON never says "Warn" in DCGM 4 (a warning result prints as "Fail"), so a "Fail" whose every
 * warning is of severity MONITOR (1: "can perform workload, but needs to be monitored", dcgm_errors.h) reads as
 * a warning; any other failure is a failure. A status this parser does not know reads as a failure: an unknown
 * answer never lets a node back into service.
 * Pure: text in, report (or the reason there is none) out.
 */
import { z } from 'zod';
import type { DiagLevel, DiagNodeResult, DiagReport, DiagResult, DiagStatus } from '../../domain/diag.js';

/** dcgmErrorSeverity_t DCGM_ERROR_MONITOR. */
const SEVERITY_MONITOR = 1;
const MAX_INFO = 300;

const Warning = z.object({
  warning: z.string().optional(),
  error_id: z.number().optional(),
  error_category: z.number().optional(),
  error_severity: z.number().optional(),
});
type Warning = z.infer<typeof Warning>;

const Result = z.object({
  entity_group: z.string().optional(),
  entity_id: z.number().int().min(0).optional(),
  gpu_id: z.union([z.number().int().min(0), z.string().regex(/^\d+$/)]).optional(),
  status: z.string(),
  warnings: z.array(Warning).optional(),
  info: z.union([z.array(z.string()), z.string()]).optional(),
});
type Result = z.infer<typeof Result>;

const Test = z.object({
  name: z.string(),
  results: z.array(Result).optional(),
  test_summary: Result.partial({ status: true }).optional(),
});

const Body = z.object({
  test_categories: z.array(z.object({ category: z.string().optional(), tests: z.array(Test) })).optional(),
  runtime_error: z.string().optional(),
});

const Document = z.object({
  'DCGM Diagnostic': Body.optional(),
  'DCGM GPU Diagnostic': Body.optional(),
  metadata: z
    .object({ version: z.string().optional(), 'Driver Version Detected': z.string().optional() })
    .optional(),
});

export type DiagParse =
  | { kind: 'report'; report: DiagReport }
  /** DCGM answered but ran nothing (host engine unreachable, GPUs busy, bad arguments): its words. */
  | { kind: 'runtime_error'; message: string }
  /** Not DCGM's JSON at all (empty, truncated, another program's text): why. */
  | { kind: 'unreadable'; message: string };

const clip = (s: string, n = MAX_INFO) => {
  const t = s.trim().replace(/\s+/g, ' ');
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
};

function preview(text: string): string {
  const t = clip(text, 120);
  return t === '' ? '(empty output)' : JSON.stringify(t);
}

/** The JSON value in the text: all of it, or from the first `{` to the last `}` (a log line printed before it). */
function jsonOf(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    const start = text.indexOf('{');
    const end = text.lastIndexOf('}');
    if (start < 0 || end <= start) throw new Error('no JSON object in the output');
    return JSON.parse(text.slice(start, end + 1));
  }
}

function statusOf(raw: string, warnings: readonly Warning[]): { status: DiagStatus; unknown?: string } {
  switch (raw.trim().toLowerCase()) {
    case 'pass':
      return { status: 'pass' };
    case 'skip':
    case 'not run':
      return { status: 'skip' };
    case 'warn':
    case 'warning':
      return { status: 'warn' };
    case 'fail': {
      const monitorOnly = warnings.length > 0 && warnings.every((w) => w.error_severity === SEVERITY_MONITOR);
      return { status: monitorOnly ? 'warn' : 'fail' };
    }
    default:
      return { status: 'fail', unknown: raw };
  }
}

function infoOf(r: Result, status: DiagStatus, unknown: string | undefined): string | undefined {
  const warned = (r.warnings ?? []).map((w) => w.warning ?? '').filter((w) => w.trim() !== '');
  const infos = (typeof r.info === 'string' ? [r.info] : (r.info ?? [])).filter((i) => i.trim() !== '');
  const parts =
    status === 'pass' ? [] : warned.length > 0 ? warned : status === 'skip' || status === 'fail' ? infos : [];
  if (unknown !== undefined) parts.unshift(`DCGM status "${clip(unknown, 40)}"`);
  return parts.length > 0 ? clip(parts.join('; ')) : undefined;
}

function gpuOf(r: Result): number | undefined {
  if (r.entity_group !== undefined && r.entity_group !== 'GPU') return undefined;
  if (r.entity_id !== undefined) return r.entity_id;
  if (r.gpu_id !== undefined) return Number(r.gpu_id);
  return undefined;
}

/** Parses `dcgmi diag -r <level> -j` stdout into per-test, per-GPU results. */
export function parseDcgmiDiag(text: string, level: DiagLevel): DiagParse {
  let value: unknown;
  try {
    value = jsonOf(text);
  } catch (e) {
    return {
      kind: 'unreadable',
      message: `\`dcgmi diag -j\` output is not JSON (${(e as Error).message}): ${preview(text)}`,
    };
  }
  const doc = Document.safeParse(value);
  if (!doc.success) {
    const issue = doc.error.issues[0];
    const where = issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'unexpected shape';
    return {
      kind: 'unreadable',
      message: `\`dcgmi diag -j\` output is not DCGM's diagnostic JSON (${where})`,
    };
  }
  const body = doc.data['DCGM Diagnostic'] ?? doc.data['DCGM GPU Diagnostic'];
  if (!body) {
    return {
      kind: 'unreadable',
      message: `\`dcgmi diag -j\` output has no "DCGM Diagnostic" object: ${preview(text)}`,
    };
  }
  if (body.runtime_error !== undefined && body.runtime_error.trim() !== '') {
    return { kind: 'runtime_error', message: clip(body.runtime_error) };
  }
  const results: DiagResult[] = [];
  const nodeWide: DiagNodeResult[] = [];
  let tests = 0;
  for (const category of body.test_categories ?? []) {
    for (const test of category.tests) {
      tests++;
      const bad = new Set<DiagStatus>();
      for (const r of test.results ?? []) {
        const { status, unknown } = statusOf(r.status, r.warnings ?? []);
        const info = infoOf(r, status, unknown);
        const gpu = gpuOf(r);
        if (status === 'fail' || status === 'warn') bad.add(status);
        if (gpu !== undefined) {
          results.push({ test: test.name, gpu, status, ...(info ? { info } : {}) });
        } else if (status === 'fail' || status === 'warn') {
          // Another kind of entity (a CPU, an NVSwitch): not a GPU's row, but not to be lost either.
          const who = r.entity_group ? `${r.entity_group} ${r.entity_id ?? ''}`.trim() : 'node';
          nodeWide.push({ test: test.name, status, info: clip(`${who}: ${info ?? 'no detail'}`) });
        }
      }
      const summary = test.test_summary;
      if (summary?.status !== undefined) {
        const { status, unknown } = statusOf(summary.status, summary.warnings ?? []);
        // The summary repeats what the GPUs said; only a verdict no entity carried is news.
        if (
          (status === 'fail' || status === 'warn') &&
          !bad.has(status) &&
          !(status === 'warn' && bad.has('fail'))
        ) {
          const info = infoOf(summary as Result, status, unknown);
          nodeWide.push({ test: test.name, status, ...(info ? { info } : {}) });
        }
      }
    }
  }
  if (tests === 0) {
    return { kind: 'unreadable', message: '`dcgmi diag -j` reported no tests (nothing was diagnosed)' };
  }
  const report: DiagReport = { level, results };
  if (nodeWide.length > 0) report.nodeWide = nodeWide;
  const meta = doc.data.metadata;
  if (meta?.version) report.dcgmVersion = meta.version;
  if (meta?.['Driver Version Detected']) report.driverVersion = meta['Driver Version Detected'];
  return { kind: 'report', report };
}
