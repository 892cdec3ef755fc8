import { describe, expect, it } from 'vitest';
import { event, incident, T0 } from '../../test/support/fixtures.js';
import {
  metricPointsForCluster,
  metricPointsForNotification,
  PUT_METRIC_DATA_MAX_DATUMS,
  packMetricCalls,
} from './cloudwatch-metrics.js';
import { buildNotification } from './message.js';
import type { MetricPoint } from './ports.js';

const msg = (step: Parameters<typeof event>[0], over: Parameters<typeof event>[1] = {}, inc = incident()) => {
  const m = buildNotification(event(step, over), inc, 'prod-gpu');
  if (!m) throw new Error(`step ${step} is not notified`);
  return m;
};

describe('metricPointsForNotification', () => {
  it('publishes GPUErrorByType per cluster and error type by default', () => {
    expect(metricPointsForNotification(msg('detected'), { perNode: false })).toEqual([
      {
        metric: 'GPUErrorByType',
        value: 1,
        unit: 'Count',
        dimensions: [
          { name: 'ClusterName', value: 'prod-gpu' },
          { name: 'ErrorType', value: 'XID_CRITICAL_79' },
        ],
        timestamp: T0 + 120_000,
      },
    ]);
  });

  it("uses the AWS sample's per-node dimensions with CLOUDWATCH_PER_NODE", () => {
    const [p] = metricPointsForNotification(msg('detected'), { perNode: true });
    expect(p?.dimensions).toEqual([
      { name: 'NodeName', value: 'ip-10-0-1-23.ec2.internal' },
      { name: 'InstanceId', value: 'i-0123456789abcdef0' },
      { name: 'ErrorType', value: 'XID_CRITICAL_79' },
    ]);
  });

  it('never sends an empty dimension value', () => {
    const [p] = metricPointsForNotification(msg('detected', {}, incident({ instanceId: undefined })), {
      perNode: true,
    });
    expect(p?.dimensions).toContainEqual({ name: 'InstanceId', value: 'unknown' });
  });

  it.each([
    ['cordoned', 'RemediationsStarted'],
    ['resolved', 'RemediationsSucceeded'],
    ['failed', 'RemediationsFailed'],
    ['escalated', 'RemediationsFailed'],
  ] as const)('%s counts %s by ClusterName and Action', (step, metric) => {
    expect(metricPointsForNotification(msg(step), { perNode: false })).toEqual([
      {
        metric,
        value: 1,
        unit: 'Count',
        dimensions: [
          { name: 'ClusterName', value: 'prod-gpu' },
          { name: 'Action', value: 'replace' },
        ],
        timestamp: T0 + 120_000,
      },
    ]);
  });

  it.each([
    ['a dry run', msg('cordoned', { dryRun: true })],
    ['an alert-only incident', msg('resolved', {}, incident({ plannedAction: 'none' }))],
    ['a step without a metric', msg('approval_needed')],
  ])('makes no remediation datapoint for %s', (_label, m) => {
    expect(metricPointsForNotification(m, { perNode: false })).toEqual([]);
  });
});

describe('metricPointsForCluster', () => {
  it('publishes the gauges per cluster', () => {
    const points = metricPointsForCluster({
      kind: 'cluster_metrics',
      cluster: 'c',
      at: T0,
      unhealthyGpuNodes: 3,
      breakerOpen: true,
    });
    expect(points.map((p) => [p.metric, p.value, p.dimensions])).toEqual([
      ['UnhealthyGpuNodes', 3, [{ name: 'ClusterName', value: 'c' }]],
      ['BreakerOpen', 1, [{ name: 'ClusterName', value: 'c' }]],
    ]);
  });
});

describe('packMetricCalls', () => {
  const point = (i: number, dimValue = 'v'): MetricPoint => ({
    metric: `M${i}`,
    value: i,
    unit: 'Count',
    dimensions: [{ name: 'D', value: dimValue }],
    timestamp: T0,
  });

  it('packs 2,500 datapoints into 3 calls of at most 1,000, in order', () => {
    const points = Array.from({ length: 2500 }, (_, i) => point(i));
    const calls = packMetricCalls(points, (p) => p);
    expect(calls.map((c) => c.length)).toEqual([PUT_METRIC_DATA_MAX_DATUMS, PUT_METRIC_DATA_MAX_DATUMS, 500]);
    expect(calls.flat()).toEqual(points);
  });

  it('splits on size before count when datapoints are large', () => {
    const big = Array.from({ length: 300 }, (_, i) => point(i, 'x'.repeat(1000)));
    const calls = packMetricCalls(big, (p) => p, { maxBytes: 100_000 });
    expect(calls.length).toBeGreaterThan(1);
    for (const c of calls) expect(JSON.stringify(c).length).toBeLessThan(100_000);
    expect(calls.flat()).toEqual(big);
  });

  it('returns no calls for no datapoints', () => {
    expect(packMetricCalls([], (p: MetricPoint) => p)).toEqual([]);
  });
});
