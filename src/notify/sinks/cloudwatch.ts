/**
 * The CloudWatch sink: turns queued notifications and cluster gauges into datapoints and sends them in as
 * few PutMetricData calls as the API's limits allow.
 */
import type { Logger } from 'pino';
import {
  metricPointsForCluster,
  metricPointsForNotification,
  PUT_METRIC_DATA_MAX_BYTES,
  PUT_METRIC_DATA_MAX_DATUMS,
  packMetricCalls,
} from '../cloudwatch-metrics.js';
import { describeIssues, StoredClusterMetrics, StoredNotification } from '../payload.js';
import {
  type DeliveryResult,
  failureResult,
  type MetricPoint,
  type MetricPublisher,
  type OutboxEntry,
  type Sink,
  SinkError,
} from '../ports.js';

export const DEFAULT_CLOUDWATCH_NAMESPACE = 'GPUMedic';
/** CloudWatch accepts datapoints up to two weeks old; an outage longer than that loses only the metric. */
export const CLOUDWATCH_MAX_AGE_MS = 14 * 24 * 3600_000 - 3600_000;

export interface CloudWatchSinkOptions {
  publisher: MetricPublisher;
  namespace?: string;
  /** CLOUDWATCH_PER_NODE: the sample's per-node `GPUErrorByType` dimensions instead of per-cluster. */
  perNode?: boolean;
  clock?: () => number;
  logger?: Logger;
  maxDatums?: number;
  maxBytes?: number;
}

type Parsed = { ok: true; points: MetricPoint[] } | { ok: false; error: string };

export class CloudWatchSink implements Sink {
  readonly name = 'cloudwatch';
  private readonly namespace: string;
  private readonly perNode: boolean;
  private readonly clock: () => number;

  constructor(private readonly options: CloudWatchSinkOptions) {
    this.namespace = options.namespace ?? DEFAULT_CLOUDWATCH_NAMESPACE;
    this.perNode = options.perNode ?? false;
    this.clock = options.clock ?? Date.now;
  }

  /** Steps that make no datapoint (approval_needed, cancelled …) are not queued at all. */
  accepts(payload: unknown): boolean {
    const p = this.points(payload);
    return !p.ok || p.points.length > 0;
  }

  /** Datapoints carry their timestamps: no ordering needed, so every message may share a call. */
  orderingKey(_payload: unknown, dedupeKey: string): string {
    return `metric:${dedupeKey}`;
  }

  points(payload: unknown): Parsed {
    const cluster = StoredClusterMetrics.safeParse(payload);
    if (cluster.success) return { ok: true, points: metricPointsForCluster(cluster.data) };
    const n = StoredNotification.safeParse(payload);
    if (n.success)
      return { ok: true, points: metricPointsForNotification(n.data, { perNode: this.perNode }) };
    return { ok: false, error: `not a notification or cluster metrics payload: ${describeIssues(n.error)}` };
  }

  async deliver(batch: OutboxEntry[]): Promise<DeliveryResult[]> {
    const failures = new Map<number, DeliveryResult>();
    const counts = new Map<number, number>();
    const tagged: { owner: number; point: MetricPoint }[] = [];
    const oldest = this.clock() - CLOUDWATCH_MAX_AGE_MS;
    for (const entry of batch) {
      const parsed = this.points(entry.payload);
      if (!parsed.ok) {
        failures.set(entry.id, { id: entry.id, outcome: 'permanent', error: parsed.error });
        continue;
      }
      const fresh = parsed.points.filter((p) => p.timestamp >= oldest);
      if (fresh.length < parsed.points.length) {
        this.options.logger?.warn(
          { id: entry.id, dropped: parsed.points.length - fresh.length },
          'cloudwatch datapoints too old to publish',
        );
      }
      counts.set(entry.id, fresh.length);
      for (const point of fresh) tagged.push({ owner: entry.id, point });
    }

    const calls = packMetricCalls(tagged, (t) => t.point, {
      maxDatums: this.options.maxDatums ?? PUT_METRIC_DATA_MAX_DATUMS,
      maxBytes: this.options.maxBytes ?? PUT_METRIC_DATA_MAX_BYTES,
    });
    for (const call of calls) {
      try {
        await this.options.publisher.putMetricData(
          this.namespace,
          call.map((t) => t.point),
        );
      } catch (error) {
        const owners = [...new Set(call.map((t) => t.owner))];
        if (error instanceof SinkError && error.permanent && owners.length > 1) {
          // One bad datapoint must not kill its neighbours: find the culprit message by sending each alone.
          for (const owner of owners) await this.sendAlone(owner, call, failures);
        } else {
          for (const owner of owners)
            if (!failures.has(owner)) failures.set(owner, failureResult(owner, error));
        }
      }
    }

    return batch.map(
      (e) =>
        failures.get(e.id) ?? {
          id: e.id,
          outcome: 'delivered',
          result: { datapoints: counts.get(e.id) ?? 0 },
        },
    );
  }

  private async sendAlone(
    owner: number,
    call: { owner: number; point: MetricPoint }[],
    failures: Map<number, DeliveryResult>,
  ): Promise<void> {
    if (failures.has(owner)) return;
    try {
      await this.options.publisher.putMetricData(
        this.namespace,
        call.filter((t) => t.owner === owner).map((t) => t.point),
      );
    } catch (error) {
      failures.set(owner, failureResult(owner, error));
    }
  }
}
