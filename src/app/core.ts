/**
 * The core of the process, assembled once: store, progress bus, metrics, sensing, the remediation engine
 * and services, the monitor and the notification fan-out. Each piece is built by one function below; the
 * reactions between them live in reactions.ts, the lifecycle in runtime.ts.
 */

import { createCloudPort } from '../aws/cloud-port.js';
import { CloudWatchMetricPublisher } from '../aws/cloudwatch.js';
import { createEksAutoRepairPort } from '../aws/eks.js';
import { LambdaFunctionInvoker } from '../aws/lambda.js';
import { SnsTopicPublisher } from '../aws/sns.js';
import { createDcgmDiagRunner } from '../collect/dcgm-diag.js';
import type { Config } from '../config/config.js';
import { type Clock, systemClock } from '../domain/clock.js';
import { ProgressBus } from '../domain/events.js';
import type { Verdict } from '../domain/finding.js';
import {
  type CollectionError,
  type GpuIdentity,
  type GpuSample,
  gpuIdentities,
  type SignalFamily,
} from '../domain/gpu.js';
import type { GpuNode } from '../domain/node.js';
import { createClusterPort } from '../k8s/cluster-port.js';
import { DEFAULT_RESET_POD_SELECTORS } from '../k8s/gpu-reset.js';
import type { Logger } from '../log/logger.js';
import { componentLogger } from '../log/logger.js';
import { createMetrics, type Metrics } from '../metrics/metrics.js';
import { Monitor, type NodeScanResult } from '../monitor/monitor.js';
import { createNotifier, type Notifier } from '../notify/fan-out.js';
import { createSinks } from '../notify/sinks/create.js';
import { RemediationEngine } from '../remediate/engine.js';
import type { ClusterPort, DiagPort, ExclusionStore, IncidentStore, StepStore } from '../remediate/ports.js';
import { type Authorize, RemediationServices } from '../remediate/services.js';
import { openStoreFor, type Store } from '../store/index.js';
import { exclusionStore, incidentStore, kvStore, stepStore } from '../store/remediation-stores.js';
import { onIncidentDetected } from './reactions.js';
import {
  createSensing,
  dcgmServerSelectors,
  gpuAgentSelectors,
  initialPlan,
  lazyPodExecutor,
  monitorTimings,
  type Sensing,
} from './sensing.js';

export interface CoreOptions {
  /** The root logger: each piece gets its own component logger (or binds its component itself). */
  logger: Logger;
  /** Who may do destructive things (the Slack layer decides for clicks; CLI/console pass their own). */
  authorize?: Authorize;
  /** Extra engine timings (the demo's simulated reboots take seconds, not minutes). */
  engine?: { pollMs?: number; maxBackoffMs?: number };
  /** False while this process must not act (a standby, or stopping): the engine stops before its next step. */
  isLeader: () => boolean;
  /** The time every decision reads (default: the system clock). */
  clock?: Clock;
}

export interface Core {
  clock: Clock;
  store: Store;
  bus: ProgressBus;
  metrics: Metrics;
  sensing: Sensing;
  engine: RemediationEngine;
  services: RemediationServices;
  monitor: Monitor;
  notifier?: Notifier;
  /** The last scan result per node, for status read models. */
  lastScan: Map<string, NodeScanStatus>;
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
  snapshot: {
    takenAt: number;
    gpus: GpuStatus[];
    error?: CollectionError;
    signals?: readonly SignalFamily[];
  };
  /**
   * Who each GPU is (UUID, bus id, XIDs), from the last scan that read GPUs: what a repair records as RMA
   * evidence.
   */
  gpuIds: GpuIdentity[];
  /** The snapshot's readKey (NodeSnapshot.readKey), when its source gave one. */
  readKey?: string;
}

export function scanStatusOf(r: NodeScanResult, previous?: NodeScanStatus): NodeScanStatus {
  const { snapshot: s } = r;
  // Read the same as last time (same node object, same readKey): the same GPUs; only the verdict and time move.
  if (previous && s.readKey !== undefined && previous.readKey === s.readKey && previous.node === r.node)
    return {
      ...previous,
      verdict: r.verdict,
      ms: r.ms,
      snapshot: { ...previous.snapshot, takenAt: s.takenAt },
    };
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
  const status: NodeScanStatus = {
    node: r.node,
    verdict: r.verdict,
    ms: r.ms,
    snapshot,
    gpuIds: gpuIdentities(s.gpus),
  };
  if (s.readKey !== undefined) status.readKey = s.readKey;
  return status;
}

