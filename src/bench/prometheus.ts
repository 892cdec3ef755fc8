/**
 * The Prometheus-source column of the benchmark: the simulator (in its own process) runs a Prometheus over
 * its exporters; gpu-medic scans with DCGM_SOURCE=prometheus. Three GPUs on three nodes carry XID 79; every
 * measured scan must find exactly those three, and exactly three incidents stay open. Measured per scan:
 * wall, CPU and peak RSS of this process, and the bytes of Prometheus answers read.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSensing, type Sensing } from '../app/sensing.js';
import type { PrometheusClient } from '../collect/prometheus-client.js';
import { loadConfig } from '../config/config.js';
import { silentLogger } from '../log/logger.js';
import { Monitor } from '../monitor/monitor.js';
import { type SimulatorProcess, startSimulatorProcess } from '../sim/process.js';
import { openStore, type Store } from '../store/index.js';
import { benchMonitorOptions } from './monitor-options.js';

export interface PromScanMeasurement {
  index: number;
  warmup: boolean;
  wallMs: number;
  /** This process's CPU (user + system) during the scan. */
  cpuMs: number;
  peakRssBytes: number;
  /** Prometheus answer bytes read during the scan. */
  bytesRead: number;
  /** Queries the simulated Prometheus answered during the scan. */
  queries: number;
  failures: number;
  /** Quiet nodes read the same as at their last record (ScanReport.unchanged): no rules, no triage. */
  unchanged: number;
  /** Nodes whose verdict carries XID_CRITICAL_79. */
  faultyNodes: number;
  /**
   * The source's own share, measured in a separate pass after the scan: the fleet read (queries, JSON,
   * validation, join) and every node's snapshot — without the rules verdicts and the Monitor's per-node triage
   * and SQLite recording, which every source pays alike.
   */
  sourceCpuMs: number;
  /** The rules verdicts of that pass's snapshots. */
  rulesCpuMs: number;
}

export interface PromBenchResult {
  nodes: number;
  gpusPerNode: number;
  faulty: { node: string; gpu: number }[];
  scans: PromScanMeasurement[];
  /** Open incidents after the last scan, as node/category pairs. */
  openIncidents: string[];
  /** Whether the open incidents are exactly one XID 79 per faulty node. */
  exact: boolean;
  simRssBytes: number;
}

const FAULTS = 3;
const RSS_SAMPLE_MS = 20;

