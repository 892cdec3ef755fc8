import type { GpuCountSource, GpuSharing } from './gpu-count.js';

/** A GPU node as the rest of the system sees it, independent of the Kubernetes client's types. */
export interface GpuNode {
  name: string;
  /** From spec.providerID `aws:///us-east-1a/i-0abc…`. */
  instanceId?: string;
  availabilityZone?: string;
  instanceType?: string;
  /** EKS managed node group (`eks.amazonaws.com/nodegroup`) or Karpenter NodePool (`karpenter.sh/nodepool`). */
  nodeGroup?: string;
  karpenterNodePool?: string;
  /**
   * Physical GPUs the node should have (domain/gpu-count.ts `expectedPhysicalGpus`: the EC2 instance type's
   * count, else GFD's physical count, else unshared `nvidia.com/gpu` capacity). Undefined: nothing says, so
   * no GPU-count check on this node. Never the replicated or MIG device count.
   */
  expectedGpus?: number;
  /** Where expectedGpus came from; `unknown` when it is undefined. Absent on nodes built by hand (tests). */
  gpuCountSource?: GpuCountSource;
  /** How the GPUs are shared (time-slicing, MPS, MIG single / mixed); absent = not known, read as none. */
  gpuSharing?: GpuSharing;
  /**
   * Physical GPUs the device plugin offers (`allocatablePhysicalGpus`): `nvidia.com/gpu`, divided by the
   * replicas under time-slicing / MPS. Undefined under MIG, where devices are slices, not GPUs.
   */
  allocatableGpus?: number;
  /**
   * Every NVIDIA extended resource the node advertises as allocatable: `nvidia.com/gpu` (physical, time-sliced
   * replicas or MIG-single devices) and `nvidia.com/mig-<profile>` (MIG mixed). Zero entries are kept: the kubelet
   * reports 0 until the device plugin re-registers after a reboot.
   */
  gpuResources: Record<string, number>;
  unschedulable: boolean;
  ready: boolean;
  bootId?: string;
  labels: Record<string, string>;
  conditions: { type: string; status: 'True' | 'False' | 'Unknown'; reason?: string; message?: string }[];
  /** When the Ready condition last turned True (ms since the epoch): how long the node has been up on this boot. */
  readySince?: number;
  internalIp?: string;
}

const providerIdPattern = /^aws:\/\/\/([a-z0-9-]+)\/(i-[0-9a-f]+)$/;

/** `aws:///us-east-1a/i-0123456789abcdef0` → { az, instanceId }; anything else → undefined. */
export function parseProviderId(
  providerId: string | undefined,
): { az: string; instanceId: string } | undefined {
  const m = providerId ? providerIdPattern.exec(providerId) : null;
  return m ? { az: m[1]!, instanceId: m[2]! } : undefined;
}

/**
 * The label (`gpu-medic.io/exclude=true`) an operator puts on a node to keep gpu-medic away from it: no
 * action by the bot nor by a human through gpu-medic, only alerts.
 */
export const OptOutLabel = 'gpu-medic.io/exclude';

export function isOptedOut(node: { labels: Readonly<Record<string, string>> }): boolean {
  return node.labels[OptOutLabel] === 'true';
}
