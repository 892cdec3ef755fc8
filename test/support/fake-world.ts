/**
 * Test-only: a small in-memory EKS cluster and EC2/Auto Scaling account behind ClusterPort and CloudPort.
 * Effects take time on the FakeClock like the real thing: a reboot makes the node NotReady, then Ready with
 * a new boot ID — with `nvidia.com/gpu` at 0 until the device plugin re-registers and the exporter pod not Ready
 * until its probe passes, as on a real node; an Auto Scaling termination removes the node and a replacement
 * joins the group; an evicted pod terminates after a grace period; a PodDisruptionBudget refuses the first N
 * evictions of a pod.
 * Every call is counted, so tests can prove an effect happened exactly once (or never).
 */
import type { Finding, Verdict } from '../../src/domain/finding.js';
import { verdictOf } from '../../src/domain/finding.js';
import type { GpuIdentity } from '../../src/domain/gpu.js';
import type { GpuNode } from '../../src/domain/node.js';
import type {
  CloudPort,
  ClusterPort,
  EvictionResult,
  GpuAgentPod,
  GpuResetRun,
  HealthCheckPort,
  InstanceState,
  NodeReading,
  PodRef,
  TrainingJobRef,
  TrainingJobStatus,
} from '../../src/remediate/ports.js';
import type { FakeClock } from './fake-clock.js';
import { Power } from './power.js';

export const MutatingCalls = [
  'cordon',
  'uncordon',
  'evictPod',
  'deletePod',
  'deleteNode',
  'setDoNotDisrupt',
  'setNodeLabel',
  'resetGpus',
  'rebootInstance',
  'terminateInstance',
  'terminateInAutoScalingGroup',
  'tagInstance',
] as const;

interface FakePod extends PodRef {
  node: string;
  /** Evictions the PDB still refuses. */
  pdbBlocks: number;
  evictions: number;
}

interface FakeAgent {
  uid: string;
  restarts: number;
  ready: boolean;
}

interface FakeInstance {
  id: string;
  state: InstanceState;
  asg?: string;
  node?: string;
  /** What tagInstance wrote (EC2 CreateTags). */
  tags?: Record<string, string>;
}

export interface NodeSpec {
  name: string;
  instanceId: string;
  nodeGroup?: string;
  karpenterNodePool?: string;
  asg?: string;
  labels?: Record<string, string>;
  gpus?: number;
  /** Default p5.48xlarge (m5.xlarge without GPUs). */
  instanceType?: string;
  unschedulable?: boolean;
}

export interface PodSpec {
  node: string;
  namespace?: string;
  name: string;
  daemonSet?: boolean;
  mirror?: boolean;
  pdbBlocks?: number;
  job?: TrainingJobRef;
}

export class FakeWorld {
  readonly calls = new Map<string, number>();
  readonly nodes = new Map<string, GpuNode>();
  readonly pods = new Map<string, FakePod>();
  readonly instances = new Map<string, FakeInstance>();
  /** Status answers per job, consumed one per poll; the last one stays. */
  readonly jobStatuses = new Map<string, TrainingJobStatus[]>();
  readonly timing = {
    notReadyAfterMs: 5_000,
    rebootMs: 90_000,
    podTerminationMs: 5_000,
    terminateMs: 30_000,
    replacementJoinMs: 180_000,
    /** From Ready on a new boot (or a new node) to the device plugin advertising the GPUs. */
    devicePluginMs: 60_000,
    /** From Ready on a new boot (or a new node) to the exporter pod passing its readiness probe. */
    agentReadyMs: 45_000,
  };
  /** false: a reboot never brings the node back. */
  rebootsComeBack = true;
  /** false: the device plugin never registers after a boot (`nvidia.com/gpu` stays 0). */
  devicePluginRegisters = true;
  /** false: terminated instances get no replacement (no capacity). */
  replacementsJoin = true;
  /** GPUs per node that do not come back from the next reboot (they fell off the bus for good). */
  readonly gpusLostOnReboot = new Map<string, number>();
  /** Working GPUs per node: what a scan reads and the device plugin advertises. */
  readonly workingGpus = new Map<string, number>();
  /** The exporter pod of each node. */
  readonly agents = new Map<string, FakeAgent>();
  /**
   * Pods waiting for a GPU node. Karpenter provisions only for them: with 0, a deleted Karpenter node gets
   * no successor. 1 by default, so a replace finds a successor as before.
   */
  pendingGpuPods = 1;
  /** Nodes carrying `karpenter.sh/do-not-disrupt: "true"`. */
  readonly doNotDisrupt = new Set<string>();
  /** Node labels set through the port, `node` → key → value. */
  readonly labels = new Map<string, Map<string, string>>();
  /** Resets asked for, in order; `results` answers them in turn (default: nvidia-smi's success). */
  readonly resets: { node: string; gpu: number | undefined }[] = [];
  readonly resetResults: GpuResetRun[] = [];
  private seq = 0;

