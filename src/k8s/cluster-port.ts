/**
 * ClusterPort on the real Kubernetes API (@kubernetes/client-node 1.4): what the remediation engine needs from
 * the cluster — nodes, cordon, pods on a node, the Eviction API, Karpenter node deletion and Kubeflow jobs.
 */
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Eviction,
  type V1Pod,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { GpuNode } from '../domain/node.js';
import { DO_NOT_DISRUPT_ANNOTATION } from '../remediate/node-kind.js';
import type {
  ClusterPort,
  EvictionResult,
  OwnerRef,
  PodRef,
  TrainingJobRef,
  TrainingJobStatus,
} from '../remediate/ports.js';
import { isGpuNode, toGpuNode } from './node-mapper.js';

export const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';
export const KUBEFLOW_JOB_NAME_LABEL = 'training.kubeflow.org/job-name';
export const KUBEFLOW_OPERATOR_LABEL = 'training.kubeflow.org/operator-name';
export const JOBSET_NAME_LABEL = 'jobset.sigs.k8s.io/jobset-name';
/** Kubeflow Trainer v2 is served as v1alpha1 today. */
export const TRAINJOB_API_VERSION = 'trainer.kubeflow.org/v1alpha1';

/** Training-operator kinds (kubeflow.org); their pods are owned by the job directly. */
const KUBEFLOW_KINDS = new Set(['PyTorchJob', 'TFJob', 'MPIJob', 'XGBoostJob', 'PaddleJob', 'JAXJob']);
const OPERATOR_KIND: Record<string, string> = {
  'pytorchjob-controller': 'PyTorchJob',
  'tfjob-controller': 'TFJob',
  'mpijob-controller': 'MPIJob',
  'xgboostjob-controller': 'XGBoostJob',
  'paddlejob-controller': 'PaddleJob',
  'jaxjob-controller': 'JAXJob',
};

const PAGE_SIZE = 500;
const DEFAULT_RETRY_DELAY_MS = 300;

/** A failed Kubernetes call, with the HTTP status and the API server's Status reason when there was one. */
export class K8sApiError extends Error {
  override readonly name = 'K8sApiError';
  constructor(
    message: string,
    readonly status?: number,
    readonly reason?: string,
  ) {
    super(message);
  }
}

const StatusBody = z.object({ message: z.string().optional(), reason: z.string().optional() });

/** The HTTP status of an ApiException; undefined for network and other errors. */
export function k8sStatusOf(error: unknown): number | undefined {
  return error instanceof ApiException && typeof error.code === 'number' ? error.code : undefined;
}

/** The `Status` message and reason inside an ApiException body (a raw string in client-node 1.4). */
export function k8sErrorDetail(error: unknown): { message: string; reason?: string } {
  if (error instanceof ApiException) {
    const raw: unknown = error.body;
    let parsed: unknown = raw;
    if (typeof raw === 'string') {
      try {
        parsed = JSON.parse(raw);
      } catch {
        parsed = undefined;
      }
    }
    const status = StatusBody.safeParse(parsed);
    if (status.success && status.data.message) {
      return { message: status.data.message, ...(status.data.reason ? { reason: status.data.reason } : {}) };
    }
    const text =
      typeof raw === 'string' && raw.trim() !== '' ? raw.trim().slice(0, 300) : `HTTP ${error.code}`;
    return { message: text };
  }
  return { message: error instanceof Error ? error.message : String(error) };
}

/** Worth one more try: server errors, API priority-and-fairness 429s, and anything that never got an answer. */
export function isTransientK8sError(error: unknown): boolean {
  const status = k8sStatusOf(error);
  if (status === undefined) return !(error instanceof K8sApiError);
  return status >= 500 || status === 429;
}

export function toK8sApiError(what: string, error: unknown): K8sApiError {
  if (error instanceof K8sApiError) return error;
  const status = k8sStatusOf(error);
  const { message, reason } = k8sErrorDetail(error);
  const head = status === undefined ? what : `${what}: HTTP ${status}${reason ? ` ${reason}` : ''}`;
  return new K8sApiError(`${head}: ${message}`, status, reason);
}

export interface RetryOptions {
  retryDelayMs?: number;
  logger?: Logger;
}

/** Runs `fn`; a transient failure gets one short retry; the final failure is a K8sApiError naming `what`. */
export async function withK8sRetry<T>(
  what: string,
  fn: () => Promise<T>,
  opts: RetryOptions = {},
): Promise<T> {
  try {
    return await fn();
  } catch (first) {
    if (!isTransientK8sError(first)) throw toK8sApiError(what, first);
    opts.logger?.warn({ what, err: k8sErrorDetail(first).message }, 'kubernetes call failed; retrying once');
    await new Promise((resolve) => setTimeout(resolve, opts.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS));
    try {
      return await fn();
    } catch (second) {
      throw toK8sApiError(what, second);
    }
  }
}

