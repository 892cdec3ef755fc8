/**
 * The remediation progress events the Slack thread renders. The event type itself lives in the domain
 * (src/domain/events.ts, published on the ProgressBus); this file documents the `details` each step
 * carries — the contract between the engine that publishes and the thread that renders — and reads
 * them defensively, because a missing or mistyped detail must degrade a line, never crash the thread.
 */
import type { PolicyMode, RemediationAction } from '../domain/incident.js';

export type { ProgressEvent, ProgressStep } from '../domain/events.js';
export { ProgressSteps } from '../domain/events.js';

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
 * The `details` of each step, as the thread reads them. Every field is optional to the renderer; the
 * engine should fill what it knows. Names are `namespace/name` strings.
 */
export interface ProgressDetails {
  detected: { category?: string; xid?: number; gpu?: number; severity?: string };
  policy: { action?: RemediationAction; mode?: PolicyMode; rule?: string };
  approval_needed: { action?: RemediationAction };
  approved: { action?: RemediationAction };
  cordoned: Record<string, never>;
  drain_started: { pods?: number; skipped?: number };
  pod_evicted: { pod?: string; evicted?: number; total?: number };
  pdb_wait: { pdb?: string; pod?: string; evicted?: number; total?: number; waitedMs?: number };
  drained: { evicted?: number };
  reboot_issued: { instanceId?: string };
  node_back: { bootId?: string; previousBootId?: string };
  gpu_scan: { healthy?: boolean; gpus?: number; expected?: number; problem?: string };
  replace_issued: { instanceId?: string; method?: 'asg' | 'karpenter' | 'ec2'; asg?: string };
  replacement_ready: { newNode?: string };
  uncordoned: Record<string, never>;
  kubeflow_jobs: { jobs?: KubeflowJobRef[] };
  kubeflow_job_running: Partial<KubeflowJobRef>;
  kubeflow_job_not_running: Partial<KubeflowJobRef> & { reason?: string };
  resolved: { action?: RemediationAction };
  escalated: { reason?: string; to?: 'replace' | 'human' };
  failed: { reason?: string; stage?: string };
  cancelled: { reason?: string };
  dismissed: { reason?: string };
  safety_limit: {
    limit?: SafetyLimitKind;
    /** What was held back: "reboot". */
    action?: RemediationAction;
    unhealthy?: number;
    total?: number;
    thresholdPct?: number;
    count?: number;
    max?: number;
    windowMinutes?: number;
    label?: string;
  };
  excluded: { reason?: string; until?: number; by?: string };
}

export type Details = Record<string, unknown>;

export function detailString(details: Details, key: string): string | undefined {
  const v = details[key];
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

export function detailNumber(details: Details, key: string): number | undefined {
  const v = details[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function detailBoolean(details: Details, key: string): boolean | undefined {
  const v = details[key];
  return typeof v === 'boolean' ? v : undefined;
}

/** The `jobs` detail of `kubeflow_jobs`, keeping only well-formed entries. */
export function detailJobs(details: Details): KubeflowJobRef[] {
  const v = details.jobs;
  if (!Array.isArray(v)) return [];
  return v.flatMap((j: unknown) => {
    if (typeof j !== 'object' || j === null) return [];
    const { kind, namespace, name } = j as Record<string, unknown>;
    return typeof kind === 'string' && typeof namespace === 'string' && typeof name === 'string'
      ? [{ kind, namespace, name }]
      : [];
  });
}
