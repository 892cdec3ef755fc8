/**
 * One benchmark size: the simulator in its own process (its CPU is not ours), the real sensing stack
 * and Monitor in this process, a few full scans measured one by one, then fault → incident latency
 * with the monitor loop running. Measures only; judging against the targets is report.ts's job.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { createSensing, EXPORTER_SELECTORS, type Sensing } from '../app/sensing.js';
import { parsePrometheus } from '../collect/parse/prometheus.js';
import { loadConfig } from '../config/config.js';
import type { Incident } from '../domain/incident.js';
import { RawHttpClient } from '../k8s/raw-http.js';
import { silentLogger } from '../log/logger.js';
import { DEFAULT_JITTER, Monitor, type ScanReport } from '../monitor/monitor.js';
import { type SimulatorProcess, startSimulatorProcess } from '../sim/process.js';
import { openStore, type Store } from '../store/index.js';
import { benchMonitorOptions } from './monitor-options.js';
import { type PushTrial, pushTrials } from './push.js';

export interface BenchSizeOptions {
  nodes: number;
  gpusPerNode?: number;
  /** SCAN_CONCURRENCY. Default 32 (the product's default). */
  concurrency?: number;
  /** Scans run before measuring (first sight of every node, JIT warm-up). Default 1. */
  warmups?: number;
  /** Measured scans. Default 3. */
  scans?: number;
  /**
   * MONITOR_INTERVAL for the fault → incident part, in seconds. Default: chosen from the measured
   * scans (`intervalFor`).
   */
  intervalSeconds?: number;
  /** Injected faults, one after the other, each on another node. 0 skips the part. Default 3. */
  faultTrials?: number;
  /** Alertmanager pushes (push.ts), each for a fresh XID 79. 0 skips the part. Default 3. */
  pushTrials?: number;
  /** Called once the simulator process runs (the 1-CPU child pins itself here, leaving the simulator out). */
  afterSimulatorStart?: () => void;
  /** Progress lines (stderr in the command); default none. */
  progress?: (line: string) => void;
  random?: () => number;
}

export interface ScanMeasurement {
  index: number;
  warmup: boolean;
  nodes: number;
  wallMs: number;
  /** Our process's CPU (user + system) during the scan. */
  cpuMs: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  /** Highest sampled RSS of our process during the scan. */
  peakRssBytes: number;
  /** Requests the simulator's fakes served during the scan. */
  requests: number;
  failures: number;
  /** The simulator process's CPU during the scan, for context. */
  simCpuMs: number;
}

export interface FaultTrial {
  node: string;
  gpu: number;
  /** How long after the loop (re)started the fault was injected: a random moment of its period. */
  injectedAfterMs: number;
  /** Injection → onIncident, wall clock; undefined when no incident came within the wait. */
  latencyMs?: number;
  category?: string;
  waitedMs: number;
}

export interface PayloadSample {
  bytes: number;
  lines: number;
  families: number;
  samples: number;
}

export interface SizeResult {
  nodes: number;
  gpusPerNode: number;
  concurrency: number;
  intervalSeconds: number;
  jitter: number;
  simStartMs: number;
  /** sensing.start(): node and pod informers listed. */
  syncMs: number;
  nodesSeen: number;
  payload?: PayloadSample;
  scans: ScanMeasurement[];
  faults: FaultTrial[];
  /** Fault → incident through Alertmanager pushes (push.ts); absent when the part was skipped. */
  pushes?: PushTrial[];
  /** process.resourceUsage().maxRSS at the end of this size (whole-process peak so far). */
  processMaxRssBytes: number;
  simRssBytes: number;
}

/** The monitor's default jitter (each period is the interval × (1 ± jitter/2)); the bench keeps it. */
const MONITOR_JITTER = DEFAULT_JITTER;
const INTERVAL_CHOICES_S = [5, 10, 15, 30, 60];

/** The smallest usual MONITOR_INTERVAL with room for the scan: at least 1.5 × the slowest scan. */
export function intervalFor(slowestScanMs: number): number {
  const need = (slowestScanMs * 1.5) / 1000;
  return INTERVAL_CHOICES_S.find((s) => s >= need) ?? Math.ceil(need);
}
const RSS_SAMPLE_MS = 20;

/** Samples RSS on a timer: maxRSS is a lifetime peak, so per-scan peaks need sampling. */
export function rssSampler(): { reset(): void; peak(): number; stop(): void } {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    const r = process.memoryUsage.rss();
    if (r > peak) peak = r;
  }, RSS_SAMPLE_MS);
  timer.unref();
  return {
    reset: () => {
      peak = process.memoryUsage.rss();
    },
    peak: () => Math.max(peak, process.memoryUsage.rss()),
    stop: () => clearInterval(timer),
  };
}