/** Turns the listed HTTP statuses into values instead of errors (404 → 'gone' …). */
async function mapStatus<T, R>(fn: () => Promise<T>, map: Partial<Record<number, R>>): Promise<T | R> {
  try {
    return await fn();
  } catch (e) {
    const status = k8sStatusOf(e);
    if (status !== undefined && status in map) return map[status] as R;
    throw e;
  }
}

// ------------------------------------------------------------------ pure mapping

function ownerRefsOf(pod: V1Pod): OwnerRef[] {
  return (pod.metadata?.ownerReferences ?? []).map((o) => ({
    kind: o.kind,
    name: o.name,
    ...(o.apiVersion ? { apiVersion: o.apiVersion } : {}),
    ...(o.uid ? { uid: o.uid } : {}),
    ...(o.controller !== undefined ? { controller: o.controller } : {}),
  }));
}

/** A Pod → the engine's PodRef; undefined for a pod without a name (malformed). */
export function toPodRef(pod: V1Pod): PodRef | undefined {
  const name = pod.metadata?.name;
  if (!name) return undefined;
  const ownerReferences = ownerRefsOf(pod);
  const controller = ownerReferences.find((o) => o.controller) ?? ownerReferences[0];
  return {
    namespace: pod.metadata?.namespace ?? 'default',
    name,
    ...(controller ? { ownerKind: controller.kind } : {}),
    isDaemonSet: ownerReferences.some((o) => o.kind === 'DaemonSet'),
    isMirror: pod.metadata?.annotations?.[MIRROR_ANNOTATION] !== undefined,
    labels: { ...(pod.metadata?.labels ?? {}) },
    ownerReferences,
    deleting: pod.metadata?.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null,
  };
}

/** A pod that asks for an NVIDIA GPU (`nvidia.com/gpu` or a MIG profile `nvidia.com/mig-*`) in any container. */
export function requestsGpu(pod: V1Pod): boolean {
  const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  return containers.some((c) =>
    Object.keys({ ...c.resources?.requests, ...c.resources?.limits }).some(
      (r) => r === 'nvidia.com/gpu' || r.startsWith('nvidia.com/mig-'),
    ),
  );
}

