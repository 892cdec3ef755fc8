import type { Logger } from 'pino';
import type { HealthState } from '../domain/gpu.js';
import type { CloudEffects, InstanceState, SimInstance } from './cloud-effects.js';
import { fleetGroups, initialFleet, type ResolvedOptions, resolveOptions } from './cluster-options.js';
import { wireCollaborators } from './cluster-wiring.js';
import type { CounterSet } from './dcgm-exporter.js';
import { type DiagInjection, type DiagRuntimeError, SimDiag } from './dcgmi-diag.js';
import { exporterScrape } from './exporter-scrape.js';
import type { GpuFaults } from './gpu-faults.js';
import type { InstanceLifecycle } from './instance-lifecycle.js';
import type { KubeLease, KubeNode, KubeObject, KubePdb, KubePod, KubeTrainingJob } from './k8s-objects.js';
import type { KarpenterController, KarpenterDisruption } from './karpenter.js';
import type { SimLeases } from './leases.js';
import type { NodeClaims } from './node-claims.js';
import { setCondition } from './node-conditions.js';
import { NodeRegistry } from './node-registry.js';
import type { EksNodeRepair } from './node-repair.js';
import type { SimGpuResets, StageResult } from './nvidia-smi.js';
import type { PodController } from './pod-controller.js';
import { ResourceStore, type WatchListener } from './resource-store.js';
import { SeededRandom } from './seeded-random.js';
import { realClock, type SimClock, type SimTimer } from './sim-clock.js';
import type { SimGpu } from './sim-gpu.js';
import { type DcgmServerSpec, dcgmServerSpec } from './workloads.js';

export {
  AUTO_MODE_OPERATOR,
  DO_NOT_DISRUPT,
  type ExporterMode,
  type ExporterScrape,
  type FaultOptions,
  KUBEFLOW_JOB_RESOURCES,
  type KubeNodeClaim,
  type NvlinkCounter,
  type SimClusterOptions,
  type SimNodeInfo,
} from './cluster-types.js';

import type {
  ExporterMode,
  ExporterScrape,
  FaultOptions,
  KubeNodeClaim,
  NvlinkCounter,
  SimClusterOptions,
  SimNodeInfo,
} from './cluster-types.js';

/**
 * The in-memory state of a simulated EKS cluster of GPU nodes: Kubernetes objects (in a ResourceStore,
 * the simulator's etcd), the EC2 instances behind the nodes, the GPUs of each node with fault
 * injection, and the controllers that react to changes (reboot, termination and replacement, job
 * restarts, DaemonSet/ReplicaSet pods). Deterministic for a given seed and clock.
 *
 * SimCluster keeps the clock's timers and the API the servers and tests use; each part of the behaviour lives
 * in a collaborator (NodeRegistry holds the nodes; cluster-wiring.ts builds and connects the others).
 */
export class SimCluster implements CloudEffects {
  readonly store = new ResourceStore();
  readonly clusterName: string;
  readonly region: string;
  private readonly rng: SeededRandom;
  private readonly clock: SimClock;
  private readonly log: Logger | undefined;
  private readonly opts: ResolvedOptions;
  /** Karpenter's provisioning for pending pods and consolidation of empty nodes. */
  private readonly karpenter: KarpenterController;
  /** The nodes by name: registering and removing one, and the lookups. */
  private readonly registry: NodeRegistry;
  private readonly timers = new Set<SimTimer>();
  /** The DCGM host-engine DaemonSet, when `dcgmServer` is on. */
  readonly dcgmServer: DcgmServerSpec | undefined;
  /** What `dcgmi diag` finds in the DCGM pods (injected failures; the runs made). */
  readonly diag: SimDiag;
  /** The NodeClaims behind Karpenter and Auto Mode nodes. */
  private readonly nodeClaims: NodeClaims;
  /** EKS node auto repair and the managed node groups' DescribeNodegroup. */
  private readonly repair: EksNodeRepair;
  /** GPU faults (XID, ECC, row remap, NVLink, temperature, off the bus, DCGM health, exporter), nvidia-smi. */
  private readonly gpuFaults: GpuFaults;
  /** What the simulated Karpenter did on its own: nodes it started for pending pods, empty nodes it removed. */
  get disruptions(): KarpenterDisruption[] {
    return this.karpenter.disruptions;
  }
  /** Pods, the scheduler, PodDisruptionBudgets and evictions, and the controllers that own the pods. */
  private readonly pods: PodController;
  /** coordination.k8s.io Leases (leader election). */
  private readonly leases: SimLeases;
  /** The EC2 instances behind the nodes: reboot, termination and replacement; PATCH and DELETE of a Node. */
  private readonly lifecycle: InstanceLifecycle;
  private closed = false;

