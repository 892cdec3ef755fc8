/**
 * Sensing, as configured: the GPU node watch, the DCGM sources (exporter, dcgm-server pods) and the
 * classifier (rules, optionally refined by the model). Part of the composition root (src/app/): the only
 * place that knows every concrete class; everything else depends on ports.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { BedrockClassifierClientOptions } from '../aws/bedrock.js';
import { loadDcgmFrCatalog, loadXidCatalog } from '../classify/catalog.js';
import { createHybridClassifier, type HybridClassifier, needsLlm } from '../classify/llm/hybrid.js';
import { llmMetricsHook } from '../classify/llm/metrics-hook.js';
import type { LlmClient } from '../classify/llm/port.js';
import { createLlmStats, type LlmStats } from '../classify/llm/stats.js';
import { classifySnapshot } from '../classify/rules.js';
import { baseSnapshot, type Collector } from '../collect/collector.js';
import { createDcgmServerCollector, type ExecPort } from '../collect/dcgm-server.js';
import { createExporterCollector } from '../collect/exporter.js';
import { createPrometheusSourceCollector } from '../collect/prometheus-wiring.js';
import type { Config } from '../config/config.js';
import { type Clock, systemClock } from '../domain/clock.js';
import { faultOfFinding } from '../domain/fault.js';
import type { Finding, Verdict } from '../domain/finding.js';
import type { NodeSnapshot } from '../domain/gpu.js';
import type { GpuNode } from '../domain/node.js';
import type { SignatureCache } from '../domain/ports.js';
import type { GpuAgentSelector } from '../k8s/cluster-port.js';
import { createExporterSource } from '../k8s/exporter-source.js';
import { loadKubeConfig } from '../k8s/kube-config.js';
import { NodeWatcher } from '../k8s/node-watcher.js';
import { PodIndex } from '../k8s/pod-index.js';
import { RawHttpClient } from '../k8s/raw-http.js';
import type { Logger } from '../log/logger.js';
import { componentLogger } from '../log/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { NodeClassifier, Plan, ScanHooks } from '../monitor/monitor.js';
import { decide } from '../remediate/policy.js';

export const EXPORTER_SELECTORS = ['app=nvidia-dcgm-exporter', 'app.kubernetes.io/name=dcgm-exporter'];
/** DCGM host-engine pods: the EKS node monitoring agent's `dcgm-server`, the GPU Operator's `nvidia-dcgm`. */
export const DCGM_SERVER_SELECTORS = ['k8s-app=dcgm-server', 'app=nvidia-dcgm'];
/** The pods gpu-medic reads GPUs through, as configured: what the settle gate waits for after a reboot. */
export function gpuAgentSelectors(config: Config): GpuAgentSelector[] {
  const source = config.dcgm.source;
  const exporters =
    source === 'dcgm-server'
      ? []
      : (config.dcgm.selector ? [config.dcgm.selector] : EXPORTER_SELECTORS).map((selector) => ({
          selector,
          ...(config.dcgm.namespace ? { namespace: config.dcgm.namespace } : {}),
        }));
  const servers =
    source === 'exporter' || source === 'prometheus'
      ? []
      : (config.dcgm.server.selector ? [config.dcgm.server.selector] : DCGM_SERVER_SELECTORS).map(
          (selector) => ({
            selector,
            ...(config.dcgm.server.namespace ? { namespace: config.dcgm.server.namespace } : {}),
          }),
        );
  return [...exporters, ...servers];
}

/** The DCGM host-engine pods, whatever the source: DCGM diagnostics run there (the exporter has no `dcgmi diag`). */
export function dcgmServerSelectors(config: Config): GpuAgentSelector[] {
  return (config.dcgm.server.selector ? [config.dcgm.server.selector] : DCGM_SERVER_SELECTORS).map(
    (selector) => ({
      selector,
      ...(config.dcgm.server.namespace ? { namespace: config.dcgm.server.namespace } : {}),
    }),
  );
}
const MAX_SCRAPE_BYTES = 16 * 1024 * 1024;

