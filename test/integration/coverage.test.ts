/**
 * Issue 10, item 2, "Done when": with dcgm-exporter's stock counters (the simulator's default) an XID 48 is
 * still found through the XID, `gpu_medic_signal_nodes{family="ecc"}` is 0 on those nodes and the log says
 * so once over many scans; with the full counter set a DBE is found from the ECC counter.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSensing, initialPlan, type Sensing } from '../../src/app/sensing.js';
import { parsePrometheus } from '../../src/collect/parse/prometheus.js';
import { type Config, loadConfig } from '../../src/config/config.js';
import { silentLogger } from '../../src/log/logger.js';
import { createMetrics, type Metrics, renderMetrics } from '../../src/metrics/metrics.js';
import { Monitor, type ScanReport } from '../../src/monitor/monitor.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { openStore, type Store } from '../../src/store/index.js';

let sim: Simulator;
let dir: string;
let config: Config;
let store: Store;
let sensing: Sensing;
let metrics: Metrics;
let monitor: Monitor;
let nodes: string[];
/** Every line the monitor logged, parsed. */
const logged: { level: number; msg: string; missing?: string[]; coverage?: string[] }[] = [];

beforeAll(async () => {
  sim = await startSimulator({ nodes: 4, slack: false, controlPort: false });
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-coverage-'));
  config = loadConfig({
    ...sim.env,
    DB_PATH: join(dir, 'gpu-medic.db'),
    CLASSIFIER: 'rules',
    SCAN_TIMEOUT: '5',
    LOG_LEVEL: 'silent',
  });
  store = openStore(config.store.dbPath);
  sensing = createSensing(config, { logger: silentLogger() });
  await sensing.start();
  metrics = createMetrics(new Registry(), { defaultMetrics: false });
  const destination = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) logged.push(JSON.parse(line));
      done();
    },
  });
  monitor = new Monitor({
    listNodes: () => sensing.watcher.list(),
    collector: sensing.collector,
    classifier: sensing.classifier,
    store,
    plan: initialPlan(config),
    intervalMs: 60_000,
    concurrency: config.monitor.scanConcurrency,
    nodeTimeoutMs: config.monitor.scanTimeoutSeconds * 1000,
    metrics,
    logger: pino({ level: 'info' }, destination),
  });
  nodes = sim.cluster
    .listNodes()
    .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
    .map((n) => n.metadata?.name ?? '');
});

afterAll(async () => {
  await monitor?.stop();
  await sensing?.stop();
  store?.close();
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** `gpu_medic_signal_nodes{family}` as /metrics serves it, parsed back. */
async function signalNodes(family: string): Promise<number | undefined> {
  const { body } = await renderMetrics(metrics);
  return parsePrometheus(body).samples.find(
    (s) => s.name === 'gpu_medic_signal_nodes' && s.labels.family === family,
  )?.value;
}

const warnings = () => logged.filter((l) => l.level === 40 && l.msg.startsWith('signal families missing'));

function findingsOn(report: ScanReport, node: string) {
  return report.results.find((r) => r.node.name === node)?.verdict.findings ?? [];
}

describe('detection coverage with stock and full dcgm-exporter counters', () => {
  it('stock counters: XID 48 found through the XID, ECC coverage 0, one warning over many scans', async () => {
    const a = nodes[1] ?? '';
    // XID 48 is the driver's report of a DBE: the GPU's ECC counter moves too, but a stock exporter hides it.
    sim.cluster.injectXid(a, 2, 48);
    sim.cluster.injectEcc(a, 2, { dbe: 1 });
    let report: ScanReport | undefined;
    for (let i = 0; i < 4; i++) report = await monitor.scanOnce();
    if (!report) throw new Error('no scan');
    expect(report.failures).toBe(0);

    const found = findingsOn(report, a);
    expect(found.map((f) => f.category)).toContain('XID_CRITICAL_48');
    expect(found.some((f) => f.kind === 'ecc_dbe')).toBe(false);
    expect(store.incidents.listOpen().map((i) => [i.node, i.category])).toEqual([[a, 'XID_CRITICAL_48']]);

    expect(report.coverage).toMatchObject({ nodes: 4, read: 4 });
    expect(await signalNodes('ecc')).toBe(0);
    expect(await signalNodes('retired_pages')).toBe(0);
    expect(await signalNodes('nvlink')).toBe(0);
    expect(await signalNodes('xid')).toBe(4);
    expect(await signalNodes('thermal')).toBe(4);

    // Four scans, one warning, naming the families the stock file leaves out.
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]?.missing).toEqual(['xid_count', 'ecc', 'retired_pages', 'nvlink', 'health']);
    expect(warnings()[0]?.coverage).toContain('ECC counters: 0 of 4 nodes');
  });

  it('full counters on one node: its DBE is found from the ECC counter; the gap is unchanged, no new warning', async () => {
    const b = nodes[2] ?? '';
    sim.cluster.setCounters(b, 'full');
    sim.cluster.injectEcc(b, 5, { dbe: 2 });
    let report: ScanReport | undefined;
    for (let i = 0; i < 3; i++) report = await monitor.scanOnce();
    if (!report) throw new Error('no scan');

    const dbe = findingsOn(report, b).find((f) => f.kind === 'ecc_dbe');
    expect(dbe).toMatchObject({ category: 'ECC_ERROR', severity: 'critical', gpu: 5 });
    expect(dbe?.evidence.join(' ')).toContain('ECC DBE volatile total=2');
    expect(store.incidents.listOpen().some((i) => i.node === b && i.category === 'ECC_ERROR')).toBe(true);

    expect(await signalNodes('ecc')).toBe(1);
    expect(await signalNodes('health')).toBe(1);
    // The same families are still missing on some nodes: the warning is not repeated.
    expect(warnings()).toHaveLength(1);
  });

  it('full counters everywhere: every node carries ECC, and the log says the gap closed once', async () => {
    sim.cluster.setDefaultCounters('full');
    for (let i = 0; i < 3; i++) await monitor.scanOnce();
    expect(await signalNodes('ecc')).toBe(4);
    expect(await signalNodes('kernel_log')).toBe(0);
    expect(warnings()).toHaveLength(1);
    expect(logged.filter((l) => l.msg.startsWith('every node read now carries'))).toHaveLength(1);
  });
});
