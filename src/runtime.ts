/**
 * The production process, assembled: store, sensing, leader election, monitor, remediation engine and
 * services, notification fan-out, metrics and health routes. `gpu-medic run` and `gpu-medic demo` both
 * start this; the chat surface (Slack or the console) plugs in through `attachChat`.
 */

import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { hostname } from 'node:os';
import { createCloudPort } from './aws/cloud-port.js';
import { CloudWatchMetricPublisher } from './aws/cloudwatch.js';
import { createEksAutoRepairPort } from './aws/eks.js';
import { LambdaFunctionInvoker } from './aws/lambda.js';
import { SnsTopicPublisher } from './aws/sns.js';
import type { Config } from './config/config.js';
import { ProgressBus } from './domain/events.js';
import { gpuSeverity, type Verdict } from './domain/finding.js';
import type { CollectionError, GpuSample, SignalFamily } from './domain/gpu.js';
import type { Incident } from './domain/incident.js';
import type { GpuNode } from './domain/node.js';
import { alertmanagerRoute } from './http/alertmanager.js';
import { startOpsServer } from './http/ops-server.js';
import { createClusterPort } from './k8s/cluster-port.js';
import { LeaderElector } from './k8s/leader.js';
import type { Logger } from './log/logger.js';
import { componentLogger } from './log/logger.js';
import { createSensing, gpuAgentSelectors, initialPlan, type Sensing } from './main.js';
import { createMetrics, type Metrics, renderMetrics, setOpenIncidents } from './metrics/metrics.js';
import { Monitor, type NodeScanResult } from './monitor/monitor.js';
import { createNotifier, type Notifier } from './notify/fan-out.js';
import { createSinks } from './notify/sinks/create.js';
import { RemediationEngine } from './remediate/engine.js';
import { systemClock } from './remediate/ports.js';
import { type Authorize, RemediationServices } from './remediate/services.js';
import { openStore, type Store } from './store/index.js';
import { exclusionStore, incidentStore, kvStore, stepStore } from './store/remediation-stores.js';

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
}

