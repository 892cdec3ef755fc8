import { EXPORTER_DS, type NodeState, podKey } from './cluster-types.js';
import { DisruptionBudgets } from './disruption-budgets.js';
import type { KubeNode, KubePod, KubeTrainingJob } from './k8s-objects.js';
import { ApiError, type ResourceStore } from './resource-store.js';
import type { SeededRandom } from './seeded-random.js';
import type { SimTimer } from './sim-clock.js';
import { applyLoad } from './sim-gpu.js';
import { setJobRunning } from './training-jobs.js';
import {
  DAEMONSETS,
  type DaemonSetSpec,
  DCGM_EXPORTER_NAMESPACE,
  type DcgmServerSpec,
  daemonSetPod,
  isDaemonSetPod,
  isMirrorPod,
  mirrorPod,
  podGpuRequest,
  pytorchJob,
  pytorchJobPod,
  type ReplicaType,
  servingPdb,
  servingPod,
} from './workloads.js';

/** What the pods and their controllers need of the cluster. */
export interface PodControllerHost {
  readonly store: ResourceStore;
  readonly rng: SeededRandom;
  /** The DCGM host-engine DaemonSet, when the cluster runs one. */
  readonly dcgmServer: DcgmServerSpec | undefined;
  rescheduleDelayMs(): number;
  podTerminationMs(): number;
  /** Time-sliced GPUs are advertised as `nvidia.com/gpu.shared` (a pod asking for `nvidia.com/gpu` does not fit). */
  timeSlicingRename(): boolean;
  timestamp(): string;
  later(ms: number, fn: () => void): SimTimer;
  nodeStates(): NodeState[];
  nodeState(name: string): NodeState | undefined;
  /** The node's GPUs changed (their exporter text is stale). */
  gpuChanged(s: NodeState): void;
  /** A GPU agent pod created while its node boots is not Ready until its probes pass. */
  setContainersReady(pod: KubePod, ready: boolean): void;
  scheduleConsolidation(s: NodeState): void;
  /** Karpenter looks at the pods still pending after a scheduler pass. */
  provisionForPending(pending: ReadonlySet<string>): void;
}

/**
 * The cluster's pods and the controllers that own them: a first-fit GPU scheduler with a pending queue, the
 * per-node pod index, pod termination and the Eviction API (with PodDisruptionBudgets), and what each owner
 * does when its pod goes — the training operator restarts the replica, the ReplicaSet and DaemonSet create
 * another, the kubelet recreates a mirror pod.
 */
export class PodController {
  readonly budgets: DisruptionBudgets;
  private readonly podsByNode = new Map<string, Set<string>>();
  /** Keys of pods waiting for a node. */
  private readonly pending = new Set<string>();
  private pendingTimer?: SimTimer;
  private readonly dsUids = new Map<string, string>();
  private readonly servingRs = { name: 'inference-6f9c8d7b5', uid: '' };

  constructor(private readonly host: PodControllerHost) {
    this.budgets = new DisruptionBudgets(host.store);
    for (const ds of this.daemonSets()) this.dsUids.set(ds.name, host.rng.uuid());
    this.servingRs.uid = host.rng.uuid();
  }

  // ---------------------------------------------------------------- reading

  /** Live pods (no copy) for the API server; filter by namespace and/or node through the index. */
  podsOn(filter: { namespace?: string; nodeName?: string }): KubePod[] {
    if (filter.nodeName !== undefined) {
      const keys = this.podsByNode.get(filter.nodeName) ?? new Set<string>();
      const out: KubePod[] = [];
      for (const k of keys) {
        const [ns, name] = k.split('/');
        const p = this.host.store.get<KubePod>('pods', ns, name ?? '');
        if (p && (!filter.namespace || p.metadata.namespace === filter.namespace)) out.push(p);
      }
      return out;
    }
    return this.host.store.list<KubePod>('pods', filter.namespace);
  }

  /** Is this pod one of the DCGM host-engine pods (the `dcgmServer` DaemonSet's)? */
  isDcgmServerPod(pod: KubePod): boolean {
    const ds = this.host.dcgmServer;
    if (!ds || pod.metadata.namespace !== ds.namespace) return false;
    return Object.entries(ds.labels).every(([k, v]) => pod.metadata.labels?.[k] === v);
  }

  /** The DCGM host-engine pod of a node (live), if the cluster runs them. */
  dcgmServerPod(node: string): KubePod | undefined {
    const ds = this.host.dcgmServer;
    if (!ds) return undefined;
    return this.podsOn({ nodeName: node, namespace: ds.namespace }).find((x) => this.isDcgmServerPod(x));
  }

