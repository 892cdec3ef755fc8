/**
 * The notification fan-out: subscribes to the progress bus, turns each notified step into one outbox row
 * per enabled sink, and runs one OutboxWorker per sink. The bus listener only does synchronous SQLite
 * inserts, so the monitor and the remediation engine never wait for a sink.
 */
import type { Logger } from 'pino';
import type { ProgressBus, ProgressEvent } from '../domain/events.js';
import type { Incident } from '../domain/incident.js';
import type { Metrics } from '../metrics/metrics.js';
import type { ClusterMetricsPayload } from './cloudwatch-metrics.js';
import { buildNotification, type NotificationMessage } from './message.js';
import { OutboxWorker, type OutboxWorkerOptions } from './outbox-worker.js';
import { errorMessage, type OutboxPort, type Sink } from './ports.js';

export interface NotifierOptions {
  outbox: OutboxPort;
  /** The enabled sinks (see createSinks); none ⇒ the notifier only subscribes and drops nothing. */
  sinks: Sink[];
  bus: ProgressBus;
  /** Looks an incident up by id (IncidentRepo.get); a missing one still yields a message from the event. */
  incidents: (id: string) => Incident | undefined;
  cluster: string;
  logger?: Logger;
  metrics?: Pick<Metrics, 'notificationDeliveries' | 'outboxDepth'>;
  clock?: () => number;
  /** Shared worker settings (poll interval, backoff, timers …); per sink via `workerOptionsFor`. */
  worker?: Omit<OutboxWorkerOptions, 'sink' | 'outbox' | 'logger' | 'metrics' | 'clock'>;
  workerOptionsFor?: (sink: string) => Partial<Omit<OutboxWorkerOptions, 'sink' | 'outbox'>>;
  /** Start the workers at once. Default true. */
  start?: boolean;
}

export interface Notifier {
  readonly workers: ReadonlyMap<string, OutboxWorker>;
  /** Enqueues one event for every sink (what the bus subscription calls); returns the rows added. */
  notify(event: ProgressEvent): number;
  /** The monitor's per-scan gauges for CloudWatch (UnhealthyGpuNodes, BreakerOpen). */
  publishClusterMetrics(input: { unhealthyGpuNodes: number; breakerOpen: boolean; at?: number }): void;
  start(): void;
  /** Unsubscribes and stops every worker, letting in-flight deliveries finish. */
  stop(): Promise<void>;
}

export function notificationDedupeKey(incidentId: string, step: string, sink: string): string {
  return `${incidentId}:${step}:${sink}`;
}

export function createNotifier(options: NotifierOptions): Notifier {
  const { outbox, sinks, bus, cluster } = options;
  const clock = options.clock ?? Date.now;
  const logger = options.logger?.child({ component: 'notify' });
  const workers = new Map<string, OutboxWorker>();
  for (const sink of sinks) {
    workers.set(
      sink.name,
      new OutboxWorker({
        ...options.worker,
        ...options.workerOptionsFor?.(sink.name),
        sink,
        outbox,
        clock,
        ...(logger ? { logger } : {}),
        ...(options.metrics ? { metrics: options.metrics } : {}),
      }),
    );
  }
  let metricSeq = 0;

  function enqueue(sink: Sink, orderingKey: string, payload: unknown, dedupeKey?: string): boolean {
    try {
      const r = outbox.enqueue(sink.name, orderingKey, payload, {
        now: clock(),
        ...(dedupeKey === undefined ? {} : { dedupeKey }),
      });
      if (r.duplicate) return false;
      workers.get(sink.name)?.kick();
      return true;
    } catch (error) {
      // The store refused (disk full …): the event is lost for this sink; say so loudly, never throw into the bus.
      logger?.error({ sink: sink.name, dedupeKey, err: errorMessage(error) }, 'notification not queued');
      return false;
    }
  }

  function notify(event: ProgressEvent): number {
    let incident: Incident | undefined;
    try {
      incident = options.incidents(event.incidentId);
    } catch (error) {
      logger?.warn({ incidentId: event.incidentId, err: errorMessage(error) }, 'incident lookup failed');
    }
    let message: NotificationMessage | undefined;
    try {
      message = buildNotification(event, incident, cluster);
    } catch (error) {
      logger?.error(
        { incidentId: event.incidentId, step: event.step, err: errorMessage(error) },
        'bad event',
      );
      return 0;
    }
    if (!message) return 0;
    let added = 0;
    for (const sink of sinks) {
      if (sink.accepts && !sink.accepts(message)) continue;
      const dedupeKey = notificationDedupeKey(event.incidentId, event.step, sink.name);
      const orderingKey = sink.orderingKey?.(message, dedupeKey) ?? `incident:${event.incidentId}`;
      if (enqueue(sink, orderingKey, message, dedupeKey)) added += 1;
    }
    return added;
  }

  function publishClusterMetrics(input: {
    unhealthyGpuNodes: number;
    breakerOpen: boolean;
    at?: number;
  }): void {
    const cw = sinks.find((s) => s.name === 'cloudwatch');
    if (!cw) return;
    const at = input.at ?? clock();
    const payload: ClusterMetricsPayload = {
      kind: 'cluster_metrics',
      cluster,
      at,
      unhealthyGpuNodes: input.unhealthyGpuNodes,
      breakerOpen: input.breakerOpen,
    };
    metricSeq += 1;
    enqueue(cw, `metric:cluster:${at}:${metricSeq}`, payload);
  }

  const unsubscribe = bus.subscribe((event) => {
    notify(event);
  });
  let started = false;
  function start(): void {
    if (started) return;
    started = true;
    for (const w of workers.values()) w.start();
  }
  if (options.start ?? true) start();

  return {
    workers,
    notify,
    publishClusterMetrics,
    start,
    async stop() {
      unsubscribe();
      await Promise.all([...workers.values()].map((w) => w.stop()));
    },
  };
}
