/**
 * The policy decision: what to do about one fault on one node, and whether a human must say yes.
 * Pure: the caller gathers the node's remediation history (history.ts) and the time.
 */

import type { FaultInput } from '../domain/fault.js';
import { NODE_CONDITION } from '../domain/finding.js';
import type { PolicyMode, RemediationAction } from '../domain/incident.js';
import type { Policy, RemediationRule } from '../domain/policy.js';
import { escalationAfter } from './escalation.js';

export type { FaultInput };

export interface RemediationHistory {
  /** Reboots done for this fault (same node, same fault key) within the escalation window. */
  rebootsForFault: number;
  lastRebootAt?: number;
  /** Remediations of this node within `escalation.windowDays`. */
  remediationsInWindow: number;
  /** GPU resets run for this fault (done or failed) within the escalation window; absent = none. */
  resetsForFault?: number;
  lastResetAt?: number;
}

export interface Decision {
  action: RemediationAction;
  mode: PolicyMode;
  /** One or two sentences for the Slack thread and the audit trail. */
  reason: string;
  /** A reboot turned into a replace because the fault came back. */
  escalated?: boolean;
  /** Evict around a PDB after the drain timeout (a rule said so). */
  force?: boolean;
}

/**
 * The XIDs NVIDIA's catalog (data/xid-catalog.csv) recommends `reset_gpu` for, all critical: a GPU reset
 * (about a minute, no EC2 call) is the default repair; a reset that does not hold escalates to a reboot.
 * policy.test.ts checks this list against the catalog.
 */
export const ResetXids: ReadonlySet<number> = new Set([
  46, 48, 62, 64, 74, 95, 109, 110, 119, 120, 136, 140, 143, 155, 156, 158, 169, 171, 172,
]);

/** EKS node auto repair replaces on these; 79 = fallen off the bus. */
export const ReplaceXids: ReadonlySet<number> = new Set([74, 79, 119, 120, 121, 140]);
/** Memory faults that a reset usually clears, but that mean bad hardware if they return. */
export const MemoryFaultXids: ReadonlySet<number> = new Set([48, 64, 95]);
/**
 * XID 154 "GPU recovery action changed": NVIDIA calls it informational about another XID, and its action
 * is only in the kernel line. The exporter shows a fixed text, so the rules cannot always read it: a human
 * decides by default (a policy rule for xid 154 can make it automatic).
 */
export const RecoveryActionXid = 154;

const destructive: ReadonlySet<RemediationAction> = new Set(['drain', 'reset', 'reboot', 'replace']);
const modeStrictness: Record<PolicyMode, number> = { auto: 0, approve: 1, off: 2 };

function stricter(a: PolicyMode, b: PolicyMode): PolicyMode {
  return modeStrictness[a] >= modeStrictness[b] ? a : b;
}

/** The default table (the README's "Policy file" section lists it), before rules and escalation. */
export function defaultDecision(fault: FaultInput): Decision {
  if (fault.kind === 'collection' || fault.category === 'COLLECTION_FAILED') {
    return {
      action: 'none',
      mode: 'off',
      reason: 'Could not collect GPU data: alert only, nothing is known to be wrong.',
    };
  }
  if (fault.category === NODE_CONDITION) {
    // Kernel, network, storage, runtime: no GPU repair is known to help. A policy rule may still act on it.
    return {
      action: 'none',
      mode: 'off',
      reason:
        'A node problem, not a GPU fault: alert only (a policy rule for NODE_CONDITION can choose an action).',
    };
  }
  if (fault.severity !== 'critical') {
    return { action: 'none', mode: 'off', reason: `${fault.category} is a ${fault.severity}: alert only.` };
  }
  if (fault.kind === 'xid' && fault.xid !== undefined && ResetXids.has(fault.xid)) {
    return {
      action: 'reset',
      mode: 'auto',
      reason: `XID ${fault.xid}: NVIDIA recommends a GPU reset; reset the GPU (no reboot), reboot if it does not hold.`,
    };
  }
  if (fault.xid !== undefined && ReplaceXids.has(fault.xid)) {
    return {
      action: 'replace',
      mode: 'auto',
      reason: `XID ${fault.xid} needs new hardware: replace the instance.`,
    };
  }
  if (fault.kind === 'ecc_dbe' || fault.kind === 'row_remap_failure') {
    return {
      action: 'reboot',
      mode: 'auto',
      reason: `${fault.category}: a reboot resets the GPU memory; replace if it returns.`,
    };
  }
  if (fault.xid !== undefined && MemoryFaultXids.has(fault.xid)) {
    return {
      action: 'reboot',
      mode: 'auto',
      reason: `XID ${fault.xid} (GPU memory fault): reboot; replace if it returns.`,
    };
  }
  if (fault.kind === 'gpu_missing') {
    return {
      action: 'reboot',
      mode: 'approve',
      reason: 'A GPU is missing: a reboot may bring it back; replace if it does not.',
    };
  }
  if (fault.kind === 'health') {
    return {
      action: 'reboot',
      mode: 'approve',
      reason: 'DCGM health check failed: reboot once a human agrees.',
    };
  }
  if (fault.xid === RecoveryActionXid) {
    const action: RemediationAction = fault.recommendedAction === 'replace' ? 'replace' : 'reboot';
    return {
      action,
      mode: 'approve',
      reason: `XID 154: the driver changed the GPU's recovery action, which may need a ${action}; the XID it follows is handled on its own — a human decides.`,
    };
  }
  if (fault.kind === 'xid' && fault.xid !== undefined) {
    return { action: 'reboot', mode: 'auto', reason: `Critical XID ${fault.xid}: a reboot resets the GPU.` };
  }
  // Custom categories, node conditions and unknown critical faults: follow the classifier's bucket, but ask.
  const recommended = fault.recommendedAction;
  const action: RemediationAction =
    recommended === 'replace' ? 'replace' : recommended === 'reboot' ? 'reboot' : 'none';
  if (action === 'none') {
    return {
      action: 'none',
      mode: 'off',
      reason: `${fault.category}: no repair is known to help; alert only.`,
    };
  }
  return { action, mode: 'approve', reason: `${fault.category}: ${action} recommended; a human decides.` };
}

