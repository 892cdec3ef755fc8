/**
 * The production process, assembled: the core (core.ts), its reactions (reactions.ts), leader election
 * (leadership.ts) and the health routes. `gpu-medic run` and `gpu-medic demo` both start this; the chat
 * surface (Slack or the console) plugs in through chat.ts and slack.ts.
 */

import type http from 'node:http';
import type { Config } from '../config/config.js';
import type { Clock } from '../domain/clock.js';
import type { ProgressBus } from '../domain/events.js';
import { alertmanagerRoute } from '../http/alertmanager.js';
import { type OpsRoutes, startOpsServer } from '../http/ops-server.js';
import type { LeaderElector } from '../k8s/leader.js';
import { componentLogger, type Logger } from '../log/logger.js';
import { type Metrics, renderMetrics } from '../metrics/metrics.js';
import type { Monitor } from '../monitor/monitor.js';
import type { Notifier } from '../notify/fan-out.js';
import type { RemediationEngine } from '../remediate/engine.js';
import type { Authorize, RemediationServices } from '../remediate/services.js';
import type { Store } from '../store/index.js';
import { createCore, type NodeScanStatus } from './core.js';
import { fleetPublisher } from './fleet.js';
import {
  type Acting,
  actingRole,
  createLeaderElector,
  followLeadership,
  leaderIdentity,
} from './leadership.js';
import {
  countRemediationOutcomes,
  followUpEscalations,
  recordRepairs,
  startGaugeRefresh,
  timeRepairPhases,
} from './reactions.js';
import type { Sensing } from './sensing.js';
import { resumeWhenStoreReturns } from './store-watch.js';

export type { GpuStatus, NodeScanStatus } from './core.js';
export { scanStatusOf } from './core.js';

export interface RuntimeOptions {
  logger: Logger;
  /** Who may do destructive things (the Slack layer decides for clicks; CLI/console pass their own). */
  authorize?: Authorize;
  /** Serve /healthz, /readyz and /metrics on PORT (off when the Slack HTTP receiver serves them). */
  opsServer?: boolean;
  /** Elect a leader through a Lease before acting (on in `run`; the demo runs alone). */
  leaderElection?: boolean;
  /** Extra engine timings (the demo's simulated reboots take seconds, not minutes). */
  engine?: { pollMs?: number; maxBackoffMs?: number };
  /** The time every decision reads (default: the system clock). */
  clock?: Clock;
}

export interface Runtime {
  config: Config;
  clock: Clock;
  store: Store;
  sensing: Sensing;
  bus: ProgressBus;
  metrics: Metrics;
  monitor: Monitor;
  engine: RemediationEngine;
  services: RemediationServices;
  notifier?: Notifier;
  leader?: LeaderElector;
  /** The last scan result per node, for status read models. */
  lastScan: Map<string, NodeScanStatus>;
  /** Who this process is in the Lease and in the fleet's request claims. */
  identity: string;
  /** True while this process acts for its cluster (holds the lease, or runs without election). */
  isActing(): boolean;
  /** Work that runs only while this process acts (started and stopped with the lease). */
  whileActing(task: Acting): void;
  isReady(): boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `/healthz`, `/readyz` and `/metrics` of a runtime: the one answer both the ops server and the Slack HTTP
 * receiver serve.
 */
export function opsRoutesOf(
  rt: Pick<Runtime, 'isReady' | 'metrics' | 'config' | 'monitor' | 'sensing'>,
  logger: Logger,
): OpsRoutes {
  return {
    healthy: () => true,
    ready: () => rt.isReady(),
    metrics: () => renderMetrics(rt.metrics),
    // Alertmanager pushes: off unless ALERTMANAGER_TOKEN is set.
    alertmanager: alertmanagerRoute({
      token: rt.config.alertmanager.token,
      monitor: rt.monitor,
      listNodes: () => rt.sensing.watcher.list(),
      logger: componentLogger(logger, 'alertmanager'),
    }),
  };
}

export async function createRuntime(config: Config, opts: RuntimeOptions): Promise<Runtime> {
  // The runtime's own lines (leadership, reactions, lifecycle); each piece gets its own component.
  const logger = componentLogger(opts.logger, 'app');
  // Shutting down: the engine stops before its next step (every step is persisted before and after its
  // effect, so whatever is in flight resumes on the next start).
  let stopping = false;
  let leader: LeaderElector | undefined;
  const isLeader = () => !stopping && (leader ? leader.isLeader() : true);
  const core = createCore(config, { ...opts, isLeader });
  if (opts.leaderElection) leader = createLeaderElector(config, core.sensing.kc, opts.logger, core.clock);
  const acting = actingRole({ ...core, logger });
  const identity = leader?.identity ?? leaderIdentity(config);
  // Every scan period, this cluster's summary and node names for the fleet (read by every process).
  acting.add(fleetPublisher({ ...core, config, identity, logger }));
  const reactions = [
    followUpEscalations(core.bus, core.services, logger),
    countRemediationOutcomes(core.bus, (id) => core.store.incidents.get(id), core.metrics),
    timeRepairPhases(core.bus, (id) => core.store.incidents.get(id), core.metrics),
    recordRepairs(core.bus, {
      incidents: (id) => core.store.incidents.get(id),
      journal: (id) => core.store.steps.list(id),
      records: core.store.repairs,
      logger,
    }),
  ];
  let stopGauges: (() => void) | undefined;
  let stopStoreWatch: (() => void) | undefined;
  let ops: http.Server | undefined;
  let started = false;

  const runtime: Runtime = {
    config,
    ...core,
    leader,
    identity,
    isActing: () => !stopping && acting.isActing(),
    whileActing: (task) => acting.add(task),
    // Not ready while the database cannot be reached: a request routed here could not be recorded.
    isReady: () => started && core.sensing.watcher.isSynced && core.store.available(),
    async start() {
      if (opts.opsServer)
        ops = await startOpsServer(opsRoutesOf(runtime, opts.logger), config.http.port, logger);
      await core.sensing.start();
      core.notifier?.start();
      started = true;
      stopGauges = startGaugeRefresh(core, config.monitor.intervalSeconds, logger);
      stopStoreWatch = resumeWhenStoreReturns({ ...core, isActing: isLeader, logger });
      if (leader) await followLeadership(leader, acting, config.leader.leaseName, logger);
      else await acting.start();
    },
    async stop() {
      stopping = true;
      stopGauges?.();
      stopStoreWatch?.();
      await acting.stop('the process is stopping');
      // Runs started by a click or a command while not acting (a process without leader election, whose
      // clicks are not routed to a leader) are aborted too.
      await Promise.race([
        core.engine.abort('the process is stopping'),
        new Promise((resolve) => setTimeout(resolve, 5000).unref()),
      ]);
      await leader?.stop();
      await core.notifier?.stop();
      await core.sensing.stop();
      await new Promise<void>((resolve) => (ops ? ops.close(() => resolve()) : resolve()));
      for (const unsubscribe of reactions) unsubscribe();
      core.store.close();
    },
  };
  return runtime;
}
