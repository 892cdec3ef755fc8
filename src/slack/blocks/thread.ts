/**
 * One thread reply per progress event: a single line a tired SRE reads top to bottom as the story of
 * the repair, with timings. Plain mrkdwn text (no blocks): it renders the same in Slack, in
 * notifications and on the demo console.
 */
import { type KubeflowJobRef, type ProgressDetails, type ProgressEvent, readEvent } from '../chat-events.js';
import { actorLabel, escapeMrkdwn, formatDuration, slackDate } from '../format.js';
import { diagTable } from './diag-table.js';
import { SlackLimits, truncate } from './limits.js';

export interface ThreadReply {
  text: string;
}

const e = escapeMrkdwn;

function took(event: ProgressEvent): string {
  return event.elapsedMs !== undefined ? ` (${formatDuration(event.elapsedMs)})` : '';
}

function after(event: ProgressEvent): string {
  return event.elapsedMs !== undefined ? ` after ${formatDuration(event.elapsedMs)}` : '';
}

/** Boot IDs and instance ids are long; the first characters identify them in a thread. */
function short(id: string, keep = 8): string {
  return id.length > keep + 1 ? `${id.slice(0, keep)}…` : id;
}

function job(j: Partial<KubeflowJobRef>): string {
  const name = j.namespace && j.name ? `${j.namespace}/${j.name}` : (j.name ?? 'a training job');
  return e(`${j.kind ?? 'Job'} ${name}`);
}

function progressOf(evicted: number | undefined, total: number | undefined, verb = 'evicted'): string {
  if (evicted === undefined) return '';
  return total !== undefined ? ` (${evicted} of ${total} ${verb})` : ` (${evicted} ${verb})`;
}

/** What a dry run says instead of the action line; undefined = prefix the normal line. */
function dryRunLine(event: ProgressEvent): string | undefined {
  const { step, details: d } = event;
  const node = e(event.node);
  switch (step) {
    case 'cordoned':
      return `would cordon ${node}`;
    case 'drain_started': {
      const pods = d.pods;
      return `would drain ${node}${pods !== undefined ? ` (${pods} pods to evict)` : ''}`;
    }
    case 'pod_evicted':
      return `would evict ${e(d.pod ?? 'a pod')}`;
    case 'gpu_reset':
      return `would reset ${d.wholeNode === true ? 'all GPUs' : `GPU ${d.gpus?.join(', ') ?? '?'}`} on ${node}`;
    case 'reboot_issued':
      return `would reboot ${e(d.instanceId ?? node)}`;
    case 'replace_issued':
      return `would replace ${e(d.instanceId ?? node)}`;
    case 'uncordoned':
      return `would uncordon ${node}`;
    default:
      return undefined;
  }
}

function safetyLine(nodeName: string, d: ProgressDetails['safety_limit']): string {
  const node = e(nodeName);
  const held = d.action;
  const what = held ? `${e(held)} of ${node}` : `action on ${node}`;
  switch (d.limit) {
    case 'circuit_breaker': {
      const unhealthy = d.unhealthy;
      const total = d.total;
      const pct = d.thresholdPct;
      const count =
        unhealthy !== undefined && total !== undefined
          ? `: ${unhealthy} of ${total} GPU nodes unhealthy`
          : '';
      const maxNodes = d.maxNodes;
      const limits = [
        ...(pct !== undefined ? [`${pct} %`] : []),
        ...(maxNodes !== undefined ? [`${maxNodes} nodes`] : []),
      ];
      const limit = limits.length > 0 ? ` (limit ${limits.join(' or ')})` : '';
      return `🛑 Circuit breaker open${count}${limit} — ${what} needs a human; \`/gpu resume\` to resume automatic actions`;
    }
    case 'rate_limit': {
      const count = d.count;
      const max = d.perHour;
      const window = d.windowMinutes ?? 60;
      const n =
        count !== undefined
          ? `${count} remediations in the last ${formatDuration(window * 60_000)}`
          : 'too many remediations';
      return `🛑 Rate limit: ${n}${max !== undefined ? ` (limit ${max})` : ''} — ${what} deferred`;
    }
    case 'max_concurrent': {
      const running = d.inFlight;
      const max = d.maxConcurrent;
      const n = running ?? max;
      return `🛑 ${n !== undefined ? `${n} remediation${n === 1 ? '' : 's'}` : 'Too many remediations'} already running${max !== undefined ? ` (limit ${max})` : ''} — ${what} must wait`;
    }
    case 'opt_out':
      return `🛑 ${node} carries the opt-out label${d.label ? ` \`${e(d.label ?? '')}\`` : ''} — alert only, no action`;
    case 'paused':
      return `⏸️ Automatic actions are paused — ${what} waits; \`/gpu resume\` to resume`;
    default:
      return `🛑 Safety limit reached — ${what} held back`;
  }
}

