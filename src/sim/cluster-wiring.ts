import type { Logger } from 'pino';
import type { FleetGroups, ResolvedOptions } from './cluster-options.js';
import { EXPORTER_DS, type NodeGroup, type NodeState } from './cluster-types.js';
import type { SimDiag } from './dcgmi-diag.js';
import { GpuFaults } from './gpu-faults.js';
import type { GpuShape } from './gpu-shapes.js';
import { InstanceLifecycle } from './instance-lifecycle.js';
import type { KubeNode } from './k8s-objects.js';
import { KarpenterController } from './karpenter.js';
import { SimLeases } from './leases.js';
import { NodeBoot } from './node-boot.js';
import { NodeClaims } from './node-claims.js';
import { resetInjectedConditions } from './node-conditions.js';
import { NodeFactory, type ReusedIdentity } from './node-factory.js';
import { EksNodeRepair } from './node-repair.js';
import { PodController } from './pod-controller.js';
import type { ResourceStore } from './resource-store.js';
import type { SeededRandom } from './seeded-random.js';
import type { SimTimer } from './sim-clock.js';
import type { SimGpu } from './sim-gpu.js';
import type { DcgmServerSpec } from './workloads.js';

/** What the collaborators need of SimCluster itself: its settings, its node registry and the steps it owns. */
export interface ClusterInternals {
  readonly clusterName: string;
  readonly region: string;
  readonly store: ResourceStore;
  readonly rng: SeededRandom;
  readonly log: Logger | undefined;
  readonly opts: ResolvedOptions;
  readonly dcgmServer: DcgmServerSpec | undefined;
  readonly diag: SimDiag;
  readonly nodes: ReadonlyMap<string, NodeState>;
  /** Epoch milliseconds of the cluster's clock. */
  now(): number;
  timestamp(): string;
  /** Runs `fn` after `ms` unless the cluster is closed first. */
  later(ms: number, fn: () => void): SimTimer;
  /** The node's state; throws for an unknown node. */
  state(node: string): NodeState;
  /** The node's GPU; throws for an unknown index. */
  gpu(s: NodeState, index: number): SimGpu;
  /** The node's GPUs changed (its exporter text is stale). */
  gpuChanged(s: NodeState): void;
  /** Re-advertises the node's healthy GPU resources. */
  syncAllocatable(s: NodeState): void;
  shapeOptions(): { replicas: number; rename: boolean };
  addNode(group: NodeGroup, reuse?: ReusedIdentity, shape?: GpuShape): NodeState;
  removeNode(name: string): void;
}

/** SimCluster's collaborators, each owning one part of the simulated cluster. */
export interface Collaborators {
  gpuFaults: GpuFaults;
  boot: NodeBoot;
  karpenter: KarpenterController;
  nodeClaims: NodeClaims;
  repair: EksNodeRepair;
  factory: NodeFactory;
  leases: SimLeases;
  pods: PodController;
  lifecycle: InstanceLifecycle;
}

/**
 * Builds the collaborators and connects them to the cluster and to one another. They call one another only
 * after construction (from timers and API calls), so a host may reach one that is built after it. Of these
 * constructors only PodController's draws random numbers; the order is the one SimCluster always used.
 */
