/** A node's remediation history, read from incidents and their step rows, for the policy's escalation. */
import type { Incident } from '../domain/incident.js';
import type { EscalationPolicy } from '../domain/policy.js';
import type { RemediationHistory } from './policy.js';
import type { StepRow } from './ports.js';
import { PlanStep } from './state-machine.js';

const dayMs = 86_400_000;

function isDry(row: StepRow | undefined): boolean {
  return row?.detail.dryRun === true;
}

/**
 * `incidents`: the node's incidents (any state). A remediation is a claimed run that was not a dry run;
 * a reboot counts once its step finished (done). The incident being decided is excluded.
 */
export function remediationHistory(
  incidents: readonly Incident[],
  stepsOf: (incidentId: string) => StepRow[],
  current: { id?: string; faultKey: string },
  escalation: EscalationPolicy,
  now: number,
): RemediationHistory {
  const since = now - escalation.windowDays * dayMs;
  let rebootsForFault = 0;
  let lastRebootAt: number | undefined;
  let remediationsInWindow = 0;
  let resetsForFault = 0;
  let lastResetAt: number | undefined;
  for (const incident of incidents) {
    if (incident.id === current.id) continue;
    const rows = stepsOf(incident.id);
    const plan = rows.find((r) => r.step === PlanStep);
    if (!plan || isDry(plan) || plan.startedAt < since) continue;
    remediationsInWindow++;
    if (incident.faultKey !== current.faultKey) continue;
    for (const row of rows) {
      // A reset counts once it ran, failed or not: a failed reset is what sends the fault to a reboot.
      if (row.step === 'reset' && row.status !== 'started' && row.status !== 'skipped' && !isDry(row)) {
        resetsForFault++;
        const at = row.finishedAt ?? row.startedAt;
        lastResetAt = lastResetAt === undefined ? at : Math.max(lastResetAt, at);
      }
      if (row.step === 'reboot' && row.status === 'done' && !isDry(row)) {
        rebootsForFault++;
        const at = row.finishedAt ?? row.startedAt;
        lastRebootAt = lastRebootAt === undefined ? at : Math.max(lastRebootAt, at);
      }
    }
  }
  return {
    rebootsForFault,
    remediationsInWindow,
    ...(lastRebootAt !== undefined ? { lastRebootAt } : {}),
    ...(resetsForFault > 0 ? { resetsForFault } : {}),
    ...(lastResetAt !== undefined ? { lastResetAt } : {}),
  };
}
