/**
 * The fleet, as this process takes part in it. Its cluster's leader publishes what every process may read
 * (the cluster's summary every scan period, its node names when they change) and executes the requests
 * other processes queued for it; any process routes what it may not act on to the right leader.
 */
import type { Config } from '../config/config.js';
import type { Clock } from '../domain/clock.js';
import type { FleetContext } from '../fleet/ports.js';
import { type LeaderRequest, parseLeaderRequest, REQUEST_TTL_MS } from '../fleet/requests.js';
import type { ClusterSummary } from '../fleet/summary.js';
import type { Logger } from '../log/logger.js';
import type { FleetSummary } from '../slack/format.js';
import type { FleetRequest, Store } from '../store/index.js';
import { fleetSummaryOf } from './chat.js';
import type { Core } from './core.js';
import type { Acting } from './leadership.js';

/** The published summary: counts and open incidents, no per-node detail. */
export function clusterSummaryOf(s: FleetSummary, gpus?: number): ClusterSummary {
  return {
    gpuNodes: s.gpuNodes,
    ...(gpus !== undefined ? { gpus } : {}),
    healthy: s.healthy,
    warning: s.warning,
    critical: s.critical,
    unknown: s.unknown,
    inRemediation: s.inRemediation,
    excluded: s.excluded,
    breaker: s.breaker.state,
    dryRun: Boolean(s.dryRun),
    openIncidents: s.openIncidents.slice(0, 500).map((i) => ({
      id: i.id,
      node: i.node,
      severity: i.severity,
      state: i.state,
      category: i.category,
    })),
  };
}