export function wireCollaborators(
  c: ClusterInternals,
  groups: FleetGroups,
  consolidateAfterMs: number | undefined,
): Collaborators {
  const { opts } = c;
  // What most collaborators need; each host below adds its own.
  const core = {
    clusterName: c.clusterName,
    region: c.region,
    store: c.store,
    rng: c.rng,
    log: c.log,
    timestamp: () => c.timestamp(),
    later: (ms: number, fn: () => void) => c.later(ms, fn),
    nodeState: (name: string) => c.nodes.get(name),
  };
  const nodeStates = () => [...c.nodes.values()];
  let pods: PodController | undefined;
  let lifecycle: InstanceLifecycle | undefined;
  const thePods = () => pods as PodController;
  const theLifecycle = () => lifecycle as InstanceLifecycle;

  const gpuFaults = new GpuFaults({
    state: (node) => c.state(node),
    gpu: (st, index) => c.gpu(st, index),
    gpuChanged: (st) => c.gpuChanged(st),
    syncAllocatable: (st) => c.syncAllocatable(st),
    workloads: () => opts.workloads,
    exporterPod: (node) => thePods().exporterPod(node),
    deletePod: (pod) => thePods().removePod(pod, 'delete'),
    createExporterPod: (st) => thePods().createDaemonSetPod(st, EXPORTER_DS),
    nodeLabel: (node, key) => c.store.get<KubeNode>('nodes', undefined, node)?.metadata.labels?.[key],
    reapplyAllocationsLoad: (st) => thePods().reapplyAllocationsLoad(st),
    resetConditions: (st) => resetInjectedConditions(c.store, st, () => c.timestamp()),
    clearDiag: (node) => c.diag.clear(node),
  });
  const boot = new NodeBoot({
    ...core,
    devicePluginDelayMs: () => opts.devicePluginDelayMs,
    exporterReadyDelayMs: () => opts.exporterReadyDelayMs,
    shapeOptions: () => c.shapeOptions(),
    podsOn: (node) => thePods().podsOn({ nodeName: node }),
    isDcgmServerPod: (pod) => thePods().isDcgmServerPod(pod),
    podIp: (st) => thePods().placement(st).podIP,
    kickScheduler: () => thePods().kickScheduler(),
  });
  const karpenter = new KarpenterController(consolidateAfterMs, {
    ...core,
    gpusPerNode: () => opts.gpusPerNode,
    launchDelayMs: () => opts.replaceDelayMs,
    addNode: (group) => c.addNode(group),
    podsOn: (node) => thePods().podsOn({ nodeName: node }),
    terminateInstance: (id, o) => theLifecycle().terminate(id, o),
  });
  const nodeClaims = new NodeClaims({
    ...core,
    instanceTag: (id, key) => theLifecycle().get(id)?.tags[key],
    deleteNode: (name) => theLifecycle().deleteNode(name),
  });
  const repair = new EksNodeRepair({
    ...core,
    managedGroups: [groups.managed, groups.system],
    nodeStates,
    rebootInstance: (id) => theLifecycle().reboot(id),
    terminateInstance: (id, o) => theLifecycle().terminate(id, o),
  });
  const factory = new NodeFactory({
    ...core,
    now: () => c.now(),
    gpusPerNode: () => opts.gpusPerNode,
    kubeletVersion: () => opts.kubeletVersion,
    shapeOptions: () => c.shapeOptions(),
    advertised: (st, shape, gpus, allocatable) => boot.advertised(st, shape, gpus, allocatable),
  });
  const leases = new SimLeases(c.store, c.rng, () => c.timestamp());
  pods = new PodController({
    ...core,
    dcgmServer: c.dcgmServer,
    rescheduleDelayMs: () => opts.rescheduleDelayMs,
    podTerminationMs: () => opts.podTerminationMs,
    timeSlicingRename: () => opts.timeSlicingRename,
    nodeStates,
    gpuChanged: (st) => c.gpuChanged(st),
    setContainersReady: (pod, ready) => boot.setContainersReady(pod, ready),
    scheduleConsolidation: (st) => karpenter.scheduleConsolidation(st),
    provisionForPending: (pending) => karpenter.provisionForPending(pending),
  });
  lifecycle = new InstanceLifecycle({
    ...core,
    boot,
    pods,
    rebootDelayMs: () => opts.rebootDelayMs,
    terminateDelayMs: () => opts.terminateDelayMs,
    replaceDelayMs: () => opts.replaceDelayMs,
    workloads: () => opts.workloads,
    nodeStates: () => c.nodes.values(),
    addNode: (group, reuse, shape) => c.addNode(group, reuse, shape),
    removeNode: (name) => c.removeNode(name),
    gpuChanged: (st) => c.gpuChanged(st),
    scheduleConsolidation: (st) => karpenter.scheduleConsolidation(st),
  });
  return { gpuFaults, boot, karpenter, nodeClaims, repair, factory, leases, pods, lifecycle };
}
