/**
 * Which training jobs (Kubeflow training-operator jobs, Kubeflow Trainer TrainJobs) a node's pods belong to,
 * and what a job's conditions say about it: what the remediation follows after a drain.
 */
import { z } from 'zod';
import type { PodRef, TrainingJobRef, TrainingJobStatus } from '../remediate/ports.js';
import { K8sApiError } from './k8s-api-error.js';

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
