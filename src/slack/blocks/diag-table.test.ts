import { describe, expect, it } from 'vitest';
import type { DiagResult } from '../../domain/diag.js';
import { progressEvent } from '../../domain/events.js';
import { diagRows, diagTable, gpuRange } from './diag-table.js';
import { threadReply } from './thread.js';

const results: DiagResult[] = [
  ...[0, 1, 2, 3].map((gpu): DiagResult => ({ test: 'software', gpu, status: 'pass' })),
  { test: 'memory', gpu: 0, status: 'pass' },
  { test: 'memory', gpu: 1, status: 'skip', info: 'GPU busy' },
  { test: 'memory', gpu: 2, status: 'pass' },
  { test: 'memory', gpu: 3, status: 'fail', info: 'Found 4 faulty memory elements on GPU 3' },
  { test: 'pcie', gpu: 2, status: 'warn', info: 'Detected clocks event due to thermal violation in GPU 2.' },
];

describe('the diagnostic table', () => {
  it('ranges GPUs', () => {
    expect(gpuRange([3, 0, 1, 2, 5, 7, 6])).toBe('0-3,5-7');
    expect(gpuRange([4])).toBe('4');
  });

  it('one row per test whose GPUs all pass; one per GPU that did not, with DCGM’s text; the rest in one row', () => {
    expect(diagRows(results)).toEqual([
      ['software', '0-3', 'pass', ''],
      ['memory', '1', 'skip', 'GPU busy'],
      ['memory', '3', 'FAIL', 'Found 4 faulty memory elements on GPU 3'],
      ['memory', '0,2', 'pass', ''],
      ['pcie', '2', 'warn', 'Detected clocks event due to thermal violation in GPU 2.'],
    ]);
  });

  it('aligns columns in a code block, escapes what Slack would read as markup, and shows node-wide rows', () => {
    const table = diagTable(
      [{ test: 'software', gpu: 0, status: 'fail', info: 'a `fence` <b> & c' }],
      [{ test: 'software', status: 'fail', info: 'Persistence mode is disabled.' }],
    );
    expect(table).toBe(
      [
        '```',
        'test      GPU   result',
        "software  0     FAIL    a 'fence' &lt;b&gt; &amp; c",
        'software  node  FAIL    Persistence mode is disabled.',
        '```',
      ].join('\n'),
    );
    expect(diagTable([])).toBe('');
  });

  it('a failed diagnostic in the thread: the verdict line and the table', () => {
    const event = progressEvent(
      { incidentId: 'i', node: 'gpu-0', state: 'verifying', at: 0, elapsedMs: 42_000 },
      { step: 'diag_result', details: { level: 2, verdict: 'fail', results } },
    );
    const text = threadReply(event).text;
    expect(text.split('\n')[0]).toBe('❌ DCGM diagnostics level 2 failed on gpu-0 (42 s)');
    expect(text).toContain('memory    3    FAIL    Found 4 faulty memory elements on GPU 3');
  });

  it('the start, the progress of a long level, a skipped run', () => {
    const at = { incidentId: 'i', node: 'gpu-0', state: 'verifying' as const, at: 0 };
    expect(
      threadReply(progressEvent(at, { step: 'diag_started', details: { level: 3, expectedMs: 1_800_000 } }))
        .text,
    ).toBe('🩺 Running DCGM diagnostics level 3 on gpu-0 (about 30m) — it stays cordoned until they pass');
    expect(
      threadReply(
        progressEvent(at, {
          step: 'diag_progress',
          details: { level: 3, waitedMs: 600_000, expectedMs: 1_800_000 },
        }),
      ).text,
    ).toBe('⏳ DCGM diagnostics level 3 running for 10m of about 30m');
    expect(
      threadReply(
        progressEvent(at, {
          step: 'diag_result',
          details: { level: 1, verdict: 'unavailable', message: 'no DCGM pod' },
        }),
      ).text,
    ).toBe('ℹ️ DCGM diagnostics skipped on gpu-0: no DCGM pod');
  });
});
