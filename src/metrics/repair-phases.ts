/**
 * Time to repair, per phase: detection → cordon, cordon → drained, drained → healthy (the settle gate's clean
 * scan of the node, or of its replacement). Fed the progress events in order; pure apart from its own
 * memory of the incidents in flight, so /metrics and the benchmark measure the same thing.
 */
import type { ProgressEvent } from '../domain/events.js';

export const RepairPhases = ['detection_to_cordon', 'cordon_to_drained', 'drained_to_healthy'] as const;
export type RepairPhase = (typeof RepairPhases)[number];

/** From a minute-long GPU reset to a half-hour replacement. */
export const REPAIR_PHASE_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600] as const;

export interface PhaseSample {
  incidentId: string;
  action: string;
  phase: RepairPhase;
  seconds: number;
}

interface InFlight {
  cordonAt?: number;
  drainedAt?: number;
  healthy?: boolean;
}

const ends = new Set(['resolved', 'escalated', 'failed', 'cancelled', 'dismissed']);

export class RepairPhaseClock {
  private readonly runs = new Map<string, InFlight>();

  /**
   * The phases this event closes. `incident` says when the fault was detected and which action repairs it
   * (reset, reboot, replace); nothing is measured for other actions or for dry runs.
   */
  observe(e: ProgressEvent, incident: { firstSeen: number; action: string } | undefined): PhaseSample[] {
    if (ends.has(e.step)) {
      this.runs.delete(e.incidentId);
      return [];
    }
    if (e.dryRun || !incident || !isRepair(incident.action)) return [];
    const run = this.runs.get(e.incidentId) ?? {};
    this.runs.set(e.incidentId, run);
    const sample = (phase: RepairPhase, from: number): PhaseSample => ({
      incidentId: e.incidentId,
      action: incident.action,
      phase,
      seconds: Math.max(0, e.at - from) / 1000,
    });
    if (e.step === 'cordoned' && run.cordonAt === undefined) {
      run.cordonAt = e.at;
      return [sample('detection_to_cordon', incident.firstSeen)];
    }
    if (e.step === 'drained' && run.drainedAt === undefined && run.cordonAt !== undefined) {
      run.drainedAt = e.at;
      return [sample('cordon_to_drained', run.cordonAt)];
    }
    if (e.step === 'gpu_scan' && e.details.healthy === true && run.drainedAt !== undefined && !run.healthy) {
      run.healthy = true;
      return [sample('drained_to_healthy', run.drainedAt)];
    }
    return [];
  }

  /** Incidents being timed (for tests: the clock forgets an incident at its end). */
  get size(): number {
    return this.runs.size;
  }
}

function isRepair(action: string): boolean {
  return action === 'reset' || action === 'reboot' || action === 'replace';
}