  constructor(
    private readonly clock: FakeClock,
    private readonly power = new Power(),
  ) {}

  addNode(spec: NodeSpec): GpuNode {
    const gpus = spec.gpus ?? 8;
    const node: GpuNode = {
      name: spec.name,
      instanceId: spec.instanceId,
      // A CPU node is what the cluster would show: a CPU instance type and no NVIDIA resources.
      instanceType: spec.instanceType ?? (gpus > 0 ? 'p5.48xlarge' : 'm5.xlarge'),
      ...(spec.nodeGroup ? { nodeGroup: spec.nodeGroup } : {}),
      ...(spec.karpenterNodePool ? { karpenterNodePool: spec.karpenterNodePool } : {}),
      ...(gpus > 0 ? { expectedGpus: gpus } : {}),
      allocatableGpus: gpus,
      gpuResources: gpus > 0 ? { 'nvidia.com/gpu': gpus } : {},
      unschedulable: spec.unschedulable ?? false,
      ready: true,
      bootId: `boot-${++this.seq}`,
      labels: {
        ...(spec.karpenterNodePool ? { 'karpenter.sh/nodepool': spec.karpenterNodePool } : {}),
        ...(spec.nodeGroup ? { 'eks.amazonaws.com/nodegroup': spec.nodeGroup } : {}),
        ...spec.labels,
      },
      conditions: [{ type: 'Ready', status: 'True' }],
    };
    this.nodes.set(node.name, node);
    this.workingGpus.set(node.name, gpus);
    this.agents.set(node.name, { uid: `agent-${this.seq}`, restarts: 0, ready: true });
    this.instances.set(spec.instanceId, {
      id: spec.instanceId,
      state: 'running',
      node: node.name,
      ...(spec.asg ? { asg: spec.asg } : {}),
    });
    return node;
  }

