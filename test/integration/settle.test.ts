/**
 * Issue 11, items 1 and 6: the settle gate and the failure paths of a repair, against the simulated EKS cluster
 * with the real Kubernetes client and AWS SDK. After a reboot the simulated node turns Ready with a new boot ID
 * well before its device plugin re-registers and its dcgm-exporter is Ready again (real minutes, scaled down):
 * gpu-medic uncordons only after the GPUs are allocatable and read; a node that never comes back, a GPU lost
 * in the reboot, a replacement that never joins — each escalates, the node stays cordoned, the thread says why.
 */
import { describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/app/runtime.js';
import type { Incident } from '../../src/domain/incident.js';
import { isOpen } from '../../src/domain/incident.js';
import type { Simulator, SimulatorOptions } from '../../src/sim/index.js';
import type { K8sRecordedRequest } from '../../src/sim/k8s-server.js';
import { threadReply } from '../../src/slack/blocks/thread.js';
import { type SimRuntime, startAndScan, suiteSandbox, withSimRuntime } from '../support/sim-runtime.js';
import { waitFor } from '../support/wait.js';

const sandbox = suiteSandbox('gpu-medic-settle-');

interface Harness extends SimRuntime {
  /** Every progress event of the incident, as the thread would print it. */
  thread(incidentId: string): string[];
}

function withHarness(
  opts: { sim?: SimulatorOptions; env?: Record<string, string> },
  fn: (h: Harness) => Promise<void>,
): Promise<void> {
  return withSimRuntime(
    {
      sim: {
        nodes: 4,
        rebootDelayMs: 1000,
        replaceDelayMs: 1500,
        terminateDelayMs: 300,
        rescheduleDelayMs: 300,
        // "60 s after Ready" for the device plugin, scaled down; the exporter is Ready a little earlier.
        devicePluginDelayMs: 2500,
        exporterReadyDelayMs: 1200,
        slack: false,
        controlPort: false,
        // The DBE is read from the ECC counter: gpu-medic's counters file, not the stock one.
        counters: 'full',
        ...opts.sim,
      },
      env: { MAX_UNHEALTHY_PERCENT: '100', ...opts.env },
      dbPath: sandbox.dbPath('settle'),
      // Nodes of the managed node group (replaced through Auto Scaling), in a stable order.
      gpuNodes: (sim, n) => sim.cluster.nodeInfo(n)?.autoScalingGroup !== undefined,
    },
    (h) =>
      fn({
        ...h,
        thread: (id) => h.events.filter((e) => e.incidentId === id).map((e) => threadReply(e).text),
      }),
  );
}

function incidentsOn(rt: Runtime, node: string): Incident[] {
  return rt.store.incidents.listByNode(node, 100).sort((a, b) => a.firstSeen - b.firstSeen);
}

function k8s(sim: Simulator): K8sRecordedRequest[] {
  return sim.log.requests.filter((r): r is K8sRecordedRequest => r.service === 'k8s');
}

/** Index (in the shared request log) of every PATCH that made the node schedulable again. */
function uncordonsOf(sim: Simulator, node: string): number[] {
  return sim.log.requests
    .map((r, i) => [r, i] as const)
    .filter(
      ([r]) =>
        r.service === 'k8s' &&
        r.method === 'PATCH' &&
        (r as K8sRecordedRequest).name === node &&
        /"unschedulable":(null|false)/.test(r.body),
    )
    .map(([, i]) => i);
}

const closed = (rt: Runtime, node: string, pred: (i: Incident) => boolean) => () =>
  incidentsOn(rt, node).find((i) => pred(i) && !isOpen(i.state));

describe('the settle gate against the simulated cluster', () => {
  it('ECC DBE → reboot: uncordons only after the device plugin is back and a scrape read every GPU', async () => {
    await withHarness({}, async ({ sim, rt, gpuNodes, thread }) => {
      const target = gpuNodes[1] ?? '';
      // The log position when the node turned Ready on its new boot, and when its GPUs were allocatable again.
      const marks: { ready?: number; gpus?: number } = {};
      const bootBefore = sim.cluster.getNode(target)?.status.nodeInfo.bootID;
      sim.cluster.onChange((e) => {
        if (e.resource !== 'nodes' || e.object.metadata.name !== target) return;
        const n = sim.cluster.getNode(target);
        if (!n || n.status.nodeInfo.bootID === bootBefore) return;
        marks.ready ??= sim.log.requests.length;
        if (n.status.allocatable['nvidia.com/gpu'] === '8') marks.gpus ??= sim.log.requests.length;
      });
      await startAndScan(rt, gpuNodes);
      sim.cluster.injectEcc(target, 5, { dbe: 2 });

      const incident = await waitFor(
        'the ECC incident to close',
        closed(rt, target, (i) => i.plannedAction === 'reboot'),
        { context: () => incidentsOn(rt, target).map((i) => [i.state, i.stateReason]), timeoutMs: 25_000 },
      );
      expect(incident.state, incident.stateReason).toBe('resolved');
      expect(sim.log.find('RebootInstances')).toHaveLength(1);
      expect(sim.cluster.getNode(target)?.spec?.unschedulable ?? false).toBe(false);

      const uncordons = uncordonsOf(sim, target);
      expect(uncordons).toHaveLength(1);
      const uncordon = uncordons[0] ?? -1;
      expect(marks.ready).toBeDefined();
      expect(marks.gpus).toBeDefined();
      // The order on the wire: Ready on the new boot … GPUs allocatable … a good scrape … then the uncordon.
      expect(marks.gpus ?? Infinity).toBeLessThan(uncordon);
      const exporter = sim.cluster.exporterPod(target)?.metadata.name ?? '';
      const scrapes = k8s(sim)
        .map((r, i) => [r, sim.log.requests.indexOf(r), i] as const)
        .filter(([r]) => r.subresource === 'proxy' && (r.name ?? '').startsWith(exporter));
      const good = scrapes.filter(
        ([r, at]) => r.status === 200 && at > (marks.gpus ?? Infinity) && at < uncordon,
      );
      expect(
        good.length,
        'a successful scrape between the GPUs coming back and the uncordon',
      ).toBeGreaterThan(0);
      const lines = thread(incident.id);
      const settle = lines.filter((l) => l.startsWith('⏳ Not back yet'));
      expect(settle.length, lines.join('\n')).toBeGreaterThan(0);
      expect(settle.join('\n')).toMatch(/the device plugin reports 0 of 8 GPUs/);
      const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
      expect(at(/^🟢 Node back/)).toBeLessThan(at(/^⏳ Not back yet/));
      expect(at(/^⏳ Not back yet/)).toBeLessThan(at(/^🧪 GPU scan healthy: 8\/8 GPUs read/));
      expect(at(/^🧪 GPU scan healthy/)).toBeLessThan(at(/^✅ Uncordoned/));
    });
  }, 45_000);

  it('a reboot that never returns Ready: escalated, still cordoned, never uncordoned, the thread says so', async () => {
    await withHarness({ env: { REBOOT_TIMEOUT: '3' } }, async ({ sim, rt, gpuNodes, thread }) => {
      const target = gpuNodes[0] ?? '';
      await startAndScan(rt, gpuNodes);
      sim.cluster.hangReboots(target);
      sim.cluster.injectEcc(target, 2, { dbe: 1 });
      const incident = await waitFor(
        'the incident to close',
        closed(rt, target, (i) => i.plannedAction === 'reboot'),
        { context: () => incidentsOn(rt, target).map((i) => [i.state, i.stateReason]), timeoutMs: 25_000 },
      );
      expect(incident.state, incident.stateReason).toBe('escalated');
      expect(incident.stateReason).toMatch(
        /did not come back Ready with a new boot ID within 3 s .*stays cordoned/,
      );
      expect(sim.cluster.getNode(target)?.spec?.unschedulable).toBe(true);
      expect(uncordonsOf(sim, target)).toEqual([]);
      const lines = thread(incident.id);
      expect(lines.some((l) => /Waiting for .* to come back Ready with a new boot ID/.test(l))).toBe(true);
      expect(lines.at(-1)).toMatch(/stays cordoned/);
      // Nothing replaced it behind a human's back, and nothing else touched it.
      expect(sim.log.find('TerminateInstanceInAutoScalingGroup')).toHaveLength(0);
      expect(sim.log.find('RebootInstances')).toHaveLength(1);
    });
  }, 45_000);

  it('back from the reboot with a GPU missing: never uncordoned, escalated to replace, then replaced', async () => {
    await withHarness({ env: { GPU_SETTLE_TIMEOUT: '4' } }, async ({ sim, rt, gpuNodes, thread }) => {
      const target = gpuNodes[2] ?? '';
      await startAndScan(rt, gpuNodes);
      sim.cluster.failGpuOnReboot(target, 3);
      sim.cluster.injectEcc(target, 5, { dbe: 2 });
      const replaced = await waitFor(
        'the follow-up replace to resolve',
        closed(rt, target, (i) => i.plannedAction === 'replace'),
        {
          context: () => incidentsOn(rt, target).map((i) => [i.state, i.plannedAction, i.stateReason]),
          timeoutMs: 35_000,
        },
      );
      const [first] = incidentsOn(rt, target);
      expect(first?.state).toBe('escalated');
      expect(first?.stateReason).toMatch(
        /came back after the reboot but did not settle within 4 s: the device plugin reports 7 of 8 GPUs\. It stays cordoned/,
      );
      expect(thread(first?.id ?? '').join('\n')).toMatch(/the device plugin reports 7 of 8 GPUs/);
      expect(replaced.state, replaced.stateReason).toBe('resolved');
      expect(uncordonsOf(sim, target)).toEqual([]);
      expect(sim.log.find('RebootInstances')).toHaveLength(1);
      expect(sim.log.find('TerminateInstanceInAutoScalingGroup')).toHaveLength(1);
    });
  }, 60_000);

  it('a replacement that never joins: escalated after REPLACE_TIMEOUT', async () => {
    await withHarness({ env: { REPLACE_TIMEOUT: '3' } }, async ({ sim, rt, gpuNodes, thread }) => {
      const target = gpuNodes[2] ?? '';
      await startAndScan(rt, gpuNodes);
      sim.cluster.setInsufficientCapacity(true);
      sim.cluster.injectXid(target, 1, 79);
      const incident = await waitFor(
        'the replace incident to close',
        closed(rt, target, (i) => i.plannedAction === 'replace'),
        { context: () => incidentsOn(rt, target).map((i) => [i.state, i.stateReason]), timeoutMs: 25_000 },
      );
      expect(incident.state, incident.stateReason).toBe('escalated');
      expect(incident.stateReason).toMatch(/no replacement node in gpu-ng-1 became Ready within 3 s/);
      const lines = thread(incident.id);
      expect(lines.some((l) => /Waiting for a replacement node to join/.test(l))).toBe(true);
      expect(lines.at(-1)).toMatch(/no replacement node/);
    });
  }, 45_000);

  it('a replacement is verified the same way before the incident resolves', async () => {
    await withHarness({}, async ({ sim, rt, gpuNodes, thread }) => {
      const target = gpuNodes[0] ?? '';
      await startAndScan(rt, gpuNodes);
      const before = new Set(sim.cluster.listNodes().map((n) => n.metadata.name));
      sim.cluster.injectXid(target, 1, 79);
      const incident = await waitFor(
        'the replace incident to close',
        closed(rt, target, (i) => i.plannedAction === 'replace'),
        { context: () => incidentsOn(rt, target).map((i) => [i.state, i.stateReason]), timeoutMs: 25_000 },
      );
      expect(incident.state, incident.stateReason).toBe('resolved');
      const fresh = sim.cluster
        .listNodes()
        .map((n) => n.metadata.name)
        .find((n) => !before.has(n));
      expect(fresh).toBeDefined();
      const lines = thread(incident.id);
      const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
      expect(
        at(new RegExp(`^🧪 GPU scan healthy on ${fresh}: 8/8 GPUs read`)),
        lines.join('\n'),
      ).toBeGreaterThan(at(/^🟢 Replacement node/));
      expect(at(/^✅ Resolved|Resolved/)).toBeGreaterThan(at(/^🧪 GPU scan healthy/));
    });
  }, 45_000);
});
