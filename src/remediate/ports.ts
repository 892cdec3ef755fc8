/**
 * What the remediation engine needs from the outside world. Every external effect goes through one of these,
 * so the engine can be resumed after a crash, run in dry-run, and tested against in-memory fakes.
 * Adapters (k8s/, aws/, store/, monitor) implement them; the engine never imports an SDK.
 */
import type { DiagLevel, DiagRun } from '../domain/diag.js';
import type { Verdict } from '../domain/finding.js';
import type { GpuIdentity } from '../domain/gpu.js';
import type { Incident, IncidentState, PolicyMode, RemediationAction } from '../domain/incident.js';
import type { GpuNode } from '../domain/node.js';
import type { Exclusion } from '../domain/ports.js';
import type { JournalDetail, JournalDetailOf, JournalStep } from './journal.js';

export { type Clock, systemClock } from '../domain/clock.js';
export type { DiagRun } from '../domain/diag.js';
export type { AuditEntry, AuditLog, Exclusion } from '../domain/ports.js';

export interface OwnerRef {
  apiVersion?: string;
  kind: string;
  name: string;
  uid?: string;
  controller?: boolean;
}

export interface PodRef {
  namespace: string;
  name: string;
  /** Kind of the controlling owner (`ReplicaSet`, `DaemonSet`, `PyTorchJob` …), if any. */
  ownerKind?: string;
  isDaemonSet: boolean;
  /** A static pod mirrored by the kubelet (`kubernetes.io/config.mirror` annotation): not evictable. */
  isMirror: boolean;
  labels: Record<string, string>;
  ownerReferences: OwnerRef[];
  /** metadata.deletionTimestamp is set: already going away. */
  deleting: boolean;
}

/** `blocked`: 429 from the Eviction API (a PodDisruptionBudget forbids it now). `gone`: 404. */
export type EvictionResult = 'evicted' | 'blocked' | 'gone';

export interface TrainingJobRef {
  /** `PyTorchJob`, `TFJob`, `MPIJob`, `XGBoostJob` (kubeflow.org/v1), `TrainJob` (trainer.kubeflow.org). */
  kind: string;
  apiVersion: string;
  namespace: string;
  name: string;
}

export const TrainingJobStatuses = [
  'running',
  'restarting',
  'pending',
  'succeeded',
  'failed',
  'unknown',
] as const;
export type TrainingJobStatus = (typeof TrainingJobStatuses)[number];

/**
 * A pod that reads the node's GPUs for gpu-medic: the dcgm-exporter, or the DCGM pod (dcgm-server,
 * nv-hostengine) the exec source talks to. The settle gate waits for one to be Ready on the new boot.
 */
export interface GpuAgentPod {
  namespace: string;
  name: string;
  uid: string;
  /** Running, not terminating, and its Ready condition True. */
  ready: boolean;
  /** Container restarts, summed: a reboot restarts the containers of a DaemonSet pod that survives it. */
  restarts: number;
  /** When the Ready condition last changed (epoch ms, second precision), when the API says. */
  readySince?: number;
}

/** What one `nvidia-smi --gpu-reset` on a node did. */
export type GpuResetRun =
  | { kind: 'ran'; pod: string; exitCode: number; output: string }
  | { kind: 'unavailable'; reason: string };

