/**
 * Which CloudWatch datapoints a notification makes, and how datapoints are packed into PutMetricData
 * calls. Pure.
 *
 * Names: `GPUErrorByType` with `NodeName`, `InstanceId`, `ErrorType` is the AWS sample's metric, kept for
 * existing dashboards — but one series per node is costly at fleet scale, so it is opt-in
 * (CLOUDWATCH_PER_NODE=true); by default the same metric is published per `ClusterName`, `ErrorType`.
 */
import type { NotificationMessage } from './message.js';
import type { MetricPoint } from './ports.js';

/** The gauges the monitor publishes each scan (through the same outbox). */
export interface ClusterMetricsPayload {
  kind: 'cluster_metrics';
  cluster: string;
  /** Epoch ms. */
  at: number;
  unhealthyGpuNodes: number;
  breakerOpen: boolean;
}

export interface CloudWatchMetricOptions {
  perNode: boolean;
}

/** PutMetricData limits (2023 on): 1,000 datums and 1 MB of request body per call, 30 dimensions per datum. */
export const PUT_METRIC_DATA_MAX_DATUMS = 1000;
export const PUT_METRIC_DATA_MAX_BYTES = 1_000_000;
/** Room for the envelope (Namespace, JSON punctuation) and the SDK's serialization differing from ours. */
const BYTES_HEADROOM = 16_384;

/** CloudWatch refuses an empty dimension value. */
function dim(name: string, value: string | null | undefined): { name: string; value: string } {
  const v = (value ?? '').slice(0, 1024);
  return { name, value: v === '' ? 'unknown' : v };
}

const REMEDIATION_STEPS: Record<string, string | undefined> = {
  cordoned: 'RemediationsStarted',
  resolved: 'RemediationsSucceeded',
  failed: 'RemediationsFailed',
  escalated: 'RemediationsFailed',
};

/**
 * Datapoints for one incident notification:
 * - `detected` → `GPUErrorByType` (value 1, Count);
 * - a remediation's first action (`cordoned`) → `RemediationsStarted`, its end (`resolved`,
 *   `failed`/`escalated`) → `RemediationsSucceeded` / `RemediationsFailed`, by `ClusterName` and `Action`.
 * Dry runs change nothing, so they count as faults but not as remediations; neither do incidents whose
 * plan was only to alert (`action: none`).
 */
export type MetricSource = Pick<
  NotificationMessage,
  'at' | 'step' | 'node' | 'instance_id' | 'error_type' | 'cluster' | 'action' | 'dry_run'
>;

export function metricPointsForNotification(m: MetricSource, opts: CloudWatchMetricOptions): MetricPoint[] {
  const timestamp = Date.parse(m.at);
  const ts = Number.isFinite(timestamp) ? timestamp : 0;
  if (m.step === 'detected') {
    const dimensions = opts.perNode
      ? [dim('NodeName', m.node), dim('InstanceId', m.instance_id), dim('ErrorType', m.error_type)]
      : [dim('ClusterName', m.cluster), dim('ErrorType', m.error_type)];
    return [{ metric: 'GPUErrorByType', value: 1, unit: 'Count', dimensions, timestamp: ts }];
  }
  const metric = REMEDIATION_STEPS[m.step];
  if (metric === undefined || m.dry_run || m.action === 'none') return [];
  return [
    {
      metric,
      value: 1,
      unit: 'Count',
      dimensions: [dim('ClusterName', m.cluster), dim('Action', m.action)],
      timestamp: ts,
    },
  ];
}

export function metricPointsForCluster(p: ClusterMetricsPayload): MetricPoint[] {
  const dimensions = [dim('ClusterName', p.cluster)];
  return [
    { metric: 'UnhealthyGpuNodes', value: p.unhealthyGpuNodes, unit: 'Count', dimensions, timestamp: p.at },
    { metric: 'BreakerOpen', value: p.breakerOpen ? 1 : 0, unit: 'None', dimensions, timestamp: p.at },
  ];
}

/** An estimate of a datum's share of the request body (the SDK sends JSON 1.0 with the same field names). */
export function datumBytes(p: MetricPoint): number {
  let n = 90 + p.metric.length + String(p.value).length;
  for (const d of p.dimensions) n += 30 + d.name.length + d.value.length;
  return n;
}

/**
 * Packs datapoints into PutMetricData calls within the count and size limits, keeping their order.
 * `point` reads the datapoint out of an item, so callers can tag each one with its owner.
 */
export function packMetricCalls<T>(
  items: readonly T[],
  point: (item: T) => MetricPoint,
  limits: { maxDatums?: number; maxBytes?: number } = {},
): T[][] {
  const maxDatums = limits.maxDatums ?? PUT_METRIC_DATA_MAX_DATUMS;
  const maxBytes = (limits.maxBytes ?? PUT_METRIC_DATA_MAX_BYTES) - BYTES_HEADROOM;
  const calls: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = datumBytes(point(item));
    if (current.length > 0 && (current.length >= maxDatums || bytes + size > maxBytes)) {
      calls.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) calls.push(current);
  return calls;
}
