/**
 * Issue 10, items 3 and 4, "Done when":
 * - a fleet whose DCGM pods have no shell (the EKS node monitoring agent's stock image) is scanned through the
 *   dcgm-server source: every node with its GPUs, no COLLECTION_FAILED, the kernel lines reported missing;
 * - KernelReady=False is a node problem: one NODE_CONDITION alert across many scans, no cordon, and the GPU
 *   circuit breaker does not count it (a GPU fault elsewhere is still repaired).
 */
import { describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/app/runtime.js';
import { createSensing, initialPlan } from '../../src/app/sensing.js';
import { type Config, loadConfig } from '../../src/config/config.js';
import type { ProgressEvent } from '../../src/domain/events.js';
import type { Incident } from '../../src/domain/incident.js';
import { isOpen } from '../../src/domain/incident.js';
import { silentLogger } from '../../src/log/logger.js';
import { Monitor } from '../../src/monitor/monitor.js';
import { isWorking } from '../../src/remediate/state-machine.js';
import type { ExecRecordedRequest } from '../../src/sim/exec-server.js';
import { type Simulator, type SimulatorOptions, startSimulator } from '../../src/sim/index.js';
import type { K8sRecordedRequest } from '../../src/sim/k8s-server.js';
import { openStore } from '../../src/store/index.js';
import { suiteSandbox } from '../support/sim-runtime.js';
import { waitFor } from '../support/wait.js';

const sandbox = suiteSandbox('gpu-medic-dcgm-server-');
let dbCounter = 0;

function configFor(sim: Simulator, env: Record<string, string> = {}): Config {
  return loadConfig({
    ...sim.env,
    DB_PATH: sandbox.path(`gpu-medic-${++dbCounter}.db`),
    CLASSIFIER: 'rules',
    SCAN_TIMEOUT: '5',
    LOG_LEVEL: 'silent',
    ...env,
  });
}

const gpuNodesOf = (sim: Simulator) =>
  sim.cluster
    .listNodes()
    .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
    .map((n) => n.metadata.name);

const execs = (sim: Simulator) => sim.log.find('execPod') as ExecRecordedRequest[];

/** A monitor with the product's sensing, as `gpu-medic run` builds it, for a few scans. */
async function withMonitor(
  simOpts: SimulatorOptions,
  env: Record<string, string>,
  fn: (sim: Simulator, scan: () => ReturnType<Monitor['scanOnce']>) => Promise<void>,
): Promise<void> {
  const sim = await startSimulator({ slack: false, controlPort: false, ...simOpts });
  const config = configFor(sim, env);
  const store = openStore(config.store.dbPath);
  const sensing = createSensing(config, { logger: silentLogger() });
  try {
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
    await fn(sim, () => monitor.scanOnce());
    await monitor.stop();
    sim.assertNoUnexpected();
  } finally {
    await sensing.stop();
    store.close();
    await sim.close();
  }
}

describe('dcgm-server source on shell-less DCGM pods (EKS node monitoring agent, stock image)', () => {
  it('scans every node with its GPUs, no COLLECTION_FAILED; kernel lines are reported missing, never via sh', async () => {
    await withMonitor({ nodes: 12, dcgmServer: true }, { DCGM_SOURCE: 'dcgm-server' }, async (sim, scan) => {
      const nodes = gpuNodesOf(sim);
      expect(nodes).toHaveLength(12);
      const target = nodes[4] ?? '';
      sim.cluster.injectXid(target, 6, 79);

      for (let round = 0; round < 2; round++) {
        const report = await scan();
        expect(report.results).toHaveLength(12);
        expect(report.failures).toBe(0);
        for (const r of report.results) {
          expect(r.snapshot.source).toBe('dcgm-server');
          expect(r.snapshot.error, r.node.name).toBeUndefined();
          expect(r.snapshot.gpus).toHaveLength(8);
          expect(r.snapshot.signals).toEqual(['xid', 'ecc', 'health']);
          expect(r.snapshot.missingParts).toEqual([
            { part: 'kernel_log', reason: expect.stringContaining('executable file not found in $PATH') },
          ]);
          expect(r.verdict.findings.map((f) => f.category)).not.toContain('COLLECTION_FAILED');
          expect(r.verdict.category).toBe(r.node.name === target ? 'XID_CRITICAL_79' : 'HEALTHY');
        }
      }
      const commands = execs(sim).map((r) => r.command ?? []);
      expect(commands.some((c) => c[0] === 'sh' || c[0] === '/bin/sh')).toBe(false);
      // dmesg was tried once per pod, then remembered as missing there; dcgmi ran three times per node per scan.
      expect(commands.filter((c) => c[0] === 'dmesg')).toHaveLength(12);
      expect(commands.filter((c) => c[0] === 'dcgmi')).toHaveLength(12 * 3 * 2);
    });
  }, 30_000);

  it('DCGM_SOURCE=auto with the default selectors: nodes without an exporter are read from nvidia-dcgm pods', async () => {
    await withMonitor({ nodes: 6, dcgmServer: { style: 'gpu-operator' } }, {}, async (sim, scan) => {
      const nodes = gpuNodesOf(sim);
      const bare = [nodes[1] ?? '', nodes[3] ?? ''];
      for (const n of bare) sim.cluster.setExporter(n, 'missing');
      sim.cluster.injectXid(bare[0] ?? '', 2, 48);
      // The pod index learns through its watch that the exporter pods are gone: scan until it has.
      let report = await scan();
      for (let i = 0; i < 50; i++) {
        const bareSources = report.results
          .filter((r) => bare.includes(r.node.name))
          .map((r) => r.snapshot.source);
        if (bareSources.every((src) => src === 'dcgm-server')) break;
        await new Promise((r) => setTimeout(r, 100));
        report = await scan();
      }
      expect(report.results).toHaveLength(6);
      for (const r of report.results) {
        expect(r.snapshot.error, r.node.name).toBeUndefined();
        expect(r.snapshot.gpus).toHaveLength(8);
        expect(r.snapshot.source).toBe(bare.includes(r.node.name) ? 'dcgm-server' : 'exporter');
      }
      const viaDcgm = report.results.find((r) => r.node.name === bare[0]);
      // The GPU Operator's Ubuntu image has dmesg: the kernel line is read (as argv) and names the XID.
      expect(viaDcgm?.snapshot.signals).toContain('kernel_log');
      expect(viaDcgm?.snapshot.logLines).toEqual([expect.stringMatching(/NVRM: Xid \(PCI:[^)]+\): 48,/)]);
      expect(viaDcgm?.verdict.category).toBe('XID_CRITICAL_48');
      expect(new Set(execs(sim).map((r) => r.namespace))).toEqual(new Set(['gpu-operator']));
    });
  }, 30_000);
});

