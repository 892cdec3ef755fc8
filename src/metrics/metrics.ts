/**
 * The Prometheus metrics gpu-medic exposes on `/metrics` (prom-client). One factory builds every
 * metric on a registry it is given, so tests and the demo get isolated registries and production
 * code receives typed handles instead of reaching for prom-client's global registry.
 *
 * Deliberately free of other project imports: every layer may record into it without pulling in
 * anything else. Label values are strings on purpose (the callers own their vocabularies); the known
 * ones are initialised to zero so `rate()` and alerts see a series from the first scrape on.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { REPAIR_PHASE_BUCKETS } from './repair-phases.js';

export const METRIC_PREFIX = 'gpu_medic_';

/** Node verdicts shown by `gpu_medic_nodes{verdict}`; `setNodeVerdicts` writes all of them. */
export const NodeVerdicts = ['healthy', 'warning', 'critical', 'unknown'] as const;
export type NodeVerdict = (typeof NodeVerdicts)[number];

/** Incident severities pre-initialised on `gpu_medic_open_incidents{severity}`. */
export const IncidentSeverities = ['critical', 'warning', 'info'] as const;

/** Scan results pre-initialised on `gpu_medic_scans_total{result}`. */
export const ScanResults = ['ok', 'error'] as const;

/** LLM call outcomes pre-initialised on `gpu_medic_llm_calls_total{outcome}`. */
export const LlmOutcomes = ['ok', 'invalid', 'error', 'timeout', 'throttled'] as const;

/** Scan durations run from a few ms (one node, cached) to tens of seconds (a large fleet, slow exporters). */
export const SCAN_DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30] as const;

export interface Metrics {
  readonly registry: Registry;
  /** Completed fleet scans by result. */
  readonly scans: Counter<'result'>;
  /** Wall-clock duration of one fleet scan, in seconds. */
  readonly scanDuration: Histogram<string>;
  /** GPU nodes by their latest verdict. */
  readonly nodes: Gauge<'verdict'>;
  /** Incidents not yet in a terminal state, by severity. */
  readonly openIncidents: Gauge<'severity'>;
  /** Remediation actions by action (cordon, drain, reboot, replace, uncordon) and outcome. */
  readonly remediations: Counter<'action' | 'outcome'>;
  /** 1 while the circuit breaker stops automatic action, else 0. */
  readonly breakerOpen: Gauge<string>;
  /** Bedrock classification calls by outcome. */
  readonly llmCalls: Counter<'outcome'>;
  /** Classifications answered from the fault-signature cache instead of the LLM. */
  readonly llmCacheHits: Counter<string>;
  /** 1 once Bedrock refused the configured model as invalid or retired (the rules classify alone), else 0. */
  readonly llmModelUnavailable: Gauge<string>;
  /** Undelivered outbox entries per sink (slack, cloudwatch, sns, webhook, lambda). */
  readonly outboxDepth: Gauge<'sink'>;
  /** Failed attempts to deliver a Slack message (each retry counts). */
  readonly slackDeliveryFailures: Counter<string>;
  /** Notification delivery attempts per sink and outcome. */
  readonly notificationDeliveries: Counter<'sink' | 'outcome'>;
  /**
   * GPU nodes whose last read carried a signal family (xid, ecc, retired_pages, nvlink, health …): 0 for
   * `ecc` on a stock dcgm-exporter, which leaves ECC out. Set by every scan; no series before the first.
   */
  readonly signalNodes: Gauge<'family'>;
  /** Time to repair per phase (detection_to_cordon, cordon_to_drained, drained_to_healthy) and action. */
  readonly repairPhase: Histogram<'action' | 'phase'>;
}

export interface CreateMetricsOptions {
  /** Also collect Node.js process metrics (CPU, memory, event loop, GC) with the gpu_medic_ prefix. Default true. */
  defaultMetrics?: boolean;
}

/**
 * Register every gpu-medic metric on `registry`. Call once per registry: prom-client refuses a
 * second registration of the same name.
 */
