/**
 * Issue 11 items 2–4, "Done when": gpu-medic shares nodes with Karpenter, EKS node auto repair and EKS Auto
 * Mode, against the simulated cluster with the real Kubernetes client and AWS SDK (EC2, Auto Scaling, EKS):
 *   - a node under repair carries karpenter.sh/do-not-disrupt, which keeps Karpenter's consolidation off it,
 *     and loses it at the end;
 *   - a Karpenter replace with nothing pending resolves "replaced — the pool provisions on demand";
 *   - with auto repair on for the node group, gpu-medic defers, never touches the node, and reports what EKS
 *     did (rebooted), or follows its policy when EKS did not act in time;
 *   - an Auto Mode node is replaced by deleting the Node, with no EC2 or Auto Scaling call, and never rebooted.
 */
import { describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/app/runtime.js';
import type { Incident } from '../../src/domain/incident.js';
import { isOpen } from '../../src/domain/incident.js';
import { ON_DEMAND_REASON } from '../../src/remediate/engine.js';
import type { Simulator, SimulatorOptions } from '../../src/sim/index.js';
import type { K8sRecordedRequest } from '../../src/sim/k8s-server.js';
import { serviceText } from '../../src/slack/service-text.js';
import { type SimRuntime, suiteSandbox, withSimRuntime } from '../support/sim-runtime.js';
import { waitFor } from '../support/wait.js';

const sandbox = suiteSandbox('gpu-medic-owners-');

/** A fresh simulator and runtime, started and through its first scan; `fn` runs before it stops. */
function withHarness(
  simOpts: SimulatorOptions,
  env: Record<string, string>,
  fn: (h: SimRuntime) => Promise<void>,
): Promise<void> {
  return withSimRuntime(
    {
      sim: {
        nodes: 8,
        rebootDelayMs: 1500,
        replaceDelayMs: 2000,
        terminateDelayMs: 300,
        rescheduleDelayMs: 300,
        // Real device-plugin and exporter lags after a boot, scaled down; ECC counters on.
        devicePluginDelayMs: 300,
        exporterReadyDelayMs: 200,
        counters: 'full',
        slack: false,
        controlPort: false,
        ...simOpts,
      },
      env: { MAX_UNHEALTHY_PERCENT: '60', ...env },
      dbPath: sandbox.dbPath(),
      scanFirst: true,
    },
    fn,
  );
}

function closed(
  rt: Runtime,
  node: string,
  match: (i: Incident) => boolean = () => true,
): Incident | undefined {
  return rt.store.incidents.listByNode(node, 100).find((i) => match(i) && !isOpen(i.state));
}

function diag(rt: Runtime, node: string) {
  return () => rt.store.incidents.listByNode(node, 100).map((i) => [i.category, i.state, i.stateReason]);
}

/** PATCHes of the node that touch the do-not-disrupt annotation: "true" to set it, null to remove it. */
function guardPatches(sim: Simulator, node: string): unknown[] {
  return sim.log.requests
    .filter((r): r is K8sRecordedRequest => r.service === 'k8s')
    .filter((r) => r.operation === 'patchNode' && r.name === node && r.body.includes('do-not-disrupt'))
    .map(
      (r) =>
        (JSON.parse(r.body) as { metadata: { annotations: Record<string, unknown> } }).metadata.annotations[
          'karpenter.sh/do-not-disrupt'
        ],
    );
}

function instanceIdOf(sim: Simulator, node: string): string {
  return sim.cluster.nodeInfo(node)?.instanceId ?? '';
}

/** Every AWS call that names the instance (EC2 and Auto Scaling bodies carry instance ids). */
function awsCallsFor(sim: Simulator, instanceId: string): string[] {
  return sim.log.requests
    .filter((r) => r.service !== 'k8s' && r.service !== 'slack' && r.body.includes(instanceId))
    .map((r) => `${r.service}:${r.operation}`);
}

describe('Karpenter', () => {
  it('a rebooted Karpenter node carries do-not-disrupt during the repair, so consolidation leaves it; removed at the end', async () => {
    // Three of four GPU nodes in the NodePool, each running work; consolidation of empty nodes after 1 s.
    await withHarness(
      { nodes: 4, karpenterNodes: 3, consolidateAfterMs: 1000 },
      {},
      async ({ sim, rt, gpuNodes }) => {
        const target = gpuNodes.find(
          (n) =>
            sim.cluster.nodeInfo(n)?.karpenterNodePool === 'gpu' &&
            sim.cluster
              .listPods({ nodeName: n })
              .some((p) => p.metadata.ownerReferences?.some((o) => o.kind === 'PyTorchJob')),
        );
        expect(target, 'a Karpenter node runs a training pod').toBeDefined();
        const node = target ?? '';
        const bootBefore = sim.cluster.getNode(node)?.status.nodeInfo.bootID;
        sim.cluster.injectEcc(node, 5, { dbe: 2 });

        const incident = await waitFor('the reboot to finish', () => closed(rt, node), {
          context: diag(rt, node),
          timeoutMs: 30_000,
        });
        expect(incident.state, incident.stateReason).toBe('resolved');
        expect(incident.plannedAction).toBe('reboot');
        // Drained and empty for seconds while rebooting, yet not consolidated: the annotation kept Karpenter off.
        expect(sim.cluster.disruptions.filter((d) => d.node === node && d.kind === 'consolidated')).toEqual(
          [],
        );
        expect(sim.cluster.getNode(node)?.status.nodeInfo.bootID).not.toBe(bootBefore);
        expect(sim.log.find('RebootInstances')).toHaveLength(1);
        await waitFor('the annotation to be removed', () =>
          guardPatches(sim, node).length === 2 ? true : undefined,
        );
        expect(guardPatches(sim, node)).toEqual(['true', null]);
        // Set before the cordon.
        const patches = sim.log.requests.filter(
          (r): r is K8sRecordedRequest =>
            r.service === 'k8s' && r.operation === 'patchNode' && (r as K8sRecordedRequest).name === node,
        );
        expect(patches[0]?.body).toContain('do-not-disrupt');
        expect(patches[1]?.body).toContain('unschedulable');
      },
    );
  }, 60_000);

  it('a replaced Karpenter node with no GPU pod pending resolves "replaced — the pool provisions on demand"', async () => {
    await withHarness({ nodes: 8 }, { REPLACE_TIMEOUT: '600' }, async ({ sim, rt, gpuNodes, events }) => {
      const pool = gpuNodes.filter((n) => sim.cluster.nodeInfo(n)?.karpenterNodePool === 'gpu');
      const target = pool.find((n) =>
        sim.cluster
          .listPods({ nodeName: n })
          .every((p) => p.metadata.ownerReferences?.some((o) => o.kind === 'DaemonSet')),
      );
      expect(target, 'an idle Karpenter node').toBeDefined();
      const node = target ?? '';
      const instanceId = instanceIdOf(sim, node);
      sim.cluster.injectXid(node, 2, 79);

      const incident = await waitFor('the replace to finish', () => closed(rt, node), {
        context: diag(rt, node),
        timeoutMs: 30_000,
      });
      expect(incident.state, incident.stateReason).toBe('resolved');
      expect(incident.stateReason).toBe(ON_DEMAND_REASON);
      expect(sim.log.find('deleteNode').map((r) => r.path)).toEqual([`/api/v1/nodes/${node}`]);
      expect(awsCallsFor(sim, instanceId)).toEqual([]);
      const ready = events.find((e) => e.incidentId === incident.id && e.step === 'replacement_ready');
      expect(ready?.details).toEqual({ group: 'gpu', onDemand: true });
      // Nothing was pending, so Karpenter started nothing.
      expect(sim.cluster.disruptions.filter((d) => d.kind === 'provisioned')).toEqual([]);
      // Karpenter's finalizer finishes: the Node goes with its instance.
      await waitFor('the Node to go', () => (sim.cluster.getNode(node) ? undefined : true));
    });
  }, 60_000);
});

describe('EKS node auto repair', () => {
  const gpuFault = { type: 'AcceleratedHardwareReady', status: 'False' as const, reason: 'NvidiaXID79Error' };

  it('on for the node group: deferred with a thread line, gpu-medic never touches the node, EKS reboots it → reported', async () => {
    await withHarness({ nodes: 8, karpenterNodes: 0 }, {}, async ({ sim, rt, gpuNodes, events }) => {
      sim.cluster.setNodeRepair('gpu-ng-1', { enabled: true, action: 'reboot', waitMs: 3000 });
      const [node = '', second = ''] = gpuNodes;
      const bootBefore = sim.cluster.getNode(node)?.status.nodeInfo.bootID;
      // The EKS node monitoring agent flags the GPU; DCGM shows the XID.
      sim.cluster.setCondition(node, gpuFault);
      await waitFor('the watch to see the condition', () =>
        rt.sensing.watcher
          .get(node)
          ?.conditions.find((c) => c.type === 'AcceleratedHardwareReady' && c.status === 'False'),
      );
      sim.cluster.injectXid(node, 3, 79);

      const deferred = await waitFor('the deferral', () =>
        events.find((e) => e.node === node && e.step === 'auto_repair_deferred'),
      );
      expect(deferred.details).toMatchObject({
        condition: 'AcceleratedHardwareReady',
        reason: 'NvidiaXID79Error',
        owner: 'managed-node-group',
        nodeGroup: 'gpu-ng-1',
        action: 'replace',
      });
      // A human cannot make gpu-medic act meanwhile.
      const refused = await rt.services.requestManual('reboot', node, 'cli:alice', 'now');
      expect(refused).toMatchObject({ ok: false, code: 'busy' });

      const incident = await waitFor('EKS to reboot the node', () => closed(rt, node), {
        context: diag(rt, node),
        timeoutMs: 30_000,
      });
      expect(incident.state, incident.stateReason).toBe('resolved');
      expect(incident.stateReason).toMatch(/EKS node auto repair rebooted/);
      expect(
        events.find((e) => e.incidentId === incident.id && e.step === 'auto_repair_outcome')?.details,
      ).toMatchObject({
        outcome: 'rebooted',
      });
      expect(sim.cluster.autoRepairs).toEqual([
        { node, action: 'reboot', condition: 'AcceleratedHardwareReady' },
      ]);
      expect(sim.cluster.getNode(node)?.status.nodeInfo.bootID).not.toBe(bootBefore);
      // gpu-medic changed nothing on the node and called nothing for its instance.
      expect(sim.mutatingRequests().filter((r) => r.path.includes(node) || r.body.includes(node))).toEqual(
        [],
      );
      expect(awsCallsFor(sim, instanceIdOf(sim, node))).toEqual([]);

      // A second node of the same group: the setting is read once per node group.
      sim.cluster.setCondition(second, gpuFault);
      await waitFor('the watch to see the second condition', () =>
        rt.sensing.watcher
          .get(second)
          ?.conditions.find((c) => c.type === 'AcceleratedHardwareReady' && c.status === 'False'),
      );
      sim.cluster.injectXid(second, 1, 79);
      await waitFor('the second deferral', () =>
        events.find((e) => e.node === second && e.step === 'auto_repair_deferred'),
      );
      expect(sim.log.find('DescribeNodegroup')).toHaveLength(1);
    });
  }, 60_000);

  it('EKS does not act within EKS_AUTO_REPAIR_WINDOW: reported, then gpu-medic replaces as its policy says', async () => {
    await withHarness(
      { nodes: 8, karpenterNodes: 0 },
      { EKS_AUTO_REPAIR_WINDOW: '3' },
      async ({ sim, rt, gpuNodes, events }) => {
        sim.cluster.setNodeRepair('gpu-ng-1', { enabled: true, action: 'none' });
        const node = gpuNodes[2] ?? '';
        sim.cluster.setCondition(node, gpuFault);
        await waitFor('the watch to see the condition', () =>
          rt.sensing.watcher
            .get(node)
            ?.conditions.find((c) => c.type === 'AcceleratedHardwareReady' && c.status === 'False'),
        );
        sim.cluster.injectXid(node, 3, 79);
        const incident = await waitFor('the replace to finish', () => closed(rt, node), {
          context: diag(rt, node),
          timeoutMs: 40_000,
        });
        expect(incident.state, incident.stateReason).toBe('resolved');
        const steps = events.filter((e) => e.incidentId === incident.id).map((e) => e.step);
        expect(steps.indexOf('auto_repair_deferred')).toBeGreaterThanOrEqual(0);
        expect(steps.indexOf('auto_repair_outcome')).toBeLessThan(steps.indexOf('cordoned'));
        expect(events.find((e) => e.step === 'auto_repair_outcome')?.details).toMatchObject({
          outcome: 'not_acted',
          policyAction: 'replace',
        });
        expect(sim.log.find('TerminateInstanceInAutoScalingGroup')).toHaveLength(1);
        expect(sim.cluster.autoRepairs).toEqual([]);
      },
    );
  }, 60_000);

  it('off for the node group (detect): gpu-medic acts itself', async () => {
    await withHarness({ nodes: 8, karpenterNodes: 0 }, {}, async ({ sim, rt, gpuNodes, events }) => {
      sim.cluster.setNodeRepair('gpu-ng-1', { enabled: false });
      const node = gpuNodes[3] ?? '';
      sim.cluster.setCondition(node, gpuFault);
      await waitFor('the watch to see the condition', () =>
        rt.sensing.watcher
          .get(node)
          ?.conditions.find((c) => c.type === 'AcceleratedHardwareReady' && c.status === 'False'),
      );
      sim.cluster.injectXid(node, 3, 79);
      const incident = await waitFor('the replace to finish', () => closed(rt, node), {
        context: diag(rt, node),
        timeoutMs: 30_000,
      });
      expect(incident.state, incident.stateReason).toBe('resolved');
      expect(events.some((e) => e.step === 'auto_repair_deferred')).toBe(false);
      expect(sim.log.find('DescribeNodegroup')).toHaveLength(1);
      expect(sim.log.find('TerminateInstanceInAutoScalingGroup')).toHaveLength(1);
    });
  }, 60_000);
});

describe('EKS Auto Mode', () => {
  it('replace deletes the Node with no EC2 or Auto Scaling call; reboot is refused with the reason', async () => {
    await withHarness(
      { nodes: 8, karpenterNodes: 0, autoModeNodes: 2 },
      {},
      async ({ sim, rt, gpuNodes, events }) => {
        const auto = gpuNodes.filter((n) => sim.cluster.nodeInfo(n)?.autoMode === true);
        expect(auto).toHaveLength(2);
        const [replaced = '', other = ''] = auto;
        const instanceId = instanceIdOf(sim, replaced);

        const refused = await rt.services.requestManual('reboot', other, 'cli:alice', 'try');
        expect(refused).toMatchObject({ ok: false, code: 'invalid' });
        expect(serviceText(refused)).toMatch(/EKS Auto Mode node: its EC2 instance is managed by EKS/);

        sim.cluster.injectXid(replaced, 2, 79);
        const incident = await waitFor('the replace to finish', () => closed(rt, replaced), {
          context: diag(rt, replaced),
          timeoutMs: 30_000,
        });
        expect(incident.state, incident.stateReason).toBe('resolved');
        expect(sim.log.find('deleteNode').map((r) => r.path)).toEqual([`/api/v1/nodes/${replaced}`]);
        expect(awsCallsFor(sim, instanceId)).toEqual([]);
        for (const op of [
          'RebootInstances',
          'TerminateInstances',
          'TerminateInstanceInAutoScalingGroup',
          'DescribeAutoScalingInstances',
        ])
          expect(sim.log.find(op), op).toHaveLength(0);
        expect(
          events.find((e) => e.incidentId === incident.id && e.step === 'replace_issued')?.details,
        ).toMatchObject({
          method: 'auto-mode',
          nodePool: 'gpu-auto',
        });

        // ECC DBE would be a reboot: on an Auto Mode node a human is asked for a replace instead.
        sim.cluster.injectEcc(other, 0, { dbe: 2 });
        const asked = await waitFor('the approval request', () =>
          rt.store.incidents.listByNode(other, 10).find((i) => i.state === 'awaiting_approval'),
        );
        expect(asked).toMatchObject({ plannedAction: 'replace', mode: 'approve' });
        expect(sim.log.find('RebootInstances')).toHaveLength(0);
      },
    );
  }, 60_000);
});
