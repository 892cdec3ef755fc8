/**
 * Types and constants shared by SimCluster and its collaborators (cluster.ts re-exports the public ones).
 */

import type { Logger } from 'pino';
import type { CounterSet } from './dcgm-exporter.js';
import type { GpuShape } from './gpu-shapes.js';
import type { KubeObject, NodeConditionObject } from './k8s-objects.js';
import { ResourceStore } from './resource-store.js';
import type { SimClock, SimTimer } from './sim-clock.js';
import type { SimGpu } from './sim-gpu.js';
import { DAEMONSETS, type DaemonSetSpec, type SimDcgmServerOptions } from './workloads.js';

export interface SimClusterOptions {
  /** GPU nodes (a non-GPU system node is added on top). */
  nodes?: number;
  gpusPerNode?: number;
  instanceType?: string;
  clusterName?: string;
  region?: string;
  /** How many of the GPU nodes are Karpenter-provisioned (the rest are in EKS managed node group gpu-ng-1). */
  karpenterNodes?: number;
  /**
   * How many of the GPU nodes are EKS Auto Mode nodes (NodePool `gpu-auto`, label
   * `eks.amazonaws.com/compute-type: auto`; their instances are EC2 managed instances EKS owns). Default 0.
   */
  autoModeNodes?: number;
  /**
   * Karpenter consolidation of an empty node (no pods but DaemonSet and static ones) after this long, unless
   * the node or one of its pods carries `karpenter.sh/do-not-disrupt: "true"`. Off by default, as a NodePool
   * with `consolidateAfter: Never` (the sim's Karpenter nodes start empty and would vanish in every run).
   */
  consolidateAfterMs?: number;
  rebootDelayMs?: number;
  /** How long `dcgmi diag -r 1|2|3` runs in the DCGM pods, per level (sim/dcgmi-diag.ts has the defaults). */
  diagDurationMs?: Record<1 | 2 | 3, number>;
  replaceDelayMs?: number;
  /** From TerminateInstances (or a Karpenter node delete) to the Node object being gone. */
  terminateDelayMs?: number;
  /** How long controllers take to recreate a deleted pod (job restart, ReplicaSet, DaemonSet). */
  rescheduleDelayMs?: number;
  /** Graceful termination of an evicted/deleted pod: deletionTimestamp first, gone after this. */
  podTerminationMs?: number;
  /**
   * After a reboot (or when a new node joins), from the node turning Ready to the NVIDIA device plugin
   * re-registering: until then the kubelet reports `nvidia.com/gpu` capacity and allocatable 0. Default 60 s.
   */
  devicePluginDelayMs?: number;
  /**
   * After a reboot (or on a new node), from the node turning Ready to the restarted dcgm-exporter (and
   * dcgm-server) pod passing its readiness probe; until then its container refuses connections. Default 45 s.
   */
  exporterReadyDelayMs?: number;
  workloads?: boolean;
  /**
   * Also run DCGM host-engine pods for the dcgm-server source: `true` = the EKS node monitoring agent's stock
   * `dcgm-server` pods (kube-system, shell-less image), or the style / namespace / shell to run.
   */
  dcgmServer?: boolean | SimDcgmServerOptions;
  /**
   * The exporters' counters file: `stock` (default: dcgm-exporter's default-counters.csv, no ECC, retired
   * pages, NVLink errors, XID counts or health) or `full` (gpu-medic's counters CSV). Per node: setCounters.
   */
  counters?: CounterSet;
  /** Older spelling of `counters: 'full'` (true) / `'stock'` (false); `counters` wins when both are given. */
  extraCounters?: boolean;
  /**
   * How each GPU node's GPUs are shared (gpu-shapes.ts): GPU node i gets `gpuShapes[i % length]`, so
   * `['plain', 'time-sliced', 'mig-single', 'mig-mixed']` makes a mixed fleet. Default: every node plain.
   * A replacement node keeps the shape of the node it replaces (the node group's device-plugin config).
   */
  gpuShapes?: GpuShape[];
  /** Time-slicing replicas per GPU on time-sliced nodes. Default 4. */
  timeSlicingReplicas?: number;
  /** Time-sliced GPUs offered as `nvidia.com/gpu.shared` (the device plugin's renameByDefault). Default false. */
  timeSlicingRename?: boolean;
  kubeletVersion?: string;
  seed?: number;
  clock?: SimClock;
  logger?: Logger;
}

export type ExporterMode = 'ok' | 'hang' | 'error' | 'garbage' | 'missing';

export interface FaultOptions {
  /** The fault comes back after a reboot (a real hardware defect), so escalation can be tested. */
  persistent?: boolean;
}

/** A fault re-applied after a reboot; one tagged with its GPU also comes back after a reset of that GPU. */
export type PersistentFault = (() => void) & { gpu?: number };

export type NvlinkCounter = 'crcFlit' | 'crcData' | 'replay' | 'recovery';

export type ExporterScrape =
  | { kind: 'ok' | 'garbage'; body: string }
  | { kind: 'hang' }
  | { kind: 'error'; status: number; message: string };

