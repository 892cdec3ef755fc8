/**
 * A DCGM diagnostic as a compact table for a thread or an answer: one line per test whose GPUs all agree
 * ("software  0-7  pass"), else one line per GPU that did not pass, with DCGM's text, and one for the rest.
 * Monospace (a code block), so the columns line up in Slack and on the console.
 */
import type { DiagNodeResult, DiagResult, DiagStatus } from '../../domain/diag.js';

const MAX_ROWS = 30;
const MAX_INFO = 120;

const LABEL: Record<DiagStatus, string> = { pass: 'pass', fail: 'FAIL', warn: 'warn', skip: 'skip' };

/** `0,1,2,3,5` → `0-3,5`. */
export function gpuRange(gpus: readonly number[]): string {
  const sorted = [...new Set(gpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] ?? 0) + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Text safe inside a Slack code block (no closing fence, no stray markup), clipped. */
function cell(text: string): string {
  const t = text.replace(/`/g, "'").replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const flat = t.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_INFO ? `${flat.slice(0, MAX_INFO - 1)}…` : flat;
}

/** The table's rows: [test, GPU, result, text]. */
export function diagRows(
  results: readonly DiagResult[],
  nodeWide: readonly DiagNodeResult[] = [],
): string[][] {
  const rows: string[][] = [];
  const tests = [...new Set([...results.map((r) => r.test), ...nodeWide.map((r) => r.test)])];
  for (const test of tests) {
    const of = results.filter((r) => r.test === test);
    const statuses = new Set(of.map((r) => r.status));
    const only = statuses.size === 1 ? of[0]?.status : undefined;
    if (only === 'pass' || (only === 'skip' && of.every((r) => r.info === of[0]?.info))) {
      rows.push([test, gpuRange(of.map((r) => r.gpu)), LABEL[only], cell(of[0]?.info ?? '')]);
    } else if (of.length > 0) {
      for (const r of of.filter((x) => x.status !== 'pass')) {
        rows.push([test, String(r.gpu), LABEL[r.status], cell(r.info ?? '')]);
      }
      const passed = of.filter((x) => x.status === 'pass').map((x) => x.gpu);
      if (passed.length > 0) rows.push([test, gpuRange(passed), 'pass', '']);
    }
    for (const n of nodeWide.filter((x) => x.test === test)) {
      rows.push([test, 'node', LABEL[n.status], cell(n.info ?? '')]);
    }
  }
  return rows;
}

/** The table in a code block; empty string when there is nothing to show. */
export function diagTable(results: readonly DiagResult[], nodeWide: readonly DiagNodeResult[] = []): string {
  const all = diagRows(results, nodeWide);
  if (all.length === 0) return '';
  const shown = all.slice(0, MAX_ROWS);
  const head = ['test', 'GPU', 'result', ''];
  const width = [0, 1, 2].map((c) => Math.max(...[head, ...shown].map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) =>
    r
      .map((v, c) => (c < 3 ? v.padEnd(width[c] ?? 0) : v))
      .join('  ')
      .trimEnd();
  const more = all.length > shown.length ? [`… ${all.length - shown.length} more rows`] : [];
  return `\`\`\`\n${[line(head), ...shown.map(line), ...more].join('\n')}\n\`\`\``;
}
