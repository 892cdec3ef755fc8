/**
 * Issue 15, item 3: a real Prometheus (the `prometheus` binary) scrapes the simulated exporters; gpu-medic
 * with DCGM_SOURCE=prometheus reads through it. An injected XID 79 becomes exactly one incident; an exporter
 * that stops becomes a coverage gap. And the simulator's own Prometheus API answers every query the source
 * sends in the same shape as the real one (result type, labels, values), so `npm test` can rely on it.
 * Run with `npm run test:interop` (not part of `npm test`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSensing, initialPlan, type Sensing } from '../../src/app/sensing.js';
import { abnormalQueries, coverageQuery, gpuIndexQuery } from '../../src/collect/prometheus-queries.js';
import { type Config, loadConfig } from '../../src/config/config.js';
import { silentLogger } from '../../src/log/logger.js';
import { Monitor, type ScanReport } from '../../src/monitor/monitor.js';
import { type ExporterEndpoints, startExporterEndpoints } from '../../src/sim/exporter-endpoints.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { type PromApiBody, type RealPrometheus, startRealPrometheus } from './real-prometheus.js';

let sim: Simulator;
let endpoints: ExporterEndpoints;
let prom: RealPrometheus;
let dir: string;
let config: Config;
let store: Store;
let sensing: Sensing;
let monitor: Monitor;
let nodes: string[];

beforeAll(async () => {
  sim = await startSimulator({
    nodes: 3,
    slack: false,
    controlPort: false,
    prometheus: { scrapeIntervalMs: 3_600_000 },
  });
  endpoints = await startExporterEndpoints(sim.cluster);
  nodes = endpoints.targets().map((t) => t.node);
  prom = await startRealPrometheus(endpoints.targets());
  await prom.waitFor('every target scraped', async () => {
    const r = await prom.query('count(up == 1)');
    return r.body.data?.result[0]?.value[1] === String(nodes.length);
  });
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-interop-'));
  config = loadConfig({
    ...sim.env,
    PROMETHEUS_URL: prom.url,
    DCGM_SOURCE: 'prometheus',
    DB_PATH: join(dir, 'gpu-medic.db'),
    CLASSIFIER: 'rules',
    LOG_LEVEL: 'silent',
  });
  store = openStore(config.store.dbPath);
  sensing = createSensing(config, { logger: silentLogger() });
  await sensing.start();
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
}, 60_000);

afterAll(async () => {
  await monitor?.stop();
  await sensing?.stop();
  store?.close();
  await prom?.stop();
  await endpoints?.close();
  await sim?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const resultOn = (report: ScanReport, node: string) => report.results.find((r) => r.node.name === node);

/** An answer with what differs by design (the scrape config's `instance` and `job`) left out, sorted. */
function comparable(body: PromApiBody) {
  const result = (body.data?.result ?? []).map((s) => {
    const { instance: _i, job: _j, ...metric } = s.metric;
    return JSON.stringify([Object.entries(metric).sort(), s.value[1]]);
  });
  return {
    status: body.status,
    resultType: body.data?.resultType,
    warnings: body.warnings,
    result: result.sort(),
  };
}

async function simQuery(q: string): Promise<PromApiBody> {
  sim.prometheus?.scrapeNow();
  const res = await fetch(`${sim.env.PROMETHEUS_URL}/api/v1/query`, {
    method: 'POST',
    body: new URLSearchParams({ query: q }),
  });
  return (await res.json()) as PromApiBody;
}

async function sameAnswers(queries: string[]): Promise<void> {
  for (const q of queries) {
    const real = await prom.query(q);
    expect(real.status, q).toBe(200);
    expect(comparable(await simQuery(q)), q).toEqual(comparable(real.body));
  }
}

const thresholds = { sbeStormThreshold: 1000, nvlinkErrorThreshold: 100, thermalWarningC: 87 };