/** A timer that runs `tick` every `everyMs` while started, one tick at a time. */
function periodic(name: string, everyMs: number, tick: () => Promise<void>, logger: Logger): Acting {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let on = false;
  const loop = () => {
    if (!on) return;
    running = tick()
      .catch((err) => logger.warn({ err }, `${name} failed`))
      .finally(() => {
        running = undefined;
        if (on) {
          timer = setTimeout(loop, everyMs);
          timer.unref();
        }
      });
  };
  return {
    async start() {
      if (on) return;
      on = true;
      loop();
    },
    async stop() {
      on = false;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

/**
 * The leader's publications: its cluster's summary every scan period (the heartbeat the fleet reads) and
 * its node names when the set changes (one batched replace, not a write per node per scan).
 */
export function fleetPublisher(
  rt: Pick<Core, 'services' | 'clock' | 'sensing' | 'lastScan' | 'store'> & {
    config: Config;
    identity: string;
    logger: Logger;
  },
): Acting {
  const { config, store, clock } = rt;
  let lastNodes: string | undefined;
  return periodic(
    'publishing the fleet summary',
    Math.max(1000, config.monitor.intervalSeconds * 1000),
    async () => {
      if (!store.available()) return;
      const summary = await fleetSummaryOf(rt, store);
      const gpus = rt.sensing.watcher.list().reduce((n, node) => n + (node.expectedGpus ?? 0), 0);
      store.fleet.publish(config.clusterName, rt.identity, clusterSummaryOf(summary, gpus), clock.now());
      if (!rt.sensing.watcher.isSynced) return;
      const names = rt.sensing.watcher
        .list()
        .map((n) => n.name)
        .sort();
      const key = names.join('\n');
      if (key === lastNodes) return;
      store.fleet.replaceNodes(config.clusterName, names);
      lastNodes = key;
    },
    rt.logger,
  );
}

/** The chat layer's view of the fleet, over this process's store. */
export function fleetContextOf(rt: {
  config: Config;
  store: Pick<Store, 'fleet' | 'requests'>;
  clock: Pick<Clock, 'now'>;
  isActing(): boolean;
}): FleetContext {
  const { store, config, clock } = rt;
  return {
    cluster: config.clusterName,
    acting: () => rt.isActing(),
    directory: {
      clusters: () => store.fleet.list(),
      cluster: (name) => store.fleet.get(name),
      clustersHavingNode: (node) => store.fleet.clustersHavingNode(node),
    },
    queue: {
      enqueue: (cluster, request: LeaderRequest) =>
        store.requests.enqueue(
          { cluster, kind: request.kind, payload: request, requestedBy: request.userId },
          clock.now(),
        ),
    },
  };
}

export interface RequestWorkerOptions {
  config: Config;
  store: Pick<Store, 'requests' | 'available'>;
  clock: Pick<Clock, 'now'>;
  /** Who claims: this process's lease identity. */
  identity: string;
  /** Executes one request as a local click or command; its answer is the request's result. */
  execute(request: LeaderRequest): Promise<unknown>;
  logger: Logger;
}

/**
 * The leader's side of the queue: every FLEET_REQUEST_POLL, claim this cluster's requests (and those a
 * dead leader claimed more than LEASE_DURATION ago) and execute each, as Slack's own requests are, side by
 * side: a long one (a level-3 diagnostic) holds up no other. Each ends done or failed; a payload that does
 * not validate is failed with the reason, never dropped. Losing the lease stops the claims; what is being
 * executed finishes and is recorded.
 */
export function requestWorker(o: RequestWorkerOptions): Acting & { drain(): Promise<number> } {
  const { config, store, clock, identity, logger } = o;
  const staleMs = config.leader.leaseDurationSeconds * 1000;
  const execute = async (row: FleetRequest): Promise<void> => {
    const waited = clock.now() - row.createdAt;
    if (waited > REQUEST_TTL_MS) {
      const why = `expired: queued ${Math.round(waited / 1000)} s ago, longer than ${REQUEST_TTL_MS / 1000} s; not executed`;
      logger.warn({ request: row.id, kind: row.kind, user: row.requestedBy }, why);
      store.requests.fail(row.id, identity, why, clock.now());
      return;
    }
    const request = parseLeaderRequest(row.payload);
    if ('error' in request) {
      logger.warn({ request: row.id, error: request.error }, 'queued request refused');
      store.requests.fail(row.id, identity, request.error, clock.now());
      return;
    }
    // The claim stays this process's while it executes (a diagnostic runs for half an hour): renewed well
    // within the stale age, so another leader takes over only a claim whose process died.
    const renewal = setInterval(
      () => {
        try {
          store.requests.renew(row.id, identity, clock.now());
        } catch (err) {
          logger.warn({ err, request: row.id }, 'renewing the claim of a queued request failed');
        }
      },
      Math.max(1000, staleMs / 3),
    );
    renewal.unref();
    let recorded: boolean;
    try {
      const result = await o.execute(request);
      recorded = store.requests.complete(row.id, identity, result ?? null, clock.now());
      logger.info({ request: row.id, kind: row.kind, user: row.requestedBy }, 'queued request executed');
    } catch (err) {
      logger.error({ err, request: row.id }, 'queued request failed');
      recorded = store.requests.fail(row.id, identity, (err as Error).message ?? String(err), clock.now());
    } finally {
      clearInterval(renewal);
    }
    if (!recorded)
      logger.warn(
        { request: row.id, kind: row.kind },
        'another leader took this request over while it executed here; its outcome there is the one recorded',
      );
  };
  /** Claims what is due and starts it; resolves with the claimed rows' executions. */
  const claimAndStart = (): Promise<void>[] =>
    store.requests
      .claim(config.clusterName, identity, clock.now(), staleMs)
      .map((row) =>
        execute(row).catch((err) => logger.error({ err, request: row.id }, 'recording a request failed')),
      );
  let prunedAt = 0;
  const loop = periodic(
    'claiming queued requests',
    config.leader.requestPollSeconds * 1000,
    async () => {
      // The store's watch reports an outage once; a claim would only fail again every poll.
      if (!store.available()) return;
      // A full batch means more may wait: claim again at once.
      while (claimAndStart().length >= claimBatch) {}
      // Finished requests are kept a week for inspection, then deleted (checked hourly).
      if (clock.now() - prunedAt >= hourMs) {
        prunedAt = clock.now();
        store.requests.prune(config.clusterName, clock.now() - keepFinishedMs);
      }
    },
    logger,
  );
  return {
    ...loop,
    /** One claim and its executions, awaited (what one poll does, for tests and shutdown paths). */
    async drain() {
      const started = claimAndStart();
      await Promise.all(started);
      return started.length;
    },
  };
}

/** Requests claimed per statement (the repository's default). */
const claimBatch = 10;
const hourMs = 3_600_000;
const keepFinishedMs = 7 * 24 * hourMs;