describe('node conditions that are not GPU faults', () => {
  it('KernelReady=False → one NODE_CONDITION warning alert per node across scans, no cordon, breaker not counting it', async () => {
    const sim = await startSimulator({
      nodes: 8,
      dcgmServer: true,
      slack: false,
      controlPort: false,
      rebootDelayMs: 1500,
      replaceDelayMs: 2000,
      terminateDelayMs: 300,
      rescheduleDelayMs: 300,
    });
    let rt: Runtime | undefined;
    try {
      Object.assign(process.env, sim.env);
      const config = configFor(sim, {
        DCGM_SOURCE: 'dcgm-server',
        MONITOR_INTERVAL: '1',
        REMEDIATIONS_PER_HOUR: '50',
        // 5 of 8 nodes with a node problem would be 62 %: far past this if they counted.
        MAX_UNHEALTHY_PERCENT: '20',
      });
      rt = await createRuntime(config, { logger: silentLogger(), engine: { pollMs: 200 } });
      const runtime = rt;
      const detected: ProgressEvent[] = [];
      runtime.bus.subscribe((e) => {
        if (e.step === 'detected') detected.push(e);
      });
      const nodes = gpuNodesOf(sim);
      await runtime.start();
      await waitFor('the first scan of every GPU node', () =>
        nodes.every((n) => runtime.lastScan.has(n)) ? true : undefined,
      );

      const sick = nodes.slice(0, 5);
      for (const n of sick) {
        sim.cluster.setCondition(n, {
          type: 'KernelReady',
          status: 'False',
          reason: 'KernelBug',
          message: 'BUG: soft lockup - CPU#12 stuck for 23s!',
        });
      }
      const incidentsOf = (n: string): Incident[] => runtime.store.incidents.listByNode(n, 100);
      await waitFor(
        'several scans of every KernelReady=False node',
        () => (sick.every((n) => (incidentsOf(n)[0]?.count ?? 0) >= 3) ? true : undefined),
        { context: () => sick.map((n) => incidentsOf(n).map((i) => [i.category, i.count])) },
      );
      for (const n of sick) {
        const list = incidentsOf(n);
        expect(list).toHaveLength(1);
        expect(list[0]).toMatchObject({
          category: 'NODE_CONDITION',
          severity: 'warning',
          faultKey: 'condition:KernelReady',
          plannedAction: 'none',
          mode: 'off',
          state: 'detected',
        });
        expect(list[0]?.gpu).toBeUndefined();
        expect(detected.filter((e) => e.node === n)).toHaveLength(1);
        expect(runtime.lastScan.get(n)?.verdict.category).toBe('NODE_CONDITION');
      }
      expect(runtime.services.status().breaker.open).toBe(false);

      // A real GPU fault on another node is still repaired: the breaker did not count the node problems.
      const gpuSick = nodes[6] ?? '';
      sim.cluster.injectXid(gpuSick, 1, 79);
      const acting = await waitFor(
        'the XID 79 remediation to start',
        () =>
          incidentsOf(gpuSick).find(
            (i) => i.category === 'XID_CRITICAL_79' && (isWorking(i.state) || !isOpen(i.state)),
          ),
        {
          context: () =>
            incidentsOf(gpuSick).map((i) => [i.category, i.state, i.stateReason, i.plannedAction, i.mode]),
        },
      );
      expect(acting.plannedAction).toBe('replace');
      expect(runtime.services.status().breaker.open).toBe(false);

      // Nothing was done to the nodes with the node problem: no cordon, no drain, no reboot.
      const touched = sim
        .mutatingRequests()
        .filter((r): r is K8sRecordedRequest => r.service === 'k8s')
        .filter((r) => sick.some((n) => r.path.includes(n) || r.body.includes(n)));
      expect(touched.map((r) => `${r.method} ${r.path}`)).toEqual([]);
      for (const n of sick) expect(sim.cluster.getNode(n)?.spec.unschedulable).not.toBe(true);
      expect(sim.log.find('RebootInstances')).toHaveLength(0);
      sim.assertNoUnexpected();
    } finally {
      await rt?.stop();
      await sim.close();
    }
  }, 40_000);
});
