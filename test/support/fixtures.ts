/**
 * Test data: the one Incident builder and the progress events that go with it. Variants below only override
 * the fields they need, so a change to the Incident shape is made here once.
 */
import type { ProgressEvent, ProgressStep } from '../../src/domain/events.js';
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

export function event(step: ProgressStep, over: Partial<ProgressEvent> = {}): ProgressEvent {
  return {
    incidentId: 'inc-1',
    node: 'ip-10-0-1-23.ec2.internal',
    step,
    state: STATE_AFTER[step] ?? 'draining',
    at: T0 + 120_000,
    details: {},
    ...over,
  };
}

/** The chat layer's incident: a p4d node awaiting approval of a replacement, at `slackT0`. */
export const slackT0 = Date.UTC(2026, 10, 29, 3, 12, 5);

export function slackIncident(over: Partial<Incident> = {}): Incident {
  return incident({
    id: 'inc-0001',
    node: 'ip-10-0-1-2.ec2.internal',
    instanceId: 'i-0abc1234def567890',
    instanceType: 'p4d.24xlarge',
    nodeGroup: 'gpu-a100',
    mode: 'approve',
    explanation: 'GPU 3 has fallen off the bus.',
    evidence: ['NVRM: Xid (PCI:0000:91:00): 79, GPU has fallen off the bus.'],
    state: 'awaiting_approval',
    firstSeen: slackT0,
    lastSeen: slackT0,
    count: 1,
    updatedAt: slackT0,
    ...over,
  });
}

/** The `i`th progress event of a thread, one second apart from `slackT0`. */
export function slackEvent(incidentId: string, step: ProgressEvent['step'], i: number): ProgressEvent {
  return {
    incidentId,
    node: 'ip-10-0-1-2.ec2.internal',
    step,
    state: 'draining',
    at: slackT0 + i * 1000,
    elapsedMs: 1200 + i,
    details: step === 'pod_evicted' ? { pod: `ml/train-${i}`, evicted: i, total: 9 } : {},
  };
}
