import { describe, expect, it } from 'vitest';
import {
  type PromBenchResult,
  type PromScanMeasurement,
  prometheusMarkdown,
  prometheusRows,
} from './prometheus.js';

const scan = (index: number, over: Partial<PromScanMeasurement> = {}): PromScanMeasurement => ({
  index,
  warmup: index === 1,
  wallMs: 900,
  cpuMs: 80,
  peakRssBytes: 150e6,
  bytesRead: 400_000,
  queries: 5,
  failures: 0,
  unchanged: index === 1 ? 0 : 4_990,
  faultyNodes: index === 1 ? 0 : 3,
  sourceCpuMs: 40,
  rulesCpuMs: 10,
  ...over,
});

const result = (scans: PromScanMeasurement[], exact = true): PromBenchResult => ({
  nodes: 5000,
  gpusPerNode: 8,
  faulty: [
    { node: 'a', gpu: 0 },
    { node: 'b', gpu: 3 },
    { node: 'c', gpu: 6 },
  ],
  scans,
  openIncidents: exact
    ? ['a/XID_CRITICAL_79', 'b/XID_CRITICAL_79', 'c/XID_CRITICAL_79']
    : ['a/XID_CRITICAL_79'],
  exact,
  simRssBytes: 1e9,
});

describe('the Prometheus bench table', () => {
  it('judges the worst measured scan (never the warm-up) against ≤ 100 ms CPU and ≤ 1 MB read', () => {
    const rows = prometheusRows([
      result([scan(1, { cpuMs: 900, bytesRead: 5e6 }), scan(2), scan(3, { cpuMs: 95, unchanged: 4_500 })]),
    ]);
    expect(rows[0]).toEqual([
      '5,000',
      '900 ms',
      '95 ms (met)',
      '4,500',
      '40 ms',
      '10 ms',
      '150 MB',
      '400.0 kB (met)',
      '3 of 3 found, 3 incidents (exact)',
      '0',
    ]);
  });

  it('says NOT met and NOT exact when a measured scan misses', () => {
    const rows = prometheusRows([
      result([scan(1), scan(2, { cpuMs: 101, bytesRead: 1_000_001, faultyNodes: 2 })], false),
    ]);
    expect(rows[0]?.[2]).toBe('101 ms (NOT met)');
    expect(rows[0]?.[7]).toBe('1000.0 kB (NOT met)');
    expect(rows[0]?.[8]).toBe('2 of 3 found, 1 incidents (NOT exact)');
    expect(prometheusMarkdown([result([scan(1), scan(2)])])).toContain('| 5,000 | 900 ms |');
    expect(prometheusMarkdown([])).toBe('');
  });
});