const cpuMsOf = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

/** One exporter scrape through the API-server pod proxy, to show the payload's size and shape. */
async function samplePayload(sensing: Sensing, port: number): Promise<PayloadSample | undefined> {
  const api = sensing.kc.makeApiClient(CoreV1Api);
  for (const labelSelector of EXPORTER_SELECTORS) {
    const pods = await api.listPodForAllNamespaces({ labelSelector, limit: 1 });
    const pod = pods.items[0];
    const ns = pod?.metadata?.namespace;
    const name = pod?.metadata?.name;
    if (!ns || !name) continue;
    const http = new RawHttpClient(sensing.kc, 1);
    try {
      const text = await http.getApi(
        `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(`${name}:${port}`)}/proxy/metrics`,
        { timeoutMs: 10_000, maxBytes: 16 * 1024 * 1024 },
      );
      const parsed = parsePrometheus(text);
      return {
        bytes: Buffer.byteLength(text),
        lines: text.split('\n').length,
        families: parsed.families.size,
        samples: parsed.samples.length,
      };
    } finally {
      http.close();
    }
  }
  return undefined;
}

export async function measureScan(
  monitor: Monitor,
  sim: SimulatorProcess,
  rss: ReturnType<typeof rssSampler>,
  index: number,
  warmup: boolean,
): Promise<ScanMeasurement> {
  const [req0, simCpu0] = await Promise.all([sim.requestCount(), sim.cpuUsage()]);
  rss.reset();
  const cpu0 = process.cpuUsage();
  const report: ScanReport = await monitor.scanOnce();
  const cpu = process.cpuUsage(cpu0);
  const peakRssBytes = rss.peak();
  const [req1, simCpu1] = await Promise.all([sim.requestCount(), sim.cpuUsage()]);
  return {
    index,
    warmup,
    nodes: report.summaries.length,
    wallMs: report.durationMs,
    cpuMs: cpuMsOf(cpu),
    cpuUserMs: cpu.user / 1000,
    cpuSystemMs: cpu.system / 1000,
    peakRssBytes,
    requests: req1 - req0,
    failures: report.failures,
    simCpuMs: cpuMsOf(simCpu1) - cpuMsOf(simCpu0),
  };
}

function pickDistinct(count: number, n: number, random: () => number): number[] {
  const picked = new Set<number>();
  while (picked.size < Math.min(count, n)) picked.add(Math.floor(random() * n));
  return [...picked];
}

/** Runs the monitor loop and injects XID 79 at random moments; resolves with each trial's latency. */
async function faultTrials(
  base: Omit<ConstructorParameters<typeof Monitor>[0], 'onIncident'>,
  sim: SimulatorProcess,
  nodeNames: string[],
  opts: {
    trials: number;
    gpus: number;
    lastScanMs: number;
    random: () => number;
    progress: (l: string) => void;
  },
): Promise<FaultTrial[]> {
  opts.progress(`  fault → incident with MONITOR_INTERVAL ${base.intervalMs / 1000} s`);
  let waiting: { node: string; resolve: (i: Incident) => void } | undefined;
  const monitor = new Monitor({
    ...base,
    jitter: MONITOR_JITTER,
    onIncident: (incident) => {
      if (waiting && incident.node === waiting.node && incident.category === 'XID_CRITICAL_79') {
        waiting.resolve(incident);
      }
    },
  });
  // Scans start on a fixed period (the interval, ± jitter/2); a uniform moment in it is a random moment.
  const period = Math.max(base.intervalMs, opts.lastScanMs);
  // Worst case: the fault lands just after its node was read, then a full period and a scan pass.
  const maxWaitMs = 3 * period + 10_000;
  const trials: FaultTrial[] = [];
  monitor.start();
  try {
    for (const i of pickDistinct(opts.trials, nodeNames.length, opts.random)) {
      const node = nodeNames[i] as string;
      const gpu = Math.floor(opts.random() * opts.gpus);
      const injectedAfterMs = Math.round(opts.random() * period);
      await new Promise((r) => setTimeout(r, injectedAfterMs));
      const arrived = new Promise<Incident>((resolve) => {
        waiting = { node, resolve };
      });
      const t0 = performance.now();
      await sim.inject({ kind: 'xid', node, gpu, xid: 79 });
      let timer: NodeJS.Timeout | undefined;
      const incident = await Promise.race([
        arrived,
        new Promise<undefined>((r) => {
          timer = setTimeout(() => r(undefined), maxWaitMs);
        }),
      ]);
      clearTimeout(timer);
      const waitedMs = performance.now() - t0;
      waiting = undefined;
      const trial: FaultTrial = incident
        ? { node, gpu, injectedAfterMs, latencyMs: waitedMs, category: incident.category, waitedMs }
        : { node, gpu, injectedAfterMs, waitedMs };
      trials.push(trial);
      opts.progress(
        `  fault ${trials.length}: XID 79 on ${node} GPU ${gpu} → ${
          trial.latencyMs === undefined
            ? `no incident within ${Math.round(waitedMs)} ms`
            : `incident in ${Math.round(trial.latencyMs)} ms`
        }`,
      );
    }
  } finally {
    await monitor.stop();
  }
  return trials;
}

