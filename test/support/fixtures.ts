/** Shared test data: the one Incident builder (variants only override fields) and progress events. */
import { withoutDetails } from '../../src/domain/event-details.js';
import {
  type ProgressEvent,
  type ProgressEventBase,
  type ProgressStep,
  progressEvent,
  type StepDetails,
} from '../../src/domain/events.js';
import type { Incident, IncidentState } from '../../src/domain/incident.js';
import type { NewIncident } from '../../src/remediate/ports.js';

export const T0 = Date.parse('2025-06-01T03:00:00.000Z');

export function incident(over: Partial<Incident> = {}): Incident {
  return {
    id: 'inc-1',
    node: 'ip-10-0-1-23.ec2.internal',
    instanceId: 'i-0123456789abcdef0',
    instanceType: 'p5.48xlarge',
    nodeGroup: 'gpu-p5',
    faultKey: 'xid:79:gpu3',
    category: 'XID_CRITICAL_79',
    severity: 'critical',
    recommendedAction: 'replace',
    plannedAction: 'replace',
    mode: 'auto',
    xid: 79,
    gpu: 3,
    explanation: 'GPU 3 has fallen off the bus (XID 79).',
    source: 'rules',
    evidence: ['NVRM: Xid (PCI:0000:53:00): 79, GPU has fallen off the bus.'],
    state: 'detected',
    preexisting: false,
    firstSeen: T0,
    lastSeen: T0 + 60_000,
    count: 2,
    updatedAt: T0 + 60_000,
    ...over,
  };
}

/** The same incident as a store's `create` takes it (no id, no timestamps the store sets). */
export function newIncident(over: Partial<NewIncident> = {}): NewIncident {
  const { id: _id, updatedAt: _updatedAt, closedAt: _closedAt, ...fields } = incident();
  return { ...fields, ...over };
}

const STATE_AFTER: Partial<Record<ProgressStep, IncidentState>> = {
  detected: 'detected',
  approval_needed: 'awaiting_approval',
  cordoned: 'cordoned',
  reboot_issued: 'rebooting',
  replace_issued: 'replacing',
  resolved: 'resolved',
  escalated: 'escalated',
  failed: 'failed',
  cancelled: 'cancelled',
};

/** An event of `step` (without details), or of a step with its details. */
export function event(
  step: ProgressStep | StepDetails,
  over: Partial<ProgressEventBase> = {},
): ProgressEvent {
  const told = typeof step === 'string' ? withoutDetails(step) : step;
  const base = {
    incidentId: 'inc-1',
    node: 'ip-10-0-1-23.ec2.internal',
    state: STATE_AFTER[told.step] ?? 'draining',
    at: T0 + 120_000,
  };
  return progressEvent({ ...base, ...over }, told);
}