  constructor(options: SimClusterOptions = {}) {
    this.clusterName = options.clusterName ?? 'sim-cluster';
    this.region = options.region ?? 'us-east-1';
    this.rng = new SeededRandom(options.seed ?? 1);
    this.clock = options.clock ?? realClock;
    this.log = options.logger;
    this.opts = resolveOptions(options);
    const groups = fleetGroups(this.opts.instanceType, this.rng);
    this.dcgmServer = dcgmServerSpec(this.opts.dcgmServer);
    this.diag = new SimDiag(this.clock, options.diagDurationMs);
    this.registry = new NodeRegistry({
      store: this.store,
      log: this.log,
      workloads: () => this.opts.workloads,
      parts: () => parts,
    });
    const registry = this.registry;
    const parts = wireCollaborators(
      {
        clusterName: this.clusterName,
        region: this.region,
        store: this.store,
        rng: this.rng,
        log: this.log,
        opts: this.opts,
        dcgmServer: this.dcgmServer,
        diag: this.diag,
        nodes: registry.nodes,
        now: () => this.clock.now(),
        timestamp: () => this.timestamp(),
        later: (ms, fn) => this.later(ms, fn),
        state: (node) => registry.state(node),
        gpu: (st, index) => registry.gpu(st, index),
        gpuChanged: (st) => registry.gpuChanged(st),
        syncAllocatable: (st) => registry.syncAllocatable(st),
        shapeOptions: () => this.shapeOptions(),
        addNode: (group, reuse, shape) => registry.add(group, reuse, shape),
        removeNode: (name) => registry.remove(name),
      },
      groups,
      options.consolidateAfterMs,
    );
    this.gpuFaults = parts.gpuFaults;
    this.karpenter = parts.karpenter;
    this.nodeClaims = parts.nodeClaims;
    this.repair = parts.repair;
    this.leases = parts.leases;
    this.pods = parts.pods;
    this.lifecycle = parts.lifecycle;

    const fleet = initialFleet(options, this.opts.nodes, groups);
    for (const { group, shape } of fleet.nodes) registry.add(group, undefined, shape);
    this.karpenter.provisioner = fleet.provisioner;
    registry.add(groups.system);
    if (this.opts.workloads) this.pods.createWorkloads();
    registry.built = true;
  }

  // ---------------------------------------------------------------- reading

  listNodes(): KubeNode[] {
    return this.store.list<KubeNode>('nodes').map((n) => structuredClone(n));
  }

  getNode(name: string): KubeNode | undefined {
    const n = this.store.get<KubeNode>('nodes', undefined, name);
    return n ? structuredClone(n) : undefined;
  }

  nodeInfo(name: string): SimNodeInfo | undefined {
    return this.registry.info(name, this.opts.counters);
  }

  gpuState(node: string): SimGpu[] {
    return structuredClone(this.registry.state(node).gpus);
  }

  kernelLog(node: string): string[] {
    return [...this.registry.state(node).kernelLog];
  }

  nodeByInstanceId(instanceId: string): KubeNode | undefined {
    for (const s of this.registry.nodes.values())
      if (s.instanceId === instanceId) return this.getNode(s.name);
    return undefined;
  }

