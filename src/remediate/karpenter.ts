/**
 * Karpenter's side of a repair (karpenter.sh docs: Disruption).
 *
 * While gpu-medic works on a node it carries `karpenter.sh/do-not-disrupt: "true"`: a cordoned, drained GPU
 * node is exactly what consolidation removes, and a node that vanishes mid-reboot turns a repair into an
 * unplanned replacement. The annotation blocks only Karpenter's voluntary disruption; gpu-medic's own
 * replace (deleting the Node) still goes through. It is set before the cordon and removed when the incident
 * ends, whatever the end (resolved, escalated, failed, cancelled), also after a crash and restart; a node
 * that already carried it before gpu-medic came keeps it.
 *
 * Karpenter and EKS Auto Mode start nodes only for pods that wait for one: a replaced node with nothing
 * pending has no successor, and that is a finished replace ("the pool provisions on demand").
 */
import type { Logger } from 'pino';
import { isOpen } from '../domain/incident.js';
import type { ClusterPort, IncidentStore, StepRow, StepStore } from './ports.js';
import type { StepContext } from './steps.js';

/** The bookkeeping row of the annotation's removal (beside `plan` and `escalate`; not a plan step). */
export const ReleaseStep = 'release_guard';

/** Plans that drain the node: the ones a consolidation could cut short. */
const guarded = new Set(['drain', 'reset', 'reboot', 'replace']);

/** What the cordon row records before any effect: whether the node had the annotation already. */
export async function disruptionGuardBefore(
  ctx: StepContext,
  node: string,
): Promise<{ hadDoNotDisrupt?: boolean }> {
  if (!guarded.has(ctx.plan.action) || ctx.plan.dryRun || ctx.resumed) return {};
  return { hadDoNotDisrupt: (await ctx.deps.cluster.hasDoNotDisrupt(node)) === true };
}

/** Sets the annotation when the row says gpu-medic owns it (idempotent: a resumed run asks first). */
export async function guardFromDisruption(ctx: StepContext, node: string, row: StepRow): Promise<void> {
  if (row.detail.hadDoNotDisrupt !== false || ctx.plan.dryRun) return;
  if (ctx.resumed && (await ctx.deps.cluster.hasDoNotDisrupt(node)) === true) return;
  await ctx.deps.cluster.setDoNotDisrupt(node, true);
}

export function provisionsOnDemand(method: unknown): boolean {
  return method === 'karpenter' || method === 'auto-mode';
}

/** The incident's annotation is still to be removed: gpu-medic set it and has not taken it off yet. */
export function needsRelease(steps: StepStore, incidentId: string): boolean {
  const cordon = steps.lastOf(incidentId, 'cordon');
  if (cordon?.detail.hadDoNotDisrupt !== false) return false;
  return steps.lastOf(incidentId, ReleaseStep)?.status !== 'done';
}

/**
 * Removes the annotation of an ended incident, once: the `release_guard` row is written before the patch
 * and finished after it, so a crash in between retries at the next start (the patch is idempotent).
 * A failure is logged and left for the next start, never thrown: the incident's end stands.
 */
export async function releaseDisruptionGuard(
  deps: { cluster: ClusterPort; steps: StepStore; incidents: IncidentStore; now: () => number },
  incidentId: string,
  log?: Logger,
): Promise<'released' | 'gone' | 'not_needed' | 'failed'> {
  const incident = deps.incidents.get(incidentId);
  if (!incident || isOpen(incident.state) || !needsRelease(deps.steps, incidentId)) return 'not_needed';
  const last = deps.steps.lastOf(incidentId, ReleaseStep);
  const row = last?.status === 'started' ? last : deps.steps.begin(incidentId, ReleaseStep, {}, deps.now());
  try {
    const result = await deps.cluster.setDoNotDisrupt(incident.node, false);
    deps.steps.finish(row.id, 'done', { result }, deps.now());
    return result === 'gone' ? 'gone' : 'released';
  } catch (err) {
    log?.warn(
      { err, incidentId, node: incident.node },
      'removing karpenter.sh/do-not-disrupt failed; retried at the next start',
    );
    return 'failed';
  }
}

/** Closed incidents (within `sinceMs`) whose annotation is still on: released at start-up. */
export function pendingReleases(incidents: IncidentStore, steps: StepStore, since: number): string[] {
  return incidents
    .list({ updatedSince: since })
    .filter((i) => !isOpen(i.state) && needsRelease(steps, i.id))
    .map((i) => i.id);
}