function stepLine(event: ProgressEvent): string {
  const { step, details: d } = event;
  const node = e(event.node);
  const by = actorLabel(event.actor);
  switch (step) {
    case 'detected': {
      const xid = d.xid;
      const gpu = d.gpu;
      const category = d.category;
      const what = xid !== undefined ? `XID ${xid}` : e(category ?? 'a GPU fault');
      const cat = xid !== undefined && category ? ` (${e(category)})` : '';
      return `🚨 Detected ${what}${gpu !== undefined ? ` on GPU ${gpu}` : ''} of ${node}${cat}`;
    }
    case 'policy': {
      // Without an action the policy chose nothing: alert only. An action without a mode is not "off".
      const action = d.action ?? 'none';
      const mode = d.mode ?? (action === 'none' ? 'off' : 'auto');
      const rule = d.rule;
      const decision = action === 'none' || mode === 'off' ? 'alert only' : `${e(action)} · ${e(mode)}`;
      return `📋 Policy: ${decision}${rule ? ` (rule: ${e(rule)})` : ''}`;
    }
    case 'approval_needed': {
      const action = d.action ?? 'remediation';
      return `✋ Waiting for approval to ${e(action)} ${node} — an admin can press the button above`;
    }
    case 'approved':
      return `👍 ${e(d.action ?? 'Remediation')} approved by ${by}`;
    case 'cordoned':
      return d.alreadyCordoned === true
        ? `✅ ${node} was already cordoned (not by gpu-medic: it stays cordoned afterwards)`
        : `✅ Cordoned ${node}${took(event)}`;
    case 'drain_started': {
      const pods = d.pods;
      const skipped = d.skipped;
      const count = pods !== undefined ? `: ${pods} pod${pods === 1 ? '' : 's'} to evict` : '';
      return `🚿 Draining ${node}${count}${skipped ? ` (${skipped} DaemonSet/mirror pods left in place)` : ''}`;
    }
    case 'pod_evicted':
      return `↪️ Evicted ${e(d.pod ?? 'a pod')}${progressOf(d.evicted, d.total)}`;
    case 'pdb_wait': {
      const pdb = d.pdb;
      const pod = d.pod;
      const retry = d.retryInMs;
      const budget = pdb ? `PodDisruptionBudget ${e(pdb)}` : 'a PodDisruptionBudget';
      return `⏳ Eviction refused: waiting on ${budget}${pod ? ` for ${e(pod)}` : ''}${progressOf(d.evicted, d.total)}${retry !== undefined ? `, retry in ${formatDuration(retry)}` : ''}`;
    }
    case 'drained': {
      const evicted = d.evicted;
      const forced = d.forced;
      return `✅ Drained ${node}${evicted !== undefined ? `: ${evicted} pod${evicted === 1 ? '' : 's'} evicted` : ''}${forced ? `, ${forced} deleted around a PodDisruptionBudget` : ''}${took(event)}`;
    }
    case 'gpu_reset': {
      const count = d.gpus?.length;
      const which =
        d.wholeNode === true
          ? `all${count !== undefined ? ` ${count}` : ''} GPUs and the NVSwitches together`
          : `GPU ${d.gpus?.join(', ') ?? '?'}`;
      return `🔄 Reset ${which} on ${node} (nvidia-smi --gpu-reset${d.pod ? ` in ${e(d.pod)}` : ''}) — no reboot${took(event)}`;
    }
    case 'reboot_issued': {
      const id = d.instanceId;
      const resumed = d.reissued === false ? ' (it had reached EC2 before a restart of gpu-medic)' : '';
      return `🔁 Reboot issued for ${id ? e(id) : node}${id ? ` (${node})` : ''}${resumed}`;
    }
    case 'node_back': {
      const boot = d.bootId;
      return `🟢 Node back${boot ? `: new boot ID ${e(short(boot))}` : ''}${after(event)}`;
    }
    case 'settle_wait': {
      const on = d.node;
      const missing = d.missing;
      const waited = d.waitedMs;
      const timeout = d.timeoutMs;
      const since = waited !== undefined && waited > 0 ? ` (${formatDuration(waited)} so far` : '';
      const cap =
        timeout !== undefined ? `${since ? ', ' : ' ('}gives up after ${formatDuration(timeout)})` : '';
      const limit = `${since}${cap || (since ? ')' : '')}`;
      const target = on ? e(on) : node;
      switch (d.waitingFor) {
        case 'node_ready':
          return `⏳ Waiting for ${target} to come back Ready with a new boot ID${limit}`;
        case 'replacement':
          return `⏳ Waiting for a replacement node to join${missing ? `: ${e(missing)}` : ''}${limit}`;
        default:
          // A replacement is a new node gpu-medic never cordoned: only "not verified yet".
          return on !== undefined && on !== event.node
            ? `⏳ Replacement ${target} not verified yet: ${missing ? e(missing) : 'waiting for its GPUs'}${limit}`
            : `⏳ Not back yet — ${target} stays cordoned: ${missing ? e(missing) : 'waiting for its GPUs'}${limit}`;
      }
    }
    case 'gpu_scan': {
      const gpus = d.gpus;
      const expected = d.expected;
      const on = d.node;
      const count = gpus !== undefined ? ` (${gpus}/${expected ?? gpus} GPUs)` : '';
      if (d.healthy === true) {
        const read = gpus !== undefined ? `: ${gpus}/${expected ?? gpus} GPUs read, nothing critical` : '';
        return `🧪 GPU scan healthy${on ? ` on ${e(on)}` : ''}${read}`;
      }
      const problem = d.problem;
      return `❌ GPU scan still unhealthy${count}${problem ? `: ${e(problem)}` : ''}`;
    }
    case 'diag_started': {
      const level = d.level !== undefined ? ` level ${d.level}` : '';
      const expected = d.expectedMs !== undefined ? ` (about ${formatDuration(d.expectedMs)})` : '';
      const again = d.resumed ? ' again (the run before was interrupted)' : '';
      return `🩺 Running DCGM diagnostics${level} on ${node}${again}${expected} — it stays cordoned until they pass`;
    }
    case 'diag_progress': {
      const waited = d.waitedMs !== undefined ? ` for ${formatDuration(d.waitedMs)}` : '';
      const of = d.expectedMs !== undefined ? ` of about ${formatDuration(d.expectedMs)}` : '';
      return `⏳ DCGM diagnostics${d.level !== undefined ? ` level ${d.level}` : ''} running${waited}${of}`;
    }
    case 'diag_result': {
      const level = d.level !== undefined ? ` level ${d.level}` : '';
      const table = diagTable(d.results ?? [], d.nodeWide ?? []);
      const body = table ? `\n${table}` : '';
      const why = d.message ? `: ${e(d.message)}` : '';
      switch (d.verdict) {
        case 'pass':
          return `✅ DCGM diagnostics${level} passed${took(event)}${body}`;
        case 'warn':
          return `⚠️ DCGM diagnostics${level} passed with warnings${took(event)}${why}${body}`;
        case 'fail':
          return `❌ DCGM diagnostics${level} failed on ${node}${took(event)}${why}${body}`;
        case 'unavailable':
          return `ℹ️ DCGM diagnostics skipped on ${node}${why}`;
        default:
          return `❌ DCGM diagnostics${level} gave no verdict on ${node}${why}`;
      }
    }
    case 'replace_issued': {
      const id = d.instanceId;
      const target = id ? `${e(id)} (${node})` : node;
      switch (d.method) {
        case 'asg':
          return `♻️ Replacement requested: terminating ${target} in Auto Scaling group ${e(d.asg ?? '?')} (desired capacity kept)`;
        case 'karpenter': {
          const pool = d.nodePool;
          return `♻️ Replacement requested: deleted node ${node}${id ? ` (${e(id)})` : ''}; Karpenter provisions a new one${pool ? ` in NodePool ${e(pool)}` : ''}`;
        }
        case 'auto-mode': {
          const pool = d.nodePool;
          return `♻️ Replacement requested: deleted node ${node} (EKS Auto Mode: its instance is EKS's, not touched through EC2); Auto Mode starts a new one when pods need it${pool ? ` in NodePool ${e(pool)}` : ''}`;
        }
        case 'ec2':
          return `♻️ Replacement requested: terminating ${target} through EC2 (not in a node group or NodePool: no replacement node is expected)`;
        default:
          return `♻️ Replacement requested: terminating ${target}`;
      }
    }
    case 'replacement_ready': {
      const fresh = d.newNode;
      const group = d.group;
      if (!fresh && d.onDemand === true) {
        return `ℹ️ No pod is waiting for a GPU node, so ${group ? `NodePool ${e(group)}` : 'the pool'} starts no successor now: it provisions on demand${after(event)}`;
      }
      return `🟢 Replacement node${fresh ? ` ${e(fresh)}` : ''} Ready${group ? ` in ${e(group)}` : ''}${after(event)}`;
    }
    case 'uncordoned':
      return d.leftCordoned === true
        ? `ℹ️ Left ${node} cordoned: it was cordoned before gpu-medic came`
        : `✅ Uncordoned ${node} — back in service${took(event)}`;
    case 'kubeflow_jobs': {
      const jobs = d.jobs ?? [];
      if (jobs.length === 0) return `🧠 No Kubeflow training jobs on ${node}`;
      const shown = jobs.slice(0, 20).map(job).join(', ');
      const more = jobs.length > 20 ? ` and ${jobs.length - 20} more` : '';
      return `🧠 Kubeflow jobs with pods on ${node}: ${shown}${more}`;
    }
    case 'kubeflow_job_running': {
      const done = d.status === 'succeeded';
      return `🧠 Kubeflow: ${job(d)} ${done ? 'succeeded' : 'running again'}${after(event)}`;
    }
    case 'kubeflow_job_not_running': {
      const reason = d.reason;
      return `⚠️ Kubeflow: ${job(d)} not running again${after(event)}${reason ? ` — ${e(reason)}` : ''}`;
    }
    case 'auto_repair_deferred': {
      const condition = d.condition ?? 'a node condition';
      const status = d.status;
      const reason = d.reason;
      const group = d.nodeGroup;
      const who = d.owner === 'auto-mode' ? ' (EKS Auto Mode)' : group ? ` (node group ${e(group)})` : '';
      const wait = d.waitMs;
      const window = d.windowMs;
      const held = d.action;
      return (
        `🛠️ EKS node auto repair will act${who}: ${e(condition)}${status ? `=${e(status)}` : ''}${reason ? ` (${e(reason)})` : ''}` +
        `${wait !== undefined ? `, repaired after ${formatDuration(wait)}` : ''}` +
        ` — gpu-medic does not touch ${node}${held ? ` (its policy: ${e(held)})` : ''} and reports the outcome` +
        `${window !== undefined ? `; watching for up to ${formatDuration(window)}` : ''}`
      );
    }
    case 'auto_repair_outcome': {
      switch (d.outcome) {
        case 'rebooted':
          return `🛠️ EKS node auto repair rebooted ${node}: back Ready with a new boot ID${after(event)}`;
        case 'replaced':
          return `🛠️ EKS node auto repair replaced ${node}${after(event)}`;
        default: {
          const then = d.policyAction;
          const window = d.windowMs;
          return `⚠️ EKS node auto repair did not act on ${node}${window !== undefined ? ` within ${formatDuration(window)}` : ''} — gpu-medic's policy applies now${then ? ` (${e(then)})` : ''}`;
        }
      }
    }
    case 'resolved': {
      const byEks = d.byAutoRepair;
      if (byEks === 'rebooted' || byEks === 'replaced') {
        return `🎉 Resolved by EKS node auto repair: ${node} was ${byEks}${event.elapsedMs !== undefined ? ` — ${formatDuration(event.elapsedMs)} after gpu-medic deferred to it` : ''}`;
      }
      // A replaced node is gone, not healthy: its successor was announced by `replacement_ready`.
      const outcome =
        d.action !== 'replace'
          ? 'is healthy'
          : d.onDemand === true
            ? 'was replaced — the pool provisions on demand'
            : 'was replaced';
      return `🎉 Resolved: ${node} ${outcome}${event.elapsedMs !== undefined ? ` — ${formatDuration(event.elapsedMs)} in total` : ''}`;
    }
    case 'escalated': {
      const reason = d.reason;
      const to = d.to === 'replace' ? 'to replace' : d.to === 'reboot' ? 'to reboot' : 'to a human';
      return `⬆️ Escalated ${to}${reason ? `: ${e(reason)}` : ''}`;
    }
    case 'failed': {
      const stage = d.stage;
      const reason = d.reason;
      return `❌ Failed${stage ? ` while ${e(stage)}` : ''}${reason ? `: ${e(reason)}` : ''} — ${node} needs a human`;
    }
    case 'cancelled': {
      const reason = d.reason;
      return `🚫 Cancelled${event.actor ? ` by ${by}` : ''}${reason ? `: ${e(reason)}` : ''}`;
    }
    case 'dismissed': {
      const reason = d.reason;
      return `🙈 Dismissed${event.actor ? ` by ${by}` : ''}${reason ? `: ${e(reason)}` : ''}`;
    }
    case 'safety_limit':
      return safetyLine(event.node, d);
    case 'excluded': {
      const until = d.until;
      const reason = d.reason;
      const who = d.by;
      return `🙈 ${node} is excluded${until !== undefined ? ` until ${slackDate(until)}` : ''}${who ? ` by ${actorLabel(who)}` : ''}${reason ? ` (${e(reason)})` : ''} — no action taken`;
    }
    default:
      // Every step has its line: a step added to ProgressSteps without one fails to compile here.
      return `ℹ️ ${e(String(step satisfies never))} on ${node}`;
  }
}

/** The thread reply for one progress event. */
export function threadReply(published: ProgressEvent): ThreadReply {
  const event = readEvent(published);
  let line: string;
  if (event.dryRun) {
    const would = dryRunLine(event);
    line = `🧪 DRY RUN — ${would ?? stepLine(event)}`;
  } else {
    line = stepLine(event);
  }
  return { text: truncate(line, SlackLimits.messageText) };
}