describe('gpu-medic through a real Prometheus', () => {
  it('a healthy fleet reads healthy through it, every GPU listed', async () => {
    const report = await monitor.scanOnce();
    expect(report.failures).toBe(0);
    expect(report.coverage).toMatchObject({ nodes: 3, read: 3 });
    for (const node of nodes) expect(resultOn(report, node)?.snapshot.gpus).toHaveLength(8);
    expect(store.incidents.listOpen()).toHaveLength(0);
  });

  it('the simulator answers every query the source sends as the real Prometheus does (healthy)', async () => {
    await sameAnswers([
      coverageQuery(),
      ...abnormalQueries(thresholds),
      gpuIndexQuery('Hostname', [nodes[0] ?? '']),
    ]);
  });

  it('an injected XID 79 becomes exactly one incident', async () => {
    const a = nodes[0] ?? '';
    sim.cluster.injectXid(a, 3, 79);
    await prom.waitFor('the XID in Prometheus', async () => {
      const r = await prom.query('DCGM_FI_DEV_XID_ERRORS > 0');
      return (r.body.data?.result.length ?? 0) > 0;
    });
    let report: ScanReport | undefined;
    for (let i = 0; i < 3; i++) report = await monitor.scanOnce();
    expect(resultOn(report as ScanReport, a)?.snapshot.gpus.find((g) => g.index === 3)?.xidLast).toBe(79);
    expect(store.incidents.listOpen().map((i) => [i.node, i.category])).toEqual([[a, 'XID_CRITICAL_79']]);
  });

  it('the same shapes with faults: XID labels, a hot GPU, a GPU gone', async () => {
    const b = nodes[1] ?? '';
    sim.cluster.setTemperature(b, 2, 95);
    sim.cluster.dropGpu(b, 5);
    await prom.waitFor('the hot GPU in Prometheus', async () => {
      const r = await prom.query('DCGM_FI_DEV_GPU_TEMP >= 95');
      const gpus = await prom.query(`count(DCGM_FI_DEV_GPU_TEMP{Hostname="${b}"})`);
      return (r.body.data?.result.length ?? 0) > 0 && gpus.body.data?.result[0]?.value[1] === '7';
    });
    await sameAnswers([coverageQuery(), ...abnormalQueries(thresholds), gpuIndexQuery('Hostname', [b])]);
    // Not vacuous: the real answers carry the faults, names kept by the comparison filters.
    const [nonzero, , , hot] = await Promise.all(abnormalQueries(thresholds).map((q) => prom.query(q)));
    expect(nonzero?.body.data?.result.map((s) => [s.metric.__name__, s.metric.err_code, s.value[1]])).toEqual(
      [['DCGM_FI_DEV_XID_ERRORS', '79', '79']],
    );
    expect(hot?.body.data?.result.map((s) => [s.metric.__name__, s.metric.gpu])).toEqual([
      ['DCGM_FI_DEV_GPU_TEMP', '2'],
    ]);
    const cov = (await prom.query(coverageQuery())).body.data?.result ?? [];
    expect(cov.map((s) => [s.metric.Hostname, s.value[1]]).sort()).toEqual(
      nodes.map((n) => [n, n === b ? String(7 * 256 + 145) : String(8 * 256 + 145)]).sort(),
    );
  });

  it('an exporter that stops is a coverage gap once its series go stale, not healthy', async () => {
    const c = nodes[2] ?? '';
    sim.cluster.setExporter(c, 'error');
    await prom.waitFor('the target down', async () => {
      const r = await prom.query(`up{instance="${c}"} == 0`);
      return (r.body.data?.result.length ?? 0) === 1;
    });
    const report = await monitor.scanOnce();
    expect(resultOn(report, c)?.snapshot.error).toMatchObject({ kind: 'no-exporter' });
    expect(resultOn(report, c)?.verdict.findings.map((f) => f.category)).toEqual(['COLLECTION_FAILED']);
    expect(report.coverage).toMatchObject({ nodes: 3, read: 2 });
    await sameAnswers([coverageQuery()]);
  });
});
