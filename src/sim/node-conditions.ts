/**
 * A node's `status.conditions` as the kubelet and the node health agents write them. A transition time moves
 * only when a condition's status changes, as on a real node.
 */
import { ACCELERATED_READY, NODE_CONDITION_DEFAULTS, type NodeState } from './cluster-types.js';
import type { KubeNode, NodeConditionObject } from './k8s-objects.js';
import type { ResourceStore } from './resource-store.js';

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** The conditions of a healthy node (plus AcceleratedHardwareReady on a GPU node), all as of `now`. */
export function baseConditions(gpuNode: boolean, now: string): NodeConditionObject[] {
  const base = NODE_CONDITION_DEFAULTS.map((c) => ({
    ...c,
    lastHeartbeatTime: now,
    lastTransitionTime: now,
  }));
  if (gpuNode) base.push({ ...ACCELERATED_READY, lastHeartbeatTime: now, lastTransitionTime: now });
  return base;
}

/** Sets (or replaces, by type) a node condition, as the EKS node monitoring agent or NPD would. */
export function setCondition(
  store: ResourceStore,
  node: string,
  condition: { type: string; status: ConditionStatus; reason?: string; message?: string },
  now: string,
): void {
  store.update<KubeNode>('nodes', undefined, node, (n) => {
    const existing = n.status.conditions.find((c) => c.type === condition.type);
    const next: NodeConditionObject = {
      ...condition,
      lastHeartbeatTime: now,
      lastTransitionTime:
        existing && existing.status === condition.status ? existing.lastTransitionTime : now,
    };
    n.status.conditions = existing
      ? n.status.conditions.map((c) => (c.type === condition.type ? next : c))
      : [...n.status.conditions, next];
    return n;
  });
}

/** The kubelet's Ready condition: True, or Unknown once it stops posting status (a reboot, a termination). */
export function setReady(
  store: ResourceStore,
  node: string,
  ready: boolean,
  why: { reason: string; message: string },
  now: string,
): void {
  store.update<KubeNode>('nodes', undefined, node, (n) => {
    n.status.conditions = n.status.conditions.map((c) => {
      if (c.type !== 'Ready') return c;
      const status = ready ? 'True' : 'Unknown';
      return {
        ...c,
        status,
        reason: why.reason,
        message: why.message,
        lastHeartbeatTime: now,
        lastTransitionTime: c.status === status ? c.lastTransitionTime : now,
      };
    });
    return n;
  });
}

/**
 * Takes back the conditions setCondition injected: a default condition returns to its healthy value, any
 * other injected type is removed.
 */
export function resetInjectedConditions(store: ResourceStore, s: NodeState, now: () => string): void {
  if (s.injectedConditions.size === 0) return;
  const defaults = baseConditions(s.gpuNode, now());
  store.update<KubeNode>('nodes', undefined, s.name, (n) => {
    n.status.conditions = n.status.conditions
      .filter((c) => !s.injectedConditions.has(c.type) || defaults.some((d) => d.type === c.type))
      .map((c) => (s.injectedConditions.has(c.type) ? (defaults.find((d) => d.type === c.type) ?? c) : c));
    return n;
  });
  s.injectedConditions.clear();
}