  listPods(filter: { namespace?: string; nodeName?: string } = {}): KubePod[] {
    return this.podsOn(filter).map((p) => structuredClone(p));
  }

  getPod(namespace: string, name: string): KubePod | undefined {
    const p = this.store.get<KubePod>('pods', namespace, name);
    return p ? structuredClone(p) : undefined;
  }

  /** Live pods (no copy) for the API server; filter by namespace and/or node through the index. */
  podsOn(filter: { namespace?: string; nodeName?: string }): KubePod[] {
    return this.pods.podsOn(filter);
  }

  /** Is this pod one of the DCGM host-engine pods (the `dcgmServer` DaemonSet's)? */
  isDcgmServerPod(pod: KubePod): boolean {
    return this.pods.isDcgmServerPod(pod);
  }

  /** The DCGM host-engine pod of a node, if the cluster runs them. */
  dcgmServerPod(node: string): KubePod | undefined {
    const p = this.pods.dcgmServerPod(node);
    return p ? structuredClone(p) : undefined;
  }

  /** The dcgm-exporter pod of a node, if it has one. */
  exporterPod(node: string): KubePod | undefined {
    return this.pods.exporterPod(node);
  }

  trainingJobs(resource = 'pytorchjobs', namespace?: string): KubeTrainingJob[] {
    return this.store.list<KubeTrainingJob>(resource, namespace).map((j) => structuredClone(j));
  }

  getPdb(namespace: string, name: string): KubePdb | undefined {
    return this.pods.budgets.get(namespace, name);
  }

  /** Subscribe to every object change (ADDED / MODIFIED / DELETED); returns the unsubscribe function. */
  onChange(listener: WatchListener): () => void {
    return this.store.subscribe(listener);
  }

  // ---------------------------------------------------------------- fault injection

  /**
   * `opts.gpuInstance`: the XID is raised in a MIG GPU instance of that id (an application fault on a MIG GPU);
   * the driver then names it in the kernel line (`Xid (PCI:0000:53:00 GPU-I:07): 13`).
   */
  injectXid(
    node: string,
    gpu: number,
    xid: number,
    message?: string,
    opts: FaultOptions & { gpuInstance?: number } = {},
  ): void {
    this.gpuFaults.injectXid(node, gpu, xid, message, opts);
  }

  injectEcc(node: string, gpu: number, counts: { sbe?: number; dbe?: number } & FaultOptions): void {
    this.gpuFaults.injectEcc(node, gpu, counts);
  }

  injectRowRemapFailure(node: string, gpu: number, opts: FaultOptions = {}): void {
    this.gpuFaults.injectRowRemapFailure(node, gpu, opts);
  }

  injectNvlinkErrors(
    node: string,
    gpu: number,
    n: number,
    opts: FaultOptions & { counter?: NvlinkCounter } = {},
  ): void {
    this.gpuFaults.injectNvlinkErrors(node, gpu, n, opts);
  }

  setTemperature(node: string, gpu: number, celsius: number): void {
    this.gpuFaults.setTemperature(node, gpu, celsius);
  }

  /** The GPU falls off the bus: gone from DCGM (and the exporter) and from allocatable `nvidia.com/gpu`. */
  dropGpu(node: string, gpu: number, opts: FaultOptions = {}): void {
    this.gpuFaults.dropGpu(node, gpu, opts);
  }

  /**
   * DCGM health of one GPU: visible through `gpuState` (the dcgm-server source) and, on an exporter with
   * the full counter set, DCGM_EXP_GPU_HEALTH_STATUS; pair it with setCondition for the node-condition source.
   */
  setHealth(node: string, gpu: number, health: HealthState, message?: string, opts: FaultOptions = {}): void {
    this.gpuFaults.setHealth(node, gpu, health, message, opts);
  }

