import { describe, expect, it } from 'vitest';
import { type Finding, verdictOf } from '../domain/finding.js';
import type { NodeSnapshot } from '../domain/gpu.js';
import { triage } from './triage.js';

const xid79: Finding = {
  kind: 'xid',
  category: 'XID_CRITICAL_79',
  severity: 'critical',
  action: 'reboot',
  gpu: 3,
  xid: 79,
  evidence: [],
  explanation: 'fallen off the bus',
  source: 'rules',
  key: 'xid:79:gpu3',
};
const dbe: Finding = {
  ...xid79,
  kind: 'ecc_dbe',
  category: 'ECC_ERROR',
  xid: undefined,
  key: 'ecc_dbe:gpu3',
};
const info: Finding = { ...dbe, severity: 'info', key: 'unknown', category: 'UNKNOWN' };

function snap(xidLast: number | undefined, opts: Partial<NodeSnapshot> = {}, count?: number): NodeSnapshot {
  return {
    node: 'n1',
    takenAt: 0,
    source: 'exporter',
    gpus: [{ index: 3, xidLast, xids: count === undefined ? undefined : [{ xid: 79, count }] }],
    ...opts,
  };
}

const base = { openKeys: new Set<string>(), excluded: false };

describe('triage: which findings open incidents', () => {
  it('reports a sticky XID seen at first sight once, as preexisting', () => {
    const r = triage({
      ...base,
      snapshot: snap(79),
      verdict: verdictOf('n1', [xid79]),
      previousGpuState: undefined,
      previousKeys: undefined,
    });
    expect(r.open).toEqual([{ finding: xid79, preexisting: true }]);
    expect(r.gpuState).toEqual([{ gpu: 3, xidLast: 79, xidCount: undefined }]);
  });

  it.each([
    ['the same sticky value', 79, 79, undefined, undefined, 0],
    ['a changed value', 48, 79, undefined, undefined, 1],
    ['a grown per-XID count', 79, 79, { '3:79': 1 }, 2, 1],
    ['an unchanged per-XID count', 79, 79, { '3:79': 2 }, 2, 0],
  ])('%s → %i new incident(s)', (_name, prevLast, nowLast, prevCounts, count, expected) => {
    const finding = { ...xid79, xid: nowLast, key: `xid:${nowLast}:gpu3` };
    const r = triage({
      ...base,
      snapshot: snap(nowLast, {}, count),
      verdict: verdictOf('n1', [finding]),
      previousGpuState: [{ gpu: 3, xidLast: prevLast }],
      previousKeys: new Set([`xid:${prevLast}:gpu3`]),
      previousXidCounts: prevCounts,
    });
    expect(r.open).toHaveLength(expected);
    expect(r.open.every((o) => !o.preexisting)).toBe(true);
  });

  it('touches an open incident instead of opening another', () => {
    const r = triage({
      ...base,
      openKeys: new Set([dbe.key]),
      snapshot: snap(0),
      verdict: verdictOf('n1', [dbe]),
      previousGpuState: [],
      previousKeys: new Set([dbe.key]),
    });
    expect(r.open).toEqual([]);
    expect(r.touch).toEqual([dbe]);
  });

  it('opens a condition finding when it appears, not while it persists after its incident closed', () => {
    const appears = triage({
      ...base,
      snapshot: snap(0),
      verdict: verdictOf('n1', [dbe]),
      previousGpuState: [],
      previousKeys: new Set(),
    });
    expect(appears.open.map((o) => o.finding.key)).toEqual([dbe.key]);
    const persists = triage({
      ...base,
      snapshot: snap(0),
      verdict: verdictOf('n1', [dbe]),
      previousGpuState: [],
      previousKeys: new Set([dbe.key]),
    });
    expect(persists.open).toEqual([]);
  });

  it('opens nothing for info findings or on an excluded node', () => {
    expect(
      triage({
        ...base,
        snapshot: snap(0),
        verdict: verdictOf('n1', [info]),
        previousGpuState: [],
        previousKeys: new Set(),
      }).open,
    ).toEqual([]);
    expect(
      triage({
        ...base,
        excluded: true,
        snapshot: snap(0),
        verdict: verdictOf('n1', [dbe]),
        previousGpuState: [],
        previousKeys: new Set(),
      }).open,
    ).toEqual([]);
  });

  it('keeps the previous keys and XID state of a node it could not read', () => {
    const r = triage({
      ...base,
      snapshot: snap(undefined, { gpus: [], error: { kind: 'timeout', message: 'x' } }),
      verdict: verdictOf('n1', []),
      previousGpuState: [{ gpu: 3, xidLast: 79 }],
      previousKeys: new Set([xid79.key]),
    });
    expect(r.activeKeys).toEqual([xid79.key]);
    expect(r.gpuState).toEqual([{ gpu: 3, xidLast: 79 }]);
  });
});
