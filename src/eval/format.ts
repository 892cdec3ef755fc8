/** The evaluation report as a terminal table. Pure: report in, text out. */
import type { LlmOutcome } from '../classify/llm/hybrid.js';
import { CorpusSources } from './corpus.js';
import type { EvalItemResult, EvalReport, Tally } from './run.js';

const pct = (t: Tally) => (t.total === 0 ? '—' : `${((100 * t.correct) / t.total).toFixed(1)} %`);
const frac = (t: Tally) => `${t.correct}/${t.total} (${pct(t)})`;

function expected(r: EvalItemResult): string {
  const e = r.expect;
  return [
    e.category,
    e.severity,
    e.xid !== undefined ? `xid ${e.xid}` : '',
    e.gpu !== undefined ? `gpu ${e.gpu}` : '',
  ]
    .filter(Boolean)
    .join(' ');
}

function got(r: EvalItemResult): string {
  if (!r.got) return `ERROR ${r.error ?? ''}`.trim();
  const g = r.got;
  return [
    g.category,
    g.severity,
    g.xid !== undefined ? `xid ${g.xid}` : '',
    g.gpu !== undefined ? `gpu ${g.gpu}` : '',
  ]
    .filter(Boolean)
    .join(' ');
}

function via(r: EvalItemResult, outcome: LlmOutcome): string {
  if (outcome.kind === 'answered') return outcome.source;
  if (outcome.kind === 'fallback') return `rules (fallback: ${outcome.reason})`;
  return r.unsettled ? 'rules — needs LLM' : 'rules';
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows.map((r) =>
    r
      .map((cell, c) => cell.padEnd(widths[c] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}

const counts = (rec: Record<string, number>) =>
  Object.keys(rec).length === 0
    ? '0'
    : Object.entries(rec)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ');

export function formatReport(report: EvalReport): string {
  const lines: string[] = [];
  lines.push(`== classifier evaluation: mode ${report.mode} ==`);
  lines.push(`model: ${report.backend}`);
  lines.push(`corpus: ${report.corpusDir}${report.policyPath ? `   policy: ${report.policyPath}` : ''}`);
  lines.push('');
  const rows: string[][] = [['', 'item', 'source', 'expected', 'got', 'via']];
  for (const r of report.items) {
    rows.push([r.correct ? 'ok' : 'XX', r.id, r.source, expected(r), got(r), via(r, r.llm)]);
  }
  lines.push(...table(rows));
  lines.push('');
  lines.push(`accuracy: ${frac(report.overall)}`);
  lines.push(`  by source: ${CorpusSources.map((s) => `${s} ${frac(report.bySource[s])}`).join(', ')}`);
  lines.push(`  settled by the rules: ${frac(report.settled)}; left to the LLM: ${frac(report.unsettled)}`);
  const wrong = report.items.filter((r) => !r.correct);
  for (const r of wrong) lines.push(`  wrong: ${r.id}: ${r.mismatches.join('; ')}`);
  if (report.mode !== 'rules') {
    const s = report.llm;
    lines.push(
      `llm: ${s.calls} call(s) for ${report.distinctSignatures} distinct signature(s), ${s.cacheHits} cache hit(s), ` +
        `${s.coalesced} coalesced, ${s.accepted} accepted`,
    );
    lines.push(`  rejections: ${counts(s.rejections)}; fallbacks: ${counts(s.fallbacks)}`);
    lines.push(
      `  tokens: ${s.inputTokens} in / ${s.outputTokens} out; latency: ${s.avgLatencyMs.toFixed(1)} ms average over ${s.latencyCount} answer(s)`,
    );
  }
  return lines.join('\n');
}
