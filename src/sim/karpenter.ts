import type { Logger } from 'pino';
import { DO_NOT_DISRUPT, type NodeGroup, type NodeState } from './cluster-types.js';
import type { KubeNode, KubePod } from './k8s-objects.js';
import type { ResourceStore } from './resource-store.js';
import type { SimTimer } from './sim-clock.js';
import { isDaemonSetPod, isMirrorPod, podGpuRequest } from './workloads.js';

export interface KarpenterDisruption {
  kind: 'provisioned' | 'consolidated';
  node: string;
  pool: string;
}

/** What the simulated Karpenter needs of the cluster. */
export interface KarpenterHost {
  readonly store: ResourceStore;
  readonly log: Logger | undefined;
  gpusPerNode(): number;
  /** From a launch to the node joining (the cluster's replaceDelayMs). */
  launchDelayMs(): number;
  timestamp(): string;
  later(ms: number, fn: () => void): SimTimer;
  addNode(group: NodeGroup): NodeState;
  nodeState(name: string): NodeState | undefined;
  podsOn(node: string): KubePod[];
  terminateInstance(instanceId: string, opts: { decrementDesiredCapacity: boolean }): unknown;
}

/**
 * The simulated Karpenter (also Auto Mode's): provisioning of nodes for pending GPU pods, consolidation of
 * empty nodes, with `karpenter.sh/do-not-disrupt` respected.
 */
export class KarpenterController {
  /** The pool that starts nodes for pending GPU pods (Auto Mode's if the cluster has one, else Karpenter's). */
  provisioner: Extract<NodeGroup, { kind: 'karpenter' }> | undefined;
  /** Nodes the provisioner launched that have not joined yet. */
  private launching = 0;
  private readonly consolidationPending = new Set<string>();
  /** What the simulated Karpenter did on its own: nodes it started for pending pods, empty nodes it removed. */
  readonly disruptions: KarpenterDisruption[] = [];

  constructor(
    private readonly consolidateAfterMs: number | undefined,
    private readonly host: KarpenterHost,
  ) {}

  /**
   * Karpenter (or Auto Mode) starts nodes for GPU pods no existing node can take, and only for them: enough
   * whole nodes for the pending GPU requests, less the nodes already launching. Nothing pending, no node.
   */
  provisionForPending(pending: ReadonlySet<string>): void {
    const group = this.provisioner;
    if (!group) return;
    let gpus = 0;
    for (const key of pending) {
      const [ns, name] = key.split('/');
      const p = this.host.store.get<KubePod>('pods', ns, name ?? '');
      if (p && !p.spec.nodeName && !p.metadata.deletionTimestamp) gpus += podGpuRequest(p);
    }
    const nodes = Math.ceil(gpus / Math.max(1, this.host.gpusPerNode())) - this.launching;
    for (let i = 0; i < nodes; i++) {
      this.launching++;
      this.host.later(this.host.launchDelayMs(), () => {
        this.launching--;
        const s = this.host.addNode(group);
        this.disruptions.push({ kind: 'provisioned', node: s.name, pool: group.pool });
        this.host.log?.info(
          { node: s.name, pool: group.pool },
          'sim: karpenter provisioned a node for pending pods',
        );
      });
    }
  }

  /** Consolidation of an empty Karpenter / Auto Mode node after `consolidateAfterMs` (when enabled). */
  scheduleConsolidation(s: NodeState): void {
    if (this.consolidateAfterMs === undefined || s.group.kind !== 'karpenter') return;
    const pool = s.group.pool;
    if (this.consolidationPending.has(s.name)) return;
    this.consolidationPending.add(s.name);
    this.host.later(this.consolidateAfterMs, () => {
      this.consolidationPending.delete(s.name);
      this.consolidateIfEmpty(s, pool);
    });
  }

  private consolidateIfEmpty(s: NodeState, pool: string): void {
    if (this.host.nodeState(s.name) !== s) return;
    const node = this.host.store.get<KubeNode>('nodes', undefined, s.name);
    if (!node || node.metadata.deletionTimestamp) return;
    const pods = this.host.podsOn(s.name);
    // Voluntary disruption respects do-not-disrupt on the node and on its pods; DaemonSet and static pods
    // do not make a node "not empty".
    const guarded =
      node.metadata.annotations?.[DO_NOT_DISRUPT] === 'true' ||
      pods.some((p) => p.metadata.annotations?.[DO_NOT_DISRUPT] === 'true');
    if (guarded || pods.some((p) => !isDaemonSetPod(p) && !isMirrorPod(p))) return;
    this.host.store.update<KubeNode>('nodes', undefined, s.name, (n) => {
      n.metadata.deletionTimestamp = this.host.timestamp();
      return n;
    });
    this.disruptions.push({ kind: 'consolidated', node: s.name, pool });
    this.host.log?.info({ node: s.name }, 'sim: karpenter consolidated an empty node');
    this.host.terminateInstance(s.instanceId, { decrementDesiredCapacity: true });
  }
}
