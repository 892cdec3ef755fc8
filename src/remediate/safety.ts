/**
 * Safety limits: pure checks that decide whether a remediation may start now.
 * The services gather the numbers from the stores; the breaker's open/closed state is persisted by them.
 */
import { isNodeProblem } from '../domain/finding.js';
import type { Incident, RemediationAction } from '../domain/incident.js';
import { isWorking } from '../domain/incident.js';
import { OptOutLabel } from '../domain/node.js';
import type { Exclusion } from '../domain/ports.js';

export const SafetyLimits = ['concurrency', 'breaker', 'rate', 'excluded', 'opt_out'] as const;
export type SafetyLimit = (typeof SafetyLimits)[number];

export interface SafetyInput {
  trigger: 'auto' | 'manual';
  action: RemediationAction;
  node: string;
  /** Remediations in flight now (claimed and not finished). */
  inFlight: number;
  maxConcurrent: number;
  /** Start times of recent remediations (any node). */
  recentRemediations: number[];
  perHour: number;
  now: number;
  breakerOpen: boolean;
  dryRun: boolean;
  excluded: Exclusion | undefined;
  optOutLabel: boolean;
}

export type SafetyVerdict = { allowed: true } | { allowed: false; limit: SafetyLimit; message: string };

const hourMs = 3_600_000;

/**
 * Exclusions and the opt-out label stop everyone, a human too: the operator said "never touch this node",
 * and undoing that is an explicit, audited `unexclude`. An authorized human bypasses the breaker and the
 * rate limit (they are there to stop a runaway bot, not a person), but not the concurrency limit, except
 * for an uncordon, which only gives capacity back.
 */
export function checkSafety(input: SafetyInput): SafetyVerdict {
  const prefix = input.dryRun ? '(dry run) ' : '';
  if (input.excluded) {
    const until = input.excluded.expiresAt
      ? ` until ${new Date(input.excluded.expiresAt).toISOString()}`
      : '';
    return {
      allowed: false,
      limit: 'excluded',
      message: `${prefix}${input.node} is excluded${until} by ${input.excluded.createdBy} (${input.excluded.reason}). Unexclude it first (\`/gpu unexclude ${input.node}\` or \`gpu-medic unexclude ${input.node}\`).`,
    };
  }
  if (input.optOutLabel) {
    return {
      allowed: false,
      limit: 'opt_out',
      message: `${prefix}${input.node} carries the opt-out label ${OptOutLabel}=true: gpu-medic leaves it alone. Remove the label first.`,
    };
  }
  const manual = input.trigger === 'manual';
  if (!manual && input.breakerOpen) {
    return {
      allowed: false,
      limit: 'breaker',
      message: `${prefix}Automatic remediation is paused (circuit breaker open): ${input.action} of ${input.node} needs a human. \`/gpu resume\` re-enables it.`,
    };
  }
  if (input.action !== 'uncordon' && input.inFlight >= input.maxConcurrent) {
    return {
      allowed: false,
      limit: 'concurrency',
      message: `${prefix}${input.inFlight} remediation(s) already in flight (limit ${input.maxConcurrent}): ${input.action} of ${input.node} must wait.`,
    };
  }
  if (!manual) {
    const recent = input.recentRemediations.filter((t) => input.now - t < hourMs).length;
    if (recent >= input.perHour) {
      return {
        allowed: false,
        limit: 'rate',
        message: `${prefix}${recent} remediations in the last hour (limit ${input.perHour}): ${input.action} of ${input.node} needs a human.`,
      };
    }
  }
  return { allowed: true };
}

export interface BreakerInput {
  /** Distinct GPU nodes that are unhealthy, or cordoned by us, within the breaker window. */
  unhealthyOrCordonedByUs: number;
  gpuNodeCount: number;
  maxUnhealthyPercent: number;
  maxUnhealthyNodes?: number;
}

/**
 * The GPU nodes the breaker counts: a recent critical open incident, or a remediation in flight. Node problems
 * (NODE_CONDITION: kernel, network, storage, runtime) are never counted — a fleet-wide kernel or network issue
 * is not a fleet of broken GPUs, and must not pause GPU repairs — even when a policy rule acts on them.
 */
export function breakerNodes(
  open: readonly Pick<Incident, 'node' | 'category' | 'severity' | 'state' | 'lastSeen'>[],
  since: number,
): Set<string> {
  const nodes = new Set<string>();
  for (const i of open) {
    if (isNodeProblem(i)) continue;
    if (isWorking(i.state) || (i.severity === 'critical' && i.lastSeen >= since)) nodes.add(i.node);
  }
  return nodes;
}

/** Trips when MORE than maxUnhealthyPercent of GPU nodes (or more than maxUnhealthyNodes) are affected. */
export function shouldTripBreaker(input: BreakerInput): { trip: boolean; message: string } {
  const { unhealthyOrCordonedByUs: n, gpuNodeCount: total } = input;
  const percent = total > 0 ? (n * 100) / total : n > 0 ? 100 : 0;
  // One broken node alone never trips the percentage limit: in a small cluster (say 4 nodes, 25 %) it would
  // otherwise be impossible to repair any node automatically. MAX_UNHEALTHY_NODES still applies.
  const overPercent = n > 1 && percent > input.maxUnhealthyPercent;
  const overCount = input.maxUnhealthyNodes !== undefined && n > input.maxUnhealthyNodes;
  const share = `${n} of ${total} GPU nodes (${Math.round(percent)}%) are unhealthy or cordoned by gpu-medic`;
  if (!overPercent && !overCount) return { trip: false, message: share };
  const limit = overCount
    ? `more than ${input.maxUnhealthyNodes} nodes`
    : `more than ${input.maxUnhealthyPercent}%`;
  return {
    trip: true,
    message: `Circuit breaker open: ${share}, ${limit}. Automatic remediation stopped until \`/gpu resume\`.`,
  };
}