/** Pods that have finished hold no resources and need no eviction. */
export function isFinishedPod(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

/**
 * The training jobs the pods belong to, deduplicated: a training-operator job (kubeflow.org) by owner
 * reference, else by the `training.kubeflow.org/job-name` + operator-name labels; a Kubeflow Trainer
 * TrainJob by owner reference, else by the JobSet name label (the TrainJob's JobSet carries its name).
 */
export function trainingJobsOf(pods: readonly PodRef[]): TrainingJobRef[] {
  const out = new Map<string, TrainingJobRef>();
  const add = (job: TrainingJobRef) => {
    const key = `${job.kind}/${job.namespace}/${job.name}`;
    if (!out.has(key)) out.set(key, job);
  };
  for (const pod of pods) {
    const owned = pod.ownerReferences.find(
      (o) =>
        (KUBEFLOW_KINDS.has(o.kind) && (o.apiVersion ?? 'kubeflow.org/v1').startsWith('kubeflow.org/')) ||
        (o.kind === 'TrainJob' && (o.apiVersion ?? TRAINJOB_API_VERSION).startsWith('trainer.kubeflow.org/')),
    );
    if (owned) {
      const fallback = owned.kind === 'TrainJob' ? TRAINJOB_API_VERSION : 'kubeflow.org/v1';
      add({
        kind: owned.kind,
        apiVersion: owned.apiVersion ?? fallback,
        namespace: pod.namespace,
        name: owned.name,
      });
      continue;
    }
    const jobName = pod.labels[KUBEFLOW_JOB_NAME_LABEL];
    const operatorKind = OPERATOR_KIND[pod.labels[KUBEFLOW_OPERATOR_LABEL] ?? ''];
    if (jobName && operatorKind) {
      add({ kind: operatorKind, apiVersion: 'kubeflow.org/v1', namespace: pod.namespace, name: jobName });
      continue;
    }
    const jobSet = pod.labels[JOBSET_NAME_LABEL];
    if (jobSet)
      add({ kind: 'TrainJob', apiVersion: TRAINJOB_API_VERSION, namespace: pod.namespace, name: jobSet });
  }
  return [...out.values()];
}

const JobCondition = z.object({
  type: z.string(),
  status: z.string(),
  lastTransitionTime: z.string().optional(),
  lastUpdateTime: z.string().optional(),
});
const JobObject = z.object({
  status: z
    .object({
      conditions: z.array(JobCondition).optional(),
      jobsStatus: z
        .array(z.object({ active: z.number().optional(), ready: z.number().optional() }))
        .optional(),
    })
    .optional(),
});

const CONDITION_STATUS: Record<string, TrainingJobStatus> = {
  Running: 'running',
  Restarting: 'restarting',
  Suspended: 'pending',
};

function conditionTime(c: z.infer<typeof JobCondition>): number {
  const t = Date.parse(c.lastTransitionTime ?? c.lastUpdateTime ?? '');
  return Number.isFinite(t) ? t : 0;
}

/**
 * A training job object → its status. Terminal conditions win (Succeeded / Complete, Failed); otherwise the
 * newest True among Running / Restarting / Suspended (a tie goes to the later entry, as controllers append);
 * `Created` alone or no conditions yet → pending. A TrainJob has no Running condition: active or ready jobs in
 * `status.jobsStatus` count as running. Anything unreadable → unknown.
 */
export function trainingJobStatusFrom(obj: unknown): TrainingJobStatus {
  const parsed = JobObject.safeParse(obj);
  if (!parsed.success) return 'unknown';
  const conditions = parsed.data.status?.conditions ?? [];
  const isTrue = (type: string) => conditions.some((c) => c.type === type && c.status === 'True');
  if (isTrue('Failed')) return 'failed';
  if (isTrue('Succeeded') || isTrue('Complete')) return 'succeeded';
  let newest: { status: TrainingJobStatus; at: number } | undefined;
  for (const c of conditions) {
    const status = CONDITION_STATUS[c.type];
    if (!status || c.status !== 'True') continue;
    const at = conditionTime(c);
    if (!newest || at >= newest.at) newest = { status, at };
  }
  if (newest) return newest.status;
  const jobs = parsed.data.status?.jobsStatus ?? [];
  if (jobs.some((j) => (j.ready ?? 0) > 0 || (j.active ?? 0) > 0)) return 'running';
  if (conditions.length === 0 || isTrue('Created')) return 'pending';
  return 'unknown';
}

/** `kubeflow.org/v1` + `PyTorchJob` → group, version and plural for the custom objects API. */
export function customResourceOf(job: TrainingJobRef): { group: string; version: string; plural: string } {
  const [group, version] = job.apiVersion.split('/');
  if (!group || !version)
    throw new K8sApiError(`training job ${job.namespace}/${job.name}: bad apiVersion "${job.apiVersion}"`);
  return { group, version, plural: `${job.kind.toLowerCase()}s` };
}

// ------------------------------------------------------------------ the port

export interface ClusterPortOptions {
  logger?: Logger;
  /** GPU_NODE_SELECTOR: when given, the nodes it selects are the GPU nodes (server-side filter). */
  gpuNodeSelector?: string;
  retryDelayMs?: number;
}

export function createClusterPort(kc: KubeConfig, opts: ClusterPortOptions = {}): ClusterPort {
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const log = opts.logger;
  const retry = {
    ...(opts.retryDelayMs !== undefined ? { retryDelayMs: opts.retryDelayMs } : {}),
    ...(log ? { logger: log } : {}),
  };
  const call = <T>(what: string, fn: () => Promise<T>) => withK8sRetry(what, fn, retry);
  const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

  async function setUnschedulable(name: string, value: true | null): Promise<void> {
    await call(`${value ? 'cordon' : 'uncordon'} node ${name}`, () =>
      core.patchNode({ name, body: { spec: { unschedulable: value } } }, mergePatch),
    );
    log?.info({ node: name, unschedulable: value === true }, 'node schedulability changed');
  }

  return {
    async getNode(name) {
      const node = await call(`get node ${name}`, () =>
        mapStatus(() => core.readNode({ name }), { 404: undefined }),
      );
      return node ? toGpuNode(node) : undefined;
    },

    async listNodes() {
      const selector = opts.gpuNodeSelector || undefined;
      const nodes: GpuNode[] = [];
      let cont: string | undefined;
      do {
        const page = await call('list nodes', () =>
          core.listNode({
            limit: PAGE_SIZE,
            ...(selector ? { labelSelector: selector } : {}),
            ...(cont ? { _continue: cont } : {}),
          }),
        );
        for (const n of page.items) {
          const node = toGpuNode(n);
          if (node && isGpuNode(node, selector !== undefined)) nodes.push(node);
        }
        cont = page.metadata?._continue || undefined;
      } while (cont);
      return nodes;
    },

    cordon: (name) => setUnschedulable(name, true),
    // null removes the field, as `kubectl uncordon` does; a fresh node carries no `unschedulable` at all.
    uncordon: (name) => setUnschedulable(name, null),

    async listPodsOnNode(name) {
      const pods: PodRef[] = [];
      let cont: string | undefined;
      do {
        const page = await call(`list pods on node ${name}`, () =>
          core.listPodForAllNamespaces({
            fieldSelector: `spec.nodeName=${name}`,
            limit: PAGE_SIZE,
            ...(cont ? { _continue: cont } : {}),
          }),
        );
        for (const p of page.items) {
          if (isFinishedPod(p)) continue;
          const ref = toPodRef(p);
          if (ref) pods.push(ref);
        }
        cont = page.metadata?._continue || undefined;
      } while (cont);
      return pods;
    },

    async evictPod(namespace, name): Promise<EvictionResult> {
      const body: V1Eviction = { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace } };
      // 429 here is the PDB answer, not throttling: it is a result, never retried blindly.
      const result = await call(`evict pod ${namespace}/${name}`, () =>
        mapStatus(
          async () => {
            await core.createNamespacedPodEviction({ name, namespace, body });
            return 'evicted' as const;
          },
          { 429: 'blocked' as const, 404: 'gone' as const },
        ),
      );
      if (result === 'blocked') log?.info({ pod: `${namespace}/${name}` }, 'eviction blocked by PDB');
      return result;
    },

    async deletePod(namespace, name) {
      return call(`delete pod ${namespace}/${name}`, () =>
        mapStatus(
          async () => {
            await core.deleteNamespacedPod({ name, namespace });
            return 'deleted' as const;
          },
          { 404: 'gone' as const },
        ),
      );
    },

    async deleteNode(name) {
      return call(`delete node ${name}`, () =>
        mapStatus(
          async () => {
            await core.deleteNode({ name });
            return 'deleted' as const;
          },
          { 404: 'gone' as const },
        ),
      );
    },

    async hasDoNotDisrupt(name) {
      const node = await call(`get node ${name}`, () =>
        mapStatus(() => core.readNode({ name }), { 404: undefined }),
      );
      if (!node) return undefined;
      return node.metadata?.annotations?.[DO_NOT_DISRUPT_ANNOTATION] === 'true';
    },

    async setDoNotDisrupt(name, on) {
      // A merge patch touches only this key: null removes it, and removing an absent key is a no-op.
      const body = { metadata: { annotations: { [DO_NOT_DISRUPT_ANNOTATION]: on ? 'true' : null } } };
      const result = await call(
        `${on ? 'annotate' : 'unannotate'} node ${name} ${DO_NOT_DISRUPT_ANNOTATION}`,
        () =>
          mapStatus(
            async () => {
              await core.patchNode({ name, body }, mergePatch);
              return 'done' as const;
            },
            { 404: 'gone' as const },
          ),
      );
      log?.info({ node: name, doNotDisrupt: on, result }, 'node disruption guard changed');
      return result;
    },

    async listPendingGpuPods() {
      const pods: PodRef[] = [];
      let cont: string | undefined;
      do {
        const page = await call('list pending pods', () =>
          core.listPodForAllNamespaces({
            // Not yet bound to a node: what a provisioner (Karpenter, Auto Mode) starts nodes for.
            fieldSelector: 'status.phase=Pending,spec.nodeName=',
            limit: PAGE_SIZE,
            ...(cont ? { _continue: cont } : {}),
          }),
        );
        for (const p of page.items) {
          if (!requestsGpu(p) || p.metadata?.deletionTimestamp) continue;
          const ref = toPodRef(p);
          if (ref) pods.push(ref);
        }
        cont = page.metadata?._continue || undefined;
      } while (cont);
      return pods;
    },

    async listTrainingJobsForPods(pods) {
      return trainingJobsOf(pods);
    },

    async getTrainingJobStatus(job) {
      const { group, version, plural } = customResourceOf(job);
      // 404: the job was deleted (or its CRD is not installed). We cannot say it failed, so `unknown`:
      // the follower keeps polling until its timeout and then reports the job as not running again.
      const obj: unknown = await call(`get ${job.kind} ${job.namespace}/${job.name}`, () =>
        mapStatus(
          () =>
            custom.getNamespacedCustomObject({
              group,
              version,
              namespace: job.namespace,
              plural,
              name: job.name,
            }),
          { 404: undefined },
        ),
      );
      if (obj === undefined) return 'unknown';
      return trainingJobStatusFrom(obj);
    },
  };
}