/** The remediation stores over the one SQLite store, built once and shared by the engine and the services. */
interface Stores {
  incidents: IncidentStore;
  steps: StepStore;
  exclusions: ExclusionStore;
}

interface Wiring {
  config: Config;
  clock: Clock;
  opts: CoreOptions;
  store: Store;
  stores: Stores;
  bus: ProgressBus;
  sensing: Sensing;
  cluster: ClusterPort;
  lastScan: Map<string, NodeScanStatus>;
  diag: DiagPort;
}

export function createCore(config: Config, opts: CoreOptions): Core {
  const { logger } = opts;
  const clock = opts.clock ?? systemClock;
  const store = openStoreFor(config.store, {
    logger: componentLogger(logger, 'store'),
    now: () => clock.now(),
  });
  const metrics = createMetrics();
  const bus = new ProgressBus((err, event) =>
    componentLogger(logger, 'app').error(
      { err, incident: event.incidentId, step: event.step },
      'progress listener failed',
    ),
  );
  const sensing = createSensing(config, { llmCache: store.llmCache, logger, metrics, clock });
  const cluster = createClusterPort(sensing.kc, {
    logger: componentLogger(logger, 'k8s'),
    gpuAgentSelectors: gpuAgentSelectors(config),
    ...(config.reset.selector
      ? {
          resetPodSelectors: [
            {
              selector: config.reset.selector,
              ...(config.reset.namespace ? { namespace: config.reset.namespace } : {}),
              ...(config.reset.container ? { container: config.reset.container } : {}),
            },
          ],
        }
      : config.reset.namespace || config.reset.container
        ? {
            resetPodSelectors: DEFAULT_RESET_POD_SELECTORS.map((s) => ({
              ...s,
              ...(config.reset.namespace ? { namespace: config.reset.namespace } : {}),
              ...(config.reset.container ? { container: config.reset.container } : {}),
            })),
          }
        : {}),
    resetTimeoutMs: config.reset.timeoutSeconds * 1000,
  });
  const stores: Stores = {
    incidents: incidentStore(store),
    steps: stepStore(store, (p) => componentLogger(logger, 'store').warn({ journal: p }, p.message)),
    exclusions: exclusionStore(store),
  };
  const lastScan = new Map<string, NodeScanStatus>();
  const diag = createDiagPort({ config, sensing, opts });
  const w: Wiring = { config, clock, opts, store, stores, bus, sensing, cluster, lastScan, diag };
  const engine = createEngine(w);
  const services = createServices(w, engine);
  const monitor = createMonitor(w, { services, metrics, lastScan });
  const notifier = createNotifierFor(w, metrics);
  return { clock, store, bus, metrics, sensing, engine, services, monitor, notifier, lastScan };
}

function createEngine({
  config,
  clock,
  opts,
  stores,
  store,
  bus,
  sensing,
  cluster,
  lastScan,
  diag,
}: Wiring): RemediationEngine {
  const { logger } = opts;
  const cloud = createCloudPort({ region: config.aws.region, logger: componentLogger(logger, 'aws') });
  return new RemediationEngine({
    cluster,
    cloud,
    diag,
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
      lastGpus: (name) => lastScan.get(name)?.gpuIds,
    },
    ...stores,
    audit: store.audit,
    clock,
    bus,
    isLeader: opts.isLeader,
    config: {
      dryRun: config.dryRun,
      drainTimeoutMs: config.remediation.drainTimeoutSeconds * 1000,
      rebootGraceMs: config.remediation.rebootGraceSeconds * 1000,
      pollMs: config.remediation.pollSeconds * 1000,
      rebootTimeoutMs: config.remediation.rebootTimeoutSeconds * 1000,
      replaceTimeoutMs: config.remediation.replaceTimeoutSeconds * 1000,
      settleTimeoutMs: config.remediation.settleTimeoutSeconds * 1000,
      ...(config.remediation.postRepairDiag !== undefined
        ? { postRepairDiag: config.remediation.postRepairDiag }
        : {}),
      ...(opts.engine?.pollMs ? { pollMs: opts.engine.pollMs } : {}),
      ...(opts.engine?.maxBackoffMs ? { maxBackoffMs: opts.engine.maxBackoffMs } : {}),
    },
    // The engine binds its own component.
    logger,
  });
}

/**
 * `dcgmi diag` in the node's DCGM host-engine pod (DCGM_SERVER_NAMESPACE / DCGM_SERVER_SELECTOR), found fresh from
 * the API at each run (diagnostics are rare; no watch is kept for them).
 */
