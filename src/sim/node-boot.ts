import type { NodeState } from './cluster-types.js';
import { devicePluginResources, type GpuShape, gfdLabels } from './gpu-shapes.js';
import type { KubeNode, KubePod } from './k8s-objects.js';
import type { ResourceStore } from './resource-store.js';
import type { SimTimer } from './sim-clock.js';
import { H100_MODEL, type SimGpu } from './sim-gpu.js';

/** What the boot lifecycle needs of the cluster. */
export interface NodeBootHost {
  readonly store: ResourceStore;
  devicePluginDelayMs(): number;
  exporterReadyDelayMs(): number;
  shapeOptions(): { replicas: number; rename: boolean };
  timestamp(): string;
  later(ms: number, fn: () => void): SimTimer;
  nodeState(name: string): NodeState | undefined;
  podsOn(node: string): KubePod[];
  isDcgmServerPod(pod: KubePod): boolean;
  /** A fresh pod sandbox IP on the node. */
  podIp(s: NodeState): string;
  kickScheduler(): void;
}

/**
 * A node's boot as the kubelet sees it: the NVIDIA device plugin registers late (GPU resources 0 until then)
 * and the restarted GPU agent pods (dcgm-exporter, dcgm-server) are not Ready until their probes pass.
 */
export class NodeBoot {
  constructor(private readonly host: NodeBootHost) {}

  agentPods(s: NodeState): KubePod[] {
    return this.host
      .podsOn(s.name)
      .filter((p) => p.metadata.labels?.app === 'nvidia-dcgm-exporter' || this.host.isDcgmServerPod(p));
  }

  /**
   * A node boot from the kubelet's side: the device plugin registers after devicePluginDelayMs, the GPU
   * agent pods pass their readiness probes after exporterReadyDelayMs (each counted from the node's Ready).
   */
  start(s: NodeState): void {
    this.cancelTimers(s);
    s.agentsStarting = true;
    for (const p of this.agentPods(s)) this.setContainersReady(p, false);
    s.bootTimers = [
      this.host.later(this.host.devicePluginDelayMs(), () => {
        if (this.host.nodeState(s.name) !== s || s.rebooting) return;
        s.pluginRegistered = true;
        this.advertiseGpus(s);
        this.host.kickScheduler();
      }),
      this.host.later(this.host.exporterReadyDelayMs(), () => {
        if (this.host.nodeState(s.name) !== s || s.rebooting) return;
        s.agentsStarting = false;
        for (const p of this.agentPods(s)) this.setContainersReady(p, true);
      }),
    ];
  }

  cancelTimers(s: NodeState): void {
    for (const t of s.bootTimers) t.cancel();
    s.bootTimers = [];
  }

  /**
   * What the kubelet reports for the node's NVIDIA resources: every resource at 0 while the device plugin is not
   * registered, else the devices of the GPUs counted (all of them, or only those NVML sees).
   */
  advertised(
    s: Pick<NodeState, 'pluginRegistered'>,
    shape: GpuShape,
    gpus: readonly SimGpu[],
    presentOnly: boolean,
  ): Record<string, string> {
    const resources = devicePluginResources(shape, gpus, this.host.shapeOptions(), presentOnly);
    if (!s.pluginRegistered) for (const k of Object.keys(resources)) resources[k] = '0';
    return resources;
  }

  /**
   * The device plugin registers (and GFD relabels) with the GPUs NVML sees: a GPU that did not come back after
   * the boot lowers capacity, allocatable and `nvidia.com/gpu.count` alike, as on a real node.
   */
  advertiseGpus(s: NodeState): void {
    const seen = s.gpus.filter((g) => g.present);
    const resources = this.advertised(s, s.shape, seen, false);
    const count = gfdLabels(s.shape, s.gpus[0]?.model ?? H100_MODEL, seen, this.host.shapeOptions())[
      'nvidia.com/gpu.count'
    ];
    this.host.store.update<KubeNode>('nodes', undefined, s.name, (n) => {
      n.status.capacity = { ...n.status.capacity, ...resources };
      n.status.allocatable = { ...n.status.allocatable, ...resources };
      if (
        s.pluginRegistered &&
        count !== undefined &&
        n.metadata.labels?.['nvidia.com/gpu.count'] !== undefined
      )
        n.metadata.labels = { ...n.metadata.labels, 'nvidia.com/gpu.count': count };
      return n;
    });
  }

  /** After a node reboot: the same pod, a new sandbox (new IP), its containers restarted and not Ready. */
  restartContainers(p: KubePod): void {
    const s = p.spec.nodeName ? this.host.nodeState(p.spec.nodeName) : undefined;
    this.host.store.update<KubePod>('pods', p.metadata.namespace, p.metadata.name, (pod) => {
      pod.status.containerStatuses = pod.status.containerStatuses?.map((c) => ({
        ...c,
        restartCount: c.restartCount + 1,
      }));
      const hostNetwork = pod.status.podIP !== undefined && pod.status.podIP === pod.status.hostIP;
      if (s && !hostNetwork) pod.status.podIP = this.host.podIp(s);
      return pod;
    });
  }

  setContainersReady(p: KubePod, ready: boolean): void {
    const status = ready ? 'True' : 'False';
    const now = this.host.timestamp();
    this.host.store.update<KubePod>('pods', p.metadata.namespace, p.metadata.name, (pod) => {
      pod.status.conditions = pod.status.conditions?.map((c) =>
        (c.type === 'Ready' || c.type === 'ContainersReady') && c.status !== status
          ? { ...c, status, lastTransitionTime: now }
          : c,
      );
      pod.status.containerStatuses = pod.status.containerStatuses?.map((c) => ({
        ...c,
        ready,
        started: ready,
      }));
      return pod;
    });
  }
}
