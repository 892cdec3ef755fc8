/**
 * The remediation services' answers in words: what Slack (and the CLI, which prints the same sentences)
 * tells a person. The services return codes and facts (domain/service-result.ts); every sentence is here.
 */

import { isOpen, isWorking, type RemediationAction } from '../domain/incident.js';
import type {
  IncidentBrief,
  NodeStatus,
  ServiceAction,
  ServiceOutcome,
  ServiceRefusal,
  ServiceResult,
  StatusReport,
} from '../domain/service-result.js';
import type { ChatResult } from './chat-port.js';

const verbs: Record<RemediationAction, string> = {
  none: 'nothing',
  cordon: 'cordon',
  uncordon: 'uncordon',
  drain: 'drain',
  reset: 'reset the GPUs of',
  reboot: 'reboot',
  replace: 'replace',
};

const doing: Record<RemediationAction, string> = {
  none: 'nothing',
  cordon: 'Cordoning',
  uncordon: 'Uncordoning',
  drain: 'Draining',
  reset: 'Resetting the GPUs of',
  reboot: 'Rebooting',
  replace: 'Replacing',
};

/** "You are not allowed to …" for each action a person may be refused. */
const deniedWhat: Record<ServiceAction, string> = {
  cordon: 'cordon nodes',
  uncordon: 'uncordon nodes',
  drain: 'drain nodes',
  reset: 'reset GPUs',
  reboot: 'reboot nodes',
  replace: 'replace nodes',
  approve: 'approve remediations',
  cancel: 'cancel remediations',
  dismiss: 'dismiss incidents',
  exclude: 'exclude nodes',
  unexclude: 'unexclude nodes',
  pause: 'pause gpu-medic',
  resume: 'resume gpu-medic',
  diagnose: 'run DCGM diagnostics',
};

/** The one sentence (or two) a person reads for a service answer. */
export function serviceText(result: ServiceResult): string {
  return result.ok ? outcomeText(result.outcome) : refusalText(result.refusal);
}

/** A service answer as the chat port hands it to the Slack listeners. */
export function toChatResult(result: ServiceResult): ChatResult {
  return result.ok
    ? {
        ok: true,
        ...(result.incidentId !== undefined ? { incidentId: result.incidentId } : {}),
        message: serviceText(result),
        ...(result.dryRun ? { dryRun: true } : {}),
      }
    : { ok: false, code: result.code, message: serviceText(result) };
}

export function outcomeText(o: ServiceOutcome): string {
  switch (o.kind) {
    case 'started': {
      const what = o.dryRun ? `DRY RUN — would ${verbs[o.action]}` : doing[o.action];
      return `${what} ${o.node} (incident ${o.incidentId}), requested by ${o.actor}: ${o.reason}`;
    }
    case 'awaiting_approval':
      return `Waiting for approval to ${verbs[o.action]} ${o.node}: ${o.reason}`;
    case 'alert_only':
      return `Alert only: ${o.reason}`;
    case 'deferred': {
      const why = `${o.condition}=${o.status}${o.conditionReason ? ` (${o.conditionReason})` : ''}`;
      return `EKS node auto repair will act on ${o.node} (${why}); gpu-medic watches and reports the outcome.`;
    }
    case 'followed_up':
      return `Already followed up by ${o.incidentId}.`;
    case 'cancelled': {
      const note = o.wasWorking
        ? ` ${o.node} is left as it is (it may still be cordoned: \`/gpu uncordon ${o.node}\`).`
        : '';
      return `Cancelled incident ${o.incidentId} on ${o.node}.${note}`;
    }
    case 'dismissed':
      return `Dismissed incident ${o.incidentId} on ${o.node}.`;
    case 'excluded': {
      const until = o.until !== undefined ? ` until ${new Date(o.until).toISOString()}` : '';
      const note = o.runningIncidentId
        ? ` The running remediation (incident ${o.runningIncidentId}) stops before its next step.`
        : '';
      return `${o.node} is excluded${until}: gpu-medic will not touch it.${note}`;
    }
    case 'unexcluded':
      return `${o.node} is no longer excluded.`;
    case 'paused':
      return `Automatic remediation paused by ${o.by}. \`/gpu resume\` re-enables it.`;
    case 'resumed':
      return o.wasPaused
        ? `Automatic remediation resumed by ${o.by}.`
        : 'Automatic remediation was not paused.';
  }
}

