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
import { backoffDelay } from '../domain/backoff.js';
import { isNvidiaGpuResource } from '../domain/gpu-count.js';
import type { GpuNode } from '../domain/node.js';
import { DO_NOT_DISRUPT_ANNOTATION } from '../remediate/node-kind.js';
import type { ClusterPort, EvictionResult, GpuAgentPod, OwnerRef, PodRef } from '../remediate/ports.js';
import { DEFAULT_RESET_POD_SELECTORS, type ResetPodSelector, runGpuReset } from './gpu-reset.js';
import { K8sApiError } from './k8s-api-error.js';
import { isWatchedNode, toGpuNode } from './node-mapper.js';
import { isPodReady, matchesLabelSelector } from './pod-index.js';

export { K8sApiError } from './k8s-api-error.js';

import { customResourceOf, trainingJobStatusFrom, trainingJobsOf } from './training-jobs.js';

export {
  customResourceOf,
  JOBSET_NAME_LABEL,
  KUBEFLOW_JOB_NAME_LABEL,
  KUBEFLOW_OPERATOR_LABEL,
  TRAINJOB_API_VERSION,
  trainingJobStatusFrom,
  trainingJobsOf,
} from './training-jobs.js';

export const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';
const PAGE_SIZE = 500;
const DEFAULT_RETRY_DELAY_MS = 300;
const DEFAULT_MAX_ATTEMPTS = 3;
/** A Retry-After longer than this is not waited out inside one call: the caller's own retry takes over. */
const DEFAULT_MAX_RETRY_AFTER_MS = 30_000;

const StatusBody = z.object({
  message: z.string().optional(),
  reason: z.string().optional(),
  details: z
    .object({
      retryAfterSeconds: z.number().optional(),
      causes: z.array(z.object({ reason: z.string().optional(), type: z.string().optional() })).optional(),
    })
    .optional(),
});

/** The HTTP status of an ApiException; undefined for network and other errors. */
export function k8sStatusOf(error: unknown): number | undefined {
  return error instanceof ApiException && typeof error.code === 'number' ? error.code : undefined;
}

function statusOfBody(error: ApiException<unknown>): z.infer<typeof StatusBody> | undefined {
  const raw: unknown = error.body;
  let parsed: unknown = raw;
  if (typeof raw === 'string') {
    try {
      parsed = JSON.parse(raw);
    } catch {
      return undefined;
    }
  }
  const status = StatusBody.safeParse(parsed);
  return status.success ? status.data : undefined;
}

/** The `Status` message and reason inside an ApiException body (a raw string in client-node 1.4). */
export function k8sErrorDetail(error: unknown): { message: string; reason?: string } {
  if (error instanceof ApiException) {
    const status = statusOfBody(error);
    if (status?.message) {
      return { message: status.message, ...(status.reason ? { reason: status.reason } : {}) };
    }
    const raw: unknown = error.body;
    const text =
      typeof raw === 'string' && raw.trim() !== '' ? raw.trim().slice(0, 300) : `HTTP ${error.code}`;
    return { message: text, ...(status?.reason ? { reason: status.reason } : {}) };
  }
  return { message: error instanceof Error ? error.message : String(error) };
}

/**
 * How long the API server asked us to wait: the `Retry-After` header (seconds), else the Status body's
 * `details.retryAfterSeconds`; undefined when it said nothing.
 */
