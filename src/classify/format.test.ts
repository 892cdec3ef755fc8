import { describe, expect, it } from 'vitest';
import { verdictOf } from '../domain/finding.js';
import { formatVerdictDetail, formatVerdictLine, formatVerdictTable, verdictToJson } from './format.js';

const v = verdictOf('node-a', [
  {
    kind: 'xid',
    category: 'XID_CRITICAL_79',
    severity: 'critical',
    action: 'reboot',
    gpu: 3,
    xid: 79,
    evidence: ['GPU 3: DCGM_FI_DEV_XID_ERRORS=79 (last XID code)'],
    explanation: 'GPU 3 reported XID 79.',
    source: 'rules',
    key: 'xid:79:gpu3',
  },
]);

describe('format', () => {
  it('JSON has the fixed shape, with null for unknown xid/gpu', () => {
    expect(verdictToJson('dump.txt', v)).toEqual({
      input: 'dump.txt',
      node: 'node-a',
      category: 'XID_CRITICAL_79',
      severity: 'critical',
      action: 'reboot',
      xid: 79,
      gpu: 3,
      explanation: 'GPU 3 reported XID 79.',
      source: 'rules',
      findings: v.findings,
    });
    expect(verdictToJson('-', verdictOf('n', []))).toMatchObject({
      category: 'HEALTHY',
      xid: null,
      gpu: null,
    });
  });

  it('one line, detail and table', () => {
    expect(formatVerdictLine(v)).toBe(
      'node-a: XID_CRITICAL_79 critical → reboot (gpu 3, xid 79) — GPU 3 reported XID 79.',
    );
    expect(formatVerdictDetail(v)).toContain('      GPU 3: DCGM_FI_DEV_XID_ERRORS=79 (last XID code)');
    const table = formatVerdictTable([{ verdict: v }, { verdict: verdictOf('node-bb', []) }]).split('\n');
    expect(table[0]).toMatch(/^NODE\s+CATEGORY\s+SEVERITY/);
    expect(table[2]).toMatch(/^node-bb\s+HEALTHY\s+healthy\s+none\s+-\s+-\s+0\s+No GPU fault found\.$/);
  });
});
