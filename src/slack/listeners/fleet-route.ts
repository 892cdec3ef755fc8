/**
 * One Slack app serves the fleet, and Slack delivers a click or a command to any process of any cluster.
 * Before executing one, a listener asks here where it belongs: executed here (undefined), or answered at
 * once — queued for a cluster's leader, a choice of clusters, an unknown cluster, or a fleet read model.
 * Without a fleet context (the demo, one process acting alone) every request is executed here.
 */
import type { Logger } from 'pino';
import type { FleetContext } from '../../fleet/ports.js';
import type { LeaderRequest } from '../../fleet/requests.js';
import { type Route, routeRequest } from '../../fleet/route.js';
import { LEADER_SILENT_AFTER_MS } from '../../fleet/summary.js';
import { alertActionFromId, type SlackMessage } from '../blocks/alert.js';
import {
  chooseClusterForMessage,
  chooseClusterMessage,
  clusterStatusMessage,
  fleetClustersMessage,
  queuedMessage,
  silentClusterMessage,
  unknownClusterMessage,
} from '../blocks/fleet.js';
import { commandConfirmActionIds, fleetStatusMessage } from '../blocks/status.js';
import type { ChatPort } from '../chat-port.js';
import {
  ClusterScoped,
  type GpuCommand,
  isCommandError,
  isDestructive,
  parseButtonValue,
  parseCommandButtonValue,
  parseGpuCommand,
} from '../commands/parse.js';
import { genericFailure } from './commands/handle-gpu-command.js';

export interface RouteDeps {
  fleet?: FleetContext;
  logger?: Logger;
  chat: Pick<ChatPort, 'fleetSummary' | 'now'>;
  /** A cluster whose leader has not reported for this long is flagged in fleet answers. */
  staleAfterMs?: number;
}

/**
 * A cluster whose leader has not reported for a day is gone (renamed, retired, a pod once run with the
 * default CLUSTER_NAME): no longer offered as a choice, routed to or counted as "several clusters".
 */
const FORGET_AFTER_MS = 24 * 60 * 60_000;

/** The clusters requests may name: this one, and those heard from within a day. */
function known(fleet: FleetContext, now: number): string[] {
  const names = fleet.directory
    .clusters()
    .filter((c) => c.cluster === fleet.cluster || now - c.heartbeatAt <= FORGET_AFTER_MS)
    .map((c) => c.cluster);
  return names.includes(fleet.cluster) ? names : [...names, fleet.cluster];
}

function answerRoute(
  route: Route,
  deps: RouteDeps & { fleet: FleetContext },
  request: LeaderRequest,
  choice: { text: string; node: string } | undefined,
): SlackMessage | undefined {
  const { fleet } = deps;
  switch (route.to) {
    case 'here':
      return undefined;
    case 'queue': {
      // Another cluster whose leader is silent would never take it: say so now rather than after it expires.
      const target = fleet.directory.cluster(route.cluster);
      const now = deps.chat.now();
      const silentMs = target ? now - target.heartbeatAt : 0;
      if (route.cluster !== fleet.cluster && silentMs > (deps.staleAfterMs ?? LEADER_SILENT_AFTER_MS)) {
        return silentClusterMessage(route.cluster, silentMs);
      }
      fleet.queue.enqueue(route.cluster, request);
      return queuedMessage(
        route.cluster,
        request.kind === 'action' && request.threadTs ? 'thread' : 'channel',
      );
    }
    case 'choose':
      return chooseClusterMessage(choice?.text ?? '', choice?.node ?? '', route.options);
    case 'unknown-cluster':
      return unknownClusterMessage(route.cluster, route.known);
  }
}

/** `/gpu status` and `/gpu status <cluster>`: the fleet's read models, no leader needed. */
async function fleetStatus(
  cmd: GpuCommand,
  deps: RouteDeps,
  fleet: FleetContext,
): Promise<SlackMessage | undefined> {
  if (cmd.kind !== 'status') return undefined;
  const stale = deps.staleAfterMs ?? LEADER_SILENT_AFTER_MS;
  const now = deps.chat.now();
  const names = known(fleet, now);
  const clusters = fleet.directory.clusters().filter((c) => names.includes(c.cluster));
  if (cmd.node === undefined && cmd.cluster === undefined) {
    const others = clusters.some((c) => c.cluster !== fleet.cluster);
    // Alone, and acting: the detailed answer from this process's own scans.
    if (!others && fleet.acting()) return undefined;
    return fleetClustersMessage(clusters, now, stale);
  }
  // `/gpu status <cluster>`: a cluster name alone (a node-like one only if the fleet knows that cluster).
  const name = cmd.node === undefined ? cmd.cluster : cmd.cluster === undefined ? cmd.node : undefined;
  if (name === undefined) return undefined;
  const one = clusters.find((c) => c.cluster === name);
  if (name === fleet.cluster && fleet.acting()) return fleetStatusMessage(await deps.chat.fleetSummary());
  if (one) return clusterStatusMessage(one, now, stale);
  // Its own cluster before its leader first published: the leader answers (routed below).
  if (name === fleet.cluster) return undefined;
  if (cmd.node === undefined) return unknownClusterMessage(name, names);
  return undefined;
}

