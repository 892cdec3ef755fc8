import type { NodeGroup, SimClusterOptions } from './cluster-types.js';
import { DEFAULT_TIME_SLICING_REPLICAS, type GpuShape } from './gpu-shapes.js';
import { instanceTypeInfo } from './instance-types.js';
import type { SeededRandom } from './seeded-random.js';

/** The options SimCluster keeps (with their defaults); the others are read once, at construction. */
export type ResolvedOptions = Required<
  Omit<
    SimClusterOptions,
    | 'clock'
    | 'logger'
    | 'seed'
    | 'clusterName'
    | 'region'
    | 'karpenterNodes'
    | 'gpuShapes'
    | 'diagDurationMs'
    | 'extraCounters'
    | 'autoModeNodes'
    | 'consolidateAfterMs'
  >
>;

export function resolveOptions(options: SimClusterOptions): ResolvedOptions {
  return {
    nodes: options.nodes ?? 8,
    gpusPerNode: options.gpusPerNode ?? instanceTypeInfo(options.instanceType ?? 'p5.48xlarge').gpus,
    instanceType: options.instanceType ?? 'p5.48xlarge',
    rebootDelayMs: options.rebootDelayMs ?? 3000,
    replaceDelayMs: options.replaceDelayMs ?? 5000,
    terminateDelayMs: options.terminateDelayMs ?? 1000,
    rescheduleDelayMs: options.rescheduleDelayMs ?? 1000,
    podTerminationMs: options.podTerminationMs ?? 0,
    devicePluginDelayMs: options.devicePluginDelayMs ?? 60_000,
    exporterReadyDelayMs: options.exporterReadyDelayMs ?? 45_000,
    workloads: options.workloads ?? true,
    dcgmServer: options.dcgmServer ?? false,
    counters: options.counters ?? (options.extraCounters ? 'full' : 'stock'),
    kubeletVersion: options.kubeletVersion ?? 'v1.31.4-eks-aeac579',
    timeSlicingReplicas: options.timeSlicingReplicas ?? DEFAULT_TIME_SLICING_REPLICAS,
    timeSlicingRename: options.timeSlicingRename ?? false,
  };
}

type KarpenterPool = Extract<NodeGroup, { kind: 'karpenter' }>;

/** Where the cluster's nodes come from: two EKS managed node groups, a Karpenter NodePool, an Auto Mode one. */
export interface FleetGroups {
  /** `gpu-ng-1`, the GPU node group. */
  managed: NodeGroup;
  /** `system-ng`, one non-GPU node. */
  system: NodeGroup;
  karpenter: KarpenterPool;
  autoMode: KarpenterPool;
}

/** The node groups (their Auto Scaling group names are the cluster's first random draws). */
export function fleetGroups(instanceType: string, rng: SeededRandom): FleetGroups {
  return {
    managed: {
      kind: 'managed',
      name: 'gpu-ng-1',
      asg: `eks-gpu-ng-1-${rng.uuid()}`,
      instanceType,
      gpu: true,
    },
    system: {
      kind: 'managed',
      name: 'system-ng',
      asg: `eks-system-ng-${rng.uuid()}`,
      instanceType: 'm5.xlarge',
      gpu: false,
    },
    karpenter: { kind: 'karpenter', pool: 'gpu', instanceType },
    autoMode: { kind: 'karpenter', pool: 'gpu-auto', instanceType, autoMode: true },
  };
}

/**
 * The initial GPU nodes in order, managed first, then Karpenter's (a quarter of the fleet unless told), then
 * Auto Mode's, with their GPU shapes in rotation; and the pool that provisions for pending pods (Auto Mode's
 * if there is one, else Karpenter's, else none).
 */
export function initialFleet(
  options: SimClusterOptions,
  total: number,
  groups: FleetGroups,
): { nodes: { group: NodeGroup; shape: GpuShape }[]; provisioner: KarpenterPool | undefined } {
  const shapes: GpuShape[] =
    options.gpuShapes && options.gpuShapes.length > 0 ? [...options.gpuShapes] : ['plain'];
  const karpenter = Math.min(total, options.karpenterNodes ?? (total >= 4 ? Math.floor(total / 4) : 0));
  const auto = Math.min(total - karpenter, options.autoModeNodes ?? 0);
  const managed = total - karpenter - auto;
  const nodes = Array.from({ length: total }, (_, i) => ({
    shape: shapes[i % shapes.length] ?? 'plain',
    group: i < managed ? groups.managed : i < managed + karpenter ? groups.karpenter : groups.autoMode,
  }));
  const provisioner = auto > 0 ? groups.autoMode : karpenter > 0 ? groups.karpenter : undefined;
  return { nodes, provisioner };
}
