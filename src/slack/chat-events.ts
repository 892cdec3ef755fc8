/**
 * The remediation progress events the Slack thread renders. The event type and the `details` each step
 * carries live in the domain (src/domain/events.ts — the contract between the engine that publishes and
 * the thread that renders); this file re-exports them and reads details defensively, because a missing
 * or mistyped detail must degrade a line, never crash the thread.
 */
export type {
  Details,
  DetailsOf,
  KubeflowJobRef,
  ProgressDetails,
  ProgressEvent,
  ProgressStep,
  SafetyLimitKind,
} from '../domain/events.js';
export { ProgressSteps, SafetyLimitKinds } from '../domain/events.js';

import type { Details, KubeflowJobRef } from '../domain/events.js';

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
