/** Answers to `/gpu status`, `/gpu status <node>`, `/gpu exclusions`, `/gpu history <node>` and `/gpu help`. */
import { ExpectedSignalFamilies, type SignalCoverage, signalFamilyLabel } from '../../domain/coverage.js';
import { isNodeProblem, severityRank } from '../../domain/finding.js';
import type { SignalFamily } from '../../domain/gpu.js';
import type { AuditEntry, Exclusion } from '../../domain/ports.js';
import {
  type CommandError,
  fullUsage,
  type GpuCommand,
  GpuSubcommands,
  type NodeActionKind,
  subcommandHelp,
  usage,
} from '../commands/parse.js';
import {
  actorLabel,
  capitalize,
  escapeMrkdwn,
  type FleetSummary,
  faultLabel,
  formatDuration,
  type GpuRow,
  type IncidentSummary,
  inlineCode,
  type NodeDetail,
  policyLine,
  severityEmoji,
  slackDate,
  sourceLabel,
  stateLabel,
} from '../format.js';
import type { SlackMessage } from './alert.js';
import {
  codeSection,
  context,
  fieldsSection,
  header,
  type KnownBlock,
  lineSections,
  plain,
  section,
} from './kit.js';
import { SlackLimits, truncate } from './limits.js';

/** Most severe first, then oldest first: what needs eyes soonest. */
export function sortIncidents(incidents: readonly IncidentSummary[]): IncidentSummary[] {
  return [...incidents].sort(
    (a, b) =>
      severityRank[b.severity] - severityRank[a.severity] ||
      a.firstSeen - b.firstSeen ||
      a.id.localeCompare(b.id),
  );
}

/** One line per incident: `🔴 ip-… · XID 79 · XID_CRITICAL_79 · GPU 3 — replacing · since <date>`. */
export function incidentLine(incident: IncidentSummary): string {
  const gpu = incident.gpu !== undefined ? ` · GPU ${incident.gpu}` : '';
  return (
    `${severityEmoji[incident.severity]} ${inlineCode(incident.node)} · ${escapeMrkdwn(faultLabel(incident))}${gpu}` +
    ` — ${stateLabel[incident.state]} · ${policyLine(incident.plannedAction, incident.mode, incident.state)}` +
    ` · since ${slackDate(incident.firstSeen)}`
  );
}

/** A node problem (NODE_CONDITION): `🟠 ip-… · KernelReady is False (KernelBug) — alert only · since <date>`. */
export function nodeProblemLine(incident: IncidentSummary): string {
  const condition = incident.faultKey?.replace(/^condition:/, '') ?? 'node condition';
  const what = incident.explanation
    ? incident.explanation
        .replace(/^Node condition /, '')
        .replace(/:? ?a node problem, not a GPU fault\.?$/, '')
    : condition;
  return (
    `${severityEmoji[incident.severity]} ${inlineCode(incident.node)} · ${escapeMrkdwn(what)}` +
    ` — ${policyLine(incident.plannedAction, incident.mode, incident.state)} · since ${slackDate(incident.firstSeen)}`
  );
}

export function breakerLine(summary: Pick<FleetSummary, 'breaker' | 'dryRun'>): string {
  const { breaker } = summary;
  const reason = breaker.reason ? `: ${escapeMrkdwn(breaker.reason)}` : '';
  const since = breaker.since !== undefined ? ` since ${slackDate(breaker.since)}` : '';
  const dry = summary.dryRun ? ' · 🧪 dry run (nothing is changed)' : '';
  switch (breaker.state) {
    case 'open':
      return `🛑 Circuit breaker open${reason}${since} — automatic actions paused; \`/gpu resume\` to resume${dry}`;
    case 'paused':
      return `⏸️ Automatic actions paused${reason}${since}; \`/gpu resume\` to resume${dry}`;
    default:
      return `✅ Automatic actions on (circuit breaker closed)${dry}`;
  }
}

/**
 * Detection coverage in one line: which signal families some nodes did not carry, grouped by count —
 * `⚠️ ECC counters, retired pages: 0 of 40 nodes — see README (Detection coverage)`. Undefined before any
 * node was read (nothing to say yet).
 */
