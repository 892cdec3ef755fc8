/**
 * Progress events: what happened to an incident, published on the internal bus by the monitor and the
 * remediation engine; the Slack thread, the notification sinks and the audit trail subscribe.
 */
import type { DiagLevel, DiagNodeResult, DiagResult } from './diag.js';
import type { IncidentState, PolicyMode, RemediationAction } from './incident.js';

export const ProgressSteps = [
  'detected',
  'policy',
  'approval_needed',
  'approved',
  'cordoned',
  'drain_started',
  'pod_evicted',
  'pdb_wait',
  'drained',
  'gpu_reset',
  'reboot_issued',
  'node_back',
  'settle_wait',
  'gpu_scan',
  'replace_issued',
  'replacement_ready',
  'diag_started',
  'diag_progress',
  'diag_result',
  'uncordoned',
  'kubeflow_jobs',
  'kubeflow_job_running',
  'kubeflow_job_not_running',
  'resolved',
  'escalated',
  'failed',
  'cancelled',
  'dismissed',
  'safety_limit',
  'excluded',
  'auto_repair_deferred',
  'auto_repair_outcome',
] as const;
export type ProgressStep = (typeof ProgressSteps)[number];

/** What every progress event carries, whatever its step. */
export interface ProgressEventBase {
  incidentId: string;
  node: string;
  /** The incident's state after this step. */
  state: IncidentState;
  at: number;
  /** Time the step took, or since the remediation started for end states. */
  elapsedMs?: number;
  /** Nothing was changed: the step is reported as "would …". */
  dryRun?: boolean;
  /** `monitor`, `slack:U123`, `cli:alice`. */
  actor?: string;
}

/**
 * A step and its details, correlated: `details` is the one type `ProgressDetails` gives that step. Emitters
 * write it as a literal (`{ step: 'drained', details: { evicted: 3 } }`), which the compiler checks.
 */
export type StepDetails = { [K in ProgressStep]: { step: K; details: ProgressDetails[K] } }[ProgressStep];

/** The step-and-details of some steps only. */
export type StepDetailsOf<S extends ProgressStep> = Extract<StepDetails, { step: S }>;

/**
 * A progress event, discriminated on `step`: a reader that switches on `event.step` sees that step's
 * details (evicted pod names, PDB, boot IDs, replacement node, jobs, limit names …) with their types.
 */
export type ProgressEvent = ProgressEventBase & StepDetails;

/** The event of one step (of a union of steps: the union of their events). */
export type ProgressEventOf<S extends ProgressStep> = Extract<ProgressEvent, { step: S }>;

/** Builds an event from what every event carries and a step with its details. */
export function progressEvent(base: ProgressEventBase, told: StepDetails): ProgressEvent {
  return { ...base, ...told };
}

export type ProgressListener = (event: ProgressEvent) => void;

/** A tiny synchronous bus. Listeners must not throw into the publisher; a throwing listener is isolated. */
export class ProgressBus {
  private readonly listeners = new Set<ProgressListener>();
  private readonly onListenerError: (error: unknown, event: ProgressEvent) => void;

  constructor(onListenerError: (error: unknown, event: ProgressEvent) => void = () => {}) {
    this.onListenerError = onListenerError;
  }

  subscribe(listener: ProgressListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(event: ProgressEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.onListenerError(error, event);
      }
    }
  }
}

// ---- The details each step carries: the contract between the engine that publishes and the renderers. ----

export interface KubeflowJobRef {
  /** PyTorchJob, MPIJob, TFJob, TrainJob … */
  kind: string;
  namespace: string;
  name: string;
}

export const SafetyLimitKinds = [
  'circuit_breaker',
  'rate_limit',
  'max_concurrent',
  'opt_out',
  'paused',
] as const;
export type SafetyLimitKind = (typeof SafetyLimitKinds)[number];

/**
 * The `details` of each step: the ONE contract between the publishers (src/remediate/engine.ts, steps.ts,
 * services.ts type their events with it) and the thread (src/slack/blocks/thread.ts reads exactly these
 * keys). Every field is optional to the renderer, which degrades a line rather than guess; publishers fill
 * what they know. Pod and job names are `namespace/name` strings; counts are numbers, never lists.
 */