export interface ClusterPort {
  getNode(name: string): Promise<GpuNode | undefined>;
  listNodes(): Promise<GpuNode[]>;
  /** Merge-patch `spec.unschedulable: true`. */
  cordon(name: string): Promise<void>;
  /** Merge-patch `spec.unschedulable: false`. */
  uncordon(name: string): Promise<void>;
  listPodsOnNode(name: string): Promise<PodRef[]>;
  evictPod(namespace: string, name: string): Promise<EvictionResult>;
  /** Only used when a rule says `force` and the drain timed out on a PDB. */
  deletePod(namespace: string, name: string): Promise<'deleted' | 'gone'>;
  /** Karpenter / EKS Auto Mode replacement: delete the Node; its finalizer removes the NodeClaim and instance. */
  deleteNode(name: string): Promise<'deleted' | 'gone'>;
  /** Whether the node carries `karpenter.sh/do-not-disrupt: "true"`; undefined when the node is gone. */
  hasDoNotDisrupt(name: string): Promise<boolean | undefined>;
  /** Merge-patches `karpenter.sh/do-not-disrupt: "true"` on, or removes it; 'gone' when the node no longer exists. */
  setDoNotDisrupt(name: string, on: boolean): Promise<'done' | 'gone'>;
  /**
   * Pods waiting for a node that request NVIDIA GPUs (Pending, not bound to a node): what makes Karpenter or
   * EKS Auto Mode start a GPU node. With none, a deleted GPU node of a NodePool gets no successor, by design.
   */
  listPendingGpuPods(): Promise<PodRef[]>;
  listTrainingJobsForPods(pods: PodRef[]): Promise<TrainingJobRef[]>;
  /** The node's GPU agent pods (exporter / DCGM), read fresh from the API. */
  listGpuAgentPods(node: string): Promise<GpuAgentPod[]>;
  /** The node's label value (null when absent); undefined when the node is gone. */
  getNodeLabel(name: string, key: string): Promise<string | null | undefined>;
  /** Merge-patches the label to `value`, or removes it (null); 'gone' when the node no longer exists. */
  setNodeLabel(name: string, key: string, value: string | null): Promise<'done' | 'gone'>;
  /**
   * `nvidia-smi --gpu-reset [-i gpu]` (argv, no shell) in the node's reset pod (a privileged pod there with the
   * driver's nvidia-smi: by default the DCGM host-engine pod). Resolves with what nvidia-smi said, or with
   * `unavailable` when the node has no such pod or its image has no nvidia-smi.
   */
  resetGpus(node: string, gpu: number | undefined, signal?: AbortSignal): Promise<GpuResetRun>;
  getTrainingJobStatus(job: TrainingJobRef): Promise<TrainingJobStatus>;
}

export type InstanceState = 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';

export interface CloudPort {
  /** EC2 RebootInstances. */
  rebootInstance(instanceId: string): Promise<void>;
  /** EC2 TerminateInstances. */
  terminateInstance(instanceId: string): Promise<void>;
  /** Auto Scaling TerminateInstanceInAutoScalingGroup with ShouldDecrementDesiredCapacity=false. */
  terminateInAutoScalingGroup(instanceId: string): Promise<void>;
  describeInstance(instanceId: string): Promise<{ state: InstanceState } | undefined>;
  /** The Auto Scaling group name the instance belongs to, if any. */
  autoScalingGroupOf(instanceId: string): Promise<string | undefined>;
  /** EC2 CreateTags on the instance: adds or overwrites these tags (the same call twice is harmless). */
  tagInstance(instanceId: string, tags: Record<string, string>): Promise<void>;
}

/** What one on-demand scan of a node read. */
export interface NodeReading {
  verdict: Verdict;
  /** Distinct GPUs the source reported (DCGM indices); 0 when nothing could be read. */
  gpusRead: number;
  /** Why the node could not be read (the collection error), when it could not. */
  error?: string;
}

/** EKS node auto repair of a managed node group, as DescribeNodegroup's `nodeRepairConfig` says. */
export interface NodeRepairConfig {
  enabled: boolean;
}

export interface AutoRepairPort {
  /**
   * The node group's auto repair setting; undefined when EKS does not know the group (a self-managed group
   * that carries the label). Throws when EKS cannot be asked (permissions, network): the caller decides.
   */
  nodeRepairOf(nodegroup: string): Promise<NodeRepairConfig | undefined>;
}