async function waitForSeries(url: string, want: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${url}/api/v1/query`, {
      method: 'POST',
      body: new URLSearchParams({ query: 'DCGM_FI_DEV_XID_ERRORS > 0' }),
    });
    const body = (await res.json()) as { data?: { result?: unknown[] } };
    if ((body.data?.result?.length ?? 0) >= want) return;
    if (Date.now() > deadline) throw new Error(`Prometheus did not show ${want} XIDs within ${timeoutMs} ms`);
    // The simulated Prometheus scrapes on its own period: look again shortly.
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * CPU of one source-only pass, in two parts: the fleet read plus every node's snapshot (the source's own
 * work), then the rules verdict of each snapshot (which every source's snapshots go through alike).
 */
async function sourcePass(sensing: Sensing): Promise<{ source: number; rules: number }> {
  const signal = new AbortController().signal;
  const nodes = sensing.watcher.list();
  const ms = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;
  const cpu0 = process.cpuUsage();
  await sensing.collector.beforeScan?.();
  const snapshots = [];
  // As the Monitor reads them: from the scan's fleet read when the source has the node in memory.
  const { collector } = sensing;
  for (const node of nodes)
    snapshots.push(collector.fromScanRead?.(node) ?? (await collector.collect(node, signal)));
  const source = ms(process.cpuUsage(cpu0));
  const cpu1 = process.cpuUsage();
  for (const s of snapshots) sensing.classifier.rules(s);
  return { source, rules: ms(process.cpuUsage(cpu1)) };
}

/** One fleet size with DCGM_SOURCE=prometheus; always closes what it started. */
export async function runPrometheusBenchSize(opts: {
  nodes: number;
  gpusPerNode?: number;
  scans?: number;
  progress?: (line: string) => void;
}): Promise<PromBenchResult> {
  const gpusPerNode = opts.gpusPerNode ?? 8;
  const progress = opts.progress ?? (() => undefined);
  const dir = await mkdtemp(join(tmpdir(), 'gpu-medic-bench-prom-'));
  let sim: SimulatorProcess | undefined;
  let sensing: Sensing | undefined;
  let store: Store | undefined;
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, RSS_SAMPLE_MS);
  sampler.unref();
  try {
    sim = await startSimulatorProcess({
      nodes: opts.nodes,
      gpusPerNode,
      slack: false,
      logLimit: 1000,
      prometheus: { scrapeIntervalMs: 2000 },
    });
    const promUrl = sim.env.PROMETHEUS_URL ?? '';
    const config = loadConfig(
      {
        ...sim.env,
        DCGM_SOURCE: 'prometheus',
        PROMETHEUS_URL: promUrl,
        DB_PATH: join(dir, 'bench.db'),
        LOG_LEVEL: 'silent',
        CLASSIFIER: 'rules',
        POD_NAMESPACE: 'gpu-medic',
      },
      { namespaceFile: join(dir, 'no-namespace-file') },
    );
    store = openStore(config.store.dbPath);
    const logger = silentLogger();
    sensing = createSensing(config, { logger, llmCache: store.llmCache });
    await sensing.start();
    const client = (sensing.collector as { client?: PrometheusClient }).client;
    if (!client) throw new Error('the prometheus source has no client');
    const monitor = new Monitor(benchMonitorOptions(config, sensing, store, logger));
    const names = sensing.watcher.list().map((n) => n.name);
    const step = Math.max(1, Math.floor(names.length / FAULTS));
    const faulty = Array.from({ length: Math.min(FAULTS, names.length) }, (_, i) => ({
      node: names[i * step] as string,
      gpu: (i * 3) % gpusPerNode,
    }));

    const scans: PromScanMeasurement[] = [];
    const total = 1 + (opts.scans ?? 3);
    for (let i = 0; i < total; i++) {
      if (i === 1) {
        // After the warm-up (first sight of every node): the faults, once Prometheus has scraped them.
        for (const f of faulty) await sim.inject({ kind: 'xid', node: f.node, gpu: f.gpu, xid: 79 });
        await waitForSeries(promUrl, faulty.length, 60_000);
      }
      const req0 = (await sim.requestCounts()).byService.prometheus ?? 0;
      const bytes0 = client.bytesRead();
      const cpu0 = process.cpuUsage();
      peak = process.memoryUsage.rss();
      const report = await monitor.scanOnce();
      const cpu = process.cpuUsage(cpu0);
      const peakRssBytes = Math.max(peak, process.memoryUsage.rss());
      const bytesRead = client.bytesRead() - bytes0;
      const req1 = (await sim.requestCounts()).byService.prometheus ?? 0;
      const m: PromScanMeasurement = {
        index: i + 1,
        warmup: i === 0,
        wallMs: report.durationMs,
        cpuMs: (cpu.user + cpu.system) / 1000,
        peakRssBytes,
        bytesRead,
        queries: req1 - req0,
        failures: report.failures,
        unchanged: report.unchanged,
        faultyNodes: report.summaries.filter((s) =>
          s.verdict.findings.some((f) => f.category === 'XID_CRITICAL_79'),
        ).length,
        sourceCpuMs: 0,
        rulesCpuMs: 0,
      };
      const pass = await sourcePass(sensing);
      m.sourceCpuMs = pass.source;
      m.rulesCpuMs = pass.rules;
      scans.push(m);
      progress(
        `  prometheus scan ${m.index}${m.warmup ? ' (warm-up)' : ''}: ${Math.round(m.wallMs)} ms wall, ${Math.round(m.cpuMs)} ms CPU, ` +
          `${(m.peakRssBytes / 1e6).toFixed(0)} MB RSS, ${(m.bytesRead / 1e3).toFixed(1)} kB read, ${m.unchanged} unchanged, ${m.faultyNodes} faulty nodes, ${m.failures} failures`,
      );
    }
    const open = store.incidents.listOpen();
    const openIncidents = open.map((i) => `${i.node}/${i.category}`).sort();
    const want = faulty.map((f) => `${f.node}/XID_CRITICAL_79`).sort();
    const exact = JSON.stringify(openIncidents) === JSON.stringify(want);
    return {
      nodes: opts.nodes,
      gpusPerNode,
      faulty,
      scans,
      openIncidents,
      exact,
      simRssBytes: await sim.rss(),
    };
  } finally {
    clearInterval(sampler);
    await sensing?.stop().catch(() => undefined);
    store?.close();
    await sim?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const MB = 1e6;
const measured = (r: PromBenchResult) => r.scans.filter((s) => !s.warmup);
const worst = (r: PromBenchResult, f: (s: PromScanMeasurement) => number) => Math.max(...measured(r).map(f));

/** Rows of the Prometheus-source table (worst measured scan), and whether each target is met. */
export function prometheusRows(results: PromBenchResult[]): string[][] {
  return results.map((r) => {
    const cpu = worst(r, (s) => s.cpuMs);
    const bytes = worst(r, (s) => s.bytesRead);
    const found = measured(r).map((s) => s.faultyNodes);
    return [
      r.nodes.toLocaleString('en-US'),
      `${Math.round(worst(r, (s) => s.wallMs))} ms`,
      `${Math.round(cpu)} ms ${cpu <= 100 ? '(met)' : '(NOT met)'}`,
      Math.min(...measured(r).map((s) => s.unchanged)).toLocaleString('en-US'),
      `${Math.round(worst(r, (s) => s.sourceCpuMs))} ms`,
      `${Math.round(worst(r, (s) => s.rulesCpuMs))} ms`,
      `${(worst(r, (s) => s.peakRssBytes) / MB).toFixed(0)} MB`,
      `${(bytes / 1e3).toFixed(1)} kB ${bytes <= MB ? '(met)' : '(NOT met)'}`,
      `${[...new Set(found)].join('/')} of ${r.faulty.length} found, ${r.openIncidents.length} incidents ${r.exact ? '(exact)' : '(NOT exact)'}`,
      String(measured(r).reduce((n, s) => n + s.failures, 0)),
    ];
  });
}

export const PROMETHEUS_HEADER = [
  'Nodes',
  'Wall / scan',
  'CPU / scan (≤ 100 ms)',
  'Unchanged nodes (fewest)',
  'source: read + snapshots',
  'rules verdicts',
  'Peak RSS',
  'Read / scan (≤ 1 MB)',
  'XID 79 on 3 GPUs',
  'Failures',
];

/** The docs/benchmarks.md section for the Prometheus source. */
export function prometheusMarkdown(results: PromBenchResult[]): string {
  if (results.length === 0) return '';
  const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    '## Prometheus source (DCGM_SOURCE=prometheus)',
    '',
    'The simulator runs a Prometheus over its exporters (in its own process); gpu-medic reads through its',
    'instant-query API: 4 abnormal-series queries and 1 coverage query per scan. XID 79 is injected on 3 GPUs',
    '(3 nodes) after the warm-up scan; figures are the worst of the measured scans; CPU and RSS are this',
    "process's, bytes are the Prometheus answers' bodies. The two CPU columns after it come from a separate",
    "pass after each scan: the source's own work (the fleet read: 5 queries, JSON, validation, join; every",
    "node's snapshot), then the rules verdicts of all those snapshots. The rest of a scan's CPU is the Monitor's",
    'per-node triage and SQLite recording. Rules and Monitor are the same for every source.',
    '',
    'A node this source reads with nothing abnormal carries a `readKey` (its coverage value); a quiet node read',
    'again from the same node object with the same key is "unchanged": its recorded verdict stands and the',
    'Monitor runs neither the rules nor triage for it, so a steady scan costs the fleet read, one comparison',
    "per node, the nodes that changed, and the stored scan times of a tenth of the quiet nodes (each node's",
    'every 10 scans, staggered). The scans here follow each other at once; the node objects only change with',
    'the nodes (a kubelet heartbeat keeps the object). A scan in which every node changed (the first after a',
    'start, excluded here as the warm-up) takes every node the long way.',
    '',
    row(PROMETHEUS_HEADER),
    row(PROMETHEUS_HEADER.map(() => '---')),
    ...prometheusRows(results).map(row),
    '',
  ].join('\n');
}