export interface Sensing {
  kc: KubeConfig;
  watcher: NodeWatcher;
  /** `beforeScan` refreshes the scrape client's API credentials (rotating tokens); the Monitor calls it. */
  collector: Collector & ScanHooks;
  classifier: NodeClassifier;
  hybrid?: HybridClassifier;
  llmStats: LlmStats;
  /** A fresh collect + classify of one node (the remediation engine's health check). */
  scanNode(node: GpuNode): Promise<{ snapshot: NodeSnapshot; verdict: Verdict }>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

interface SensingDeps {
  /** Where model answers are cached; without one, the classifier is the rules alone. */
  llmCache?: SignatureCache;
  logger: Logger;
  kc?: KubeConfig;
  metrics?: Metrics;
  clock?: Pick<Clock, 'now'>;
}

/** Node watch, DCGM sources and the classifier, as configured. */
export function createSensing(config: Config, deps: SensingDeps): Sensing {
  const kc = deps.kc ?? loadKubeConfig(config.kube.kubeconfig);
  const watcher = new NodeWatcher(kc, {
    labelSelector: config.kube.gpuNodeSelector,
    logger: componentLogger(deps.logger, 'nodes'),
  });
  const timeoutMs = config.monitor.scanTimeoutSeconds * 1000;
  const clock = deps.clock ?? systemClock;
  const dcgm = createDcgmCollector(config, kc, componentLogger(deps.logger, 'sense'), clock);
  const { collector } = dcgm;
  const { classifier, hybrid, llmStats } = createClassifier(config, deps, clock);
  return {
    kc,
    watcher,
    collector,
    classifier,
    hybrid,
    llmStats,
    async scanNode(node) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      try {
        const snapshot = await collector.collect(node, controller.signal);
        const verdict = hybrid ? await hybrid.classify(snapshot) : classifier.rules(snapshot);
        return { snapshot, verdict };
      } finally {
        clearTimeout(timer);
      }
    },
    async start() {
      await Promise.all([watcher.start(), ...dcgm.pods.map((p) => p.start())]);
    },
    async stop() {
      await Promise.all([watcher.stop(), ...dcgm.pods.map((p) => p.stop())]);
      dcgm.close();
    },
  };
}

/** The pod indexes of the configured DCGM sources: exporter pods and dcgm-server pods. */
function createDcgmPods(config: Config, kc: KubeConfig, logger: Logger) {
  const source = config.dcgm.source;
  const exporterPods =
    source === 'dcgm-server' || source === 'prometheus'
      ? undefined
      : new PodIndex(kc, {
          namespace: config.dcgm.namespace,
          selectors: config.dcgm.selector ? [config.dcgm.selector] : EXPORTER_SELECTORS,
          logger,
        });
  const serverPods =
    source === 'exporter' || source === 'prometheus'
      ? undefined
      : new PodIndex(kc, {
          namespace: config.dcgm.server.namespace,
          selectors: config.dcgm.server.selector ? [config.dcgm.server.selector] : DCGM_SERVER_SELECTORS,
          logger,
        });
  return { exporterPods, serverPods };
}

function createDcgmCollector(config: Config, kc: KubeConfig, logger: Logger, clock: Pick<Clock, 'now'>) {
  const { exporterPods, serverPods } = createDcgmPods(config, kc, logger);
  const timeoutMs = config.monitor.scanTimeoutSeconds * 1000;
  const http = new RawHttpClient(kc, Math.max(8, config.monitor.scanConcurrency));
  const exporter = exporterPods
    ? createExporterCollector({
        source: createExporterSource({
          pods: exporterPods,
          http,
          access: config.dcgm.access,
          port: config.dcgm.port,
          timeoutMs: Math.max(100, timeoutMs - 50),
          maxBytes: MAX_SCRAPE_BYTES,
        }),
        maxBytes: MAX_SCRAPE_BYTES,
        now: () => clock.now(),
      })
    : undefined;
  const dcgmServer = serverPods
    ? createDcgmServerCollector({
        exec: lazyPodExecutor(kc),
        findPod: (node) => serverPods.forNode(node),
        timeoutMs,
        logger,
        now: () => clock.now(),
      })
    : undefined;

  // DCGM_SOURCE=auto: per node, the exporter when the node has one, else the dcgm-server pod.
  const scraped: Collector & ScanHooks = {
    source: exporter ? 'exporter' : 'dcgm-server',
    beforeScan: () => http.refreshAuth(),
    async collect(node, signal) {
      if (
        dcgmServer &&
        (!exporter || (!exporterPods?.forNode(node.name) && serverPods?.forNode(node.name)))
      ) {
        return dcgmServer.collect(node, signal);
      }
      if (exporter) return exporter.collect(node, signal);
      const s = baseSnapshot(node, 'conditions', clock.now());
      s.error = { kind: 'no-exporter', message: 'no DCGM source configured' };
      return s;
    },
  };
  // DCGM_SOURCE=prometheus: every node from one fleet read per scan (collect/prometheus-source.ts).
  const collector = config.dcgm.source === 'prometheus' ? createPrometheusSourceCollector(config) : scraped;
  const pods = [exporterPods, serverPods].filter((p): p is PodIndex => p !== undefined);
  return { collector, pods, close: () => http.close() };
}