  /** Sets (or replaces, by type) a node condition, as the EKS node monitoring agent or NPD would. */
  setCondition(
    node: string,
    condition: { type: string; status: 'True' | 'False' | 'Unknown'; reason?: string; message?: string },
    opts: FaultOptions = {},
  ): void {
    const s = this.registry.state(node);
    s.injectedConditions.add(condition.type);
    setCondition(this.store, node, condition, this.timestamp());
    this.repair.watch(s, condition.type, condition.status);
    if (opts.persistent) s.persistent.push(() => this.setCondition(node, condition));
  }

  setExporter(node: string, mode: ExporterMode): void {
    this.gpuFaults.setExporter(node, mode);
  }

  /**
   * The counters file one node's exporter runs with (an operator who mounted gpu-medic's CSV on some nodes
   * only); undefined goes back to the cluster's. Like a real exporter restart, the next scrape shows it.
   */
  setCounters(node: string, counters: CounterSet | undefined): void {
    this.gpuFaults.setCounters(node, counters);
  }

  /** The counters file of every exporter without a per-node setting (nodes added later included). */
  setDefaultCounters(counters: CounterSet): void {
    this.opts.counters = counters;
    for (const s of this.registry.nodes.values())
      if (s.gpuNode && s.counters === undefined) this.registry.gpuChanged(s);
  }

  /** What `dcgmi diag` reports for a test on one GPU (or all) of the node: a failure, a warning, a skip. */
  injectDiag(node: string, injection: DiagInjection): void {
    this.registry.state(node);
    this.diag.inject(node, injection);
  }

  /** `dcgmi diag` on the node answers a runtime_error (nothing ran). */
  refuseDiag(node: string, refusal: DiagRuntimeError): void {
    this.registry.state(node);
    this.diag.refuse(node, refusal);
  }

  /** Back to a healthy node: faults, persistent faults, injected conditions and exporter mode all cleared. */
  clearFaults(node: string): void {
    this.gpuFaults.clear(node);
  }

  // ---------------------------------------------------------------- controls for tests / API server

  /** Pins a PDB's `status.disruptionsAllowed` (each eviction still consumes one). */
  setPdbDisruptionsAllowed(namespace: string, name: string, n: number): void {
    this.pods.budgets.pin(namespace, name, n);
  }

  /** Creates a custom object (tfjobs, mpijobs … or another PyTorchJob) so list endpoints have content. */
  createObject<T extends KubeObject>(resource: string, obj: T): T {
    obj.metadata.uid ||= this.rng.uuid();
    obj.metadata.creationTimestamp ||= this.timestamp();
    return this.store.create(resource, structuredClone(obj));
  }

  /**
   * Replaces a node object after a PATCH. Only spec/metadata change through the main resource and
   * only status through `/status`, as on a real API server; identity fields cannot change.
   */
  updateNodeFromApi(name: string, patched: KubeNode, subresource: 'status' | undefined): KubeNode {
    return this.lifecycle.updateNode(name, patched, subresource);
  }

  /** DELETE of a Node through the API. Karpenter nodes terminate their instance behind a finalizer. */
  deleteNodeFromApi(name: string): KubeNode {
    return this.lifecycle.deleteNode(name);
  }

  deletePodFromApi(namespace: string, name: string): KubePod {
    return this.pods.deleteFromApi(namespace, name);
  }

  /** The Eviction API: 429 while a matching PDB allows no disruption. */
  evictPod(namespace: string, name: string): void {
    this.pods.evict(namespace, name);
  }

  getLease(namespace: string, name: string): KubeLease | undefined {
    return this.leases.get(namespace, name);
  }

  createLease(namespace: string, lease: KubeLease): KubeLease {
    return this.leases.create(namespace, lease);
  }

  /** PUT with optimistic concurrency: a stale (or missing) resourceVersion is a 409 Conflict. */
  replaceLease(namespace: string, name: string, lease: KubeLease): KubeLease {
    return this.leases.replace(namespace, name, lease);
  }

  /** What a scrape of the node's exporter gets right now. */
  exporterScrape(node: string): ExporterScrape {
    return exporterScrape(this.registry.state(node), this.opts.counters);
  }

