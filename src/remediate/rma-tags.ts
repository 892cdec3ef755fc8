/**
 * RMA evidence on the instance itself: before gpu-medic terminates an instance for a fault, it tags it with
 * the incident, the fault and the faulty GPU's UUID, so the instance (in EC2 while it is listed, in CloudTrail
 * and AWS Config after) names what to quote in a support case.
 *
 * Only instances gpu-medic terminates through EC2 or Auto Scaling are tagged. Karpenter and EKS Auto Mode
 * nodes are replaced by deleting the Node, with no EC2 call at all (an Auto Mode instance is an EC2 managed
 * instance that the account may not change); their evidence is the repair record (`gpu-medic report`).
 *
 * Tagging is best effort: a missing `ec2:CreateTags` grant or an EC2 error is logged and kept in the journal,
 * and the broken node is still replaced.
 */
import type { GpuIdentity } from '../domain/gpu.js';
import type { Incident } from '../domain/incident.js';
import type { JournalDetail } from './journal.js';
import type { StepContext } from './step-kit.js';

export const RMA_TAG = {
  incident: 'gpu-medic:incident',
  fault: 'gpu-medic:fault',
  gpuUuid: 'gpu-medic:gpu-uuid',
} as const;

/** EC2's limit on a tag value. */
const MAX_VALUE = 256;

/** The tags for an incident: the GPU UUID only when the last scan named the faulty GPU's. */
export function rmaTags(
  incident: Pick<Incident, 'id' | 'faultKey' | 'xid' | 'gpu'>,
  gpus: readonly GpuIdentity[] | undefined,
): Record<string, string> {
  const fault = incident.xid !== undefined ? `${incident.faultKey} (XID ${incident.xid})` : incident.faultKey;
  const tags: Record<string, string> = {
    [RMA_TAG.incident]: incident.id,
    [RMA_TAG.fault]: fault.slice(0, MAX_VALUE),
  };
  const uuid = incident.gpu !== undefined ? gpus?.find((g) => g.index === incident.gpu)?.uuid : undefined;
  if (uuid) tags[RMA_TAG.gpuUuid] = uuid;
  return tags;
}

/** Whether this replace method terminates the instance through EC2 / Auto Scaling (and so tags it first). */
export function tagsBeforeReplace(method: JournalDetail['method']): boolean {
  return method === 'ec2' || method === 'asg';
}

/** Writes the row's tags on the instance; what happened, for the step's `done` detail. Never throws. */
export async function tagForRma(
  ctx: StepContext,
  instanceId: string | undefined,
  tags: Record<string, string> | undefined,
): Promise<Pick<JournalDetail, 'tagged' | 'tagError'>> {
  if (!instanceId || !tags || Object.keys(tags).length === 0) return {};
  try {
    // CreateTags with the same values is harmless: a resumed step simply writes them again.
    await ctx.deps.cloud.tagInstance(instanceId, tags);
    return { tagged: true };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    ctx.deps.logger?.warn(
      { incident: ctx.incident.id, instanceId, err: message },
      'RMA tags not written; replacing anyway',
    );
    return { tagged: false, tagError: message };
  }
}
