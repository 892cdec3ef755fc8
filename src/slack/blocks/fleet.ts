/**
 * Fleet answers: `/gpu status` over every cluster (from what each cluster's leader published), one
 * cluster's summary, the choice for a node name several clusters have, and the acknowledgement of a
 * request queued for a cluster's leader.
 */
import { REQUEST_TTL_MS } from '../../fleet/requests.js';
import type { FleetCluster } from '../../fleet/summary.js';
import { escapeMrkdwn, inlineCode, slackDate } from '../format.js';
import type { SlackMessage } from './alert.js';
import { context, header, type KnownBlock, section } from './kit.js';
import { SlackLimits, truncate } from './limits.js';

/** Open incidents listed per cluster; the rest are counted. */
const incidentsPerCluster = 5;

function countsLine(c: FleetCluster): string {
  const s = c.summary;
  if (!s) return `*${escapeMrkdwn(c.cluster)}*: summary unreadable (written by another release?)`;
  const breaker = s.breaker === 'closed' ? '' : ` · breaker ${s.breaker}`;
  const dry = s.dryRun ? ' · 🧪 dry run' : '';
  return (
    `*${escapeMrkdwn(c.cluster)}*: ${s.gpuNodes} GPU nodes${s.gpus ? ` (${s.gpus} GPUs)` : ''} · ✅ ${s.healthy} · ⚠️ ${s.warning} · 🔴 ${s.critical}` +
    ` · ❔ ${s.unknown} · 🔧 ${s.inRemediation} in remediation · 🚫 ${s.excluded} excluded${breaker}${dry}`
  );
}

function incidentLines(c: FleetCluster): string[] {
  const open = c.summary?.openIncidents ?? [];
  const lines = open
    .slice(0, incidentsPerCluster)
    .map(
      (i) =>
        `• ${inlineCode(`${c.cluster}/${i.node}`)} ${escapeMrkdwn(i.severity)} ${escapeMrkdwn(i.category ?? '')} — ${escapeMrkdwn(i.state.replace('_', ' '))} (${inlineCode(i.id)})`,
    );
  if (open.length > incidentsPerCluster) lines.push(`… and ${open.length - incidentsPerCluster} more`);
  return lines;
}

function heardLine(c: FleetCluster, now: number, staleAfterMs: number): string {
  const stale = now - c.heartbeatAt > staleAfterMs ? ' ⚠️ no leader has reported since' : '';
  return `As of ${slackDate(c.heartbeatAt)}${c.leader ? ` (leader ${escapeMrkdwn(c.leader)})` : ''}${stale}`;
}

/** `/gpu status` with no argument in a fleet: every cluster's counts and open incidents. */
export function fleetClustersMessage(
  clusters: readonly FleetCluster[],
  now: number,
  staleAfterMs: number,
): SlackMessage {
  if (clusters.length === 0) {
    return {
      text: 'No cluster has reported yet: a cluster appears once its leader has scanned.',
      blocks: [section('No cluster has reported yet: a cluster appears once its leader has scanned.')],
    };
  }
  const blocks: KnownBlock[] = [header(`GPU fleet · ${clusters.length} clusters`)];
  // Slack allows 50 blocks a message: three per cluster.
  for (const c of clusters.slice(0, 15)) {
    const lines = incidentLines(c);
    blocks.push(section(truncate([countsLine(c), ...lines].join('\n'), SlackLimits.sectionText)));
    blocks.push(context(heardLine(c, now, staleAfterMs)));
  }
  if (clusters.length > 15) blocks.push(context(`… and ${clusters.length - 15} more clusters`));
  blocks.push(context('`/gpu status <cluster>` for one cluster, `/gpu status <cluster>/<node>` for a node.'));
  const text = clusters.map(countsLine).join('\n').replace(/\*/g, '');
  return { text: truncate(text, SlackLimits.messageText), blocks };
}

/** `/gpu status <cluster>` answered from the cluster's published summary. */
export function clusterStatusMessage(c: FleetCluster, now: number, staleAfterMs: number): SlackMessage {
  const lines = incidentLines(c);
  const blocks: KnownBlock[] = [
    header(`GPU fleet · ${c.cluster}`),
    section(truncate(countsLine(c), SlackLimits.sectionText)),
    section(lines.length > 0 ? lines.join('\n') : 'No open incidents. 🎉'),
    context(heardLine(c, now, staleAfterMs)),
  ];
  return { text: truncate(countsLine(c).replace(/\*/g, ''), SlackLimits.messageText), blocks };
}

/** A bare node name several clusters have: the person picks; gpu-medic never guesses. */
export function chooseClusterMessage(
  commandText: string,
  node: string,
  options: readonly string[],
): SlackMessage {
  const first = commandText.trim().split(/\s+/)[0] ?? 'status';
  const rest = commandText.trim().split(/\s+/).slice(2).join(' ');
  const tries = options.map((o) => `• ${inlineCode(`/gpu ${first} ${o}${rest ? ` ${rest}` : ''}`)}`);
  const text = `${inlineCode(node)} exists in ${options.length} clusters. Name the one you mean:\n${tries.join('\n')}`;
  return {
    text: truncate(text, SlackLimits.messageText),
    blocks: [section(truncate(text, SlackLimits.sectionText))],
  };
}

/** A per-cluster command (`/gpu pause`, `exclusions` …) without a cluster where several share the Slack app. */
export function chooseClusterForMessage(commandText: string, clusters: readonly string[]): SlackMessage {
  const [sub = 'pause', ...rest] = commandText.trim().split(/\s+/);
  const tail = rest.length > 0 ? ` ${rest.join(' ')}` : '';
  const tries = clusters.map((c) => `• ${inlineCode(`/gpu ${sub} cluster:${c}${tail}`)}`);
  const text = `${inlineCode(`/gpu ${sub.toLowerCase()}`)} is per cluster, and ${clusters.length} clusters share this Slack app. Nothing was done; name the one you mean:\n${tries.join('\n')}`;
  return {
    text: truncate(text, SlackLimits.messageText),
    blocks: [section(truncate(text, SlackLimits.sectionText))],
  };
}

/** A request for a cluster whose leader has not reported lately: not queued (nobody would take it). */
export function silentClusterMessage(cluster: string, silentMs: number): SlackMessage {
  const minutes = Math.max(1, Math.round(silentMs / 60_000));
  const text = `⚠️ No gpu-medic leader of ${inlineCode(cluster)} has reported for ${minutes} min, so nothing was queued for it. Check its deployment (\`kubectl -n gpu-medic get pods\` in that cluster), then try again.`;
  return { text, blocks: [section(text)] };
}

export function unknownClusterMessage(cluster: string, known: readonly string[]): SlackMessage {
  const list = known.length > 0 ? known.map((k) => inlineCode(k)).join(', ') : 'none has reported yet';
  const text = `⚠️ No cluster named ${inlineCode(cluster)} in this fleet. Known clusters: ${list}.`;
  return { text, blocks: [section(text)] };
}

/** The acknowledgement of a request handed to a cluster's leader. */
export function queuedMessage(cluster: string, where: 'thread' | 'channel'): SlackMessage {
  const text =
    `⏳ Queued for ${inlineCode(cluster)}'s leader: it answers ${where === 'thread' ? 'in this thread' : 'here'}. ` +
    `If no leader takes it within ${REQUEST_TTL_MS / 60_000} minutes, it is dropped and nothing is done.`;
  return { text, blocks: [section(text)] };
}
