/**
 * Issue 14, item 1: the `reset` remediation against the simulated cluster, with the real Kubernetes client (pod
 * exec over WebSocket into the GPU Operator's DCGM pod) and no EC2 call. XID 119 is a `reset_gpu` XID in
 * NVIDIA's catalog: on a g6e node one GPU is reset, on a p5 (NVSwitch) every GPU together; a reset that fails
 * goes to a reboot.
 */
import { describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/app/runtime.js';
import type { Incident } from '../../src/domain/incident.js';
import { isOpen } from '../../src/domain/incident.js';
import { EXPORTER_DEPLOY_LABEL } from '../../src/remediate/reset-steps.js';
import type { Simulator, SimulatorOptions } from '../../src/sim/index.js';
import { threadReply } from '../../src/slack/blocks/thread.js';
import { type SimRuntime, startAndScan, suiteSandbox, withSimRuntime } from '../support/sim-runtime.js';
import { waitFor } from '../support/wait.js';

const sandbox = suiteSandbox('gpu-medic-reset-');

function withHarness(
  sim: Partial<SimulatorOptions>,
  fn: (h: SimRuntime & { thread(id: string): string[] }) => Promise<void>,
): Promise<void> {
  return withSimRuntime(
    {
      sim: {
        nodes: 4,
        rebootDelayMs: 1000,
        replaceDelayMs: 1500,
        terminateDelayMs: 300,
        rescheduleDelayMs: 300,
        devicePluginDelayMs: 1500,
        exporterReadyDelayMs: 1200,
        slack: false,
        controlPort: false,
        // The GPU Operator's DCGM pods: an Ubuntu image where the driver's nvidia-smi is available.
        dcgmServer: { style: 'gpu-operator' },
        ...sim,
      },
      env: { MAX_UNHEALTHY_PERCENT: '100' },
      dbPath: sandbox.dbPath('reset'),
      gpuNodes: (s, n) => s.cluster.nodeInfo(n)?.autoScalingGroup !== undefined,
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

const closed = (rt: Runtime, node: string, pred: (i: Incident) => boolean) => () =>
  incidentsOn(rt, node).find((i) => pred(i) && !isOpen(i.state));

function ec2Calls(sim: Simulator): number {
  return ['RebootInstances', 'TerminateInstances', 'TerminateInstanceInAutoScalingGroup'].reduce(
    (n, op) => n + sim.log.find(op).length,
    0,
  );
}

describe('GPU reset through nvidia-smi in the DCGM pod', () => {
  it('XID 119 on a g6e node: that GPU alone is reset, no EC2 call, the GPUs are back, uncordoned', async () => {
    await withHarness({ instanceType: 'g6e.48xlarge' }, async ({ sim, rt, gpuNodes, thread }) => {
      const target = gpuNodes[1] ?? '';
      await startAndScan(rt, gpuNodes);
      sim.cluster.injectXid(target, 3, 119);
      const incident = await waitFor(
        'the reset incident to close',
        closed(rt, target, () => true),
        {
          context: () => incidentsOn(rt, target).map((i) => [i.state, i.plannedAction, i.stateReason]),
          timeoutMs: 25_000,
        },
      );
      expect(incident.state, incident.stateReason).toBe('resolved');
      expect(incident.plannedAction).toBe('reset');
      expect(sim.cluster.gpuResets.done).toEqual([{ node: target, gpus: [3], wholeNode: false }]);
      expect(ec2Calls(sim)).toBe(0);
      expect(sim.cluster.gpuState(target).every((g) => g.present && g.xidLast === 0)).toBe(true);
      const node = sim.cluster.getNode(target);
      expect(node?.spec?.unschedulable ?? false).toBe(false);
      // The exporter was paused for the reset and put back (the node had no such label before).
      expect(node?.metadata.labels?.[EXPORTER_DEPLOY_LABEL]).toBeUndefined();
      const lines = thread(incident.id);
      const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
      expect(
        at(/^🔄 Reset GPU 3 on .* \(nvidia-smi --gpu-reset in gpu-operator\/nvidia-dcgm-/),
      ).toBeGreaterThan(at(/^✅ Drained/));
      expect(at(/^🧪 GPU scan healthy: 8\/8 GPUs read/)).toBeGreaterThan(at(/^🔄 Reset GPU 3/));
      expect(at(/^✅ Uncordoned/)).toBeGreaterThan(at(/^🧪 GPU scan healthy/));
    });
  }, 40_000);

  it('XID 119 on a p5 (NVSwitch): all eight GPUs are reset together', async () => {
    await withHarness({ instanceType: 'p5.48xlarge' }, async ({ sim, rt, gpuNodes, thread }) => {
      const target = gpuNodes[2] ?? '';
      await startAndScan(rt, gpuNodes);
      sim.cluster.injectXid(target, 5, 119);
      const incident = await waitFor(
        'the reset incident to close',
        closed(rt, target, () => true),
        {
          context: () => incidentsOn(rt, target).map((i) => [i.state, i.plannedAction, i.stateReason]),
          timeoutMs: 25_000,
        },
      );
      expect(incident.state, incident.stateReason).toBe('resolved');
      expect(sim.cluster.gpuResets.done).toEqual([
        { node: target, gpus: [0, 1, 2, 3, 4, 5, 6, 7], wholeNode: true },
      ]);
      expect(ec2Calls(sim)).toBe(0);
      expect(sim.cluster.getNode(target)?.spec?.unschedulable ?? false).toBe(false);
      expect(thread(incident.id).join('\n')).toMatch(/🔄 Reset all 8 GPUs and the NVSwitches together/);
    });
  }, 40_000);

  it('a reset that fails escalates to a reboot, which cures the fault', async () => {
    await withHarness({ instanceType: 'g6e.48xlarge' }, async ({ sim, rt, gpuNodes, thread }) => {
      const target = gpuNodes[0] ?? '';
      await startAndScan(rt, gpuNodes);
      sim.cluster.gpuResets.failNext(target);
      sim.cluster.injectXid(target, 2, 119);
      const rebooted = await waitFor(
        'the follow-up reboot to close',
        closed(rt, target, (i) => i.plannedAction === 'reboot'),
        {
          context: () => incidentsOn(rt, target).map((i) => [i.state, i.plannedAction, i.stateReason]),
          timeoutMs: 35_000,
        },
      );
      const [first] = incidentsOn(rt, target);
      expect([first?.plannedAction, first?.state]).toEqual(['reset', 'escalated']);
      expect(first?.stateReason, first?.stateReason).toMatch(
        /nvidia-smi could not reset GPU 2 .*exit 255.*Unknown Error/,
      );
      expect(thread(first?.id ?? '').join('\n')).toMatch(/⬆️ Escalated to reboot/);
      expect(rebooted.state, rebooted.stateReason).toBe('resolved');
      expect(sim.log.find('RebootInstances')).toHaveLength(1);
      expect(sim.log.find('TerminateInstanceInAutoScalingGroup')).toHaveLength(0);
      expect(sim.cluster.gpuResets.done).toEqual([]);
      expect(sim.cluster.getNode(target)?.spec?.unschedulable ?? false).toBe(false);
    });
  }, 60_000);
});