  /** The dcgm-exporter pod of a node (live), if it has one. */
  exporterPod(node: string): KubePod | undefined {
    return this.podsOn({ nodeName: node, namespace: DCGM_EXPORTER_NAMESPACE }).find(
      (p) => p.metadata.labels?.app === 'nvidia-dcgm-exporter',
    );
  }

  /** Where a pod on the node runs: the node, its IP and a fresh pod IP in the node's /24. */
  placement(s: NodeState): { nodeName: string; hostIP: string; podIP: string } {
    const third = s.ip.split('.')[2] ?? '0';
    return { nodeName: s.name, hostIP: s.ip, podIP: `10.0.${third}.${this.host.rng.int(1, 254)}` };
  }

  // ---------------------------------------------------------------- nodes coming and going

  /** A node registered: its pod index starts empty (before any pod is bound to it). */
  nodeAdded(s: NodeState): void {
    this.podsByNode.set(s.name, new Set());
  }

  /** The node's DaemonSet pods (the GPU-only ones on GPU nodes). */
  createDaemonSetPods(s: NodeState): void {
    for (const ds of this.daemonSets()) if (s.gpuNode || !ds.gpuOnly) this.createDaemonSetPod(s, ds);
  }

  /** The node is gone: its pods go with it (their owners react) and so does its index. */
  nodeGone(name: string): void {
    for (const p of this.podsOn({ nodeName: name })) this.removePod(p, 'node-gone');
    this.podsByNode.delete(name);
  }

  // ---------------------------------------------------------------- workloads

  /** The demo workloads: a PyTorchJob over up to three GPU nodes, a two-replica serving app behind a PDB, a mirror pod. */
  createWorkloads(): void {
    const gpuNodes = this.host.nodeStates().filter((s) => s.gpuNode);
    if (gpuNodes.length === 0) return;
    const { store, rng } = this.host;
    const now = this.host.timestamp();
    const replicas = Math.min(3, gpuNodes.length);
    const job = store.create('pytorchjobs', pytorchJob(rng, now, replicas - 1));
    this.createJobPod(job, 'master', 0);
    for (let i = 0; i < replicas - 1; i++) this.createJobPod(job, 'worker', i);

    store.create('poddisruptionbudgets', servingPdb(rng, now, 1));
    for (let i = 0; i < 2; i++) this.createServingPod();

    const host = gpuNodes[Math.min(5, gpuNodes.length - 1)];
    if (host) this.createMirrorPod(host);
    this.budgets.recompute();
  }

  createDaemonSetPod(s: NodeState, ds: DaemonSetSpec): void {
    const uid = this.dsUids.get(ds.name) ?? this.host.rng.uuid();
    const hostNetwork = ds.name === 'aws-node' || ds.name === 'kube-proxy';
    const pod = this.addPod(
      this.uniquePod(() =>
        daemonSetPod(this.host.rng, this.host.timestamp(), ds, uid, this.placement(s), hostNetwork),
      ),
    );
    const agent = ds.name === EXPORTER_DS.name || ds === this.host.dcgmServer;
    if (agent && s.agentsStarting) this.host.setContainersReady(pod, false);
  }

  private daemonSets(): DaemonSetSpec[] {
    return this.host.dcgmServer ? [...DAEMONSETS, this.host.dcgmServer] : [...DAEMONSETS];
  }

  private createMirrorPod(s: NodeState): void {
    const node = this.host.store.get<KubeNode>('nodes', undefined, s.name);
    if (!node) return;
    this.addPod(
      mirrorPod(this.host.rng, this.host.timestamp(), s.name, node.metadata.uid, this.placement(s)),
    );
  }

  private createJobPod(job: KubeTrainingJob, type: ReplicaType, index: number): void {
    const pod = pytorchJobPod(this.host.rng, this.host.timestamp(), job, type, index, {});
    this.schedule(pod);
  }

  private createServingPod(): void {
    const pod = this.uniquePod(() =>
      servingPod(this.host.rng, this.host.timestamp(), this.servingRs.uid, this.servingRs.name, {}),
    );
    this.schedule(pod);
  }

  private addPod(p: KubePod): KubePod {
    const created = this.host.store.create('pods', p);
    if (p.spec.nodeName)
      this.podsByNode.get(p.spec.nodeName)?.add(podKey(p.metadata.namespace, p.metadata.name));
    return created;
  }

  /** Generated names (`aws-node-x7k2p`) can collide at fleet scale, as in Kubernetes: draw again. */
  private uniquePod(build: () => KubePod): KubePod {
    for (;;) {
      const p = build();
      if (!this.host.store.get('pods', p.metadata.namespace, p.metadata.name)) return p;
    }
  }