export function coverageLine(coverage: SignalCoverage | undefined): string | undefined {
  if (!coverage || coverage.read === 0) return undefined;
  const { read } = coverage;
  if (coverage.missing.length === 0)
    return `📡 Detection coverage: every signal family on all ${plural(read, 'node')} read`;
  const byCount = new Map<number, string[]>();
  for (const f of coverage.missing) {
    const n = coverage.byFamily[f];
    byCount.set(n, [...(byCount.get(n) ?? []), signalFamilyLabel[f]]);
  }
  const parts = [...byCount.entries()]
    .sort(([a], [b]) => a - b)
    .map(([n, labels]) => `${capitalize(labels.join(', '))}: ${n} of ${plural(read, 'node')}`);
  return `⚠️ ${parts.join(' · ')} — see README (Detection coverage)`;
}

/** `⚠️ Not read on this node: ECC counters, …` for `/gpu status <node>`; undefined when nothing is missing. */
export function nodeCoverageLine(signals: readonly SignalFamily[] | undefined): string | undefined {
  if (signals === undefined) return undefined;
  const missing = ExpectedSignalFamilies.filter((f) => !signals.includes(f));
  if (missing.length === 0) return undefined;
  return `⚠️ Not read on this node: ${missing.map((f) => signalFamilyLabel[f]).join(', ')} — see README (Detection coverage)`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function fleetFields(summary: FleetSummary): (readonly [string, string])[] {
  const fields: (readonly [string, string])[] = [
    ['GPU nodes', String(summary.gpuNodes)],
    ['Healthy', `🟢 ${summary.healthy}`],
    ['Warning', `🟠 ${summary.warning}`],
    ['Critical', `🔴 ${summary.critical}`],
    ['Unknown', `⚪ ${summary.unknown}`],
    ['In remediation', String(summary.inRemediation)],
    ['Excluded', String(summary.excluded)],
    ['Open incidents', String(summary.openIncidents.filter((i) => !isNodeProblem(i)).length)],
  ];
  const nodeProblems = summary.openIncidents.filter(isNodeProblem).length;
  if (nodeProblems > 0) fields.push(['Node problems', `⚠️ ${nodeProblems} (not GPU faults)`]);
  if (summary.llm) {
    const { calls, cacheHits, fallbacks, modelUnavailable: off } = summary.llm;
    // In the LLM field itself (Slack allows 10 fields per section): a refused model is the LLM's state.
    const refused = off
      ? `\n⚠️ model \`${off.modelId}\` refused by Bedrock (${off.reason}): rules only until BEDROCK_MODEL_ID names an active model`
      : '';
    fields.push([
      'LLM',
      `${plural(calls, 'call')} · ${plural(cacheHits, 'cache hit')} · ${plural(fallbacks, 'fallback')}${refused}`,
    ]);
  }
  return fields;
}

function fleetText(summary: FleetSummary): string {
  return truncate(
    `GPU fleet ${summary.cluster}: ${plural(summary.gpuNodes, 'GPU node')} — ${summary.healthy} healthy, ` +
      `${summary.warning} warning, ${summary.critical} critical, ${summary.unknown} unknown; ` +
      `${summary.inRemediation} in remediation, ${summary.excluded} excluded; circuit breaker ${summary.breaker.state}` +
      (summary.dryRun ? '; dry run' : ''),
    SlackLimits.messageText,
  );
}

const topIncidents = 10;

export function fleetStatusMessage(summary: FleetSummary): SlackMessage {
  const incidents = sortIncidents(summary.openIncidents.filter((i) => !isNodeProblem(i)));
  const nodeProblems = sortIncidents(summary.openIncidents.filter(isNodeProblem));
  const blocks: KnownBlock[] = [
    header(`GPU fleet · ${summary.cluster}`),
    fieldsSection(fleetFields(summary)),
    context(breakerLine(summary)),
  ];
  const coverage = coverageLine(summary.coverage);
  if (coverage) blocks.push(context(coverage));
  if (incidents.length === 0) {
    blocks.push(section('No open incidents. 🎉'));
  } else {
    const lines = incidents.slice(0, topIncidents).map(incidentLine);
    if (incidents.length > topIncidents)
      lines.push(`… and ${incidents.length - topIncidents} more open incidents`);
    blocks.push(section(`*Open incidents*`), ...lineSections(lines, 10));
  }
  if (nodeProblems.length > 0) {
    // Kernel, network, storage, runtime: shown, alerted once, but no GPU fault and no GPU remediation by default.
    const lines = nodeProblems.slice(0, topIncidents).map(nodeProblemLine);
    if (nodeProblems.length > topIncidents)
      lines.push(`… and ${nodeProblems.length - topIncidents} more node problems`);
    blocks.push(section('*Node problems* (not GPU faults)'), ...lineSections(lines, 5));
  }
  blocks.push(context(`As of ${slackDate(summary.at)}`));
  return { text: fleetText(summary), blocks };
}

function cell(value: number | string | undefined, width: number): string {
  const text = value === undefined ? '-' : String(value);
  return text.length >= width ? text.slice(0, width - 1) + ' ' : text.padEnd(width);
}

/** A fixed-width table in a code block: Slack has no table block in messages that every client renders. */
export function gpuTableLines(gpus: readonly GpuRow[]): string[] {
  const head =
    cell('GPU', 5) +
    cell('HEALTH', 8) +
    cell('XID', 6) +
    cell('TEMP', 7) +
    cell('DBE', 6) +
    cell('UTIL', 6) +
    'MODEL';
  const rows = [...gpus]
    .sort((a, b) => a.index - b.index)
    .map(
      (g) =>
        cell(g.index, 5) +
        cell(g.health ?? '-', 8) +
        cell(g.xidLast ? g.xidLast : '-', 6) +
        cell(g.temperatureC !== undefined ? `${Math.round(g.temperatureC)}°C` : undefined, 7) +
        cell(g.eccDbeVolatile, 6) +
        cell(g.utilizationPct !== undefined ? `${Math.round(g.utilizationPct)}%` : undefined, 6) +
        (g.model ?? '-'),
    );
  return [head, ...rows];
}

export function auditLine(entry: AuditEntry): string {
  const reason = entry.reason ? ` (${escapeMrkdwn(entry.reason)})` : '';
  return `${slackDate(entry.at)} · ${actorLabel(entry.actor)} · *${escapeMrkdwn(entry.action)}* → ${escapeMrkdwn(entry.result)}${reason}`;
}

export function exclusionLine(exclusion: Exclusion): string {
  const until =
    exclusion.expiresAt !== undefined ? `until ${slackDate(exclusion.expiresAt)}` : 'until removed';
  const reason = exclusion.reason ? ` — ${escapeMrkdwn(exclusion.reason)}` : '';
  return `🙈 ${inlineCode(exclusion.node)} ${until}${reason} · by ${actorLabel(exclusion.createdBy)}`;
}

export function nodeStatusMessage(detail: NodeDetail): SlackMessage {
  const { verdict } = detail;
  const fault = verdict.xid !== undefined ? `XID ${verdict.xid} · ${verdict.category}` : verdict.category;
  const nodeState = [
    detail.ready === undefined ? undefined : detail.ready ? 'Ready' : 'NotReady',
    detail.unschedulable ? 'cordoned' : detail.unschedulable === false ? 'schedulable' : undefined,
  ]
    .filter(Boolean)
    .join(' · ');
  // Under MIG the device plugin offers slices, not GPUs: no allocatable GPU count to show.
  const gpuCount =
    detail.expectedGpus === undefined
      ? `${detail.gpus.length} seen by DCGM`
      : detail.allocatableGpus === undefined
        ? `${detail.gpus.length} of ${detail.expectedGpus} seen by DCGM`
        : `${detail.gpus.length} seen by DCGM · ${detail.allocatableGpus} of ${detail.expectedGpus} allocatable`;
  // A `-` in the GPU table is "not read" when the family is missing, not "no errors": say which.
  const nodeCoverage = nodeCoverageLine(detail.signals);

  const blocks: KnownBlock[] = [
    header(
      `${severityEmoji[verdict.severity]} ${verdict.severity} · ${detail.node}${detail.instanceType ? ` · ${detail.instanceType}` : ''}`,
    ),
    fieldsSection([
      ['Verdict', escapeMrkdwn(fault)],
      ['Source', sourceLabel[verdict.source]],
      ['Instance', detail.instanceId ? inlineCode(detail.instanceId) : '—'],
      ['Node group', detail.nodeGroup ? escapeMrkdwn(detail.nodeGroup) : '—'],
      ['Node', nodeState || '—'],
      ['GPUs', gpuCount],
      ['Checked', detail.checkedAt !== undefined ? slackDate(detail.checkedAt) : 'not scanned yet'],
      ['Cluster', detail.cluster ? escapeMrkdwn(detail.cluster) : '—'],
    ]),
    section(`*Why:* ${escapeMrkdwn(verdict.explanation || 'No explanation given.')}`),
    codeSection(gpuTableLines(detail.gpus), '*GPUs*', 120),
    ...(nodeCoverage ? [context(nodeCoverage)] : []),
    section(
      detail.openIncident
        ? `*Open incident*\n${incidentLine(detail.openIncident)}`
        : '*Open incident*\nNone.',
    ),
  ];
  if (detail.nodeProblems && detail.nodeProblems.length > 0) {
    blocks.push(
      section(
        `*Node problems* (not GPU faults)\n${detail.nodeProblems
          .slice(0, 10)
          .map((p) => `⚠️ ${escapeMrkdwn(p)}`)
          .join('\n')}`,
      ),
    );
  }
  if (detail.exclusion) blocks.push(context(exclusionLine(detail.exclusion)));
  for (const note of detail.repairNotes ?? []) blocks.push(context(`ℹ️ ${escapeMrkdwn(note)}`));
  const actions = detail.lastActions.slice(0, 10).map(auditLine);
  blocks.push(section('*Last actions*'));
  blocks.push(...(actions.length > 0 ? lineSections(actions, 5) : [section('None recorded.')]));

  const text = truncate(
    `${severityEmoji[verdict.severity]} ${detail.node}: ${verdict.severity} (${escapeMrkdwn(fault)}) — ${escapeMrkdwn(verdict.explanation)}` +
      (detail.openIncident ? ` Open incident: ${stateLabel[detail.openIncident.state]}.` : ''),
    SlackLimits.messageText,
  );
  return { text, blocks };
}

/** `now` lets the list say how long each exclusion has left without reading the clock. */
export function exclusionsMessage(list: readonly Exclusion[], now?: number): SlackMessage {
  if (list.length === 0) {
    return {
      text: 'No nodes are excluded.',
      blocks: [section('No nodes are excluded. gpu-medic watches every GPU node.')],
    };
  }
  const sorted = [...list].sort(
    (a, b) => (a.expiresAt ?? Infinity) - (b.expiresAt ?? Infinity) || a.node.localeCompare(b.node),
  );
  const lines = sorted.map((x) => {
    const left =
      now !== undefined && x.expiresAt !== undefined
        ? ` (${formatDuration(Math.max(0, x.expiresAt - now))} left)`
        : '';
    return exclusionLine(x) + left;
  });
  return {
    text: truncate(
      `${plural(list.length, 'excluded node')}: ${sorted.map((x) => x.node).join(', ')}`,
      SlackLimits.messageText,
    ),
    blocks: [
      header(`Excluded nodes (${list.length})`),
      ...lineSections(lines, SlackLimits.messageBlocks - 1),
    ],
  };
}

/** Entries most recent first, as AuditLog.list returns them; the newest 40 are shown. */
export function historyMessage(node: string, entries: readonly AuditEntry[]): SlackMessage {
  if (entries.length === 0) {
    return { text: `No history for ${node}.`, blocks: [section(`No history for ${inlineCode(node)}.`)] };
  }
  const shown = entries.slice(0, 40).map(auditLine);
  if (entries.length > 40) shown.push(`… and ${entries.length - 40} older entries`);
  return {
    text: truncate(
      `History of ${node}: ${entries.length} ${entries.length === 1 ? 'entry' : 'entries'}`,
      SlackLimits.messageText,
    ),
    blocks: [header(`History · ${node}`), ...lineSections(shown, SlackLimits.messageBlocks - 1)],
  };
}

export function helpMessage(): SlackMessage {
  const lines = GpuSubcommands.map((s) => `${inlineCode(usage[s])}\n      ${subcommandHelp[s]}`);
  return {
    text: `gpu-medic commands:\n${escapeMrkdwn(fullUsage)}`,
    blocks: [
      header('gpu-medic · /gpu commands'),
      ...lineSections(lines, 5),
      context(
        'Cordon, uncordon, reboot, replace, exclude, unexclude, pause and resume need an authorized user.',
      ),
    ],
  };
}

/** The ephemeral answer to a `/gpu` line that did not parse: the problem, then the usage. */
export function commandErrorMessage(error: CommandError): SlackMessage {
  const text = `⚠️ ${escapeMrkdwn(error.error)}\nUsage: ${inlineCode(error.usage.split('\n')[0] ?? '')}`;
  const blocks: KnownBlock[] = [section(`⚠️ ${escapeMrkdwn(error.error)}`)];
  blocks.push(
    error.usage.includes('\n')
      ? codeSection(error.usage.split('\n'), '*Usage*')
      : context(`Usage: ${inlineCode(error.usage)}`),
  );
  return { text: truncate(text, SlackLimits.messageText), blocks };
}

export const commandConfirmActionIds = { confirm: 'gpu_cmd_confirm', cancel: 'gpu_cmd_cancel' } as const;

/**
 * The confirmation button value: `{"k":"reboot","n":node,"r":reason?,"c":cluster?}`; read back with
 * parseCommandButtonValue.
 */
export function encodeCommandValue(cmd: Extract<GpuCommand, { kind: NodeActionKind }>): string {
  return JSON.stringify({
    k: cmd.kind,
    n: cmd.node,
    ...(cmd.cluster !== undefined ? { c: cmd.cluster } : {}),
    ...(cmd.reason ? { r: cmd.reason } : {}),
    ...(cmd.gpu !== undefined ? { g: cmd.gpu } : {}),
  });
}

const commandConsequence: Record<NodeActionKind, string> = {
  cordon: 'New pods will not be scheduled on it; running pods stay.',
  uncordon: 'Pods can be scheduled on it again, and gpu-medic stops any remediation in progress on it.',
  reset:
    'It is cordoned and drained (running pods are evicted), then the GPU is reset with nvidia-smi (all GPUs on NVSwitch types); no reboot.',
  reboot: 'It is cordoned and drained (running pods are evicted), then its instance is rebooted.',
  replace:
    'It is cordoned and drained (running pods are evicted), then its instance is terminated and replaced.',
};

/** The confirmation step of `/gpu cordon|uncordon|reboot|replace <node>` (ephemeral, with Confirm / Cancel). */
export function confirmCommandMessage(cmd: Extract<GpuCommand, { kind: NodeActionKind }>): SlackMessage {
  const what =
    cmd.kind === 'reset'
      ? `Reset ${cmd.gpu !== undefined ? `GPU ${cmd.gpu} of` : 'the GPUs of'}`
      : capitalize(cmd.kind);
  // The cluster is named: a bare node name goes to the cluster that has it, and names repeat across clusters.
  const where = cmd.cluster ? ` in ${inlineCode(cmd.cluster)}` : '';
  const question = `${what} ${inlineCode(cmd.node)}${where}?`;
  const reason = cmd.reason ? `\nReason: ${escapeMrkdwn(cmd.reason)}` : '';
  const value = encodeCommandValue(cmd);
  const destructive = cmd.kind === 'reset' || cmd.kind === 'reboot' || cmd.kind === 'replace';
  return {
    text: truncate(
      `${what} ${cmd.node}${cmd.cluster ? ` in ${cmd.cluster}` : ''}? ${commandConsequence[cmd.kind]}`,
      SlackLimits.messageText,
    ),
    blocks: [
      section(`*${question}* ${commandConsequence[cmd.kind]}${reason}`),
      {
        type: 'actions',
        elements: [
          {
            type: 'button',
            action_id: commandConfirmActionIds.confirm,
            text: plain(capitalize(cmd.kind), SlackLimits.buttonText),
            style: destructive ? 'danger' : 'primary',
            value,
          },
          {
            type: 'button',
            action_id: commandConfirmActionIds.cancel,
            text: plain('Cancel', SlackLimits.buttonText),
            value,
          },
        ],
      },
    ],
  };
}
