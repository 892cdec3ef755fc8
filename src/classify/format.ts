/** Human and JSON output of verdicts, for `gpu-medic classify` and `gpu-medic scan`. Pure string building. */
import type { Finding, Verdict } from '../domain/finding.js';

/** One object per input for `--json`. `xid`/`gpu` are null (not absent) when unknown, so the shape is fixed. */
export interface ClassifyJson {
  input: string;
  node: string;
  category: string;
  severity: Verdict['severity'];
  action: Verdict['action'];
  xid: number | null;
  gpu: number | null;
  explanation: string;
  source: Verdict['source'];
  findings: Finding[];
}

export function verdictToJson(input: string, v: Verdict): ClassifyJson {
  return {
    input,
    node: v.node,
    category: v.category,
    severity: v.severity,
    action: v.action,
    xid: v.xid ?? null,
    gpu: v.gpu ?? null,
    explanation: v.explanation,
    source: v.source,
    findings: v.findings,
  };
}

function where(f: { gpu?: number; xid?: number }): string {
  const parts: string[] = [];
  if (f.gpu !== undefined) parts.push(`gpu ${f.gpu}`);
  if (f.xid !== undefined) parts.push(`xid ${f.xid}`);
  return parts.join(', ');
}

/** `node-a: XID_CRITICAL_79 critical → reboot (gpu 3, xid 79) — GPU 3 reported XID 79 …` */
export function formatVerdictLine(v: Verdict): string {
  const at = where(v);
  return `${v.node}: ${v.category} ${v.severity} → ${v.action}${at ? ` (${at})` : ''} — ${v.explanation}`;
}

/** The verdict line, then one indented line per finding with its first evidence line. */
export function formatVerdictDetail(v: Verdict): string {
  const lines = [formatVerdictLine(v)];
  for (const f of v.findings) {
    const at = where(f);
    const amb = f.ambiguous ? ' [ambiguous]' : '';
    lines.push(
      `  - ${f.category} ${f.severity} → ${f.action}${at ? ` (${at})` : ''}${amb}: ${f.explanation}`,
    );
    for (const e of f.evidence.slice(0, 3)) lines.push(`      ${e}`);
    if (f.evidence.length > 3) lines.push(`      … ${f.evidence.length - 3} more`);
  }
  return lines.join('\n');
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** A fixed-width table, one row per verdict (scan output). */
export function formatVerdictTable(rows: { input?: string; verdict: Verdict }[]): string {
  const header = ['NODE', 'CATEGORY', 'SEVERITY', 'ACTION', 'GPU', 'XID', 'FINDINGS', 'EXPLANATION'];
  const body = rows.map(({ verdict: v }) => [
    v.node,
    v.category,
    v.severity,
    v.action,
    v.gpu === undefined ? '-' : String(v.gpu),
    v.xid === undefined ? '-' : String(v.xid),
    String(v.findings.length),
    v.explanation,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : pad(c, widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...body.map(line)].join('\n');
}
