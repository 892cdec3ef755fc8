/** The simulator's state as its control API shows it (`GET /state`): per node, its shape and what is wrong. */
import type { SimCluster } from './cluster.js';
import type { GpuShape } from './gpu-shapes.js';
import type { KubeNode } from './k8s-objects.js';

/** What is wrong with one GPU right now; healthy GPUs are left out of `faults`. */
export interface SimGpuFault {
  gpu: number;
  xid?: number;
  eccSbe?: number;
  eccDbe?: number;
  rowRemapFailure?: boolean;
  nvlinkErrors?: number;
  temperatureC?: number;
  health?: string;
  missing?: boolean;
}

export interface SimNodeState {
  name: string;
  instanceId: string;
  gpuNode: boolean;
  /** How the node's GPUs are shared (gpu-shapes.ts): plain, time-sliced, mig-single, mig-mixed. */
  gpuShape: GpuShape;
  nodeGroup?: string;
  karpenterNodePool?: string;
  ready: boolean;
  unschedulable: boolean;
  bootId: string;
  rebooting: boolean;
  exporterMode: string;
  /** The counters file the node's exporter runs with (`stock` or `full`). */
  counters: string;
  gpus: number;
  gpusPresent: number;
  faults: SimGpuFault[];
  pods: number;
}

export interface SimState {
  clusterName: string;
  nodes: SimNodeState[];
}

/** Above this a GPU counts as hot in the summary (H100 slowdown starts near 87 °C). */
const HOT_C = 85;

export function nodeState(
  cluster: SimCluster,
  name: string,
  /** The node object when the caller already has it (listing 5,000 nodes, clone once). */
  known?: KubeNode,
): SimNodeState | undefined {
  const info = cluster.nodeInfo(name);
  const node = known ?? cluster.getNode(name);
  if (!info || !node) return undefined;
  const gpus = cluster.gpuState(name);
  const faults: SimGpuFault[] = [];
  for (const g of gpus) {
    const nvlink =
      g.nvlinkCrcFlitErrors + g.nvlinkCrcDataErrors + g.nvlinkReplayErrors + g.nvlinkRecoveryErrors;
    const f: SimGpuFault = {
      gpu: g.index,
      ...(g.xidLast ? { xid: g.xidLast } : {}),
      ...(g.eccSbeVolatile ? { eccSbe: g.eccSbeVolatile } : {}),
      ...(g.eccDbeVolatile ? { eccDbe: g.eccDbeVolatile } : {}),
      ...(g.rowRemapFailure ? { rowRemapFailure: true } : {}),
      ...(nvlink ? { nvlinkErrors: nvlink } : {}),
      ...(g.temperatureC >= HOT_C ? { temperatureC: g.temperatureC } : {}),
      ...(g.health !== 'pass' ? { health: g.health } : {}),
      ...(g.present ? {} : { missing: true }),
    };
    if (Object.keys(f).length > 1) faults.push(f);
  }
  return {
    name,
    instanceId: info.instanceId,
    gpuNode: info.gpuNode,
    gpuShape: info.shape,
    ...(info.nodeGroup ? { nodeGroup: info.nodeGroup } : {}),
    ...(info.karpenterNodePool ? { karpenterNodePool: info.karpenterNodePool } : {}),
    ready: node.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True'),
    unschedulable: node.spec.unschedulable === true,
    bootId: node.status.nodeInfo.bootID,
    rebooting: info.rebooting,
    exporterMode: info.exporterMode,
    counters: info.counters,
    gpus: gpus.length,
    gpusPresent: gpus.filter((g) => g.present).length,
    faults,
    pods: cluster.podsOn({ nodeName: name }).length,
  };
}

export function clusterState(cluster: SimCluster): SimState {
  const nodes: SimNodeState[] = [];
  for (const n of cluster.listNodes()) {
    const s = nodeState(cluster, n.metadata.name, n);
    if (s) nodes.push(s);
  }
  return { clusterName: cluster.clusterName, nodes };
}