export interface Runtime {
  config: Config;
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
  isReady(): boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The GPU fields status read models show. */
export type GpuStatus = Pick<
  GpuSample,
  'index' | 'model' | 'health' | 'xidLast' | 'temperatureC' | 'eccDbeVolatile' | 'utilizationPct'
>;

/**
 * What the runtime remembers of a node's last scan: the verdict and the few GPU fields `/gpu status`
 * shows, not the whole snapshot (every parsed field of every GPU, for every node of the fleet).
 */
export interface NodeScanStatus {
  node: GpuNode;
  verdict: Verdict;
  ms: number;
  snapshot: { takenAt: number; gpus: GpuStatus[]; error?: CollectionError; signals?: SignalFamily[] };
}

export function scanStatusOf(r: NodeScanResult): NodeScanStatus {
  const { snapshot: s } = r;
  const gpus = s.gpus.map((g) => ({
    index: g.index,
    model: g.model,
    health: g.health,
    xidLast: g.xidLast,
    temperatureC: g.temperatureC,
    eccDbeVolatile: g.eccDbeVolatile,
    utilizationPct: g.utilizationPct,
  }));
  const snapshot: NodeScanStatus['snapshot'] = { takenAt: s.takenAt, gpus };
  if (s.error) snapshot.error = s.error;
  // Detection coverage in `/gpu status` counts the families each node's last read carried.
  if (s.signals) snapshot.signals = s.signals;
  return { node: r.node, verdict: r.verdict, ms: r.ms, snapshot };
}

export async function createRuntime(config: Config, opts: RuntimeOptions): Promise<Runtime> {
  const { logger } = opts;
  const store = openStore(config.store.dbPath, { logger: componentLogger(logger, 'store') });
  const metrics = createMetrics();
  const bus = new ProgressBus((err, event) =>
    logger.error({ err, incident: event.incidentId, step: event.step }, 'progress listener failed'),
  );
  const sensing = createSensing(config, { store, logger: componentLogger(logger, 'sense'), metrics });
  const lastScan = new Map<string, NodeScanStatus>();

  const leader = opts.leaderElection
    ? new LeaderElector({
        kc: sensing.kc,
        namespace: config.leader.namespace,
        leaseName: config.leader.leaseName,
        identity: `${process.env.POD_NAME ?? hostname()}-${randomBytes(3).toString('hex')}`,
        leaseDurationMs: config.leader.leaseDurationSeconds * 1000,
        renewEveryMs: config.leader.renewSeconds * 1000,
        retryEveryMs: Math.min(2000, config.leader.renewSeconds * 1000),
        logger: componentLogger(logger, 'leader'),
      })
    : undefined;
  // Shutting down: the engine stops before its next step (every step is persisted before and after its
  // effect, so whatever is in flight resumes on the next start).
  let stopping = false;
  const isLeader = () => !stopping && (leader ? leader.isLeader() : true);

  const cluster = createClusterPort(sensing.kc, {
    logger: componentLogger(logger, 'k8s'),
    gpuAgentSelectors: gpuAgentSelectors(config),
  });
  const cloud = createCloudPort({ region: config.aws.region, logger: componentLogger(logger, 'aws') });
  const engine = new RemediationEngine({
    cluster,
    cloud,
    health: {
      async scanNode(name) {
        const node = await cluster.getNode(name);
        if (!node) throw new Error(`node ${name} is gone`);
        const { snapshot, verdict } = await sensing.scanNode(node);
        // Distinct DCGM indices: MIG instances repeat their GPU's index (one series per instance).
        const gpusRead = snapshot.error ? 0 : new Set(snapshot.gpus.map((g) => g.index)).size;
        return {
          verdict,
          gpusRead,
          ...(snapshot.error ? { error: `${snapshot.error.kind}: ${snapshot.error.message}` } : {}),
        };
      },
    },
    incidents: incidentStore(store),
    steps: stepStore(store),
    exclusions: exclusionStore(store),
    audit: store.audit,
    clock: systemClock,
    bus,
    isLeader,
    config: {
      dryRun: config.dryRun,
      drainTimeoutMs: config.remediation.drainTimeoutSeconds * 1000,
      rebootGraceMs: config.remediation.rebootGraceSeconds * 1000,
      pollMs: config.remediation.pollSeconds * 1000,
      rebootTimeoutMs: config.remediation.rebootTimeoutSeconds * 1000,
      replaceTimeoutMs: config.remediation.replaceTimeoutSeconds * 1000,
      settleTimeoutMs: config.remediation.settleTimeoutSeconds * 1000,
      ...(opts.engine?.pollMs ? { pollMs: opts.engine.pollMs } : {}),
      ...(opts.engine?.maxBackoffMs ? { maxBackoffMs: opts.engine.maxBackoffMs } : {}),
    },
    logger: componentLogger(logger, 'engine'),
  });
  const services = new RemediationServices({
    cluster,
    incidents: incidentStore(store),
    steps: stepStore(store),
    exclusions: exclusionStore(store),
    audit: store.audit,
    kv: kvStore(store),
    clock: systemClock,
    bus,
    engine,
    policy: config.policy,
    authorize: opts.authorize ?? ((actor) => actor === 'monitor' || actor.startsWith('cli:')),
    autoRepair: {
      mode: config.remediation.autoRepair,
      // Only detect mode asks EKS; defer and ignore never call DescribeNodegroup.
      ...(config.remediation.autoRepair === 'detect'
        ? {
            port: createEksAutoRepairPort({
              region: config.aws.region,
              clusterName: config.clusterName,
              logger: componentLogger(logger, 'aws'),
            }),
          }
        : {}),
      ...(config.remediation.autoRepairWindowSeconds !== undefined
        ? { windowMs: config.remediation.autoRepairWindowSeconds * 1000 }
        : {}),
      pollMs: opts.engine?.pollMs ?? config.remediation.pollSeconds * 1000,
    },
    safety: {
      dryRun: config.dryRun,
      maxConcurrent: config.remediation.maxConcurrent,
      perHour: config.remediation.perHour,
      maxUnhealthyPercent: config.remediation.maxUnhealthyPercent,
      maxUnhealthyNodes: config.remediation.maxUnhealthyNodes,
    },
    logger: componentLogger(logger, 'services'),
  });

  const monitor = new Monitor({
    listNodes: () => sensing.watcher.list(),
    collector: sensing.collector,
    classifier: sensing.classifier,
    store,
    plan: initialPlan(config),
    onIncident: (incident: Incident) => {
      bus.publish({
        incidentId: incident.id,
        node: incident.node,
        step: 'detected',
        state: incident.state,
        at: Date.now(),
        actor: 'monitor',
        details: {
          category: incident.category,
          severity: incident.severity,
          explanation: incident.explanation,
        },
      });
      services
        .triage(incident.id)
        .catch((err) => logger.error({ err, incident: incident.id }, 'triage failed'));
    },
    onNodeScanned: (r) => lastScan.set(r.node.name, scanStatusOf(r)),
    // The loop reads verdicts from the report; lastScan keeps what status needs.
    retainSnapshots: false,
    intervalMs: config.monitor.intervalSeconds * 1000,
    concurrency: config.monitor.scanConcurrency,
    nodeTimeoutMs: config.monitor.scanTimeoutSeconds * 1000,
    metrics,
    logger: componentLogger(logger, 'monitor'),
  });

  const n = config.notify;
  const sinks = createSinks(
    { ...n, cloudwatch: { ...n.cloudwatch } },
    {
      metricPublisher: () => new CloudWatchMetricPublisher({ region: config.aws.region }),
      topicPublisher: () => new SnsTopicPublisher({ region: config.aws.region }),
      functionInvoker: () => new LambdaFunctionInvoker({ region: config.aws.region }),
      logger: componentLogger(logger, 'notify'),
    },
  );
  const notifier =
    sinks.length > 0
      ? createNotifier({
          outbox: store.outbox,
          sinks,
          bus,
          incidents: (id) => store.incidents.get(id),
          cluster: config.clusterName,
          logger: componentLogger(logger, 'notify'),
          metrics,
          start: false,
        })
      : undefined;

  // A reboot that did not cure the fault goes to the escalation policy (normally: replace).
  bus.subscribe((e) => {
    if (e.step !== 'escalated' || (e.details as { to?: string }).to !== 'replace') return;
    services
      .followUp(e.incidentId)
      .then((r) => logger.info({ incident: e.incidentId, result: r.message }, 'escalated fault followed up'))
      .catch((err) => logger.error({ err, incident: e.incidentId }, 'escalation follow-up failed'));
  });

  // Remediation outcomes, counted from the progress events every trigger publishes.
  const outcomeOf: Partial<Record<string, string>> = {
    resolved: 'succeeded',
    failed: 'failed',
    escalated: 'escalated',
    cancelled: 'cancelled',
  };
  bus.subscribe((e) => {
    const outcome = outcomeOf[e.step];
    if (!outcome) return;
    const action = store.incidents.get(e.incidentId)?.plannedAction ?? 'none';
    if (action === 'none') return;
    metrics.remediations.inc({ action, outcome: e.dryRun ? 'dry_run' : outcome });
  });

  // Gauges and counters that mirror state kept elsewhere, refreshed on the scan period; the cluster
  // metrics go to CloudWatch at the same rhythm.
  const refreshGauges = async () => {
    const open = store.incidents.listOpen();
    const bySeverity: Record<string, number> = {};
    for (const i of open) bySeverity[i.severity] = (bySeverity[i.severity] ?? 0) + 1;
    setOpenIncidents(metrics, bySeverity);
    const status = await services.status();
    const breakerOpen = status.breaker.open || status.paused.open;
    metrics.breakerOpen.set(breakerOpen ? 1 : 0);
    if (sensing.watcher.isSynced) {
      // GPU health only: a node problem (NODE_CONDITION) does not make a GPU node unhealthy.
      const unhealthy = [...lastScan.values()].filter((r) => {
        const severity = gpuSeverity(r.verdict.findings);
        return severity === 'critical' || severity === 'warning';
      }).length;
      notifier?.publishClusterMetrics({ unhealthyGpuNodes: unhealthy, breakerOpen });
    }
  };
  let gaugeTimer: NodeJS.Timeout | undefined;

  let ops: http.Server | undefined;
  let started = false;
  let acting = false;

  const startActing = async () => {
    if (acting) return;
    acting = true;
    const resumed = await engine.start();
    if (resumed.length > 0) logger.info({ incidents: resumed }, 'resumed unfinished remediations');
    const followed = await services.resumeFollowUps();
    if (followed.length > 0) logger.info({ incidents: followed }, 'followed up escalations left by a stop');
    const watched = services.resumeDeferrals();
    if (watched.length > 0) logger.info({ incidents: watched }, 'watching EKS node auto repair again');
    monitor.start();
  };
  // Losing the lease or stopping aborts the runs in progress at once (a drain stops evicting, every wait
  // ends); their `started` rows stay, and the next leader resumes them from the journal. The runs wind down
  // on their own (stop() waits for them, bounded); a lease won back meanwhile resumes them once they have.
  const stopActing = async (why: string) => {
    if (!acting) return;
    acting = false;
    void engine.abort(why);
    await monitor.stop();
    // A standby does not follow EKS's repairs: the next leader resumes them from their rows.
    await services.stopWatching();
  };

  const runtime: Runtime = {
    config,
    store,
    sensing,
    bus,
    metrics,
    monitor,
    engine,
    services,
    notifier,
    leader,
    lastScan,
    isReady: () => started && sensing.watcher.isSynced,
    async start() {
      if (opts.opsServer) {
        ops = await startOpsServer(
          {
            healthy: () => true,
            ready: () => runtime.isReady(),
            metrics: () => renderMetrics(metrics),
            // Alertmanager pushes (issue 15): off unless ALERTMANAGER_TOKEN is set.
            alertmanager: alertmanagerRoute({
              token: config.alertmanager.token,
              monitor,
              listNodes: () => sensing.watcher.list(),
              logger: componentLogger(logger, 'alertmanager'),
            }),
          },
          config.http.port,
          logger,
        );
      }
      await sensing.start();
      notifier?.start();
      started = true;
      gaugeTimer = setInterval(
        () => refreshGauges().catch((err) => logger.warn({ err }, 'refreshing gauges failed')),
        Math.min(15_000, config.monitor.intervalSeconds * 1000),
      );
      gaugeTimer.unref();
      if (leader) {
        leader.onChange((isNow) => {
          logger.info({ leader: isNow }, isNow ? 'became the leader' : 'lost the lease; standing by');
          (isNow ? startActing() : stopActing('lost the lease')).catch((err) =>
            logger.error({ err }, 'leadership change failed'),
          );
        });
        await leader.start();
        if (!leader.isLeader()) {
          logger.info({ lease: config.leader.leaseName }, 'standing by: another replica holds the lease');
        }
      } else {
        await startActing();
      }
    },
    async stop() {
      stopping = true;
      clearInterval(gaugeTimer);
      await stopActing('the process is stopping');
      // Runs started by a click or a command while not acting (a standby) are aborted too.
      await Promise.race([
        engine.abort('the process is stopping'),
        new Promise((resolve) => setTimeout(resolve, 5000).unref()),
      ]);
      await leader?.stop();
      await notifier?.stop();
      await sensing.stop();
      await new Promise<void>((resolve) => (ops ? ops.close(() => resolve()) : resolve()));
      store.close();
    },
  };
  return runtime;
}