export function ruleMatches(rule: RemediationRule, fault: FaultInput): boolean {
  const m = rule.match;
  const source = fault.source === 'cache' ? 'llm' : fault.source;
  return (
    (m.category === undefined || m.category === fault.category) &&
    (m.xid === undefined || m.xid === fault.xid) &&
    (m.kind === undefined || m.kind === fault.kind) &&
    (m.severity === undefined || m.severity === fault.severity) &&
    (m.source === undefined || m.source === source)
  );
}

const hourMs = 3_600_000;

/**
 * The action and mode for a fault. Order: a matching rule (first wins) or the default table; then
 * escalation (a reboot that did not hold becomes replace); then the checks that hand it to a human:
 * a node remediated too often, a destructive action whose category came from the LLM, and a fault first
 * seen at start-up (its sticky value may be days old — acting on it automatically could reboot a node for a
 * fault long fixed, so a human looks first).
 */
export function decide(
  fault: FaultInput,
  policy: Policy,
  history: RemediationHistory,
  now: number,
): Decision {
  const remediation = policy.remediation;
  const ruleIndex = remediation.rules.findIndex((r) => ruleMatches(r, fault));
  const rule = remediation.rules[ruleIndex];
  let decision: Decision = rule
    ? {
        action: rule.action,
        mode: rule.mode,
        reason: `Policy rule ${ruleIndex + 1} (${describeMatch(rule)}): ${rule.action}, ${rule.mode}.`,
        ...(rule.force ? { force: true } : {}),
      }
    : defaultDecision(fault);

  if (decision.action === 'none') return { ...decision, mode: 'off' };

  const esc = remediation.escalation;
  if (decision.action === 'reset') {
    const resets = history.resetsForFault ?? 0;
    const returned =
      history.lastResetAt !== undefined && now - history.lastResetAt <= esc.returnWithinHours * hourMs;
    if (resets > 0 || returned) {
      decision = {
        ...decision,
        action: escalationAfter('reset') === 'reboot' ? 'reboot' : decision.action,
        escalated: true,
        reason: `${decision.reason} Escalated to reboot: a GPU reset for it ${returned ? `did not hold (within ${esc.returnWithinHours} h)` : 'was already tried'}.`,
      };
    }
  }
  if (decision.action === 'reboot') {
    const returned =
      history.lastRebootAt !== undefined && now - history.lastRebootAt <= esc.returnWithinHours * hourMs;
    if (returned || history.rebootsForFault >= esc.maxRebootsPerFault) {
      const why = returned
        ? `it came back within ${esc.returnWithinHours} h of a reboot`
        : `${history.rebootsForFault} reboot(s) already done for it`;
      decision = {
        ...decision,
        action: 'replace',
        escalated: true,
        reason: `${decision.reason} Escalated to replace: ${why}.`,
      };
    }
  }

  if (decision.mode === 'off') return decision;

  if (history.remediationsInWindow >= esc.maxRemediationsPerNode && decision.mode === 'auto') {
    decision = {
      ...decision,
      mode: 'approve',
      reason: `${decision.reason} ${fault.node} was remediated ${history.remediationsInWindow} times in ${esc.windowDays} days: a human decides.`,
    };
  }
  if ((fault.source === 'llm' || fault.source === 'cache') && destructive.has(decision.action)) {
    const mode = stricter(decision.mode, remediation.llmDestructiveMode);
    if (mode !== decision.mode) {
      decision = { ...decision, mode, reason: `${decision.reason} The category came from the LLM: ${mode}.` };
    }
  }
  if (fault.preexisting && decision.mode === 'auto') {
    decision = {
      ...decision,
      mode: 'approve',
      reason: `${decision.reason} First seen at start-up (age unknown): a human decides.`,
    };
  }
  return decision;
}

function describeMatch(rule: RemediationRule): string {
  const parts = Object.entries(rule.match).map(([k, v]) => `${k}=${String(v)}`);
  return parts.length > 0 ? parts.join(', ') : 'any fault';
}
