/** Following the training jobs that had pods on the node until they run again. */

import type { JournalDetail } from './journal.js';
import type { TrainingJobRef } from './ports.js';
import { done, minutes, pause, type StepContext, type StepOutcome } from './step-kit.js';

/** The jobs of the snapshot (a follow's results, `{ job, status }`, are not jobs to follow). */
function jobsOf(detail: JournalDetail | undefined): TrainingJobRef[] {
  return (detail?.jobs ?? []).flatMap((j) => ('kind' in j ? [j] : []));
}

export async function followJobs(ctx: StepContext): Promise<StepOutcome> {
  const jobs = jobsOf(ctx.doneDetail('kubeflow_snapshot'));
  // The snapshot already told the thread which jobs there are (or that there are none): the follow
  // speaks only through one kubeflow_job_running / kubeflow_job_not_running line per job.
  if (jobs.length === 0) return done({ jobs: [] }, null);
  if (ctx.plan.dryRun) return done({ would: 'follow training jobs', jobs }, null);
  const { cluster, clock } = ctx.deps;
  // The job lost its pods when the drain began: "running again after" counts from there.
  const since = ctx.rowOf('drain')?.startedAt ?? clock.now();
  const deadline = clock.now() + ctx.config.jobTimeoutMs;
  const results: { job: string; status: string }[] = [];
  const pending = new Map(jobs.map((j) => [`${j.kind} ${j.namespace}/${j.name}`, j]));
  for (;;) {
    for (const [label, job] of pending) {
      const status = await cluster.getTrainingJobStatus(job);
      if (status === 'running' || status === 'succeeded') {
        results.push({ job: label, status });
        ctx.publish(
          { step: 'kubeflow_job_running', details: { ...jobRef(job), status } },
          clock.now() - since,
        );
        pending.delete(label);
      }
    }
    if (pending.size === 0) break;
    if (clock.now() >= deadline) {
      for (const [label, job] of pending) {
        const status = await cluster.getTrainingJobStatus(job);
        results.push({ job: label, status });
        ctx.publish(
          {
            step: 'kubeflow_job_not_running',
            details: {
              ...jobRef(job),
              status,
              reason: `still ${status} after following it for ${minutes(ctx.config.jobTimeoutMs)}`,
            },
          },
          clock.now() - since,
        );
      }
      break;
    }
    await pause(ctx, ctx.config.pollMs);
  }
  return done({ jobs: results }, null);
}

function jobRef(j: TrainingJobRef): { kind: string; namespace: string; name: string } {
  return { kind: j.kind, namespace: j.namespace, name: j.name };
}
