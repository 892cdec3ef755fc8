import type { V1Node } from '@kubernetes/client-node';
import { type GpuNode, parseProviderId } from '../domain/node.js';

export const GPU_RESOURCE = 'nvidia.com/gpu';
export const OPT_OUT_LABEL = 'gpu-medic.io/exclude';

function quantity(value: string | undefined): number {
  if (!value) return 0;
  const n = Number.parseInt(value, 10);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/** `nvidia.com/gpu` and `nvidia.com/mig-*` quantities from a resource list (capacity or allocatable). */
export function nvidiaResources(list: Record<string, string> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, value] of Object.entries(list ?? {})) {
    if (name === GPU_RESOURCE || name.startsWith('nvidia.com/mig-')) out[name] = quantity(value);
  }
  return out;
}

/** A Kubernetes Node → the domain's GpuNode. Pure; tolerant of missing fields (a node joining has few). */
export function toGpuNode(node: V1Node): GpuNode | undefined {
  const name = node.metadata?.name;
  if (!name) return undefined;
  const labels = node.metadata?.labels ?? {};
  const provider = parseProviderId(node.spec?.providerID);
  const conditions = (node.status?.conditions ?? []).map((c) => ({
    type: c.type,
    status: (c.status === 'True' || c.status === 'False' ? c.status : 'Unknown') as
      | 'True'
      | 'False'
      | 'Unknown',
    reason: c.reason,
    message: c.message,
  }));
  return {
    name,
    instanceId: provider?.instanceId,
    availabilityZone: provider?.az ?? labels['topology.kubernetes.io/zone'],
    instanceType: labels['node.kubernetes.io/instance-type'] ?? labels['beta.kubernetes.io/instance-type'],
    nodeGroup:
      labels['eks.amazonaws.com/nodegroup'] ??
      labels['karpenter.sh/nodepool'] ??
      labels['alpha.eksctl.io/nodegroup-name'],
    karpenterNodePool: labels['karpenter.sh/nodepool'],
    expectedGpus: quantity(node.status?.capacity?.[GPU_RESOURCE]),
    allocatableGpus: quantity(node.status?.allocatable?.[GPU_RESOURCE]),
    gpuResources: nvidiaResources(node.status?.allocatable),
    unschedulable: node.spec?.unschedulable === true,
    ready: conditions.some((c) => c.type === 'Ready' && c.status === 'True'),
    bootId: node.status?.nodeInfo?.bootID || undefined,
    labels,
    conditions,
    internalIp: node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address,
  };
}

/** A GPU node has `nvidia.com/gpu` capacity — or matches GPU_NODE_SELECTOR when the operator set one. */
export function isGpuNode(node: GpuNode, selectorGiven: boolean): boolean {
  return selectorGiven || node.expectedGpus > 0;
}

export function isOptedOut(node: GpuNode): boolean {
  return node.labels[OPT_OUT_LABEL] === 'true';
}
