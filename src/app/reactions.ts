/**
 * What the process does when something happens elsewhere in it: each reaction is one named subscriber
 * (or timer) between pieces that do not know each other — the monitor, the services, the metrics, the
 * notification fan-out. Each returns its unsubscribe / stop function.
 */

import type { Clock } from '../domain/clock.js';
import type { ProgressBus } from '../domain/events.js';
import { gpuSeverity } from '../domain/finding.js';
import type { Incident } from '../domain/incident.js';
import type { Logger } from '../log/logger.js';
import { type Metrics, setOpenIncidents } from '../metrics/metrics.js';
import { RepairPhaseClock } from '../metrics/repair-phases.js';
import type { Notifier } from '../notify/fan-out.js';
import { type RawJournalRow, type RepairRecordStore, repairRecordsOf } from '../remediate/repair-records.js';
import type { RemediationServices } from '../remediate/services.js';
import type { Store } from '../store/index.js';
import type { NodeScanStatus } from './core.js';
import type { Sensing } from './sensing.js';

/** A new incident from the monitor: announce it (the Slack alert and the sinks start here), then triage it. */
export function onIncidentDetected(
  bus: ProgressBus,
  services: Pick<RemediationServices, 'triage'>,
  logger: Logger,
  clock: Pick<Clock, 'now'>,
): (incident: Incident) => void {
  return (incident) => {
    bus.publish({
      incidentId: incident.id,
      node: incident.node,
      step: 'detected',
      state: incident.state,
      at: clock.now(),
      actor: 'monitor',
      details: {
        category: incident.category,
        severity: incident.severity,
        explanation: incident.explanation,
      },
    });
    services
      .triage(incident.id)
      .catch((err) => logger.error({ err, incident: incident.id }, 'triage failed'));
  };
}

/** A repair that did not cure the fault goes to the next rung of the escalation ladder (reset → reboot → replace). */
export function followUpEscalations(
  bus: ProgressBus,
  services: Pick<RemediationServices, 'followUp'>,
  logger: Logger,
): () => void {
  return bus.subscribe((e) => {
    if (e.step !== 'escalated' || (e.details.to !== 'replace' && e.details.to !== 'reboot')) return;
    services
      .followUp(e.incidentId)
      .then((r) =>
        logger.info(
          { incident: e.incidentId, result: r.ok ? r.outcome : r.refusal },
          'escalated fault followed up',
        ),
      )
      .catch((err) => logger.error({ err, incident: e.incidentId }, 'escalation follow-up failed'));
  });
}

const outcomeOf: Partial<Record<string, string>> = {
  resolved: 'succeeded',
  failed: 'failed',
  escalated: 'escalated',
  cancelled: 'cancelled',
};

/** Remediation outcomes, counted from the progress events every trigger publishes. */
export function countRemediationOutcomes(
  bus: ProgressBus,
  incidents: (id: string) => Incident | undefined,
  metrics: Pick<Metrics, 'remediations'>,
): () => void {
  return bus.subscribe((e) => {
    const outcome = outcomeOf[e.step];
    if (!outcome) return;
    const action = incidents(e.incidentId)?.plannedAction ?? 'none';
    if (action === 'none') return;
    metrics.remediations.inc({ action, outcome: e.dryRun ? 'dry_run' : outcome });
  });
}

/** Time to repair: each phase a repair closes goes to the `repair_phase_seconds` histogram. */
export function timeRepairPhases(
  bus: ProgressBus,
  incidents: (id: string) => Incident | undefined,
  metrics: Pick<Metrics, 'repairPhase'>,
): () => void {
  const clock = new RepairPhaseClock();
  return bus.subscribe((e) => {
    const incident = incidents(e.incidentId);
    const facts = incident ? { firstSeen: incident.firstSeen, action: incident.plannedAction } : undefined;
    for (const s of clock.observe(e, facts)) {
      metrics.repairPhase.observe({ action: s.action, phase: s.phase }, s.seconds);
    }
  });
}

const endSteps = new Set(['resolved', 'escalated', 'failed', 'cancelled']);

/**
 * RMA evidence: when a reset, reboot or replace ends, its repair records (one per GPU) are written from the
 * incident and its journal. Dry runs repaired nothing and leave none.
 */
export function recordRepairs(
  bus: ProgressBus,
  deps: {
    incidents: (id: string) => Incident | undefined;
    journal: (id: string) => readonly RawJournalRow[];
    records: Pick<RepairRecordStore, 'save'>;
    logger: Logger;
  },
): () => void {
  return bus.subscribe((e) => {
    if (!endSteps.has(e.step) || e.dryRun) return;
    const incident = deps.incidents(e.incidentId);
    if (!incident) return;
    const reason = 'reason' in e.details ? e.details.reason : undefined;
    const records = repairRecordsOf({
      incident,
      rows: deps.journal(e.incidentId),
      outcome: e.step,
      endedAt: e.at,
      ...(reason ? { reason } : {}),
    });
    if (records.length === 0) return;
    deps.records.save(records);
    deps.logger.info(
      { incident: e.incidentId, action: records[0]?.action, gpus: records.length },
      'repair recorded',
    );
  });
}

export interface GaugeSources {
  store: Pick<Store, 'incidents'>;
  services: Pick<RemediationServices, 'status'>;
  sensing: Pick<Sensing, 'watcher'>;
  metrics: Metrics;
  lastScan: ReadonlyMap<string, NodeScanStatus>;
  notifier?: Pick<Notifier, 'publishClusterMetrics'>;
}

/**
 * Gauges and counters that mirror state kept elsewhere; the cluster metrics go to CloudWatch at the same
 * rhythm.
 */
export async function refreshGauges(s: GaugeSources): Promise<void> {
  const open = s.store.incidents.listOpen();
  const bySeverity: Record<string, number> = {};
  for (const i of open) bySeverity[i.severity] = (bySeverity[i.severity] ?? 0) + 1;
  setOpenIncidents(s.metrics, bySeverity);
  const status = await s.services.status();
  const breakerOpen = status.breaker.open || status.paused.open;
  s.metrics.breakerOpen.set(breakerOpen ? 1 : 0);
  if (s.sensing.watcher.isSynced) {
    // GPU health only: a node problem (NODE_CONDITION) does not make a GPU node unhealthy.
    const unhealthy = [...s.lastScan.values()].filter((r) => {
      const severity = gpuSeverity(r.verdict.findings);
      return severity === 'critical' || severity === 'warning';
    }).length;
    s.notifier?.publishClusterMetrics({ unhealthyGpuNodes: unhealthy, breakerOpen });
  }
}

/** refreshGauges on the scan period (at most every 15 s); returns the stop function. */
export function startGaugeRefresh(s: GaugeSources, scanIntervalSeconds: number, logger: Logger): () => void {
  const timer = setInterval(
    () => refreshGauges(s).catch((err) => logger.warn({ err }, 'refreshing gauges failed')),
    Math.min(15_000, scanIntervalSeconds * 1000),
  );
  timer.unref();
  return () => clearInterval(timer);
}
