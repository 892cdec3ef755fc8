import type { Action, ClassificationSource, Severity } from './finding.js';

/** What gpu-medic can do to a node. `none` = alert only. */
/** `reset`: `nvidia-smi --gpu-reset` on the node (one GPU, or all of them on NVSwitch types), no EC2 call. */
export const RemediationActions = [
  'none',
  'cordon',
  'uncordon',
  'drain',
  'reset',
  'reboot',
  'replace',
] as const;
export type RemediationAction = (typeof RemediationActions)[number];

/** auto: do it and thread progress · approve: buttons, wait for an authorized human · off: alert only. */
export const PolicyModes = ['auto', 'approve', 'off'] as const;
export type PolicyMode = (typeof PolicyModes)[number];

/**
 * The incident state machine. Terminal states: resolved, escalated, failed, cancelled, dismissed.
 * detected → awaiting_approval → cordoned → draining → drained → rebooting | replacing → verifying → resolved
 */
export const IncidentStates = [
  'detected',
  'awaiting_approval',
  'cordoned',
  'draining',
  'drained',
  'rebooting',
  'replacing',
  'verifying',
  'resolved',
  'escalated',
  'failed',
  'cancelled',
  'dismissed',
] as const;
export type IncidentState = (typeof IncidentStates)[number];

export const TerminalStates: ReadonlySet<IncidentState> = new Set([
  'resolved',
  'escalated',
  'failed',
  'cancelled',
  'dismissed',
]);

export function isOpen(state: IncidentState): boolean {
  return !TerminalStates.has(state);
}

/** Not started: the monitor found it, or it waits for a human. */
export const PendingStates: readonly IncidentState[] = ['detected', 'awaiting_approval'];

/**
 * A run owns the node: these are resumed after a restart, count as in flight, and a node in one of them is
 * expected to look broken (the monitor does not open a new incident for what the run itself causes).
 */
export const WorkingStates: readonly IncidentState[] = [
  'cordoned',
  'draining',
  'drained',
  'rebooting',
  'replacing',
  'verifying',
];

export function isWorking(state: IncidentState): boolean {
  return WorkingStates.includes(state);
}

/** One fault on one node, deduplicated across scans by (node, faultKey) while open. */
export interface Incident {
  id: string;
  node: string;
  instanceId?: string;
  instanceType?: string;
  nodeGroup?: string;
  /** Finding.key: `xid:79:gpu3`, `ecc_dbe:gpu0`, `gpu_missing` … */
  faultKey: string;
  category: string;
  severity: Severity;
  /** The classifier's recommendation (NVIDIA's bucket). */
  recommendedAction: Action;
  /** What the policy decided to do about it, and how. */
  plannedAction: RemediationAction;
  mode: PolicyMode;
  xid?: number;
  gpu?: number;
  explanation: string;
  source: ClassificationSource;
  evidence: string[];
  state: IncidentState;
  /** First seen at start-up with a sticky value of unknown age. */
  preexisting: boolean;
  firstSeen: number;
  lastSeen: number;
  /** Scans that saw it. */
  count: number;
  updatedAt: number;
  closedAt?: number;
  /** Free-form reason for the current state (who approved, why it failed …). */
  stateReason?: string;
}