export function createMetrics(
  registry: Registry = new Registry(),
  options: CreateMetricsOptions = {},
): Metrics {
  const registers = [registry];
  const name = (n: string) => `${METRIC_PREFIX}${n}`;

  const scans = new Counter({
    name: name('scans_total'),
    help: 'Completed fleet scans by result.',
    labelNames: ['result'] as const,
    registers,
  });
  const scanDuration = new Histogram({
    name: name('scan_duration_seconds'),
    help: 'Duration of one fleet scan in seconds.',
    buckets: [...SCAN_DURATION_BUCKETS],
    registers,
  });
  const nodes = new Gauge({
    name: name('nodes'),
    help: 'GPU nodes by latest verdict.',
    labelNames: ['verdict'] as const,
    registers,
  });
  const openIncidents = new Gauge({
    name: name('open_incidents'),
    help: 'Incidents not yet resolved, escalated, failed or cancelled, by severity.',
    labelNames: ['severity'] as const,
    registers,
  });
  const remediations = new Counter({
    name: name('remediations_total'),
    help: 'Remediation actions by action and outcome.',
    labelNames: ['action', 'outcome'] as const,
    registers,
  });
  const breakerOpen = new Gauge({
    name: name('breaker_open'),
    help: '1 while the circuit breaker stops automatic remediation, else 0.',
    registers,
  });
  const llmCalls = new Counter({
    name: name('llm_calls_total'),
    help: 'LLM classification calls by outcome.',
    labelNames: ['outcome'] as const,
    registers,
  });
  const llmCacheHits = new Counter({
    name: name('llm_cache_hits_total'),
    help: 'Classifications answered from the fault-signature cache.',
    registers,
  });
  const llmModelUnavailable = new Gauge({
    name: name('llm_model_unavailable'),
    help: '1 once Bedrock refused the configured model as invalid or retired (rules classify alone), else 0.',
    registers,
  });
  const outboxDepth = new Gauge({
    name: name('outbox_depth'),
    help: 'Undelivered outbox entries per sink.',
    labelNames: ['sink'] as const,
    registers,
  });
  const slackDeliveryFailures = new Counter({
    name: name('slack_delivery_failures_total'),
    help: 'Failed attempts to deliver a Slack message.',
    registers,
  });
  const notificationDeliveries = new Counter({
    name: name('notification_deliveries_total'),
    help: 'Notification delivery attempts per sink and outcome.',
    labelNames: ['sink', 'outcome'] as const,
    registers,
  });

  const signalNodes = new Gauge({
    name: name('signal_nodes'),
    help: 'GPU nodes whose last read carried this signal family (0 = faults of that kind cannot be seen).',
    labelNames: ['family'] as const,
    registers,
  });

  const repairPhase = new Histogram({
    name: name('repair_phase_seconds'),
    help: 'Time to repair per phase (detection_to_cordon, cordon_to_drained, drained_to_healthy) and action (reset, reboot, replace).',
    labelNames: ['action', 'phase'] as const,
    buckets: [...REPAIR_PHASE_BUCKETS],
    registers,
  });

  for (const result of ScanResults) scans.inc({ result }, 0);
  for (const verdict of NodeVerdicts) nodes.set({ verdict }, 0);
  for (const severity of IncidentSeverities) openIncidents.set({ severity }, 0);
  for (const outcome of LlmOutcomes) llmCalls.inc({ outcome }, 0);
  breakerOpen.set(0);
  llmModelUnavailable.set(0);

  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX });

  return {
    registry,
    scans,
    scanDuration,
    nodes,
    openIncidents,
    remediations,
    breakerOpen,
    llmCalls,
    llmCacheHits,
    llmModelUnavailable,
    outboxDepth,
    slackDeliveryFailures,
    notificationDeliveries,
    signalNodes,
    repairPhase,
  };
}

/**
 * Set `gpu_medic_nodes` from a count per verdict. Verdicts missing from `counts` go to 0, so a
 * category that emptied out does not keep its last value.
 */
export function setNodeVerdicts(metrics: Metrics, counts: Partial<Record<NodeVerdict, number>>): void {
  for (const verdict of NodeVerdicts) metrics.nodes.set({ verdict }, counts[verdict] ?? 0);
}

/** Set `gpu_medic_open_incidents` from a count per severity; listed severities missing from `counts` go to 0. */
export function setOpenIncidents(metrics: Metrics, counts: Readonly<Record<string, number>>): void {
  for (const severity of IncidentSeverities) metrics.openIncidents.set({ severity }, counts[severity] ?? 0);
  for (const [severity, n] of Object.entries(counts)) metrics.openIncidents.set({ severity }, n);
}

/** The `/metrics` response: body in the text exposition format and its Content-Type. */
export async function renderMetrics(metrics: Metrics): Promise<{ contentType: string; body: string }> {
  return { contentType: metrics.registry.contentType, body: await metrics.registry.metrics() };
}