export interface SimNodeInfo {
  name: string;
  instanceId: string;
  gpuNode: boolean;
  nodeGroup?: string;
  autoScalingGroup?: string;
  karpenterNodePool?: string;
  /** An EKS Auto Mode node (its instance is operated by EKS). */
  autoMode?: boolean;
  rebooting: boolean;
  exporterMode: ExporterMode;
  /** How the node's GPUs are shared (plain for a CPU node). */
  shape: GpuShape;
  /** The counters file this node's exporter runs with. */
  counters: CounterSet;
  /** The NVIDIA device plugin is registered (false from a boot until it re-registers: `nvidia.com/gpu` is 0). */
  devicePluginRegistered: boolean;
  /** The GPU agent pods (dcgm-exporter, dcgm-server) restarted and have not passed their readiness probes. */
  agentsStarting: boolean;
}

export type NodeGroup =
  | { kind: 'managed'; name: string; asg: string; instanceType: string; gpu: boolean }
  /** A Karpenter NodePool, or (autoMode) an EKS Auto Mode NodePool: Auto Mode runs Karpenter for EKS. */
  | { kind: 'karpenter'; pool: string; instanceType: string; autoMode?: boolean };

export const DO_NOT_DISRUPT = 'karpenter.sh/do-not-disrupt';

/** Karpenter's NodeClaim (karpenter.sh/v1, cluster-scoped): the claim behind one Karpenter / Auto Mode node. */
export interface KubeNodeClaim extends KubeObject {
  spec: {
    nodeClassRef: { group: string; kind: string; name: string };
    requirements: { key: string; operator: 'In'; values: string[] }[];
  };
  status: {
    nodeName?: string;
    providerID?: string;
    capacity?: Record<string, string>;
    conditions: {
      type: string;
      status: 'True' | 'False' | 'Unknown';
      reason: string;
      lastTransitionTime: string;
    }[];
  };
}
/** Who operates an Auto Mode node's EC2 instance (DescribeInstances `operator.principal`). */
export const AUTO_MODE_OPERATOR = 'eks.amazonaws.com';

export interface NodeState {
  name: string;
  ip: string;
  az: string;
  instanceId: string;
  group: NodeGroup;
  gpuNode: boolean;
  shape: GpuShape;
  gpus: SimGpu[];
  kernelLog: string[];
  exporterMode: ExporterMode;
  /** This node's exporter counters file; undefined = the cluster's. */
  counters?: CounterSet;
  exposition?: string;
  /** Faults that come back after a reboot; `gpu` set = also after a reset of that GPU. */
  persistent: PersistentFault[];
  rebooting: boolean;
  rebootTimer?: SimTimer;
  /** Condition types set by setCondition, reset by a reboot. */
  injectedConditions: Set<string>;
  /** GPU index → key of the pod it is allocated to. */
  allocations: Map<number, string>;
  /** The NVIDIA device plugin is registered with the kubelet (false from a boot until it re-registers). */
  pluginRegistered: boolean;
  /** The GPU agent pods (dcgm-exporter, dcgm-server) restarted and are not Ready yet. */
  agentsStarting: boolean;
  /** Reboots of this node never finish: the instance hangs in boot and the kubelet never posts Ready. */
  rebootHangs: boolean;
  /** Device plugin and agent readiness timers of the current boot. */
  bootTimers: SimTimer[];
}

export const NODE_CONDITION_DEFAULTS: NodeConditionObject[] = [
  {
    type: 'MemoryPressure',
    status: 'False',
    reason: 'KubeletHasSufficientMemory',
    message: 'kubelet has sufficient memory available',
  },
  {
    type: 'DiskPressure',
    status: 'False',
    reason: 'KubeletHasNoDiskPressure',
    message: 'kubelet has no disk pressure',
  },
  {
    type: 'PIDPressure',
    status: 'False',
    reason: 'KubeletHasSufficientPID',
    message: 'kubelet has sufficient PID available',
  },
  { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' },
];

export const ACCELERATED_READY: NodeConditionObject = {
  type: 'AcceleratedHardwareReady',
  status: 'True',
  reason: 'NvidiaAcceleratedHardwareIsReady',
  message: 'Monitoring for the Nvidia system is active',
};

/** EKS node auto repair's documented "repair after" per condition (docs: Automatically repair nodes). */
export const AUTO_REPAIR_WAIT_MS: Record<string, number> = {
  AcceleratedHardwareReady: 10 * 60_000,
  ContainerRuntimeReady: 30 * 60_000,
  KernelReady: 30 * 60_000,
  NetworkingReady: 30 * 60_000,
  StorageReady: 30 * 60_000,
};

export const EXPORTER_DS = DAEMONSETS.find((d) => d.name === 'nvidia-dcgm-exporter') as DaemonSetSpec;

export const podKey = (ns: string | undefined, name: string): string => ResourceStore.key(ns, name);

/** `aws:///us-east-1a/i-0abc…` → `i-0abc…`. */
export const parseProviderIdTail = (providerId: string | undefined): string =>
  providerId?.split('/').pop() ?? '';

/** Kubeflow training job plurals served under kubeflow.org/v1. */
export const KUBEFLOW_JOB_RESOURCES = ['pytorchjobs', 'tfjobs', 'mpijobs', 'xgboostjobs'] as const;