export function createDiagPort({
  config,
  sensing,
  opts,
}: Pick<Wiring, 'config' | 'sensing' | 'opts'>): DiagPort {
  const pods = createClusterPort(sensing.kc, {
    logger: componentLogger(opts.logger, 'k8s'),
    gpuAgentSelectors: dcgmServerSelectors(config),
  });
  return createDcgmDiagRunner({
    exec: lazyPodExecutor(sensing.kc),
    async findPod(node) {
      const found = (await pods.listGpuAgentPods(node)).find((p) => p.ready);
      return found ? { namespace: found.namespace, name: found.name } : undefined;
    },
    logger: componentLogger(opts.logger, 'diag'),
  });
}

function createServices(w: Wiring, engine: RemediationEngine): RemediationServices {
  const { config, clock, opts, stores, store, bus, cluster } = w;
  const { logger } = opts;
  return new RemediationServices({
    cluster,
    diag: w.diag,
    ...stores,
    audit: store.audit,
    kv: kvStore(store),
    clock,
    bus,
    engine,
    policy: config.policy,
    authorize: opts.authorize ?? ((actor) => actor === 'monitor' || actor.startsWith('cli:')),
    autoRepair: autoRepairOptions(config, opts, clock),
    safety: {
      dryRun: config.dryRun,
      maxConcurrent: config.remediation.maxConcurrent,
      perHour: config.remediation.perHour,
      maxUnhealthyPercent: config.remediation.maxUnhealthyPercent,
      maxUnhealthyNodes: config.remediation.maxUnhealthyNodes,
    },
    // The services bind their own component.
    logger,
  });
}

function autoRepairOptions(config: Config, opts: CoreOptions, clock: Clock) {
  return {
    mode: config.remediation.autoRepair,
    // Only detect mode asks EKS; defer and ignore never call DescribeNodegroup.
    ...(config.remediation.autoRepair === 'detect'
      ? {
          port: createEksAutoRepairPort({
            region: config.aws.region,
            clusterName: config.clusterName,
            logger: componentLogger(opts.logger, 'aws'),
            now: () => clock.now(),
          }),
        }
      : {}),
    ...(config.remediation.autoRepairWindowSeconds !== undefined
      ? { windowMs: config.remediation.autoRepairWindowSeconds * 1000 }
      : {}),
    pollMs: opts.engine?.pollMs ?? config.remediation.pollSeconds * 1000,
  };
}

function createMonitor(
  { config, clock, opts, store, bus, sensing }: Wiring,
  deps: { services: RemediationServices; metrics: Metrics; lastScan: Map<string, NodeScanStatus> },
): Monitor {
  return new Monitor({
    listNodes: () => sensing.watcher.list(),
    collector: sensing.collector,
    classifier: sensing.classifier,
    store,
    plan: initialPlan(config, clock),
    onIncident: onIncidentDetected(bus, deps.services, componentLogger(opts.logger, 'app'), clock),
    onNodeScanned: (r) => {
      const previous = deps.lastScan.get(r.node.name);
      const status = scanStatusOf(r, previous);
      // A scan that read no GPU (the node rebooting, the exporter down) does not forget who the GPUs are.
      const known = previous?.gpuIds;
      if (status.gpuIds.length === 0 && known) status.gpuIds = known;
      deps.lastScan.set(r.node.name, status);
    },
    // The loop reads verdicts from the report; lastScan keeps what status needs.
    retainSnapshots: false,
    ...monitorTimings(config),
    metrics: deps.metrics,
    logger: componentLogger(opts.logger, 'monitor'),
    now: () => clock.now(),
  });
}

/** The notification fan-out, when at least one sink is configured. */
function createNotifierFor(
  { config, clock, opts, store, bus }: Wiring,
  metrics: Metrics,
): Notifier | undefined {
  const n = config.notify;
  const region = config.aws.region;
  const sinks = createSinks(
    { ...n, cloudwatch: { ...n.cloudwatch } },
    {
      metricPublisher: () => new CloudWatchMetricPublisher({ region }),
      topicPublisher: () => new SnsTopicPublisher({ region }),
      functionInvoker: () => new LambdaFunctionInvoker({ region }),
      logger: componentLogger(opts.logger, 'notify'),
      clock: () => clock.now(),
    },
  );
  if (sinks.length === 0) return undefined;
  return createNotifier({
    outbox: store.outbox,
    sinks,
    bus,
    incidents: (id) => store.incidents.get(id),
    cluster: config.clusterName,
    // The fan-out binds its own component.
    logger: opts.logger,
    metrics,
    start: false,
    clock: () => clock.now(),
  });
}
