/** The incident state machine and the step plan of each action. Pure. */
import type { IncidentState, RemediationAction } from '../domain/incident.js';
import { TerminalStates } from '../domain/incident.js';

// The working and pending states are domain facts; re-exported for the remediation modules that read them here.
export { isWorking, PendingStates, WorkingStates } from '../domain/incident.js';

export const StepNames = [
  'cordon',
  'kubeflow_snapshot',
  'drain',
  'reset',
  'reboot',
  'wait_node_back',
  'verify_scan',
  'diagnose',
  'uncordon',
  'replace',
  'wait_replacement',
  'verify_replacement',
  'follow_jobs',
  'resolve',
] as const;
export type StepName = (typeof StepNames)[number];

/** The bookkeeping row the services write when a run is claimed (who, why, force, dry run). */
export const PlanStep = 'plan';

const plans: Record<RemediationAction, readonly StepName[]> = {
  none: [],
  cordon: ['cordon', 'resolve'],
  uncordon: ['uncordon', 'resolve'],
  drain: ['cordon', 'kubeflow_snapshot', 'drain', 'follow_jobs', 'resolve'],
  reset: [
    'cordon',
    'kubeflow_snapshot',
    'drain',
    'reset',
    'verify_scan',
    'uncordon',
    'follow_jobs',
    'resolve',
  ],
  reboot: [
    'cordon',
    'kubeflow_snapshot',
    'drain',
    'reboot',
    'wait_node_back',
    'verify_scan',
    'uncordon',
    'follow_jobs',
    'resolve',
  ],
  replace: [
    'cordon',
    'kubeflow_snapshot',
    'drain',
    'replace',
    'wait_replacement',
    'verify_replacement',
    'follow_jobs',
    'resolve',
  ],
};

export interface PlanOptions {
  /** POST_REPAIR_DIAG is on: a DCGM diagnostic runs after the repair's settle gate, before uncordon. */
  diagnose?: boolean;
}

/**
 * The steps of an action. With `diagnose`, every plan that repairs a node and then uncordons it gets the
 * `diagnose` step right before its `uncordon` (after the settle gate); a plan that only uncordons (a human's
 * uncordon) does not: nothing was repaired there.
 */
export function planSteps(action: RemediationAction, options: PlanOptions = {}): readonly StepName[] {
  const steps = plans[action];
  const at = steps.indexOf('uncordon');
  if (!options.diagnose || at <= 0 || steps.includes('diagnose')) return steps;
  return [...steps.slice(0, at), 'diagnose', ...steps.slice(at)];
}

/** The incident's state while a step runs. */
export const stepState: Record<StepName, IncidentState> = {
  cordon: 'cordoned',
  kubeflow_snapshot: 'cordoned',
  drain: 'draining',
  // A reset takes about a minute and keeps the node: it runs in `drained` (the thread says what runs).
  reset: 'drained',
  reboot: 'rebooting',
  wait_node_back: 'rebooting',
  verify_scan: 'verifying',
  diagnose: 'verifying',
  uncordon: 'verifying',
  replace: 'replacing',
  wait_replacement: 'replacing',
  verify_replacement: 'verifying',
  follow_jobs: 'verifying',
  resolve: 'resolved',
};

/** The state after a step completed, where it differs from stepState. */
export const stepDoneState: Partial<Record<StepName, IncidentState>> = { drain: 'drained' };

/** The state an incident is claimed into when its run starts (the compare-and-set target). */
export function claimState(action: RemediationAction): IncidentState | undefined {
  const first = plans[action][0];
  return first ? stepState[first] : undefined;
}

const ends: IncidentState[] = ['escalated', 'failed', 'cancelled'];

export const transitions: Record<IncidentState, readonly IncidentState[]> = {
  detected: ['awaiting_approval', 'cordoned', 'verifying', 'resolved', 'dismissed', ...ends],
  awaiting_approval: ['cordoned', 'verifying', 'resolved', 'dismissed', ...ends],
  cordoned: ['draining', 'resolved', ...ends],
  draining: ['drained', ...ends],
  drained: ['rebooting', 'replacing', 'verifying', 'resolved', ...ends],
  rebooting: ['verifying', ...ends],
  replacing: ['verifying', 'resolved', ...ends],
  verifying: ['resolved', ...ends],
  resolved: [],
  escalated: [],
  failed: [],
  cancelled: [],
  dismissed: [],
};

export function canTransition(from: IncidentState, to: IncidentState): boolean {
  return from === to ? !TerminalStates.has(from) : transitions[from].includes(to);
}
