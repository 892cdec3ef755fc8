/**
 * The escalation ladder: what comes after a repair that did not hold. A reset that fails (or whose GPUs do
 * not come back clean) goes to a reboot, a reboot to a replacement, and a replacement to a person. Pure.
 */
import type { RemediationAction } from '../domain/incident.js';

/** The next rung after `action`, or `human` when there is none (a replacement, or an action that repairs nothing). */
export type EscalationTarget = 'reboot' | 'replace' | 'human';

export function escalationAfter(action: RemediationAction): EscalationTarget {
  switch (action) {
    case 'reset':
      return 'reboot';
    case 'reboot':
      return 'replace';
    default:
      return 'human';
  }
}

/** The journal's `escalateTo` for a run of `action` that did not cure the fault: undefined = a human decides. */
export function escalateToAfter(action: RemediationAction): 'reboot' | 'replace' | undefined {
  const next = escalationAfter(action);
  return next === 'human' ? undefined : next;
}
