/**
 * Issue 10, XID 154 seen only through the exporter: the simulated dcgm-exporter prints the fixed err_msg
 * "GPU Recovery Action Changed", so the driver's recovery action is unknown — the incident waits for a human,
 * where a memory XID on the same fleet is repaired automatically.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSensing, initialPlan } from '../../src/app/sensing.js';
import { type Config, loadConfig } from '../../src/config/config.js';
import { silentLogger } from '../../src/log/logger.js';
import { Monitor } from '../../src/monitor/monitor.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { openStore } from '../../src/store/index.js';

let sim: Simulator;
let dir: string;
let config: Config;

beforeAll(async () => {
  sim = await startSimulator({ nodes: 3, slack: false });
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-xid154-'));
  config = loadConfig({
    ...sim.env,
    DB_PATH: join(dir, 'gpu-medic.db'),
    CLASSIFIER: 'rules',
    SCAN_TIMEOUT: '5',
    LOG_LEVEL: 'silent',
  });
});

afterAll(async () => {
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('XID 154 through the exporter only', () => {
  it('opens a critical incident that a human decides; XID 48 next door is reset automatically', async () => {
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
    try {
      const nodes = sim.cluster
        .listNodes()
        .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
        .map((n) => n.metadata?.name ?? '');
      // A first, clean scan: what appears later is a new event, not a sticky value of unknown age.
      await monitor.scanOnce();
      expect(store.incidents.listOpen()).toEqual([]);

      sim.cluster.injectXid(nodes[0] ?? '', 5, 154);
      sim.cluster.injectXid(nodes[1] ?? '', 2, 48);
      await monitor.scanOnce();
      const open = store.incidents.listOpen();
      expect(open.map((i) => [i.node, i.category, i.gpu, i.plannedAction, i.mode, i.preexisting])).toEqual(
        expect.arrayContaining([
          [nodes[0], 'XID_CRITICAL_154', 5, 'reboot', 'approve', false],
          [nodes[1], 'XID_CRITICAL_48', 2, 'reset', 'auto', false],
        ]),
      );
      expect(open).toHaveLength(2);
    } finally {
      await monitor.stop();
      await sensing.stop();
      store.close();
    }
  });
});