  addPod(spec: PodSpec): void {
    const namespace = spec.namespace ?? 'default';
    const ownerReferences = spec.job
      ? [{ apiVersion: spec.job.apiVersion, kind: spec.job.kind, name: spec.job.name, controller: true }]
      : spec.daemonSet
        ? [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: spec.name, controller: true }]
        : [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: `${spec.name}-rs`, controller: true }];
    this.pods.set(`${namespace}/${spec.name}`, {
      node: spec.node,
      namespace,
      name: spec.name,
      ownerKind: ownerReferences[0]?.kind,
      isDaemonSet: spec.daemonSet === true,
      isMirror: spec.mirror === true,
      labels: spec.job ? { 'training.kubeflow.org/job-name': spec.job.name } : {},
      ownerReferences,
      deleting: false,
      pdbBlocks: spec.pdbBlocks ?? 0,
      evictions: 0,
    });
    if (spec.job && !this.jobStatuses.has(jobKey(spec.job)))
      this.jobStatuses.set(jobKey(spec.job), ['running']);
  }

  count(method: string): number {
    return this.calls.get(method) ?? 0;
  }

  mutations(): number {
    return MutatingCalls.reduce((sum, m) => sum + this.count(m), 0);
  }

  /** Simulates `kubectl uncordon` by a human. */
  humanUncordon(name: string): void {
    const node = this.nodes.get(name);
    if (node) node.unschedulable = false;
  }

  private hit(method: string): void {
    this.power.check();
    this.calls.set(method, this.count(method) + 1);
  }

  private removeNode(name: string): void {
    this.nodes.delete(name);
    this.doNotDisrupt.delete(name);
    for (const [key, pod] of this.pods) if (pod.node === name) this.pods.delete(key);
  }

  private terminate(instanceId: string, replace: boolean): void {
    const instance = this.instances.get(instanceId);
    if (!instance || instance.state === 'terminated' || instance.state === 'shutting-down') return;
    instance.state = 'shutting-down';
    const old = instance.node ? this.nodes.get(instance.node) : undefined;
    this.clock.schedule(this.timing.terminateMs, () => {
      instance.state = 'terminated';
      if (instance.node) this.removeNode(instance.node);
    });
    if (replace && old) this.scheduleReplacement(old, instance.asg);
  }

  /**
   * A node just turned Ready on a new boot: no GPUs advertised and the exporter restarting until the device
   * plugin registers and the probe passes.
   */
  private boot(node: GpuNode): void {
    const name = node.name;
    const setGpus = (n: number) => {
      node.gpuResources = { 'nvidia.com/gpu': n };
      node.allocatableGpus = n;
      node.expectedGpus = n;
    };
    setGpus(0);
    const agent = this.agents.get(name);
    if (agent) {
      agent.restarts++;
      agent.ready = false;
    }
    if (this.devicePluginRegisters) {
      this.clock.schedule(this.timing.devicePluginMs, () => {
        if (this.nodes.get(name) === node && node.ready) setGpus(this.workingGpus.get(name) ?? 0);
      });
    }
    this.clock.schedule(this.timing.agentReadyMs, () => {
      if (agent && this.nodes.get(name) === node && node.ready) agent.ready = true;
    });
  }

  private scheduleReplacement(old: GpuNode, asg: string | undefined): void {
    if (!this.replacementsJoin) return;
    this.clock.schedule(this.timing.replacementJoinMs, () => {
      const n = ++this.seq;
      const fresh = this.addNode({
        name: `${old.nodeGroup ?? old.karpenterNodePool ?? 'node'}-new-${n}`,
        instanceId: `i-${n.toString(16).padStart(17, '0')}`,
        ...(old.nodeGroup ? { nodeGroup: old.nodeGroup } : {}),
        ...(old.karpenterNodePool ? { karpenterNodePool: old.karpenterNodePool } : {}),
        ...(asg ? { asg } : {}),
      });
      this.boot(fresh);
    });
  }

  readonly cluster: ClusterPort = {
    getNode: async (name) => {
      this.hit('getNode');
      const node = this.nodes.get(name);
      return node ? structuredClone(node) : undefined;
    },
    listNodes: async () => {
      this.hit('listNodes');
      return [...this.nodes.values()].map((n) => structuredClone(n));
    },
    cordon: async (name) => {
      this.hit('cordon');
      const node = this.nodes.get(name);
      if (!node) throw new Error(`nodes "${name}" not found`);
      node.unschedulable = true;
    },
    uncordon: async (name) => {
      this.hit('uncordon');
      const node = this.nodes.get(name);
      if (!node) throw new Error(`nodes "${name}" not found`);
      node.unschedulable = false;
    },
    listPodsOnNode: async (name) => {
      this.hit('listPodsOnNode');
      return [...this.pods.values()]
        .filter((p) => p.node === name)
        .map(({ node: _n, pdbBlocks: _b, evictions: _e, ...ref }) => structuredClone(ref));
    },
    evictPod: async (namespace, name): Promise<EvictionResult> => {
      this.hit('evictPod');
      const key = `${namespace}/${name}`;
      const pod = this.pods.get(key);
      if (!pod) return 'gone';
      if (pod.isDaemonSet || pod.isMirror) throw new Error(`test bug: evicting DaemonSet/mirror pod ${key}`);
      if (pod.pdbBlocks > 0) {
        pod.pdbBlocks--;
        return 'blocked';
      }
      pod.evictions++;
      if (!pod.deleting) {
        pod.deleting = true;
        this.clock.schedule(this.timing.podTerminationMs, () => this.pods.delete(key));
      }
      return 'evicted';
    },
    deletePod: async (namespace, name) => {
      this.hit('deletePod');
      return this.pods.delete(`${namespace}/${name}`) ? 'deleted' : 'gone';
    },
    deleteNode: async (name) => {
      this.hit('deleteNode');
      const node = this.nodes.get(name);
      if (!node) return 'gone';
      // Karpenter's finalizer terminates the instance, then the Node goes; a new NodeClaim follows.
      const instance = node.instanceId ? this.instances.get(node.instanceId) : undefined;
      if (instance) instance.state = 'shutting-down';
      this.removeNode(name);
      this.clock.schedule(this.timing.terminateMs, () => {
        if (instance) instance.state = 'terminated';
      });
      if (this.pendingGpuPods > 0) this.scheduleReplacement(node, undefined);
      return 'deleted';
    },
    hasDoNotDisrupt: async (name) => {
      this.hit('hasDoNotDisrupt');
      return this.nodes.has(name) ? this.doNotDisrupt.has(name) : undefined;
    },
    setDoNotDisrupt: async (name, on) => {
      this.hit('setDoNotDisrupt');
      if (!this.nodes.has(name)) return 'gone';
      if (on) this.doNotDisrupt.add(name);
      else this.doNotDisrupt.delete(name);
      return 'done';
    },
    listPendingGpuPods: async () => {
      this.hit('listPendingGpuPods');
      return Array.from({ length: this.pendingGpuPods }, (_, i) => ({
        namespace: 'default',
        name: `pending-${i}`,
        isDaemonSet: false,
        isMirror: false,
        labels: {},
        ownerReferences: [],
        deleting: false,
      }));
    },
    listTrainingJobsForPods: async (pods) => {
      this.hit('listTrainingJobsForPods');
      const jobs = new Map<string, TrainingJobRef>();
      for (const pod of pods) {
        for (const ref of pod.ownerReferences) {
          const api = ref.apiVersion ?? '';
          if (api.startsWith('kubeflow.org/') || api.startsWith('trainer.kubeflow.org/')) {
            const job = { kind: ref.kind, apiVersion: api, namespace: pod.namespace, name: ref.name };
            jobs.set(jobKey(job), job);
          }
        }
      }
      return [...jobs.values()];
    },
    listGpuAgentPods: async (name): Promise<GpuAgentPod[]> => {
      this.hit('listGpuAgentPods');
      const agent = this.nodes.has(name) ? this.agents.get(name) : undefined;
      if (!agent) return [];
      return [{ namespace: 'gpu-operator', name: `dcgm-exporter-${name}`, ...agent }];
    },
    getNodeLabel: async (name, key) => {
      this.hit('getNodeLabel');
      if (!this.nodes.has(name)) return undefined;
      return this.labels.get(name)?.get(key) ?? null;
    },
    setNodeLabel: async (name, key, value) => {
      this.hit('setNodeLabel');
      if (!this.nodes.has(name)) return 'gone';
      const labels = this.labels.get(name) ?? new Map<string, string>();
      if (value === null) labels.delete(key);
      else labels.set(key, value);
      this.labels.set(name, labels);
      return 'done';
    },
    resetGpus: async (name, gpu): Promise<GpuResetRun> => {
      this.hit('resetGpus');
      this.resets.push({ node: name, gpu });
      const next = this.resetResults.shift();
      if (next) return next;
      if (!this.nodes.has(name)) return { kind: 'unavailable', reason: `no node ${name}` };
      return { kind: 'ran', pod: `kube-system/dcgm-server-${name}`, exitCode: 0, output: 'All done.' };
    },
    getTrainingJobStatus: async (job) => {
      this.hit('getTrainingJobStatus');
      const statuses = this.jobStatuses.get(jobKey(job));
      if (!statuses) return 'unknown';
      return (statuses.length > 1 ? statuses.shift() : statuses[0]) ?? 'unknown';
    },
  };

  readonly cloud: CloudPort = {
    rebootInstance: async (instanceId) => {
      this.hit('rebootInstance');
      const instance = this.instances.get(instanceId);
      if (!instance || instance.state !== 'running')
        throw new Error(`InvalidInstanceID.NotFound: ${instanceId}`);
      const nodeName = instance.node;
      this.clock.schedule(this.timing.notReadyAfterMs, () => {
        const node = nodeName ? this.nodes.get(nodeName) : undefined;
        if (node) node.ready = false;
      });
      if (!this.rebootsComeBack) return;
      this.clock.schedule(this.timing.rebootMs, () => {
        const node = nodeName ? this.nodes.get(nodeName) : undefined;
        if (!node) return;
        node.ready = true;
        node.bootId = `boot-${++this.seq}`;
        const lost = this.gpusLostOnReboot.get(node.name) ?? 0;
        this.workingGpus.set(node.name, Math.max(0, (this.workingGpus.get(node.name) ?? 0) - lost));
        this.boot(node);
      });
    },
    terminateInstance: async (instanceId) => {
      this.hit('terminateInstance');
      this.terminate(instanceId, false);
    },
    terminateInAutoScalingGroup: async (instanceId) => {
      this.hit('terminateInAutoScalingGroup');
      const instance = this.instances.get(instanceId);
      if (!instance?.asg)
        throw new Error(`ValidationError: instance ${instanceId} is not in an Auto Scaling group`);
      this.terminate(instanceId, true);
    },
    describeInstance: async (instanceId) => {
      this.hit('describeInstance');
      const instance = this.instances.get(instanceId);
      return instance ? { state: instance.state } : undefined;
    },
    autoScalingGroupOf: async (instanceId) => {
      this.hit('autoScalingGroupOf');
      return this.instances.get(instanceId)?.asg;
    },
    tagInstance: async (instanceId, tags) => {
      this.hit('tagInstance');
      const instance = this.instances.get(instanceId);
      if (!instance) throw new Error(`InvalidInstanceID.NotFound: ${instanceId}`);
      instance.tags = { ...instance.tags, ...tags };
    },
  };
}

