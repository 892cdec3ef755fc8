import { describe, expect, it } from 'vitest';
import { baseSnapshot } from '../collect/collector.js';
import type { Verdict } from '../domain/finding.js';
import type { GpuNode } from '../domain/node.js';
import type { NodeScanResult } from '../monitor/monitor.js';
import { scanStatusOf } from './core.js';

const node: GpuNode = {
  name: 'n1',
  gpuResources: { 'nvidia.com/gpu': 2 },
  unschedulable: false,
  ready: true,
  labels: {},
  conditions: [],
};
const verdict = (explanation: string): Verdict => ({
  node: 'n1',
  category: 'HEALTHY',
  severity: 'healthy',
  action: 'none',
  explanation,
  source: 'rules',
  findings: [],
});
const result = (at: number, readKey: string | undefined, n = node): NodeScanResult => ({
  node: n,
  verdict: verdict(`at ${at}`),
  ms: 1,
  opened: [],
  snapshot: {
    ...baseSnapshot(n, 'prometheus', at),
    gpus: [
      { index: 0, xidLast: 0 },
      { index: 1, xidLast: 0 },
    ],
    signals: ['xid'],
    ...(readKey ? { readKey } : {}),
  },
});

describe("the runtime's last scan of a node", () => {
  it('read the same again (same node, same readKey): keeps the GPUs it built, moves the time and verdict', () => {
    const first = scanStatusOf(result(1, 'k'));
    const again = scanStatusOf(result(2, 'k'), first);
    expect(again.snapshot.gpus).toBe(first.snapshot.gpus);
    expect(again.gpuIds).toBe(first.gpuIds);
    expect([again.snapshot.takenAt, again.verdict.explanation]).toEqual([2, 'at 2']);
    expect(first.snapshot.takenAt).toBe(1);
  });

  it('a new key, no key or a new node object: built afresh', () => {
    const first = scanStatusOf(result(1, 'k'));
    for (const next of [result(2, 'other'), result(2, undefined), result(2, 'k', { ...node })]) {
      const status = scanStatusOf(next, first);
      expect(status.snapshot.gpus).not.toBe(first.snapshot.gpus);
      expect(status.snapshot.gpus).toEqual(first.snapshot.gpus);
      expect(status.snapshot.takenAt).toBe(2);
    }
  });
});