/** The rules, refined by the model when CLASSIFIER asks for it (and a store holds the model's cache). */
function createClassifier(config: Config, deps: SensingDeps, clock: Pick<Clock, 'now'>) {
  const policy = config.policy.classification;
  const ctx = { catalog: loadXidCatalog(), frCodes: loadDcgmFrCatalog(), policy };
  const rules = (s: NodeSnapshot) => classifySnapshot(s, ctx);
  const llmStats = createLlmStats();
  const mode = config.classifier.mode;
  const llmLogger = componentLogger(deps.logger, 'llm');
  const hybrid =
    mode !== 'rules' && deps.llmCache
      ? createHybridClassifier({
          mode,
          rules,
          llm: lazyBedrockClient({
            region: config.aws.region,
            modelId: config.classifier.bedrockModelId,
            timeoutMs: config.classifier.timeoutSeconds * 1000,
            logger: llmLogger,
          }),
          cache: deps.llmCache,
          policy,
          ttlMs: config.classifier.cacheTtlSeconds * 1000,
          maxCallsPerHour: config.classifier.maxCallsPerHour,
          logger: llmLogger,
          stats: llmStats,
          onEvent: deps.metrics ? llmMetricsHook(deps.metrics) : undefined,
          clock: () => clock.now(),
        })
      : undefined;
  const classifier: NodeClassifier = {
    rules,
    refine: hybrid
      ? (snapshot, verdict) =>
          needsLlm(mode, snapshot, verdict, policy) ? hybrid.classify(snapshot) : undefined
      : undefined,
  };
  return { classifier, hybrid, llmStats };
}

/**
 * The Bedrock client, loaded on the first model call: the AWS SDK costs memory (RSS) in every process,
 * and with CLASSIFIER=rules it is never needed.
 */
function lazyBedrockClient(options: BedrockClassifierClientOptions): LlmClient {
  let client: Promise<LlmClient> | undefined;
  return {
    async classify(request) {
      client ??= import('../aws/bedrock.js').then((m) => m.createBedrockClassifierClient(options));
      return (await client).classify(request);
    },
  };
}

/** Pod exec (WebSocket) code, loaded only when a dcgm-server pod is actually used. */
export function lazyPodExecutor(kc: KubeConfig): ExecPort {
  let executor: Promise<ExecPort> | undefined;
  return {
    async exec(req) {
      executor ??= import('../k8s/exec.js').then((m) => m.podExecutor(kc));
      return (await executor).exec(req);
    },
  };
}

/** The first, history-free policy decision the monitor records on a new incident; the services refine it. */
export function initialPlan(config: Config, clock: Pick<Clock, 'now'> = systemClock) {
  return (finding: Finding, node: GpuNode, preexisting: boolean): Plan => {
    const d = decide(
      faultOfFinding(finding, node.name, preexisting),
      config.policy,
      { rebootsForFault: 0, remediationsInWindow: 0 },
      clock.now(),
    );
    return { plannedAction: d.action, mode: d.mode };
  };
}

export type { Metrics };

/** The scan loop's period, parallelism and per-node timeout, as configured (`run` and `scan` alike). */
export function monitorTimings(config: Config): {
  intervalMs: number;
  concurrency: number;
  nodeTimeoutMs: number;
} {
  return {
    intervalMs: config.monitor.intervalSeconds * 1000,
    concurrency: config.monitor.scanConcurrency,
    nodeTimeoutMs: config.monitor.scanTimeoutSeconds * 1000,
  };
}
