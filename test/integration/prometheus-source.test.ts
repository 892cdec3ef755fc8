/**
 * Issue 15, item 1: DCGM_SOURCE=prometheus end to end — the simulated cluster, its Prometheus answering the
 * HTTP API over the exporters' scrapes, the real sensing stack and Monitor. An XID 79 is one incident; an
 * exporter that stops is a coverage gap (a collection failure), never healthy; a lost GPU is found against
 * the physical count; the same faults give the same findings as scraping the exporters directly.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSensing, initialPlan, type Sensing } from '../../src/app/sensing.js';
import { type Config, loadConfig } from '../../src/config/config.js';
import { silentLogger } from '../../src/log/logger.js';
import { Monitor, type ScanReport } from '../../src/monitor/monitor.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { openStore, type Store } from '../../src/store/index.js';

let sim: Simulator;
let dir: string;
let config: Config;
let store: Store;
let sensing: Sensing;
let direct: Sensing;
let monitor: Monitor;
let nodes: string[];

beforeAll(async () => {
  // Scrapes are driven by the test (scrapeNow); the background interval is long enough not to interleave.
  sim = await startSimulator({
    nodes: 4,
    slack: false,
    controlPort: false,
    prometheus: { scrapeIntervalMs: 3_600_000 },
  });
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-prom-'));
  const env = {
    ...sim.env,
    DB_PATH: join(dir, 'gpu-medic.db'),
    CLASSIFIER: 'rules',
    SCAN_TIMEOUT: '5',
    LOG_LEVEL: 'silent',
  };
  config = loadConfig({ ...env, DCGM_SOURCE: 'prometheus' });
  store = openStore(config.store.dbPath);
  sensing = createSensing(config, { logger: silentLogger() });
  direct = createSensing(loadConfig({ ...env, DCGM_SOURCE: 'exporter' }), { logger: silentLogger() });
  await Promise.all([sensing.start(), direct.start()]);
  monitor = new Monitor({
    listNodes: () => sensing.watcher.list(),
    collector: sensing.collector,
    classifier: sensing.classifier,
    store,
    plan: initialPlan(config),
    intervalMs: 60_000,
    concurrency: config.monitor.scanConcurrency,
    nodeTimeoutMs: config.monitor.scanTimeoutSeconds * 1000,
  });
  nodes = sim.cluster
    .listNodes()
    .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
    .map((n) => n.metadata?.name ?? '');
});

afterAll(async () => {
  await monitor?.stop();
  await sensing?.stop();
  await direct?.stop();
  store?.close();
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

const resultOn = (report: ScanReport, node: string) => report.results.find((r) => r.node.name === node);

async function scans(n: number): Promise<ScanReport> {
  let report: ScanReport | undefined;
  for (let i = 0; i < n; i++) {
    sim.prometheus?.scrapeNow();
    report = await monitor.scanOnce();
  }
  if (!report) throw new Error('no scan');
  return report;
}

describe('DCGM_SOURCE=prometheus against the simulated Prometheus', () => {
  it('a healthy fleet: every node read through Prometheus, every GPU listed, no incident', async () => {
    const report = await scans(2);
    expect(report.failures).toBe(0);
    expect(report.coverage).toMatchObject({ nodes: 4, read: 4 });
    // The stock exporter: XID, row remapping and temperatures; no ECC, NVLink or health.
    expect(report.coverage.byFamily).toMatchObject({ xid: 4, row_remap: 4, thermal: 4, ecc: 0, nvlink: 0 });
    for (const node of nodes) {
      const r = resultOn(report, node);
      expect(r?.snapshot.source).toBe('prometheus');
      expect(r?.snapshot.gpus.map((g) => [g.index, g.xidLast])).toEqual(
        [0, 1, 2, 3, 4, 5, 6, 7].map((i) => [i, 0]),
      );
    }
    expect(store.incidents.listOpen()).toHaveLength(0);
    // Only the queries the source sends, all answered.
    sim.assertNoUnexpected();
  });

  it('XID 79 injected → exactly one incident, however many scans follow', async () => {
    const a = nodes[0] ?? '';
    sim.cluster.injectXid(a, 3, 79);
    const report = await scans(4);
    const gpu3 = resultOn(report, a)?.snapshot.gpus.find((g) => g.index === 3);
    expect(gpu3).toMatchObject({ xidLast: 79, uuid: expect.stringMatching(/^GPU-/) });
    expect(gpu3?.xids?.[0]?.message).toBe('GPU has fallen off the bus');
    expect(store.incidents.listOpen().map((i) => [i.node, i.category])).toEqual([[a, 'XID_CRITICAL_79']]);
  });

  it('the same faults give the same findings as scraping the exporters directly', async () => {
    const b = nodes[1] ?? '';
    sim.cluster.setCounters(b, 'full');
    sim.cluster.injectEcc(b, 5, { dbe: 2 });
    sim.cluster.setTemperature(b, 1, 93);
    const report = await scans(1);
    const viaProm = resultOn(report, b)?.verdict.findings.map((f) => [f.key, f.category, f.severity]);
    const node = sensing.watcher.list().find((n) => n.name === b);
    if (!node) throw new Error('node not watched');
    const scraped = await direct.scanNode(node);
    expect(viaProm).toEqual(scraped.verdict.findings.map((f) => [f.key, f.category, f.severity]));
    expect(viaProm?.map((f) => f[0])).toEqual(expect.arrayContaining(['ecc_dbe:gpu5', 'thermal:gpu1']));
    expect(resultOn(report, b)?.snapshot.signals).toEqual(scraped.snapshot.signals);
  });

  it('a GPU gone from the exporter is missing against the physical count, by index', async () => {
    const c = nodes[2] ?? '';
    sim.cluster.dropGpu(c, 6);
    const report = await scans(1);
    const r = resultOn(report, c);
    expect(r?.snapshot.gpus.map((g) => g.index)).toEqual([0, 1, 2, 3, 4, 5, 7]);
    const missing = r?.verdict.findings.find((f) => f.kind === 'gpu_missing');
    expect(missing?.evidence[0]).toBe('DCGM reports 7 of 8 GPUs (missing index 6)');
    // Asked only for the node that reported too few.
    expect(sim.prometheus?.queries().filter((q) => q.startsWith('count by (Hostname, gpu)'))).toHaveLength(1);
  });

  it('an exporter that stops is a coverage gap and a collection failure, never healthy', async () => {
    const d = nodes[3] ?? '';
    sim.cluster.setExporter(d, 'error');
    const report = await scans(1);
    const r = resultOn(report, d);
    expect(r?.snapshot.error).toMatchObject({
      kind: 'no-exporter',
      message: expect.stringContaining('no current DCGM series'),
    });
    expect(r?.verdict.findings.map((f) => f.category)).toEqual(['COLLECTION_FAILED']);
    expect(report.coverage).toMatchObject({ nodes: 4, read: 3 });
    expect(report.failures).toBe(1);
  });
});