  // ---------------------------------------------------------------- CloudEffects

  describeInstances(instanceIds?: string[]): SimInstance[] {
    return this.lifecycle.describe(instanceIds);
  }

  rebootInstance(instanceId: string): boolean {
    return this.lifecycle.reboot(instanceId);
  }

  tagInstance(instanceId: string, tags: Record<string, string>): boolean {
    return this.lifecycle.tag(instanceId, tags);
  }

  terminateInstance(
    instanceId: string,
    opts: { decrementDesiredCapacity: boolean },
  ): InstanceState | undefined {
    return this.lifecycle.terminate(instanceId, opts);
  }

  /**
   * The GPU does not come back from the next reboot (and stays gone): present until then, then missing from
   * DCGM, from the device plugin's count and from GFD's label — a GPU that a reset could not bring back.
   */
  failGpuOnReboot(node: string, gpu: number): void {
    this.gpuFaults.failGpuOnReboot(node, gpu);
  }

  /** The simulated driver's GPU resets: injected failures (`failNext`) and the resets done. */
  get gpuResets(): SimGpuResets {
    return this.gpuFaults.resets;
  }

  /** Runs `nvidia-smi ARGS` on the node, as root in a privileged pod there (a reset changes its GPUs). */
  nvidiaSmi(node: string, args: readonly string[]): StageResult {
    return this.gpuFaults.nvidiaSmi(node, args);
  }

  /** Sets (or, with undefined, removes) a label on the node, as `kubectl label` would. */
  labelNode(node: string, key: string, value: string | undefined): void {
    this.registry.state(node);
    this.store.update<KubeNode>('nodes', undefined, node, (n) => {
      const labels = { ...(n.metadata.labels ?? {}) };
      if (value === undefined) delete labels[key];
      else labels[key] = value;
      n.metadata.labels = labels;
      return n;
    });
  }

  /** Every later reboot of the node hangs in boot: the kubelet never posts Ready again. */
  hangReboots(node: string): void {
    this.registry.state(node).rebootHangs = true;
  }

  /**
   * InsufficientInstanceCapacity: no instance can be launched, so terminated node-group and Karpenter
   * instances get no replacement until it is lifted (the launch is retried every replaceDelayMs).
   */
  setInsufficientCapacity(on: boolean): void {
    this.lifecycle.noCapacity = on;
  }

  /**
   * EKS node auto repair of a managed node group (DescribeNodegroup `nodeRepairConfig`); see EksNodeRepair.
   */
  setNodeRepair(
    nodegroup: string,
    setting: { enabled: boolean; action?: 'reboot' | 'replace' | 'none'; waitMs?: number },
  ): void {
    this.repair.setNodeRepair(nodegroup, setting);
  }

  describeNodegroup(clusterName: string, nodegroupName: string): Record<string, unknown> | undefined {
    return this.repair.describeNodegroup(clusterName, nodegroupName);
  }

  /** What EKS node auto repair did to nodes, in order. */
  get autoRepairs(): { node: string; action: 'reboot' | 'replace'; condition: string }[] {
    return this.repair.autoRepairs;
  }

  /** Cancels every pending effect (reboots, replacements, restarts). */
  close(): void {
    this.closed = true;
    for (const t of this.timers) t.cancel();
    this.timers.clear();
  }

  // ---------------------------------------------------------------- internals: the clock

  private timestamp(): string {
    return new Date(this.clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  private later(ms: number, fn: () => void): SimTimer {
    const t = this.clock.setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  nodeClaimOf(node: string): KubeNodeClaim | undefined {
    return this.nodeClaims.of(node);
  }

  /** DELETE of a NodeClaim: Karpenter drains and deletes its Node and terminates the instance. */
  deleteNodeClaimFromApi(name: string): KubeNodeClaim {
    return this.nodeClaims.deleteFromApi(name);
  }

  private shapeOptions() {
    return { replicas: this.opts.timeSlicingReplicas, rename: this.opts.timeSlicingRename };
  }
}