  // ---------------------------------------------------------------- scheduling

  /** Places a GPU pod on the first Ready, schedulable GPU node with enough free GPUs, or leaves it Pending. */
  private schedule(pod: KubePod): void {
    const { store } = this.host;
    const need = podGpuRequest(pod);
    const app = pod.metadata.labels?.app;
    // Replicas of one app spread over nodes (as a topology spread constraint would), others pack first-fit.
    const candidates = this.host.nodeStates();
    if (app) {
      const load = (s: NodeState) =>
        this.podsOn({ nodeName: s.name }).filter((p) => p.metadata.labels?.app === app).length;
      const loads = new Map(candidates.map((s) => [s, load(s)]));
      candidates.sort((a, b) => (loads.get(a) ?? 0) - (loads.get(b) ?? 0));
    }
    for (const s of candidates) {
      // MIG-mixed nodes offer only nvidia.com/mig-<profile>, renamed time-sliced ones nvidia.com/gpu.shared:
      // a pod asking for nvidia.com/gpu does not fit there. Nor before the device plugin registers.
      if (!s.gpuNode || s.rebooting || !s.pluginRegistered || s.shape === 'mig-mixed') continue;
      if (s.shape === 'time-sliced' && this.host.timeSlicingRename()) continue;
      const node = store.get<KubeNode>('nodes', undefined, s.name);
      if (!node || node.spec.unschedulable || node.metadata.deletionTimestamp) continue;
      if (node.status.conditions.find((c) => c.type === 'Ready')?.status !== 'True') continue;
      const free = s.gpus.filter((g) => g.present && !s.allocations.has(g.index));
      if (free.length < need) continue;
      const at = this.placement(s);
      pod.spec.nodeName = at.nodeName;
      const now = this.host.timestamp();
      pod.status = {
        phase: 'Running',
        hostIP: at.hostIP,
        podIP: at.podIP,
        startTime: now,
        conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({
          type,
          status: 'True',
        })),
        containerStatuses: pod.spec.containers.map((c) => ({
          name: c.name,
          ready: true,
          restartCount: 0,
          image: c.image,
          started: true,
        })),
      };
      const key = podKey(pod.metadata.namespace, pod.metadata.name);
      for (const g of free.slice(0, need)) {
        s.allocations.set(g.index, key);
        g.pod = {
          namespace: pod.metadata.namespace ?? 'default',
          pod: pod.metadata.name,
          container: pod.spec.containers[0]?.name ?? '',
        };
        applyLoad(g, true);
      }
      this.host.gpuChanged(s);
      if (store.get('pods', pod.metadata.namespace, pod.metadata.name)) {
        store.update<KubePod>('pods', pod.metadata.namespace, pod.metadata.name, () => pod);
        this.podsByNode.get(s.name)?.add(key);
      } else this.addPod(pod);
      this.pending.delete(key);
      this.onPodScheduled(pod);
      return;
    }
    if (!store.get('pods', pod.metadata.namespace, pod.metadata.name)) this.addPod(pod);
    this.pending.add(podKey(pod.metadata.namespace, pod.metadata.name));
    this.kickScheduler();
  }

  /** A reboot or a cleared fault resets the GPUs' readings: the ones still allocated read busy again. */
  reapplyAllocationsLoad(s: NodeState): void {
    for (const g of s.gpus) if (s.allocations.has(g.index)) applyLoad(g, true);
  }

  /** Retries Pending pods after a controller-ish delay. */
  kickScheduler(): void {
    if (this.pendingTimer || this.pending.size === 0) return;
    this.pendingTimer = this.host.later(this.host.rescheduleDelayMs(), () => {
      this.pendingTimer = undefined;
      for (const key of [...this.pending]) {
        const [ns, name] = key.split('/');
        const p = this.host.store.get<KubePod>('pods', ns, name ?? '');
        if (p && !p.spec.nodeName) this.schedule(p);
        else this.pending.delete(key);
      }
      this.host.provisionForPending(this.pending);
    });
  }

  private onPodScheduled(pod: KubePod): void {
    if (pod.metadata.labels?.app === 'inference') this.budgets.recompute();
    const owner = pod.metadata.ownerReferences?.find((o) => o.kind === 'PyTorchJob');
    if (!owner) return;
    const jobPodsPending = this.host.store
      .list<KubePod>('pods', pod.metadata.namespace)
      .some((p) => p.metadata.labels?.['training.kubeflow.org/job-name'] === owner.name && !p.spec.nodeName);
    if (!jobPodsPending) setJobRunning(this.host, pod.metadata.namespace ?? '', owner.name, true);
  }

  // ---------------------------------------------------------------- deletion and eviction

  /** DELETE of a pod through the API. */
  deleteFromApi(namespace: string, name: string): KubePod {
    const p = this.host.store.get<KubePod>('pods', namespace, name);
    if (!p) throw new ApiError(404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' });
    return this.terminatePod(p, 'delete');
  }

  /** The Eviction API: 429 while a matching PDB allows no disruption. */
  evict(namespace: string, name: string): void {
    const p = this.host.store.get<KubePod>('pods', namespace, name);
    if (!p) throw new ApiError(404, 'NotFound', `pods "${name}" not found`, { name, kind: 'pods' });
    if (p.metadata.deletionTimestamp) return;
    this.budgets.admitEviction(p);
    this.terminatePod(p, 'evict');
  }

  /** Deletion with the configured grace period: deletionTimestamp first, then gone. */
  private terminatePod(p: KubePod, cause: 'evict' | 'delete'): KubePod {
    const graceMs = this.host.podTerminationMs();
    if (graceMs <= 0) {
      this.removePod(p, cause);
      return structuredClone(p);
    }
    const { store } = this.host;
    const updated = store.update<KubePod>('pods', p.metadata.namespace, p.metadata.name, (pod) => {
      pod.metadata.deletionTimestamp = this.host.timestamp();
      pod.metadata.deletionGracePeriodSeconds = Math.ceil(graceMs / 1000);
      return pod;
    });
    this.budgets.recompute();
    this.host.later(graceMs, () => {
      const still = store.get<KubePod>('pods', p.metadata.namespace, p.metadata.name);
      if (still && still.metadata.uid === p.metadata.uid) this.removePod(still, cause);
    });
    return structuredClone(updated);
  }

  /** Removes a pod and lets its controller react (job restart, ReplicaSet/DaemonSet/kubelet recreate). */
  removePod(p: KubePod, cause: 'evict' | 'delete' | 'node-gone'): void {
    const { store } = this.host;
    const ns = p.metadata.namespace;
    const key = podKey(ns, p.metadata.name);
    const nodeName = p.spec.nodeName;
    store.delete('pods', ns, p.metadata.name);
    this.pending.delete(key);
    const s = nodeName ? this.host.nodeState(nodeName) : undefined;
    if (nodeName) this.podsByNode.get(nodeName)?.delete(key);
    if (s) {
      for (const [idx, owner] of s.allocations) {
        if (owner !== key) continue;
        s.allocations.delete(idx);
        const g = s.gpus[idx];
        if (g) {
          g.pod = undefined;
          applyLoad(g, false);
        }
      }
      this.host.gpuChanged(s);
      if (cause !== 'node-gone') this.host.scheduleConsolidation(s);
    }
    const owner = p.metadata.ownerReferences?.[0];
    const delay = this.host.rescheduleDelayMs();
    if (owner?.kind === 'PyTorchJob' && ns) {
      const type = (p.metadata.labels?.['training.kubeflow.org/replica-type'] ?? 'worker') as ReplicaType;
      const index = Number(p.metadata.labels?.['training.kubeflow.org/replica-index'] ?? 0);
      const typeName = type === 'master' ? 'Master' : 'Worker';
      setJobRunning(
        this.host,
        ns,
        owner.name,
        false,
        `PyTorchJob ${owner.name} is restarting because 1 ${typeName} replica(s) failed.`,
      );
      this.host.later(delay, () => {
        const job = store.get<KubeTrainingJob>('pytorchjobs', ns, owner.name);
        if (job && !store.get('pods', ns, p.metadata.name)) this.createJobPod(job, type, index);
      });
    } else if (owner?.kind === 'ReplicaSet') {
      this.host.later(delay, () => this.createServingPod());
    } else if (isDaemonSetPod(p) && cause !== 'node-gone' && s) {
      const ds = this.daemonSets().find((d) => d.name === owner?.name);
      const isExporter = ds?.name === 'nvidia-dcgm-exporter';
      this.host.later(delay, () => {
        if (this.host.nodeState(s.name) !== s || !ds) return;
        if (isExporter && (s.exporterMode === 'missing' || this.exporterPod(s.name))) return;
        this.createDaemonSetPod(s, ds);
      });
    } else if (isMirrorPod(p) && cause !== 'node-gone' && s) {
      this.host.later(delay, () => {
        if (this.host.nodeState(s.name) === s && !store.get('pods', ns, p.metadata.name))
          this.createMirrorPod(s);
      });
    }
    this.budgets.recompute();
  }
}
