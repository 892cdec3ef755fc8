import type { Logger } from 'pino';
import type { InstanceState, SimInstance } from './cloud-effects.js';
import { DO_NOT_DISRUPT, EXPORTER_DS, type NodeGroup, type NodeState } from './cluster-types.js';
import type { GpuShape } from './gpu-shapes.js';
import type { KubeNode } from './k8s-objects.js';
import type { NodeBoot } from './node-boot.js';
import { baseConditions, setReady } from './node-conditions.js';
import type { ReusedIdentity } from './node-factory.js';
import type { PodController } from './pod-controller.js';
import { ApiError, type ResourceStore } from './resource-store.js';
import type { SeededRandom } from './seeded-random.js';
import type { SimTimer } from './sim-clock.js';
import { resetAfterReboot } from './sim-gpu.js';

/** What the instances' lifecycle needs of the cluster. */
export interface InstanceLifecycleHost {
  readonly store: ResourceStore;
  readonly rng: SeededRandom;
  readonly log: Logger | undefined;
  readonly boot: Pick<NodeBoot, 'cancelTimers' | 'advertised' | 'agentPods' | 'restartContainers' | 'start'>;
  readonly pods: Pick<
    PodController,
    'reapplyAllocationsLoad' | 'exporterPod' | 'createDaemonSetPod' | 'kickScheduler'
  >;
  rebootDelayMs(): number;
  terminateDelayMs(): number;
  replaceDelayMs(): number;
  /** The cluster runs its DaemonSets and workloads (else nodes have no pods). */
  workloads(): boolean;
  timestamp(): string;
  later(ms: number, fn: () => void): SimTimer;
  nodeStates(): Iterable<NodeState>;
  nodeState(name: string): NodeState | undefined;
  addNode(group: NodeGroup, reuse?: ReusedIdentity, shape?: GpuShape): NodeState;
  removeNode(name: string): void;
  gpuChanged(s: NodeState): void;
  scheduleConsolidation(s: NodeState): void;
}