export function retryAfterMs(error: unknown): number | undefined {
  if (!(error instanceof ApiException)) return undefined;
  const headers = (error.headers ?? {}) as Record<string, string | undefined>;
  const header = headers['retry-after'] ?? headers['Retry-After'];
  const seconds = header !== undefined && header.trim() !== '' ? Number(header) : undefined;
  if (seconds !== undefined && Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const fromBody = statusOfBody(error)?.details?.retryAfterSeconds;
  return fromBody !== undefined && fromBody >= 0 ? fromBody * 1000 : undefined;
}

/**
 * A 429 from the Eviction API that is a PodDisruptionBudget's answer (a result: wait and try the pod again
 * later), not API priority-and-fairness throttling (retry after `Retry-After`). The API server marks the PDB
 * case with a `DisruptionBudget` cause.
 */
export function isDisruptionBudget429(error: unknown): boolean {
  if (k8sStatusOf(error) !== 429 || !(error instanceof ApiException)) return false;
  const status = statusOfBody(error);
  if (status?.details?.causes?.some((c) => c.reason === 'DisruptionBudget' || c.type === 'DisruptionBudget'))
    return true;
  return /disruption budget/i.test(status?.message ?? '');
}

/** Worth one more try: server errors, API priority-and-fairness 429s, and anything that never got an answer. */
export function isTransientK8sError(error: unknown): boolean {
  const status = k8sStatusOf(error);
  if (status === undefined) return !(error instanceof K8sApiError);
  return status >= 500 || status === 429;
}

/** One clear sentence for the statuses people act on; the API server's own words for the rest. */
export function toK8sApiError(what: string, error: unknown, attempts = 1): K8sApiError {
  if (error instanceof K8sApiError) return error;
  const status = k8sStatusOf(error);
  const { message, reason } = k8sErrorDetail(error);
  const tried = attempts > 1 ? ` (after ${attempts} attempts)` : '';
  if (status === 401) {
    return new K8sApiError(
      `${what}: the Kubernetes API server refused gpu-medic's credentials (HTTP 401 Unauthorized): check the ServiceAccount token or the kubeconfig`,
      status,
      reason ?? 'Unauthorized',
    );
  }
  if (status === 403) {
    return new K8sApiError(
      `${what}: gpu-medic's RBAC does not allow it (HTTP 403 Forbidden): ${message}`,
      status,
      reason ?? 'Forbidden',
    );
  }
  const head = status === undefined ? what : `${what}: HTTP ${status}${reason ? ` ${reason}` : ''}`;
  return new K8sApiError(`${head}: ${message}${tried}`, status, reason);
}

export interface RetryOptions {
  /** First backoff after a server error or no answer; doubles per attempt. */
  retryDelayMs?: number;
  /** Attempts per call, including the first (3). */
  maxAttempts?: number;
  /** The longest Retry-After honoured inside one call (30 s); a longer one ends the call. */
  maxRetryAfterMs?: number;
  logger?: Logger;
  /** How to wait between attempts (tests record the delays). */
  sleep?: (ms: number) => Promise<void>;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn` with a bounded retry: a 429 waits what its `Retry-After` says, a 5xx or a missing answer backs
 * off exponentially, and anything else (401, 403, 404, 409, 422 …) fails at once, because sending the same
 * request again cannot help. The final failure is a K8sApiError naming `what`.
 */
export async function withK8sRetry<T>(
  what: string,
  fn: () => Promise<T>,
  opts: RetryOptions = {},
): Promise<T> {
  const maxAttempts = Math.max(1, opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS);
  const base = opts.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  const cap = opts.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
  const sleep = opts.sleep ?? realSleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (!isTransientK8sError(error) || attempt >= maxAttempts) throw toK8sApiError(what, error, attempt);
      const asked = k8sStatusOf(error) === 429 ? retryAfterMs(error) : undefined;
      if (asked !== undefined && asked > cap) throw toK8sApiError(what, error, attempt);
      const delay = asked ?? backoffDelay(attempt - 1, { baseMs: base });
      opts.logger?.warn(
        { what, status: k8sStatusOf(error), attempt, delayMs: delay, err: k8sErrorDetail(error).message },
        'kubernetes call failed; retrying',
      );
      await sleep(delay);
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

/** Where gpu-medic's GPU readers run: the dcgm-exporter pods (both label styles) and the dcgm-server pods. */
export interface GpuAgentSelector {
  /** undefined ⇒ any namespace. */
  namespace?: string;
  selector: string;
}

export const DEFAULT_GPU_AGENT_SELECTORS: readonly GpuAgentSelector[] = [
  { selector: 'app=nvidia-dcgm-exporter' },
  { selector: 'app.kubernetes.io/name=dcgm-exporter' },
  { selector: 'k8s-app=dcgm-server' },
  { selector: 'app=nvidia-dcgm' },
];

/** A pod → the settle gate's view of a GPU agent pod; undefined for a pod without a name or uid. */
export function toGpuAgentPod(pod: V1Pod): GpuAgentPod | undefined {
  const name = pod.metadata?.name;
  const uid = pod.metadata?.uid;
  if (!name || !uid) return undefined;
  const restarts = (pod.status?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0);
  const readyCondition = pod.status?.conditions?.find((c) => c.type === 'Ready');
  const since = readyCondition?.lastTransitionTime
    ? new Date(readyCondition.lastTransitionTime).getTime()
    : NaN;
  return {
    namespace: pod.metadata?.namespace ?? 'default',
    name,
    uid,
    ready: isPodReady(pod),
    restarts,
    ...(Number.isFinite(since) ? { readySince: since } : {}),
  };
}

/** A pod that asks for an NVIDIA GPU (`nvidia.com/gpu`, `nvidia.com/gpu.shared` or a MIG profile) in any container. */
export function requestsGpu(pod: V1Pod): boolean {
  const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  return containers.some((c) =>
    Object.keys({ ...c.resources?.requests, ...c.resources?.limits }).some((r) => isNvidiaGpuResource(r)),
  );
}

/** Pods that have finished hold no resources and need no eviction. */
export function isFinishedPod(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

// ------------------------------------------------------------------ the port

export interface ClusterPortOptions {
  logger?: Logger;
  /** GPU_NODE_SELECTOR: when given, the nodes it selects are the GPU nodes (server-side filter). */
  gpuNodeSelector?: string;
  /** The exporter / DCGM pods the settle gate waits for (DCGM_NAMESPACE, DCGM_SELECTOR); default: all known. */
  gpuAgentSelectors?: readonly GpuAgentSelector[];
  /** Where `nvidia-smi --gpu-reset` runs (RESET_POD_NAMESPACE, RESET_POD_SELECTOR, RESET_POD_CONTAINER). */
  resetPodSelectors?: readonly ResetPodSelector[];
  /** How long one reset may take before the exec is abandoned. Default 3 min. */
  resetTimeoutMs?: number;
  retryDelayMs?: number;
  maxAttempts?: number;
  sleep?: (ms: number) => Promise<void>;
}

export function createClusterPort(kc: KubeConfig, opts: ClusterPortOptions = {}): ClusterPort {
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const log = opts.logger;
  const retry: RetryOptions = {
    ...(opts.retryDelayMs !== undefined ? { retryDelayMs: opts.retryDelayMs } : {}),
    ...(opts.maxAttempts !== undefined ? { maxAttempts: opts.maxAttempts } : {}),
    ...(opts.sleep ? { sleep: opts.sleep } : {}),
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
          if (node && isWatchedNode(node, selector !== undefined)) nodes.push(node);
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
      // A PDB's 429 is a result (the drain waits and tries the pod again), never retried here; a 429 without
      // a DisruptionBudget cause is API throttling and is retried after its Retry-After like any other call.
      const result = await call(`evict pod ${namespace}/${name}`, async () => {
        try {
          await core.createNamespacedPodEviction({ name, namespace, body });
          return 'evicted' as const;
        } catch (e) {
          if (isDisruptionBudget429(e)) return 'blocked' as const;
          if (k8sStatusOf(e) === 404) return 'gone' as const;
          throw e;
        }
      });
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

    async getNodeLabel(name, key) {
      const node = await call(`get node ${name}`, () =>
        mapStatus(() => core.readNode({ name }), { 404: undefined }),
      );
      if (!node) return undefined;
      return node.metadata?.labels?.[key] ?? null;
    },

    async setNodeLabel(name, key, value) {
      const body = { metadata: { labels: { [key]: value } } };
      const result = await call(`label node ${name} ${key}`, () =>
        mapStatus(
          async () => {
            await core.patchNode({ name, body }, mergePatch);
            return 'done' as const;
          },
          { 404: 'gone' as const },
        ),
      );
      log?.info({ node: name, label: key, value, result }, 'node label changed');
      return result;
    },

    async resetGpus(node, gpu, signal) {
      // Not retried: a reset that reached the node must not run twice behind the step's back.
      const run = await runGpuReset(
        {
          kc,
          core,
          selectors: opts.resetPodSelectors ?? DEFAULT_RESET_POD_SELECTORS,
          timeoutMs: opts.resetTimeoutMs ?? 180_000,
        },
        node,
        gpu,
        signal,
      );
      log?.info({ node, gpu, run }, 'nvidia-smi --gpu-reset');
      return run;
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

    async listGpuAgentPods(node) {
      const selectors = opts.gpuAgentSelectors ?? DEFAULT_GPU_AGENT_SELECTORS;
      const pods: GpuAgentPod[] = [];
      let cont: string | undefined;
      do {
        const page = await call(`list pods on node ${node}`, () =>
          core.listPodForAllNamespaces({
            fieldSelector: `spec.nodeName=${node}`,
            limit: PAGE_SIZE,
            ...(cont ? { _continue: cont } : {}),
          }),
        );
        for (const p of page.items) {
          const agent = selectors.some(
            (s) =>
              (s.namespace === undefined || s.namespace === p.metadata?.namespace) &&
              matchesLabelSelector(p.metadata?.labels, s.selector),
          );
          const ref = agent && !isFinishedPod(p) ? toGpuAgentPod(p) : undefined;
          if (ref) pods.push(ref);
        }
        cont = page.metadata?._continue || undefined;
      } while (cont);
      return pods;
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
