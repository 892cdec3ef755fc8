/**
 * Who provisions a node, and so how gpu-medic may repair it (pure; read from the node's labels).
 *   - EKS Auto Mode (`eks.amazonaws.com/compute-type: auto`): its EC2 instance is an EC2 *managed instance*
 *     owned by EKS; IAM-enforced restrictions refuse RebootInstances / TerminateInstances from the account,
 *     whatever its permissions. Deleting the Node is the only lever: Auto Mode then removes the instance and
 *     starts a new one when pods need it. No reboot.
 *   - Karpenter (`karpenter.sh/nodepool`): deleting the Node is valid; Karpenter's `karpenter.sh/termination`
 *     finalizer removes the NodeClaim and the instance. Karpenter provisions only for pending pods.
 *   - EKS managed node group (`eks.amazonaws.com/nodegroup`): an Auto Scaling group; EKS node auto repair may
 *     be on for the group (`nodeRepairConfig`).
 */
import type { GpuNode } from '../domain/node.js';

export const COMPUTE_TYPE_LABEL = 'eks.amazonaws.com/compute-type';
export const NODEGROUP_LABEL = 'eks.amazonaws.com/nodegroup';
export const NODEPOOL_LABEL = 'karpenter.sh/nodepool';
/** Karpenter's guard against voluntary disruption (consolidation, drift, expiry), on a node or a pod. */
export const DO_NOT_DISRUPT_ANNOTATION = 'karpenter.sh/do-not-disrupt';

type Labelled = Pick<GpuNode, 'labels'>;

export function isAutoModeNode(node: Labelled): boolean {
  return node.labels[COMPUTE_TYPE_LABEL] === 'auto';
}

/** The EKS managed node group of a node (not set on Karpenter or Auto Mode nodes). */
export function managedNodeGroupOf(node: Labelled): string | undefined {
  return node.labels[NODEGROUP_LABEL] || undefined;
}

export function nodePoolOf(node: Labelled & Partial<Pick<GpuNode, 'karpenterNodePool'>>): string | undefined {
  return node.labels[NODEPOOL_LABEL] || node.karpenterNodePool || undefined;
}

/** Why a reboot is not offered for this node, or undefined when it can be rebooted. */
export function rebootUnavailableReason(node: Labelled & { name: string }): string | undefined {
  if (!isAutoModeNode(node)) return undefined;
  return `${node.name} is an EKS Auto Mode node: its EC2 instance is managed by EKS and cannot be rebooted through the EC2 API. Replace it instead (gpu-medic deletes the Node; Auto Mode starts a new one when pods need it).`;
}