export function refusalText(r: ServiceRefusal): string {
  switch (r.reason) {
    case 'unknown_action':
      return `"${r.action}" is not an action gpu-medic can take.`;
    case 'denied':
      return `You are not allowed to ${deniedWhat[r.action]}.`;
    case 'no_node':
      return `Node ${r.node} does not exist.`;
    case 'not_gpu':
      return r.action === 'exclude'
        ? `${r.node} has no GPUs: nothing to exclude.`
        : `${r.node} has no GPUs: gpu-medic only manages GPU nodes.`;
    case 'cannot_reboot':
    case 'safety':
      return r.says;
    case 'no_incident':
      return `Incident ${r.incidentId} does not exist.`;
    case 'other_node':
      return `Incident ${r.incidentId} is about ${r.incidentNode}, not ${r.node}.`;
    case 'taken': {
      const already = r.incident ? alreadyText(r.incident) : 'Already taken.';
      return r.cancelInstead ? `${already} Cancel it instead.` : already;
    }
    case 'auto_repair': {
      const d = r.deferral;
      return `EKS node auto repair is handling ${d.node} (${d.condition}${d.reason ? ` ${d.reason}` : ''}): gpu-medic does not act on it meanwhile and reports the outcome in the thread of incident ${d.incidentId}.`;
    }
    case 'no_plan':
      return `Nothing to do for ${r.action}.`;
    case 'closed':
      return `Incident ${r.incidentId} is already ${r.state}.`;
    case 'not_escalated':
      return `Incident ${r.incidentId} is ${r.state}, not escalated.`;
    case 'past_end':
      return 'The exclusion must end in the future.';
    case 'too_long':
      return `An exclusion lasts at most ${Math.round(r.maxMs / 86_400_000)}d.`;
    case 'not_excluded':
      return `${r.node} is not excluded.`;
  }
}

/** Who already holds the incident, or the state it ended in. */
function alreadyText(incident: IncidentBrief): string {
  if (isWorking(incident.state)) {
    return `${incident.node} is already being remediated (incident ${incident.id}: ${incident.plannedAction}, ${incident.state}).`;
  }
  if (!isOpen(incident.state))
    return `Incident ${incident.id} is already ${incident.state}${incident.stateReason ? ` (${incident.stateReason})` : ''}.`;
  return `Incident ${incident.id} is ${incident.state}.`;
}

/** The fleet's remediation state in a few lines. */
export function statusText(s: StatusReport): string {
  return [
    s.dryRun ? 'DRY RUN: nothing is changed.' : undefined,
    s.breaker.open ? `Circuit breaker OPEN: ${s.breaker.reason ?? ''}` : undefined,
    s.paused.open ? `Paused by ${s.paused.by ?? 'someone'}.` : undefined,
    `${s.inFlight.length} remediation(s) in flight (limit ${s.limits.maxConcurrent}), ${s.awaitingApproval.length} awaiting approval, ${s.remediationsLastHour} in the last hour (limit ${s.limits.perHour}).`,
  ]
    .filter((l): l is string => l !== undefined)
    .join('\n');
}

/** `7/8 GPUs allocatable`, or `8 GPUs expected (mig-mixed)` where MIG devices are not whole GPUs. */
export function gpuCountText(gpus: NonNullable<NodeStatus['gpus']>): string {
  const expected = gpus.expected ?? '?';
  const sharing = gpus.sharing && gpus.sharing !== 'none' ? ` (${gpus.sharing})` : '';
  return gpus.allocatable !== undefined
    ? `${gpus.allocatable}/${expected} GPUs allocatable${sharing}`
    : `${expected} GPUs expected${sharing}`;
}

/** One node's state, exclusion, opt-out and open incidents, line by line. */
export function nodeStatusText(s: NodeStatus): string {
  if (!s.exists) return `Node ${s.node} does not exist.`;
  return [
    `${s.node}: ${s.ready ? 'Ready' : 'NotReady'}${s.unschedulable ? ', cordoned' : ''}, ${gpuCountText(s.gpus ?? {})}.`,
    s.excluded ? `Excluded by ${s.excluded.createdBy}: ${s.excluded.reason}.` : undefined,
    s.optOut ? 'Opted out by label.' : undefined,
    ...s.openIncidents.map(
      (i) => `Incident ${i.id}: ${i.category}, ${i.state} (${i.plannedAction}/${i.mode}).`,
    ),
  ]
    .filter((p): p is string => p !== undefined)
    .join('\n');
}
