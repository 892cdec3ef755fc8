import type { Logger } from 'pino';
import type { NodeGroup, NodeState, SimNodeInfo } from './cluster-types.js';
import type { Collaborators } from './cluster-wiring.js';
import type { CounterSet } from './dcgm-exporter.js';
import type { GpuShape } from './gpu-shapes.js';
import type { KubeNode } from './k8s-objects.js';
import type { ReusedIdentity } from './node-factory.js';
import type { ResourceStore } from './resource-store.js';
import type { SimGpu } from './sim-gpu.js';

/** What the node registry needs of the cluster. */
export interface NodeRegistryHost {
  readonly store: ResourceStore;
  readonly log: Logger | undefined;
  /** The cluster runs its DaemonSets and workloads (else a node gets no pods). */
  workloads(): boolean;
  /** The collaborators a node's arrival and departure involve (they are built after the registry). */
  parts(): Pick<Collaborators, 'factory' | 'lifecycle' | 'pods' | 'nodeClaims' | 'boot' | 'karpenter'>;
}

/**
 * The cluster's nodes by name: registering a node (its instance, Node object, NodeClaim, DaemonSet pods,
 * boot) and removing it (its pods, NodeClaim and Node go with it), and the lookups everything else uses.
 */
export class NodeRegistry {
  readonly nodes = new Map<string, NodeState>();
  /** The initial fleet is built (nodes added from now on are joining: their device plugin registers late). */
  built = false;

  constructor(private readonly host: NodeRegistryHost) {}

  /** The node's state; throws for an unknown node. */
  state(node: string): NodeState {
    const s = this.nodes.get(node);
    if (!s) throw new Error(`unknown node ${node}`);
    return s;
  }

  /** The node's GPU; throws for an unknown index. */
  gpu(s: NodeState, index: number): SimGpu {
    const g = s.gpus[index];
    if (!g) throw new Error(`node ${s.name} has no GPU ${index}`);
    return g;
  }

  /** What the cluster tells about a node (its group, instance, boot and exporter state). */
  info(name: string, defaultCounters: CounterSet): SimNodeInfo | undefined {
    const s = this.nodes.get(name);
    if (!s) return undefined;
    const inst = this.host.parts().lifecycle.get(s.instanceId);
    return {
      name,
      instanceId: s.instanceId,
      gpuNode: s.gpuNode,
      ...(s.group.kind === 'managed' ? { nodeGroup: s.group.name } : { karpenterNodePool: s.group.pool }),
      ...(inst?.autoScalingGroup ? { autoScalingGroup: inst.autoScalingGroup } : {}),
      ...(s.group.kind === 'karpenter' && s.group.autoMode ? { autoMode: true } : {}),
      rebooting: s.rebooting,
      exporterMode: s.exporterMode,
      shape: s.shape,
      counters: s.counters ?? defaultCounters,
      devicePluginRegistered: s.pluginRegistered,
      agentsStarting: s.agentsStarting,
    };
  }

  /** Registers a node (a new instance, or `reuse`'s identity again) with its pods, NodeClaim and boot. */
  add(group: NodeGroup, reuse?: ReusedIdentity, gpuShape: GpuShape = 'plain'): NodeState {
    const { factory, lifecycle, pods, nodeClaims, boot, karpenter } = this.host.parts();
    const { state: s, instance } = factory.newNode(group, reuse, gpuShape, {
      nodeCount: this.nodes.size,
      joining: this.built,
    });
    if (instance) lifecycle.add(instance);
    this.nodes.set(s.name, s);
    pods.nodeAdded(s);
    const node = factory.nodeObject(s, this.nodes.size);
    this.host.store.create('nodes', node);
    if (group.kind === 'karpenter') nodeClaims.create(group, node);
    if (this.host.workloads()) pods.createDaemonSetPods(s);
    if (this.built && s.gpuNode) boot.start(s);
    pods.kickScheduler();
    karpenter.scheduleConsolidation(s);
    return s;
  }

  remove(name: string): void {
    const s = this.nodes.get(name);
    if (!s) return;
    const { nodeClaims, pods } = this.host.parts();
    // The NodeClaim's finalizer completes with its instance and Node.
    nodeClaims.remove(name);
    s.rebootTimer?.cancel();
    pods.nodeGone(name);
    this.nodes.delete(name);
    this.host.store.delete('nodes', undefined, name);
    this.host.log?.info({ node: name }, 'sim: node removed');
  }

  /** The device plugin advertises only healthy devices: a lost GPU takes its replicas or MIG devices with it. */
  syncAllocatable(s: NodeState): void {
    if (!s.gpuNode) return;
    const { store } = this.host;
    const wanted = this.host.parts().boot.advertised(s, s.shape, s.gpus, true);
    const n = store.get<KubeNode>('nodes', undefined, s.name);
    if (!n || Object.entries(wanted).every(([k, v]) => n.status.allocatable[k] === v)) return;
    store.update<KubeNode>('nodes', undefined, s.name, (node) => {
      node.status.allocatable = { ...node.status.allocatable, ...wanted };
      return node;
    });
  }

  /** The node's GPUs changed: its exporter text is rendered again at the next scrape. */
  gpuChanged(s: NodeState): void {
    s.exposition = undefined;
  }
}
