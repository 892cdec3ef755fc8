/**
 * Issue 4, "Done when": the whole remediation path — monitor, classifier, safety checks, engine — against
 * the simulated EKS cluster with the real Kubernetes client and AWS SDK: XID 79 → cordon, drain, replace;
 * ECC DBE → reboot and uncordon; dry run changes nothing; an excluded node is never touched; a storm of
 * faults stays within the concurrency limit and opens the circuit breaker.
 */
import { describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/app/runtime.js';
import type { Incident } from '../../src/domain/incident.js';
import { isOpen } from '../../src/domain/incident.js';
import { isWorking } from '../../src/remediate/state-machine.js';
import type { Simulator } from '../../src/sim/index.js';
import type { K8sRecordedRequest } from '../../src/sim/k8s-server.js';
import { SERVING_NAMESPACE, SERVING_PDB } from '../../src/sim/workloads.js';
import { type SimRuntime, startAndScan, suiteSandbox, withSimRuntime } from '../support/sim-runtime.js';
import { waitFor } from '../support/wait.js';

const sandbox = suiteSandbox('gpu-medic-remediation-');

/** A fresh simulator and a fresh gpu-medic runtime on its own database; `fn` runs between start and stop. */
function withHarness(
  opts: { nodes?: number; env?: Record<string, string> },
  fn: (h: SimRuntime) => Promise<void>,
): Promise<void> {
  return withSimRuntime(
    {
      sim: {
        // ECC DBE faults are read from the exporter's ECC counters: opt into the full counter set (stock has none).
        counters: 'full',
        nodes: opts.nodes ?? 8,
        rebootDelayMs: 1500,
        replaceDelayMs: 2000,
        terminateDelayMs: 300,
        rescheduleDelayMs: 300,
        // After a boot the GPUs come back late, as on a real node (scaled down): the settle gate waits for them.
        devicePluginDelayMs: 600,
        exporterReadyDelayMs: 400,
        slack: false,
        controlPort: false,
      },
      env: opts.env ?? {},
      dbPath: sandbox.dbPath(),
    },
    fn,
  );
}

function incidentsOn(rt: Runtime, node: string): Incident[] {
  return rt.store.incidents.listByNode(node, 100);
}

function k8sRequests(sim: Simulator): K8sRecordedRequest[] {
  return sim.log.requests.filter((r): r is K8sRecordedRequest => r.service === 'k8s');
}

/** Does a mutating request name this node (by node name or by its EC2 instance id)? */
function mentions(sim: Simulator, node: string, instanceId: string | undefined): boolean {
  return sim
    .mutatingRequests()
    .some(
      (r) =>
        r.path.includes(node) ||
        r.body.includes(node) ||
        (instanceId !== undefined && r.body.includes(instanceId)),
    );
}

function instanceIdOf(sim: Simulator, node: string): string | undefined {
  const id = sim.cluster.getNode(node)?.spec?.providerID?.split('/').pop();
  return id?.startsWith('i-') ? id : undefined;
}

describe('remediation against the simulated cluster', () => {
  it('replaces a node with XID 79: cordon, drain without DaemonSet pods, one termination, a new node', async () => {
    await withHarness({}, async ({ sim, rt, gpuNodes }) => {
      const target = gpuNodes[1] ?? '';
      const daemonSetPods = new Set(
        sim.cluster
          .listPods({ nodeName: target })
          .filter((p) => p.metadata.ownerReferences?.some((o) => o.kind === 'DaemonSet'))
          .map((p) => `${p.metadata.namespace}/${p.metadata.name}`),
      );
      const otherPods = sim.cluster
        .listPods({ nodeName: target })
        .filter((p) => !p.metadata.ownerReferences?.some((o) => o.kind === 'DaemonSet'));
      expect(daemonSetPods.size).toBeGreaterThan(0);
      expect(otherPods.length).toBeGreaterThan(0);

      await startAndScan(rt, gpuNodes);
      sim.cluster.injectXid(target, 2, 79);

      const incident = await waitFor(
        'the XID 79 incident to close',
        () => incidentsOn(rt, target).find((i) => i.category === 'XID_CRITICAL_79' && !isOpen(i.state)),
        {
          context: () =>
            incidentsOn(rt, target).map((i) => [
              i.category,
              i.state,
              i.stateReason,
              i.plannedAction,
              i.mode,
              i.preexisting,
            ]),
        },
      );
      expect(incident.state, incident.stateReason).toBe('resolved');
      expect(incident).toMatchObject({ xid: 79, gpu: 2, plannedAction: 'replace' });

      const reqs = k8sRequests(sim);
      const cordon = reqs.filter(
        (r) =>
          r.method === 'PATCH' && r.resource === 'nodes' && r.name === target && /unschedulable/.test(r.body),
      );
      expect(cordon.length).toBeGreaterThanOrEqual(1);
      const evictions = reqs.filter((r) => r.subresource === 'eviction' && r.method === 'POST');
      expect(evictions.length).toBeGreaterThan(0);
      const evicted = evictions.map((r) => `${r.namespace}/${r.name}`);
      for (const p of evicted) expect(daemonSetPods.has(p), `evicted DaemonSet pod ${p}`).toBe(false);
      // Every non-DaemonSet pod on the node was asked to leave.
      for (const p of otherPods) expect(evicted).toContain(`${p.metadata.namespace}/${p.metadata.name}`);

      const terminations = sim.log.find('TerminateInstanceInAutoScalingGroup');
      expect(terminations).toHaveLength(1);
      expect(sim.log.find('RebootInstances')).toHaveLength(0);

      const replacement = await waitFor('a replacement GPU node', () => {
        const now = sim.cluster
          .listNodes()
          .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
          .map((n) => n.metadata?.name ?? '');
        const fresh = now.filter((n) => !gpuNodes.includes(n));
        return fresh.length > 0 && !now.includes(target) ? fresh : undefined;
      });
      expect(replacement).toHaveLength(1);
    });
  }, 30_000);

  it('reboots a node with an uncorrectable ECC error: one reboot, new boot, uncordoned, resolved', async () => {
    await withHarness({}, async ({ sim, rt, gpuNodes }) => {
      const target = gpuNodes[2] ?? '';
      const bootBefore = sim.cluster.getNode(target)?.status?.nodeInfo?.bootID;
      expect(bootBefore).toBeTruthy();

      await startAndScan(rt, gpuNodes);
      sim.cluster.injectEcc(target, 5, { dbe: 2 });

      const incident = await waitFor(
        'the ECC incident to close',
        () => incidentsOn(rt, target).find((i) => i.plannedAction === 'reboot' && !isOpen(i.state)),
        {
          context: () =>
            incidentsOn(rt, target).map((i) => [
              i.category,
              i.state,
              i.stateReason,
              i.plannedAction,
              i.mode,
              i.preexisting,
            ]),
        },
      );
      expect(incident.state, incident.stateReason).toBe('resolved');

      expect(sim.log.find('RebootInstances')).toHaveLength(1);
      expect(sim.log.find('TerminateInstanceInAutoScalingGroup')).toHaveLength(0);
      const node = sim.cluster.getNode(target);
      expect(node?.status?.nodeInfo?.bootID).not.toBe(bootBefore);
      expect(node?.spec?.unschedulable ?? false).toBe(false);
      // It was cordoned on the way, so the uncordon is gpu-medic's doing, not the initial state.
      const patches = k8sRequests(sim).filter(
        (r) => r.method === 'PATCH' && r.resource === 'nodes' && r.name === target,
      );
      expect(patches.length).toBeGreaterThanOrEqual(2);
    });
  }, 30_000);

  it('drains around a PodDisruptionBudget: the protected pod is evicted only once the PDB allows it', async () => {
    await withHarness({}, async ({ sim, rt, gpuNodes }) => {
      // A node of a managed node group that runs a PDB-protected serving pod.
      const protectedPod = sim.cluster
        .listPods({ namespace: SERVING_NAMESPACE })
        .find((p) => p.spec.nodeName && sim.cluster.nodeInfo(p.spec.nodeName)?.autoScalingGroup);
      const target = protectedPod?.spec.nodeName ?? '';
      expect(gpuNodes).toContain(target);
      const podName = protectedPod?.metadata.name ?? '';
      sim.cluster.setPdbDisruptionsAllowed(SERVING_NAMESPACE, SERVING_PDB, 0);

      await startAndScan(rt, gpuNodes);
      sim.cluster.injectXid(target, 6, 79);

      const evictionsOf = () =>
        k8sRequests(sim).filter(
          (r) => r.subresource === 'eviction' && r.namespace === SERVING_NAMESPACE && r.name === podName,
        );
      await waitFor('an eviction refused by the PDB', () =>
        evictionsOf().some((r) => r.status === 429) ? true : undefined,
      );
      expect(sim.log.find('TerminateInstanceInAutoScalingGroup')).toHaveLength(0);
      expect(incidentsOn(rt, target).find((i) => isOpen(i.state))?.state).toBe('draining');

      sim.cluster.setPdbDisruptionsAllowed(SERVING_NAMESPACE, SERVING_PDB, 1);
      const incident = await waitFor('the incident to close', () =>
        incidentsOn(rt, target).find((i) => i.category === 'XID_CRITICAL_79' && !isOpen(i.state)),
      );
      expect(incident.state, incident.stateReason).toBe('resolved');
      const statuses = evictionsOf().map((r) => r.status);
      expect(statuses.filter((s) => s === 201)).toHaveLength(1);
      // Every refusal came before the one eviction that went through; nothing deleted the pod around it.
      expect(statuses.lastIndexOf(429)).toBeLessThan(statuses.indexOf(201));
      expect(
        k8sRequests(sim).filter((r) => r.method === 'DELETE' && r.resource === 'pods' && r.name === podName),
      ).toHaveLength(0);
      expect(sim.log.find('TerminateInstanceInAutoScalingGroup')).toHaveLength(1);
    });
  }, 45_000);

  it('escalates a fault that survives the reboot to a replace: one reboot, then one termination', async () => {
    await withHarness({}, async ({ sim, rt, gpuNodes }) => {
      // A node of a managed node group, so the replace goes through Auto Scaling.
      const target = gpuNodes.find((n) => sim.cluster.nodeInfo(n)?.autoScalingGroup) ?? '';
      expect(target).not.toBe('');
      await startAndScan(rt, gpuNodes);
      sim.cluster.injectEcc(target, 4, { dbe: 3, persistent: true });

      const replaced = await waitFor(
        'the follow-up replace to resolve',
        () => incidentsOn(rt, target).find((i) => i.plannedAction === 'replace' && i.state === 'resolved'),
        {
          context: () => incidentsOn(rt, target).map((i) => [i.id, i.state, i.plannedAction, i.stateReason]),
        },
      );
      const all = incidentsOn(rt, target).sort((a, b) => a.firstSeen - b.firstSeen);
      expect(all.map((i) => [i.plannedAction, i.state])).toEqual([
        ['reboot', 'escalated'],
        ['replace', 'resolved'],
      ]);
      expect(replaced.faultKey).toBe(all[0]?.faultKey);
      expect(sim.log.find('RebootInstances')).toHaveLength(1);
      expect(sim.log.find('TerminateInstanceInAutoScalingGroup')).toHaveLength(1);
      expect(sim.cluster.getNode(target)).toBeUndefined();
    });
  }, 45_000);

  it('in dry run, resolves the XID 79 incident and sends no mutating request at all', async () => {
    await withHarness({ env: { DRY_RUN: 'true' } }, async ({ sim, rt, gpuNodes }) => {
      const target = gpuNodes[0] ?? '';
      await startAndScan(rt, gpuNodes);
      sim.cluster.injectXid(target, 0, 79);

      const incident = await waitFor(
        'the dry-run incident to close',
        () => incidentsOn(rt, target).find((i) => i.category === 'XID_CRITICAL_79' && !isOpen(i.state)),
        {
          context: () =>
            incidentsOn(rt, target).map((i) => [
              i.category,
              i.state,
              i.stateReason,
              i.plannedAction,
              i.mode,
              i.preexisting,
            ]),
        },
      );
      expect(incident.state, incident.stateReason).toBe('resolved');
      expect(incident.stateReason ?? '').toMatch(/dry.run/i);
      expect(sim.mutatingRequests()).toEqual([]);
      expect(sim.cluster.getNode(target)?.spec?.unschedulable ?? false).toBe(false);
    });
  }, 30_000);

  it('never touches an excluded node', async () => {
    await withHarness({}, async ({ sim, rt, gpuNodes }) => {
      const target = gpuNodes[3] ?? '';
      const instanceId = instanceIdOf(sim, target);
      const excluded = await rt.services.exclude(target, { reason: 'test' }, 'cli:test');
      expect(excluded.ok).toBe(true);

      await startAndScan(rt, gpuNodes);
      sim.cluster.injectXid(target, 1, 79);

      // Excluded nodes are scanned and shown but open no incident: wait until several scans have seen the fault.
      let sightings = 0;
      let last: unknown;
      await waitFor('several scans that see the fault on the excluded node', () => {
        const r = rt.lastScan.get(target);
        if (r && r !== last && r.verdict.findings.some((f) => f.category === 'XID_CRITICAL_79')) {
          last = r;
          sightings++;
        }
        return sightings >= 4 ? true : undefined;
      });
      expect(
        incidentsOn(rt, target).filter((i) => i.state !== 'detected' && i.state !== 'awaiting_approval'),
      ).toEqual([]);
      expect(mentions(sim, target, instanceId)).toBe(false);
      expect(sim.log.find('TerminateInstanceInAutoScalingGroup')).toHaveLength(0);
      expect(sim.log.find('RebootInstances')).toHaveLength(0);
      expect(sim.cluster.getNode(target)?.spec?.unschedulable ?? false).toBe(false);
    });
  }, 30_000);

  it('with faults on 40% of nodes, works on one node at a time and opens the circuit breaker', async () => {
    await withHarness(
      { nodes: 10, env: { MAX_CONCURRENT_REMEDIATIONS: '1' } },
      async ({ sim, rt, gpuNodes }) => {
        const faulty = gpuNodes.slice(0, 4);
        await startAndScan(rt, gpuNodes);
        for (const [i, n] of faulty.entries()) sim.cluster.injectXid(n, i, 79);

        let maxWorking = 0;
        const sample = () => {
          const working = rt.store.incidents.listOpen().filter((i) => isWorking(i.state)).length;
          maxWorking = Math.max(maxWorking, working);
        };
        await waitFor('an incident on every faulty node and the breaker open', () => {
          sample();
          const all = faulty.every((n) => incidentsOn(rt, n).length > 0);
          return all && rt.services.status().breaker.open ? true : undefined;
        });
        // Keep sampling while whatever was allowed to start runs to its end.
        await waitFor('no remediation in flight', () => {
          sample();
          return rt.store.incidents.listOpen().some((i) => isWorking(i.state)) ? undefined : true;
        });
        expect(maxWorking).toBeLessThanOrEqual(1);
        expect(rt.services.status().breaker.open).toBe(true);
        // At most one node was ever terminated; the others wait for a human.
        expect(sim.log.find('TerminateInstanceInAutoScalingGroup').length).toBeLessThanOrEqual(1);
      },
    );
  }, 40_000);

  it('with the breaker out of the way, runs at most MAX_CONCURRENT_REMEDIATIONS=1 at a time', async () => {
    await withHarness(
      { nodes: 10, env: { MAX_CONCURRENT_REMEDIATIONS: '1', MAX_UNHEALTHY_PERCENT: '100' } },
      async ({ sim, rt, gpuNodes }) => {
        const faulty = gpuNodes.slice(0, 4);
        await startAndScan(rt, gpuNodes);
        for (const [i, n] of faulty.entries()) sim.cluster.injectXid(n, i, 79);

        let maxWorking = 0;
        await waitFor(
          'an incident on every faulty node and one replacement finished',
          () => {
            const working = rt.store.incidents.listOpen().filter((i) => isWorking(i.state)).length;
            maxWorking = Math.max(maxWorking, working);
            const all = faulty.every((n) => incidentsOn(rt, n).length > 0);
            const done = faulty.some((n) => incidentsOn(rt, n).some((i) => i.state === 'resolved'));
            return all && done ? true : undefined;
          },
          { context: () => faulty.map((n) => incidentsOn(rt, n).map((i) => [i.state, i.stateReason])) },
        );
        expect(maxWorking).toBe(1);
        expect(rt.services.status().breaker.open).toBe(false);
      },
    );
  }, 40_000);
});