function jobKey(job: TrainingJobRef): string {
  return `${job.kind}/${job.namespace}/${job.name}`;
}

/**
 * Test-only health check: a node is healthy unless a finding was set for it. With a world, it reads what the
 * world has: nothing while the exporter pod is not Ready (a collection failure), else the working GPUs.
 */
export class FakeHealth implements HealthCheckPort {
  readonly failing = new Map<string, Finding>();
  /** What `lastGpus` answers per node (the last scan's GPU identities); none by default. */
  readonly identities = new Map<string, GpuIdentity[]>();
  scans = 0;
  constructor(
    private readonly power = new Power(),
    private readonly world?: FakeWorld,
  ) {}

  async scanNode(name: string): Promise<NodeReading> {
    this.power.check();
    this.scans++;
    const collection = (why: string): NodeReading => {
      const finding: Finding = {
        kind: 'collection',
        category: 'COLLECTION_FAILED',
        severity: 'warning',
        action: 'none',
        evidence: [why],
        explanation: `Could not read GPU data from ${name}: ${why}`,
        source: 'rules',
        key: 'collection',
      };
      return { verdict: verdictOf(name, [finding]), gpusRead: 0, error: why };
    };
    if (this.world) {
      if (!this.world.nodes.get(name)?.ready) return collection('unreachable: no route to host');
      if (!this.world.agents.get(name)?.ready) return collection('http: connection refused');
    }
    const finding = this.failing.get(name);
    const verdict: Verdict = verdictOf(name, finding ? [finding] : []);
    return { verdict, gpusRead: this.world?.workingGpus.get(name) ?? 8 };
  }

  lastGpus(name: string): GpuIdentity[] | undefined {
    return this.identities.get(name);
  }
}
