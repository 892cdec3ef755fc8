/**
 * Issue 10, item 1, "Done when": a 40-node simulated fleet mixing time-sliced, MIG-single, MIG-mixed and plain
 * nodes, all healthy: 0 incidents over 5 scans, circuit breaker closed; then XID 79 on a MIG-mixed node and on
 * a time-sliced node: one critical incident each. The whole bot (monitor, classifier, services) runs against the
 * simulator with the real Kubernetes client.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/app/runtime.js';
import { loadConfig } from '../../src/config/config.js';
import { silentLogger } from '../../src/log/logger.js';
import type { GpuShape } from '../../src/sim/gpu-shapes.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { restoreEnv } from '../support/sim-runtime.js';
import { waitFor } from '../support/wait.js';

const savedEnv = { ...process.env };
let dir: string;
let sim: Simulator;
let rt: Runtime;

const SHAPES: GpuShape[] = ['plain', 'time-sliced', 'mig-single', 'mig-mixed'];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-sharing-'));
  sim = await startSimulator({ nodes: 40, gpuShapes: SHAPES, slack: false, controlPort: false });
  Object.assign(process.env, sim.env);
  const config = loadConfig({
    ...sim.env,
    DB_PATH: join(dir, 'gpu-medic.db'),
    CLASSIFIER: 'rules',
    // The scans are driven by the test: the loop's own next scan is an hour away.
    MONITOR_INTERVAL: '3600',
    // Generous: other test files load the 2 cores at the same time.
    SCAN_TIMEOUT: '5',
    // Incidents are what this test is about: say what would be done, change nothing.
    DRY_RUN: 'true',
    LOG_LEVEL: 'silent',
  });
  rt = await createRuntime(config, { logger: silentLogger(), engine: { pollMs: 200 } });
});

afterAll(async () => {
  await rt?.stop();
  await sim?.close();
  restoreEnv(savedEnv);
  rmSync(dir, { recursive: true, force: true });
});

/** GPU node names of one shape, as the simulator built them. */
function nodesOf(shape: GpuShape): string[] {
  return sim.cluster
    .listNodes()
    .map((n) => sim.cluster.nodeInfo(n.metadata.name))
    .filter((i) => i?.gpuNode && i.shape === shape)
    .map((i) => i?.name ?? '');
}

describe('a fleet of shared and whole GPUs', () => {
  it('40 mixed nodes, all healthy: no incident over 5 scans, breaker closed; XID 79 on MIG-mixed and time-sliced nodes: one critical incident each', async () => {
    for (const shape of SHAPES) expect(nodesOf(shape)).toHaveLength(10);
    const gpuNodes = SHAPES.flatMap(nodesOf);

    await rt.start();
    // The loop's first scan runs at start; four more by hand make five.
    await waitFor('the first scan of every GPU node', () =>
      gpuNodes.every((n) => rt.lastScan.has(n)) ? true : undefined,
    );
    expect(rt.sensing.watcher.list()).toHaveLength(40);
    for (let i = 0; i < 4; i++) {
      const report = await rt.monitor.scanOnce();
      expect(report.summaries).toHaveLength(40);
      expect(report.failures).toBe(0);
      const unhealthy = report.summaries.filter(
        (s) => s.verdict.severity === 'critical' || s.verdict.severity === 'warning',
      );
      expect(unhealthy.map((s) => `${s.node.name} ${s.node.gpuSharing} ${s.verdict.category}`)).toEqual([]);
    }
    for (const n of gpuNodes) {
      const scan = rt.lastScan.get(n);
      // Every node is expected to have its 8 physical GPUs, and DCGM shows 8 (MIG instances folded).
      expect(scan?.node.expectedGpus).toBe(8);
      expect(scan?.snapshot.gpus).toHaveLength(8);
    }
    expect(rt.store.incidents.listOpen()).toEqual([]);
    expect(rt.services.breaker().open).toBe(false);

    const migMixed = nodesOf('mig-mixed')[3] ?? '';
    const timeSliced = nodesOf('time-sliced')[6] ?? '';
    sim.cluster.injectXid(migMixed, 5, 79);
    sim.cluster.injectXid(timeSliced, 2, 79);
    for (let i = 0; i < 3; i++) await rt.monitor.scanOnce();

    for (const [node, gpu] of [
      [migMixed, 5],
      [timeSliced, 2],
    ] as const) {
      const incidents = rt.store.incidents.listByNode(node, 100);
      expect(incidents.map((i) => `${i.category} ${i.severity}`)).toEqual(['XID_CRITICAL_79 critical']);
      expect(incidents[0]).toMatchObject({ xid: 79, gpu });
    }
    const others = rt.store.incidents.listOpen().filter((i) => i.node !== migMixed && i.node !== timeSliced);
    expect(others).toEqual([]);
    expect(rt.services.breaker().open).toBe(false);
  });

  it('a MIG-single node that loses a GPU is short of the 8 its instance type has', async () => {
    // GFD's gpu.count (56 MIG devices) and nvidia.com/gpu cannot say how many GPUs there should be: the table can.
    const node = nodesOf('mig-single')[1] ?? '';
    sim.cluster.dropGpu(node, 4);
    const report = await rt.monitor.scanOnce();
    const verdict = report.summaries.find((s) => s.node.name === node)?.verdict;
    expect(verdict).toMatchObject({ category: 'GPU_MISSING', severity: 'critical' });
    expect(verdict?.findings[0]?.evidence).toEqual(['DCGM reports 7 of 8 GPUs (missing index 4)']);
    expect(rt.store.incidents.listByNode(node, 10).map((i) => i.category)).toEqual(['GPU_MISSING']);
  });
});