/**
 * `dcgmi diag -r <level> -j` in the node's DCGM host-engine pod (argv exec, no shell). Never mutates the node;
 * rejects only when the run was aborted through `signal` or the API could not be reached (retryable).
 */
export interface DiagPort {
  run(node: string, level: DiagLevel, signal?: AbortSignal): Promise<DiagRun>;
  /** About how long a level takes, for the thread. */
  expectedMs(level: DiagLevel): number;
}

/** A fresh GPU scan of one node (the monitor's collect + classify, on demand). */
export interface HealthCheckPort {
  scanNode(name: string): Promise<NodeReading>;
  /**
   * The GPUs of the node as its last scan read them (UUID, PCI bus id, XIDs), without a new scan; undefined
   * when this process has not scanned it. Recorded before a repair, for the RMA evidence.
   */
  lastGpus?(name: string): GpuIdentity[] | undefined;
}

/** What is needed to open a new incident (the store assigns id and updatedAt). */
export type NewIncident = Omit<Incident, 'id' | 'updatedAt' | 'closedAt'>;

export type IncidentPatch = Partial<Pick<Incident, 'plannedAction' | 'mode' | 'stateReason'>>;

/** Synchronous, so a check and a compare-and-set run with no await (and no other caller) between them. */
export interface IncidentStore {
  get(id: string): Incident | undefined;
  list(filter?: { node?: string; open?: boolean; updatedSince?: number }): Incident[];
  create(input: NewIncident): Incident;
  /**
   * Compare-and-set: moves the incident to `to` only if its state is one of `from`; false otherwise.
   * Sets stateReason, updatedAt, and closedAt for a terminal `to`.
   */
  transition(id: string, from: readonly IncidentState[], to: IncidentState, reason?: string): boolean;
  update(id: string, patch: IncidentPatch): void;
}

export const StepStatuses = ['started', 'done', 'failed', 'skipped'] as const;
export type StepStatus = (typeof StepStatuses)[number];

export interface StepRow {
  id: number;
  incidentId: string;
  /** A StepName (state-machine.ts) or a bookkeeping row (`plan`, `escalate` …). */
  step: JournalStep;
  status: StepStatus;
  startedAt: number;
  finishedAt?: number;
  /** Read through the step's schema (journal.ts). */
  detail: JournalDetail;
}

export interface StepStore {
  /** Written BEFORE the step's external effect. */
  begin<S extends JournalStep>(incidentId: string, step: S, detail: JournalDetailOf<S>, at: number): StepRow;
  /** Written AFTER it; `detail` is merged into the row's detail. */
  finish(stepId: number, status: Exclude<StepStatus, 'started'>, detail: JournalDetail, at: number): void;
  /** In the order begun. */
  list(incidentId: string): StepRow[];
  /** The most recent row of that step. */
  lastOf(incidentId: string, step: JournalStep): StepRow | undefined;
}

export interface ExclusionStore {
  /** The unexpired exclusion of the node, if any. */
  get(node: string, now: number): Exclusion | undefined;
  put(exclusion: Exclusion): void;
  /** false when there was none. */
  remove(node: string): boolean;
  list(now: number): Exclusion[];
}

export interface KvStore {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  delete(key: string): void;
}

/**
 * Whether trying a failed call again can help. Adapters mark their errors with `retryable` (a missing
 * permission or an instance that no longer exists: false; throttling, a 5xx, a timeout: true); an error
 * that says nothing is treated as transient.
 */
export function isRetryable(error: unknown): boolean {
  if (error === null || typeof error !== 'object' || !('retryable' in error)) return true;
  return error.retryable !== false;
}

/** Who decided what, handed from the services to the engine through the `plan` step row. */
export interface RunPlan {
  action: RemediationAction;
  mode?: PolicyMode;
  actor: string;
  trigger: 'auto' | 'manual';
  reason: string;
  force: boolean;
  dryRun: boolean;
  /** reset: the GPU to reset (a person's choice); default the incident's GPU. */
  gpu?: number;
}
