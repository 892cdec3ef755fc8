/**
 * Issue 3, "Done when": XID 79 on one GPU of one node among 50 → exactly one incident, across many scans
 * and a restart; a node whose exporter hangs is reported while the others are still scanned.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSensing, initialPlan, type Sensing } from '../../src/app/sensing.js';
import { type Config, loadConfig } from '../../src/config/config.js';
import { silentLogger } from '../../src/log/logger.js';
import { Monitor } from '../../src/monitor/monitor.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { openStore, type Store } from '../../src/store/index.js';

let sim: Simulator;
let dir: string;
let config: Config;

beforeAll(async () => {
  sim = await startSimulator({ nodes: 50, slack: false });
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-monitor-'));
  config = loadConfig({
    ...sim.env,
    DB_PATH: join(dir, 'gpu-medic.db'),
    CLASSIFIER: 'rules',
    // Generous: other test files load the 2 cores at the same time; only the hung exporter should time out.
    SCAN_TIMEOUT: '3',
    LOG_LEVEL: 'silent',
  });
});

afterAll(async () => {
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Running {
  store: Store;
  sensing: Sensing;
  monitor: Monitor;
  close(): Promise<void>;
}

/** One gpu-medic "process": its own store connection, watches and monitor. */
async function startMonitor(): Promise<Running> {
  const store = openStore(config.store.dbPath);
  const sensing = createSensing(config, { logger: silentLogger() });
  await sensing.start();
  const monitor = new Monitor({
    listNodes: () => sensing.watcher.list(),
    collector: sensing.collector,
    classifier: sensing.classifier,
    store,
    plan: initialPlan(config),
    intervalMs: 60_000,
    concurrency: config.monitor.scanConcurrency,
    nodeTimeoutMs: config.monitor.scanTimeoutSeconds * 1000,
  });
  return {
    store,
    sensing,
    monitor,
    async close() {
      await monitor.stop();
      await sensing.stop();
      store.close();
    },
  };
}

describe('monitor against the simulated cluster', () => {
  it('opens exactly one XID_CRITICAL_79 incident across scans and a restart', async () => {
    const nodes = sim.cluster.listNodes().filter((n) => n.status?.capacity?.['nvidia.com/gpu']);
    expect(nodes).toHaveLength(50);
    const target = nodes[17]!.metadata!.name!;
    sim.cluster.injectXid(target, 3, 79);

    let run = await startMonitor();
    expect(run.sensing.watcher.list()).toHaveLength(50);
    for (let i = 0; i < 4; i++) {
      const report = await run.monitor.scanOnce();
      expect(report.results).toHaveLength(50);
      expect(report.failures).toBe(0);
    }
    const open = run.store.incidents.listOpen();
    expect(open.map((i) => `${i.node} ${i.category} ${i.faultKey}`)).toHaveLength(1);
    expect(open[0]).toMatchObject({ node: target, category: 'XID_CRITICAL_79', xid: 79, gpu: 3, count: 4 });
    const id = open[0]!.id;
    await run.close();

    // A restart: a new connection, new watches, the same database. The sticky value is not a new fault.
    run = await startMonitor();
    for (let i = 0; i < 3; i++) await run.monitor.scanOnce();
    const after = run.store.incidents.listOpen();
    expect(after.map((i) => i.id)).toEqual([id]);
    expect(after[0]!.count).toBe(7);

    // Closed by a human while the gauge still says 79: the same sticky value never reopens it …
    expect(run.store.incidents.transition(id, ['detected'], 'dismissed', 'test')).toBe(true);
    await run.monitor.scanOnce();
    expect(run.store.incidents.listOpen()).toHaveLength(0);

    // … but a new XID on that GPU is a new event.
    sim.cluster.injectXid(target, 3, 48);
    await run.monitor.scanOnce();
    const reopened = run.store.incidents.listOpen();
    expect(reopened).toHaveLength(1);
    expect(reopened[0]).toMatchObject({ node: target, category: 'XID_CRITICAL_48' });
    await run.close();
  });

  it('reports a node whose exporter hangs and still scans every other node', async () => {
    const nodes = sim.cluster.listNodes().filter((n) => n.status?.capacity?.['nvidia.com/gpu']);
    const hung = nodes[5]!.metadata!.name!;
    sim.cluster.setExporter(hung, 'hang');
    const run = await startMonitor();
    try {
      const report = await run.monitor.scanOnce();
      expect(report.results).toHaveLength(50);
      const byNode = new Map(report.results.map((r) => [r.node.name, r]));
      expect(byNode.get(hung)!.snapshot.error?.kind).toBe('timeout');
      expect(byNode.get(hung)!.verdict.category).toBe('COLLECTION_FAILED');
      const others = report.results.filter((r) => r.node.name !== hung);
      expect(others.every((r) => !r.snapshot.error && r.snapshot.gpus.length === 8)).toBe(true);
      // Every other node finished long before the hung one gave up: none waited on it.
      const slowest = Math.max(...others.map((r) => r.ms));
      expect(slowest).toBeLessThan(byNode.get(hung)!.ms);
      const incident = run.store.incidents.listOpen().find((i) => i.node === hung);
      expect(incident).toMatchObject({ category: 'COLLECTION_FAILED', plannedAction: 'none' });
    } finally {
      sim.cluster.setExporter(hung, 'ok');
      await run.close();
    }
  });
});