const KUBELET_GONE = { reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' };

/**
 * The EC2 instances behind the nodes and what happens to them: a reboot (the node goes NotReady, boots with a
 * new boot ID, its device plugin and agents come back late, persistent faults come back), a termination (the
 * node goes, a managed node group launches a replacement once capacity allows), and PATCH and DELETE of a
 * Node through the API (an uncordon lets pending pods in; a Karpenter node's DELETE ends its instance).
 */
export class InstanceLifecycle {
  private readonly instances = new Map<string, SimInstance>();
  /** No instance can be launched (InsufficientInstanceCapacity): replacements wait until it is lifted. */
  noCapacity = false;

  constructor(private readonly host: InstanceLifecycleHost) {}

  get(instanceId: string): SimInstance | undefined {
    return this.instances.get(instanceId);
  }

  add(instance: SimInstance): void {
    this.instances.set(instance.instanceId, instance);
  }

  describe(instanceIds?: string[]): SimInstance[] {
    const all = [...this.instances.values()];
    const picked =
      instanceIds && instanceIds.length > 0 ? all.filter((i) => instanceIds.includes(i.instanceId)) : all;
    return picked.map((i) => structuredClone(i));
  }

  tag(instanceId: string, tags: Record<string, string>): boolean {
    const inst = this.instances.get(instanceId);
    if (!inst) return false;
    Object.assign(inst.tags, tags);
    return true;
  }

  private stateByInstance(instanceId: string): NodeState | undefined {
    for (const s of this.host.nodeStates()) if (s.instanceId === instanceId) return s;
    return undefined;
  }

  reboot(instanceId: string): boolean {
    const inst = this.instances.get(instanceId);
    if (!inst || inst.state !== 'running') return false;
    const s = this.stateByInstance(instanceId);
    if (!s) return true;
    s.rebooting = true;
    s.rebootTimer?.cancel();
    this.host.boot.cancelTimers(s);
    setReady(this.host.store, s.name, false, KUBELET_GONE, this.host.timestamp());
    if (s.rebootHangs) {
      this.host.log?.info({ node: s.name, instanceId }, 'sim: instance rebooting (and will hang in boot)');
      return true;
    }
    s.rebootTimer = this.host.later(this.host.rebootDelayMs(), () => this.finishReboot(s));
    this.host.log?.info({ node: s.name, instanceId }, 'sim: instance rebooting');
    return true;
  }

  private finishReboot(s: NodeState): void {
    const { store, boot, pods } = this.host;
    if (this.host.nodeState(s.name) !== s) return;
    s.rebooting = false;
    s.rebootTimer = undefined;
    s.kernelLog = [];
    for (const g of s.gpus) resetAfterReboot(g);
    pods.reapplyAllocationsLoad(s);
    s.exporterMode = 'ok';
    const bootID = this.host.rng.uuid();
    const now = this.host.timestamp();
    // The kubelet is up before the device plugin: `nvidia.com/gpu` reads 0 from the first Ready of the new boot.
    if (s.gpuNode) {
      s.pluginRegistered = false;
      s.agentsStarting = true;
    }
    store.update<KubeNode>('nodes', undefined, s.name, (n) => {
      n.status.nodeInfo = { ...n.status.nodeInfo, bootID };
      n.status.conditions = baseConditions(s.gpuNode, now).map((c) => {
        const keep = n.status.conditions.find((o) => o.type === c.type);
        return keep && keep.status === c.status ? { ...c, lastTransitionTime: keep.lastTransitionTime } : c;
      });
      if (s.gpuNode) {
        const none = boot.advertised(s, s.shape, s.gpus, false);
        n.status.capacity = { ...n.status.capacity, ...none };
        n.status.allocatable = { ...n.status.allocatable, ...none };
      }
      return n;
    });
    s.injectedConditions.clear();
    this.host.gpuChanged(s);
    if (s.gpuNode && this.host.workloads()) {
      const exporter = pods.exporterPod(s.name);
      if (!exporter) pods.createDaemonSetPod(s, EXPORTER_DS);
      // The pods survive the reboot; their containers restart and are not Ready until their probes pass.
      for (const p of boot.agentPods(s)) boot.restartContainers(p);
    }
    if (s.gpuNode) boot.start(s);
    const replay = s.persistent;
    s.persistent = [];
    for (const fault of replay) fault();
    s.persistent = replay;
    this.host.log?.info({ node: s.name, bootID }, 'sim: node rebooted');
    pods.kickScheduler();
  }

  terminate(instanceId: string, opts: { decrementDesiredCapacity: boolean }): InstanceState | undefined {
    const inst = this.instances.get(instanceId);
    if (!inst) return undefined;
    const before = inst.state;
    if (before === 'shutting-down' || before === 'terminated') return before;
    inst.state = 'shutting-down';
    const s = this.stateByInstance(instanceId);
    if (s) {
      s.rebootTimer?.cancel();
      setReady(this.host.store, s.name, false, KUBELET_GONE, this.host.timestamp());
    }
    const group = s?.group;
    this.host.later(this.host.terminateDelayMs(), () => {
      inst.state = 'terminated';
      if (s && this.host.nodeState(s.name) === s) this.host.removeNode(s.name);
    });
    // A node group keeps its desired capacity; Karpenter (and Auto Mode) start nodes only for pending pods.
    const replace = group?.kind === 'managed' && !opts.decrementDesiredCapacity;
    if (group && replace) this.launchReplacement(group, s?.shape);
    this.host.log?.info({ instanceId, node: s?.name, replace }, 'sim: instance terminating');
    return before;
  }

  /** Launches a replacement for a terminated instance of `group`, once capacity allows. */
  private launchReplacement(group: NodeGroup, shape?: GpuShape): void {
    this.host.later(this.host.replaceDelayMs(), () => {
      if (this.noCapacity) this.launchReplacement(group, shape);
      else this.host.addNode(group, undefined, shape);
    });
  }

  /**
   * Replaces a node object after a PATCH. Only spec/metadata change through the main resource and
   * only status through `/status`, as on a real API server; identity fields cannot change.
   */
  updateNode(name: string, patched: KubeNode, subresource: 'status' | undefined): KubeNode {
    const { store } = this.host;
    const current = store.get<KubeNode>('nodes', undefined, name);
    if (!current) throw new ApiError(404, 'NotFound', `nodes "${name}" not found`, { name, kind: 'nodes' });
    if (patched.metadata?.name !== name)
      throw new ApiError(
        422,
        'Invalid',
        `Node "${name}" is invalid: metadata.name: Invalid value: field is immutable`,
      );
    const wasUnschedulable = current.spec.unschedulable === true;
    const next: KubeNode =
      subresource === 'status'
        ? { ...current, status: patched.status }
        : {
            ...current,
            metadata: {
              ...patched.metadata,
              uid: current.metadata.uid,
              creationTimestamp: current.metadata.creationTimestamp,
            },
            spec: patched.spec,
          };
    const updated = store.update<KubeNode>('nodes', undefined, name, () => next);
    if (wasUnschedulable && updated.spec.unschedulable !== true) this.host.pods.kickScheduler();
    const s = this.host.nodeState(name);
    if (s && updated.metadata.annotations?.[DO_NOT_DISRUPT] !== 'true') this.host.scheduleConsolidation(s);
    return updated;
  }

  /** DELETE of a Node through the API. Karpenter nodes terminate their instance behind a finalizer. */
  deleteNode(name: string): KubeNode {
    const { store } = this.host;
    const s = this.host.nodeState(name);
    const node = store.get<KubeNode>('nodes', undefined, name);
    if (!s || !node)
      throw new ApiError(404, 'NotFound', `nodes "${name}" not found`, { name, kind: 'nodes' });
    if (s.group.kind === 'karpenter') {
      if (!node.metadata.deletionTimestamp) {
        store.update<KubeNode>('nodes', undefined, name, (n) => {
          n.metadata.deletionTimestamp = this.host.timestamp();
          n.metadata.deletionGracePeriodSeconds = 0;
          return n;
        });
        this.terminate(s.instanceId, { decrementDesiredCapacity: false });
      }
      return structuredClone(store.get<KubeNode>('nodes', undefined, name) ?? node);
    }
    // A managed-node-group instance keeps running: its kubelet registers the node again.
    const group = s.group;
    const instanceId = s.instanceId;
    const removed = structuredClone(node);
    this.host.removeNode(name);
    this.host.later(this.host.replaceDelayMs(), () => {
      const inst = this.instances.get(instanceId);
      if (inst?.state === 'running')
        this.host.addNode(group, { name, instanceId, ip: s.ip, az: s.az }, s.shape);
    });
    return removed;
  }
}
