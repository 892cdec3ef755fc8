/**
 * Progress events: what happened to an incident, published on the internal bus by the monitor and the
 * remediation engine; the Slack thread, the notification sinks and the audit trail subscribe.
 */
import type { IncidentState } from './incident.js';

export const ProgressSteps = [
  'detected',
  'policy',
  'approval_needed',
  'approved',
  'cordoned',
  'drain_started',
  'pod_evicted',
  'pdb_wait',
  'drained',
  'reboot_issued',
  'node_back',
  'gpu_scan',
  'replace_issued',
  'replacement_ready',
  'uncordoned',
  'kubeflow_jobs',
  'kubeflow_job_running',
  'kubeflow_job_not_running',
  'resolved',
  'escalated',
  'failed',
  'cancelled',
  'dismissed',
  'safety_limit',
  'excluded',
] as const;
export type ProgressStep = (typeof ProgressSteps)[number];

export interface ProgressEvent {
  incidentId: string;
  node: string;
  step: ProgressStep;
  /** The incident's state after this step. */
  state: IncidentState;
  at: number;
  /** Time the step took, or since the remediation started for end states. */
  elapsedMs?: number;
  /** Nothing was changed: the step is reported as "would …". */
  dryRun?: boolean;
  /** `monitor`, `slack:U123`, `cli:alice`. */
  actor?: string;
  /** Step-specific facts: evicted pod names, PDB, boot IDs, replacement node, jobs, limit names … */
  details: Record<string, unknown>;
}

export type ProgressListener = (event: ProgressEvent) => void;

/** A tiny synchronous bus. Listeners must not throw into the publisher; a throwing listener is isolated. */
export class ProgressBus {
  private readonly listeners = new Set<ProgressListener>();
  private readonly onListenerError: (error: unknown, event: ProgressEvent) => void;

  constructor(onListenerError: (error: unknown, event: ProgressEvent) => void = () => {}) {
    this.onListenerError = onListenerError;
  }

  subscribe(listener: ProgressListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(event: ProgressEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.onListenerError(error, event);
      }
    }
  }
}
