import type { V1Node } from '@kubernetes/client-node';
import {
  allocatablePhysicalGpus,
  expectedPhysicalGpus,
  GPU_RESOURCE,
  hasGpus,
  isNvidiaGpuResource,
} from '../domain/gpu-count.js';
import { type GpuNode, parseProviderId } from '../domain/node.js';

export { GPU_RESOURCE };

function quantity(value: string | undefined): number {
  if (!value) return 0;
  const n = Number.parseInt(value, 10);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/**
 * `nvidia.com/gpu`, `nvidia.com/gpu.shared` (time-slicing with renameByDefault) and `nvidia.com/mig-*`
 * quantities from a resource list (capacity or allocatable).
 */
export function nvidiaResources(list: Record<string, string> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(list ?? {})) {
    if (isNvidiaGpuResource(name)) out[name] = quantity(value);
  }
  return out;
}

/**
 * Label values and condition texts repeat across a fleet (instance type, AMI, GPU product, driver version,
 * "kubelet is posting ready status"), yet each node's JSON brings its own copy, kept as long as the node is
 * watched: one shared copy per distinct text instead. The table is emptied when it reaches its bound, so values
 * unique to one node (its host name) cannot grow it without limit; the copies already shared stay shared.
 */
const INTERN_LIMIT = 20_000;
const interned = new Map<string, string>();
function intern(s: string): string {
  const known = interned.get(s);
  if (known !== undefined) return known;
  if (interned.size >= INTERN_LIMIT) interned.clear();
  interned.set(s, s);
  return s;
}
const internMaybe = (s: string | undefined) => (s === undefined ? undefined : intern(s));

function internedLabels(raw: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw ?? {})) out[k] = intern(v);
  return out;
}

/** A Kubernetes Node → the domain's GpuNode. Pure; tolerant of missing fields (a node joining has few). */
export function toGpuNode(node: V1Node): GpuNode | undefined {
  const name = node.metadata?.name;
  if (!name) return undefined;
  const labels = internedLabels(node.metadata?.labels);
  const provider = parseProviderId(node.spec?.providerID);
  const conditions = (node.status?.conditions ?? []).map((c) => ({
    type: c.type,
    status: (c.status === 'True' || c.status === 'False' ? c.status : 'Unknown') as
      | 'True'
      | 'False'
      | 'Unknown',
    reason: internMaybe(c.reason),
    message: internMaybe(c.message),
  }));
  const instanceType =
    labels['node.kubernetes.io/instance-type'] ?? labels['beta.kubernetes.io/instance-type'];
  const allocatable = nvidiaResources(node.status?.allocatable);
  const count = expectedPhysicalGpus({
    instanceType,
    labels,
    capacity: nvidiaResources(node.status?.capacity),
  });
  return {
    name,
    instanceId: provider?.instanceId,
    availabilityZone: provider?.az ?? labels['topology.kubernetes.io/zone'],
    instanceType,
    nodeGroup:
      labels['eks.amazonaws.com/nodegroup'] ??
      labels['karpenter.sh/nodepool'] ??
      labels['alpha.eksctl.io/nodegroup-name'],
    karpenterNodePool: labels['karpenter.sh/nodepool'],
    expectedGpus: count.expected,
    gpuCountSource: count.source,
    gpuSharing: count.sharing,
    allocatableGpus: allocatablePhysicalGpus(count.sharing, labels, allocatable),
    gpuResources: allocatable,
    unschedulable: node.spec?.unschedulable === true,
    ready: conditions.some((c) => c.type === 'Ready' && c.status === 'True'),
    ...readySinceOf(node),
    bootId: node.status?.nodeInfo?.bootID || undefined,
    labels,
    conditions,
    internalIp: node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address,
  };
}

/**
 * Does gpu-medic watch this node? Any node the operator's GPU_NODE_SELECTOR picked, else a node that has
 * GPUs by the domain's one rule (hasGpus).
 */
export function isWatchedNode(node: GpuNode, selectorGiven: boolean): boolean {
  return selectorGiven || hasGpus(node);
}

/** The Ready condition's last transition to True, when the node is Ready and the time parses. */
function readySinceOf(node: V1Node): { readySince?: number } {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True');
  const at = ready?.lastTransitionTime ? new Date(ready.lastTransitionTime).getTime() : Number.NaN;
  return Number.isFinite(at) ? { readySince: at } : {};
}