export interface ProgressDetails {
  detected: { category?: string; xid?: number; gpu?: number; severity?: string; explanation?: string };
  /** `mode: 'auto'` with an action other than none is a remediation the bot runs itself. */
  policy: { action?: RemediationAction; mode?: PolicyMode | 'manual'; rule?: string; reason?: string };
  approval_needed: { action?: RemediationAction; reason?: string };
  approved: { action?: RemediationAction; mode?: 'manual'; reason?: string };
  /** `alreadyCordoned`: someone cordoned it before gpu-medic came (so gpu-medic will not uncordon it). */
  cordoned: { alreadyCordoned?: boolean };
  /** `pods`: pods to evict; `skipped`: DaemonSet and mirror pods left in place. */
  drain_started: { pods?: number; skipped?: number };
  pod_evicted: { pod?: string; evicted?: number; total?: number };
  /** `pod`: the pod(s) the eviction API refused (429, a PodDisruptionBudget); `pdb` when known. */
  pdb_wait: {
    pdb?: string;
    pod?: string;
    evicted?: number;
    total?: number;
    waitedMs?: number;
    retryInMs?: number;
  };
  /** `forced`: pods deleted around a PDB after the drain timeout (a policy rule allowed it). */
  drained: { evicted?: number; forced?: number };
  /** `nvidia-smi --gpu-reset` succeeded: these GPUs (all of the node's on NVSwitch types), run in `pod`. */
  gpu_reset: { gpus?: number[]; wholeNode?: boolean; pod?: string };
  reboot_issued: { instanceId?: string; reissued?: boolean };
  node_back: { bootId?: string; previousBootId?: string };
  /**
   * A wait before the node counts as back (the settle gate), published when what is missing changes.
   * `waitingFor`: `node_ready` (Ready with a new boot ID), `node` (Ready / present during the gate), `gpus` (the
   * device plugin's resources), `agent` (the exporter / DCGM pod Ready on the new boot), `scan` (a complete read
   * of every GPU), `replacement` (a new node to join). `missing` is a clause: "the device plugin reports 0 of 8
   * GPUs". `node` names the node waited on when it is not the incident's (a replacement).
   */
  settle_wait: {
    node?: string;
    waitingFor?: 'node_ready' | 'node' | 'gpus' | 'agent' | 'scan' | 'replacement';
    missing?: string;
    waitedMs?: number;
    timeoutMs?: number;
  };
  /** `node`: the node scanned when it is not the incident's (a replacement). */
  gpu_scan: { healthy?: boolean; gpus?: number; expected?: number; problem?: string; node?: string };
  /** `asg` with method asg; `nodePool` with method karpenter or auto-mode (both delete the Node). */
  replace_issued: {
    instanceId?: string;
    method?: 'asg' | 'karpenter' | 'ec2' | 'auto-mode';
    asg?: string;
    nodePool?: string;
    reissued?: boolean;
  };
  /**
   * `newNode` absent + `group` absent: a standalone instance, no replacement is expected.
   * `onDemand`: a Karpenter / Auto Mode pool with no pod waiting for a GPU node, so none was started.
   */
  replacement_ready: { newNode?: string; group?: string; onDemand?: boolean };
  /**
   * The DCGM diagnostic before uncordon (`dcgmi diag -r <level>` in the node's DCGM pod). `expectedMs`: about how
   * long the level runs; `resumed`: started again after a restart interrupted it.
   */
  diag_started: { level?: DiagLevel; pod?: string; expectedMs?: number; resumed?: boolean };
  /** Still running (long levels): how long so far. */
  diag_progress: { level?: DiagLevel; waitedMs?: number; expectedMs?: number };
  /**
   * What it found: `verdict` over every test and GPU; `results` one row per test and GPU; `nodeWide` verdicts that
   * name no GPU. `unavailable` / `error`: no verdict (no DCGM pod, DCGM refused, unreadable output) — `message` says why.
   */
  diag_result: {
    level?: DiagLevel;
    verdict?: 'pass' | 'warn' | 'fail' | 'unavailable' | 'error';
    results?: DiagResult[];
    nodeWide?: DiagNodeResult[];
    message?: string;
  };
  /** `leftCordoned`: the node was cordoned before gpu-medic came, so it stays cordoned. */
  uncordoned: { leftCordoned?: boolean };
  /** The jobs with pods on the node, taken before the drain. Published once. */
  kubeflow_jobs: { jobs?: KubeflowJobRef[] };
  /** The event's elapsedMs is the time from the drain (when the job lost its pods) to running again. */
  kubeflow_job_running: Partial<KubeflowJobRef> & { status?: 'running' | 'succeeded' };
  kubeflow_job_not_running: Partial<KubeflowJobRef> & { status?: string; reason?: string };
  /** `onDemand`: replaced, and the pool starts a successor only when pods need one. */
  resolved: {
    action?: RemediationAction;
    reason?: string;
    onDemand?: boolean;
    /** Resolved by EKS node auto repair, not by gpu-medic. */
    byAutoRepair?: 'rebooted' | 'replaced';
  };
  /** `to`: the next action of the escalation ladder (reset → reboot → replace), or a human. */
  escalated: { reason?: string; to?: 'reboot' | 'replace' | 'human' };
  failed: { reason?: string; stage?: string };
  cancelled: { reason?: string };
  dismissed: { reason?: string };
  safety_limit: {
    limit?: SafetyLimitKind;
    /** What was held back: "reboot". */
    action?: RemediationAction;
    /** circuit_breaker: GPU nodes unhealthy or cordoned by gpu-medic, of all GPU nodes, and the limits. */
    unhealthy?: number;
    total?: number;
    thresholdPct?: number;
    maxNodes?: number;
    /** rate_limit: remediations started in the window, and the hourly limit. */
    count?: number;
    perHour?: number;
    windowMinutes?: number;
    /** max_concurrent: remediations in flight, and the limit. */
    inFlight?: number;
    maxConcurrent?: number;
    /** opt_out: the label, `key=value`. */
    label?: string;
    /** The full sentence, for notification sinks and the audit trail. */
    message?: string;
  };
  excluded: { reason?: string; until?: number; by?: string; action?: RemediationAction };
  /**
   * EKS node auto repair will act on the node: the condition it acts on, whose repair it is (a managed node
   * group's or Auto Mode's), its documented wait and how long gpu-medic watches; `action` is what gpu-medic's
   * policy would have done (and does if EKS does not act).
   */
  auto_repair_deferred: {
    condition?: string;
    status?: string;
    reason?: string;
    owner?: 'managed-node-group' | 'auto-mode';
    nodeGroup?: string;
    waitMs?: number;
    windowMs?: number;
    action?: RemediationAction;
  };
  /** What EKS did; `policyAction`: the action gpu-medic's policy takes over with when EKS did not act. */
  auto_repair_outcome: {
    outcome?: 'rebooted' | 'replaced' | 'not_acted';
    condition?: string;
    windowMs?: number;
    policyAction?: RemediationAction;
  };
}

/** The details of one step; a compile error here means a ProgressStep has no documented details. */
export type DetailsOf<S extends ProgressStep> = ProgressDetails[S];