/** Measures one fleet size end to end; always closes the simulator, the sensing stack and the store. */
export async function runBenchSize(opts: BenchSizeOptions): Promise<SizeResult> {
  const gpusPerNode = opts.gpusPerNode ?? 8;
  const concurrency = opts.concurrency ?? 32;
  const progress = opts.progress ?? (() => undefined);
  const random = opts.random ?? Math.random;
  const dir = await mkdtemp(join(tmpdir(), 'gpu-medic-bench-'));
  let sim: SimulatorProcess | undefined;
  let sensing: Sensing | undefined;
  let store: Store | undefined;
  const rss = rssSampler();
  try {
    let t = performance.now();
    // Workloads stay on: they include the dcgm-exporter DaemonSet pods. Slack is never read here.
    sim = await startSimulatorProcess({ nodes: opts.nodes, gpusPerNode, slack: false, logLimit: 1000 });
    const simStartMs = performance.now() - t;
    opts.afterSimulatorStart?.();
    const config = loadConfig(
      {
        ...sim.env,
        DB_PATH: join(dir, 'bench.db'),
        LOG_LEVEL: 'silent',
        SCAN_CONCURRENCY: String(concurrency),
        POD_NAMESPACE: 'gpu-medic',
      },
      { namespaceFile: join(dir, 'no-namespace-file') },
    );
    const logger = silentLogger();
    store = openStore(config.store.dbPath);
    sensing = createSensing(config, { logger, llmCache: store.llmCache });
    t = performance.now();
    await sensing.start();
    const syncMs = performance.now() - t;
    const nodes = sensing.watcher.list();
    progress(
      `${opts.nodes} nodes: simulator up in ${Math.round(simStartMs)} ms, informers synced in ${Math.round(syncMs)} ms`,
    );
    const payload = await samplePayload(sensing, config.dcgm.port);

    const base = benchMonitorOptions(config, sensing, store, logger);
    const monitor = new Monitor(base);
    const scans: ScanMeasurement[] = [];
    const warmups = opts.warmups ?? 1;
    const measured = opts.scans ?? 3;
    for (let i = 0; i < warmups + measured; i++) {
      const m = await measureScan(monitor, sim, rss, i + 1, i < warmups);
      scans.push(m);
      progress(
        `  scan ${m.index}${m.warmup ? ' (warm-up)' : ''}: ${Math.round(m.wallMs)} ms wall, ${Math.round(m.cpuMs)} ms CPU, ` +
          `${(m.peakRssBytes / 1e6).toFixed(0)} MB RSS, ${m.requests} requests, ${m.failures} failures`,
      );
    }

    const lastScanMs = scans.at(-1)?.wallMs ?? 0;
    const slowest = Math.max(0, ...scans.filter((m) => !m.warmup).map((m) => m.wallMs));
    const intervalSeconds = opts.intervalSeconds ?? intervalFor(slowest);
    const faults =
      (opts.faultTrials ?? 3) > 0
        ? await faultTrials(
            { ...base, intervalMs: intervalSeconds * 1000 },
            sim,
            nodes.map((n) => n.name),
            { trials: opts.faultTrials ?? 3, gpus: gpusPerNode, lastScanMs, random, progress },
          )
        : [];
    const pushes =
      (opts.pushTrials ?? 3) > 0
        ? await pushTrials(
            base,
            sim,
            // Not a node the scan trials already faulted: its XID 79 is open, a push would only touch it.
            nodes.map((n) => n.name).filter((n) => !faults.some((f) => f.node === n)),
            { trials: opts.pushTrials ?? 3, gpus: gpusPerNode, random, progress },
          )
        : [];
    const simRssBytes = await sim.rss();
    return {
      nodes: opts.nodes,
      gpusPerNode,
      concurrency,
      intervalSeconds,
      jitter: MONITOR_JITTER,
      simStartMs,
      syncMs,
      nodesSeen: nodes.length,
      ...(payload ? { payload } : {}),
      scans,
      faults,
      pushes,
      processMaxRssBytes: process.resourceUsage().maxRSS * 1024,
      simRssBytes,
    };
  } finally {
    rss.stop();
    await sensing?.stop().catch(() => undefined);
    store?.close();
    await sim?.close();
    await rm(dir, { recursive: true, force: true });
  }
}