/** A `/gpu` command: undefined when this process executes it, else the answer to give at once. Never throws. */
export async function routeCommand(
  req: { text: string; userId: string; channel: string },
  deps: RouteDeps,
): Promise<SlackMessage | undefined> {
  try {
    return await commandRoute(req, deps);
  } catch (error) {
    deps.logger?.error({ err: error, userId: req.userId }, 'routing a command failed');
    return genericFailure;
  }
}

async function commandRoute(
  req: { text: string; userId: string; channel: string },
  deps: RouteDeps,
): Promise<SlackMessage | undefined> {
  const { fleet } = deps;
  if (!fleet) return undefined;
  const cmd = parseGpuCommand(req.text);
  if (isCommandError(cmd)) return undefined;
  const read = await fleetStatus(cmd, deps, fleet);
  if (read) return read;
  const cluster = 'cluster' in cmd ? cmd.cluster : undefined;
  const clusters = known(fleet, deps.chat.now()).sort();
  // Slack hands a command to any cluster's process: "whichever got it" is no answer to a per-cluster command.
  if ((ClusterScoped as readonly string[]).includes(cmd.kind) && cluster === undefined) {
    if (clusters.length > 1) return chooseClusterForMessage(req.text, clusters);
  }
  const node = 'node' in cmd ? cmd.node : undefined;
  // Help, and this cluster's exclusion list and repair report, are read from its own store.
  if (node === undefined && cluster === undefined && !isDestructive(cmd)) return undefined;
  const route = routeRequest({
    self: fleet.cluster,
    acting: fleet.acting(),
    ...(cluster !== undefined ? { cluster } : {}),
    ...(node !== undefined && cluster === undefined
      ? { node, nodeClusters: fleet.directory.clustersHavingNode(node).filter((c) => clusters.includes(c)) }
      : {}),
    known: clusters,
    // Node answers and status need the leader's last scan; actions need the leader; lists and reports are
    // in the store.
    needsLeader: node !== undefined || isDestructive(cmd) || cmd.kind === 'status',
  });
  const request: LeaderRequest = { kind: 'command', ...req };
  return answerRoute(
    route,
    { ...deps, fleet },
    request,
    node !== undefined ? { text: req.text, node } : undefined,
  );
}

/** A click on an alert button or a command confirmation: undefined when this process executes it. Never throws. */
export function routeClick(
  req: { actionId: string; value: unknown; userId: string; channel?: string; threadTs?: string },
  deps: RouteDeps,
): SlackMessage | undefined {
  try {
    return clickRoute(req, deps);
  } catch (error) {
    deps.logger?.error({ err: error, userId: req.userId, action: req.actionId }, 'routing a click failed');
    return genericFailure;
  }
}

function clickRoute(
  req: { actionId: string; value: unknown; userId: string; channel?: string; threadTs?: string },
  deps: RouteDeps,
): SlackMessage | undefined {
  const { fleet } = deps;
  if (!fleet || typeof req.value !== 'string') return undefined;
  let cluster: string | undefined;
  if (alertActionFromId(req.actionId)) {
    const v = parseButtonValue(req.value);
    if ('error' in v) return undefined;
    cluster = v.cluster;
  } else if (req.actionId === commandConfirmActionIds.confirm) {
    const v = parseCommandButtonValue(req.value);
    if ('error' in v) return undefined;
    cluster = v.cluster;
  } else {
    // Cancel changes nothing: answered here.
    return undefined;
  }
  const route = routeRequest({
    self: fleet.cluster,
    acting: fleet.acting(),
    ...(cluster !== undefined ? { cluster } : {}),
    known: known(fleet, deps.chat.now()),
    needsLeader: true,
  });
  const request: LeaderRequest = {
    kind: 'action',
    actionId: req.actionId,
    value: req.value,
    userId: req.userId,
    ...(req.channel ? { channel: req.channel } : {}),
    ...(req.threadTs ? { threadTs: req.threadTs } : {}),
  };
  return answerRoute(route, { ...deps, fleet }, request, undefined);
}
