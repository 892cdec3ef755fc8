/**
 * What a run reads before each step: the plan the services wrote, and the reasons to stop touching the node
 * (an exclusion, the opt-out label, a human who uncordoned it).
 */
import type { StepDetails } from '../domain/events.js';
import type { Incident, IncidentState } from '../domain/incident.js';
import { isOptedOut, OptOutLabel } from '../domain/node.js';
import type { EngineDeps } from './engine-config.js';
import type { JournalDetail } from './journal.js';
import type { ClusterPort, RunPlan, StepRow } from './ports.js';

type GuardDeps = Pick<EngineDeps, 'exclusions' | 'clock' | 'cluster' | 'steps'>;

/** A reason to stop touching the node, or undefined. */
export async function stopReason(
  deps: GuardDeps,
  incident: Incident,
  plan: RunPlan,
): Promise<string | undefined> {
  const { exclusions, clock, cluster } = deps;
  const exclusion = exclusions.get(incident.node, clock.now());
  if (exclusion) {
    return `${incident.node} was excluded by ${exclusion.createdBy} (${exclusion.reason}): gpu-medic stopped and left it as it is.`;
  }
  const node = await cluster.getNode(incident.node);
  if (node && isOptedOut(node)) {
    return `${incident.node} got the opt-out label ${OptOutLabel}=true: gpu-medic stopped and left it as it is.`;
  }
  return humanUncordoned(deps, incident, plan, node);
}

/**
 * Someone made the node schedulable while we hold it cordoned: they know something we do not, so we stop.
 * Only between our own cordon and our own uncordon, and never once the node is being replaced.
 */
export async function humanUncordoned(
  deps: GuardDeps,
  incident: Incident,
  plan: RunPlan,
  known?: Awaited<ReturnType<ClusterPort['getNode']>>,
): Promise<string | undefined> {
  if (plan.dryRun || plan.action === 'uncordon') return undefined;
  const { steps, cluster } = deps;
  const cordon = steps.lastOf(incident.id, 'cordon');
  if (cordon?.status !== 'done' || cordon.detail.cordonedByUs !== true) return undefined;
  if (steps.lastOf(incident.id, 'uncordon') || steps.lastOf(incident.id, 'replace')) return undefined;
  const node = known ?? (await cluster.getNode(incident.node));
  if (node && !node.unschedulable) {
    return `${incident.node} was uncordoned by someone else while gpu-medic worked on it: remediation cancelled.`;
  }
  return undefined;
}

/** Why a run's signal fired. */
export class RunAborted extends Error {
  override readonly name = 'RunAborted';
}

/** The plan row the services wrote; an incident claimed without one (crash in between) runs its planned action. */
export function readPlan(row: StepRow | undefined, incident: Incident, dryRun: boolean): RunPlan {
  const d = row?.detail ?? {};
  return {
    action: d.action ?? incident.plannedAction,
    actor: d.actor ?? 'monitor',
    trigger: d.trigger ?? 'auto',
    reason: d.reason ?? incident.stateReason ?? incident.explanation,
    force: d.force ?? false,
    dryRun: d.dryRun ?? dryRun,
    ...(d.gpu !== undefined ? { gpu: d.gpu } : {}),
  };
}

/** What the thread is told when a run ends: the end state's event, with the stage it failed at. */
export function endEvent(
  state: 'resolved' | 'escalated' | 'failed' | 'cancelled',
  reason: string,
  stage: IncidentState,
  plan: RunPlan,
  detail: JournalDetail,
): StepDetails {
  switch (state) {
    case 'failed':
      return { step: state, details: { reason, stage } };
    case 'escalated':
      return { step: state, details: { reason, to: detail.escalateTo ?? 'human' } };
    case 'resolved':
      return {
        step: state,
        details: { reason, action: plan.action, ...(detail.onDemand === true ? { onDemand: true } : {}) },
      };
    default:
      return { step: state, details: { reason } };
  }
}
