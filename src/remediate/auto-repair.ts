/**
 * Sharing a node with EKS node auto repair (docs: "Automatically repair nodes in EKS clusters"). Pure.
 *
 * Auto repair acts on node conditions, not on DCGM: when the EKS node monitoring agent (or the kubelet) has
 * set one of the conditions below to unhealthy, EKS reboots or replaces the node after the documented wait.
 * Two repairers on one node is a hazard (a reboot in the middle of a drain, a replace racing a replace), so
 * for such a node gpu-medic defers: it alerts, says in the thread that EKS will act, watches the node, and
 * reports what happened (rebooted, replaced, or not acted within the window, after which its own policy
 * applies). It never acts on the node while deferring.
 *
 * EKS_AUTO_REPAIR:
 *   - detect (default): managed node group nodes defer when DescribeNodegroup says `nodeRepairConfig.enabled`
 *     (asked once per node group, cached); EKS Auto Mode nodes always defer (auto repair is on there and
 *     cannot be turned off).
 *   - defer: managed node group and Auto Mode nodes defer without asking EKS (no eks:DescribeNodegroup
 *     permission needed; for fleets where auto repair is known to be on).
 *   - ignore: never defer; gpu-medic acts as if auto repair did not exist.
 * Karpenter's own node repair (an alpha feature gate) cannot be detected from the cluster and is not deferred to.
 */
import type { GpuNode } from '../domain/node.js';
import { isAutoModeNode, managedNodeGroupOf } from './node-kind.js';
import type { NodeRepairConfig } from './ports.js';

export const AutoRepairModes = ['detect', 'defer', 'ignore'] as const;
export type AutoRepairMode = (typeof AutoRepairModes)[number];

const minutes = 60_000;

/** The conditions auto repair acts on and its documented "repair after" wait for each. */
export const AutoRepairWaits: Readonly<Record<string, number>> = {
  AcceleratedHardwareReady: 10 * minutes,
  ContainerRuntimeReady: 30 * minutes,
  KernelReady: 30 * minutes,
  NetworkingReady: 30 * minutes,
  StorageReady: 30 * minutes,
  Ready: 30 * minutes,
};

/** Beyond the documented wait: EKS needs some minutes to start a repair it decided on. */
export const AUTO_REPAIR_GRACE_MS = 10 * minutes;

export interface RepairableCondition {
  type: string;
  status: string;
  reason?: string;
  waitMs: number;
}

/** The first condition auto repair would act on (the GPU one first), or undefined when all are healthy. */
export function repairableCondition(node: Pick<GpuNode, 'conditions'>): RepairableCondition | undefined {
  for (const type of Object.keys(AutoRepairWaits)) {
    const c = node.conditions.find((x) => x.type === type);
    if (!c) continue;
    // The agent's conditions are False when unhealthy; Ready is also bad when Unknown (kubelet silent).
    const bad = type === 'Ready' ? c.status !== 'True' : c.status === 'False';
    if (bad) {
      return {
        type,
        status: c.status,
        ...(c.reason ? { reason: c.reason } : {}),
        waitMs: AutoRepairWaits[type] ?? 30 * minutes,
      };
    }
  }
  return undefined;
}

export type RepairOwner = { kind: 'managed-node-group'; nodeGroup: string } | { kind: 'auto-mode' };

/** Who would run auto repair on this node, if anyone could. */
export function repairOwnerOf(node: Pick<GpuNode, 'labels'>): RepairOwner | undefined {
  if (isAutoModeNode(node)) return { kind: 'auto-mode' };
  const nodeGroup = managedNodeGroupOf(node);
  return nodeGroup ? { kind: 'managed-node-group', nodeGroup } : undefined;
}

export type DeferDecision =
  | { defer: true; owner: RepairOwner; condition: RepairableCondition; windowMs: number }
  | { defer: false; why: string };

/**
 * Whether gpu-medic leaves this node to auto repair. `groupRepair`: DescribeNodegroup's answer for the
 * node's group (detect mode only; `'unknown'` when EKS could not be asked, which does not defer).
 */
export function deferToAutoRepair(input: {
  mode: AutoRepairMode;
  node: Pick<GpuNode, 'labels' | 'conditions'>;
  groupRepair?: NodeRepairConfig | 'unknown';
  windowMs?: number;
}): DeferDecision {
  if (input.mode === 'ignore') return { defer: false, why: 'EKS_AUTO_REPAIR=ignore' };
  const owner = repairOwnerOf(input.node);
  if (!owner) return { defer: false, why: 'not in an EKS managed node group or Auto Mode' };
  const condition = repairableCondition(input.node);
  if (!condition) return { defer: false, why: 'no node condition auto repair acts on is unhealthy' };
  if (owner.kind === 'managed-node-group' && input.mode === 'detect') {
    if (input.groupRepair === 'unknown') {
      return { defer: false, why: `auto repair of ${owner.nodeGroup} could not be read from EKS` };
    }
    if (input.groupRepair?.enabled !== true) {
      return { defer: false, why: `auto repair is off for node group ${owner.nodeGroup}` };
    }
  }
  const windowMs = input.windowMs ?? condition.waitMs + AUTO_REPAIR_GRACE_MS;
  return { defer: true, owner, condition, windowMs };
}

export type AutoRepairOutcome = 'rebooted' | 'replaced' | 'not_acted';

/** What the node says now about a deferral that began with `bootIdBefore` on `instanceIdBefore`. */
export function autoRepairOutcome(
  node: Pick<GpuNode, 'ready' | 'bootId' | 'instanceId'> | undefined,
  before: { bootId?: string; instanceId?: string },
  timedOut: boolean,
): AutoRepairOutcome | undefined {
  if (!node) return 'replaced';
  if (before.instanceId && node.instanceId && node.instanceId !== before.instanceId) return 'replaced';
  if (node.ready && before.bootId && node.bootId && node.bootId !== before.bootId) return 'rebooted';
  return timedOut ? 'not_acted' : undefined;
}
