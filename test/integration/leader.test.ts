/**
 * Issue 4, "Done when", with real `gpu-medic run` child processes against a simulator in this process:
 *   - two engines against one simulated cluster → only the Lease holder acts; after the holder is
 *     SIGKILLed and its lease runs out, the other takes over and acts on a new fault;
 *   - a human uncordon mid-remediation (the drain waits on a PodDisruptionBudget) cancels it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import type { K8sRecordedRequest } from '../../src/sim/k8s-server.js';
import { SERVING_NAMESPACE, SERVING_PDB } from '../../src/sim/workloads.js';
import {
  type ChildRun,
  childEnv,
  incidentsIn,
  killAllChildren,
  scannedNodes,
  startRun,
  stepsIn,
} from '../support/child-run.js';
import { waitFor } from '../support/wait.js';

const terminal = new Set(['resolved', 'escalated', 'failed', 'cancelled', 'dismissed']);
const LEASE_NAMESPACE = 'gpu-medic';
const LEASE_NAME = 'gpu-medic-leader';
let dir: string;
let dbCounter = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-leader-'));
});

afterAll(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

interface Medic {
  child: ChildRun;
  db: string;
}

async function startMedic(sim: Simulator, name: string): Promise<Medic> {
  const db = join(dir, `${name}-${++dbCounter}.db`);
  const child = startRun(
    name,
    childEnv(sim.env, {
      DB_PATH: db,
      MONITOR_INTERVAL: '1',
      CLASSIFIER: 'rules',
      LOG_LEVEL: 'info',
      // Ephemeral: a port picked in advance can be taken by another test's server before the child binds it.
      PORT: '0',
      POD_NAMESPACE: LEASE_NAMESPACE,
      // The Lease identity is POD_NAME plus a random suffix: it tells the two processes apart.
      POD_NAME: `medic-${name}`,
      REMEDIATIONS_PER_HOUR: '50',
      // One faulty node of four is 25 %: above the default breaker limit of 20 %.
      MAX_UNHEALTHY_PERCENT: '60',
      // Short lease and reboot grace so a restarted process acts again within seconds.
      LEASE_DURATION: '5',
      LEASE_RENEW: '1',
      REBOOT_GRACE: '8',
      REMEDIATION_POLL: '0.25',
    }),
  );
  return { child, db };
}

function holder(sim: Simulator): string {
  return sim.cluster.getLease(LEASE_NAMESPACE, LEASE_NAME)?.spec?.holderIdentity ?? '';
}

function gpuNodeNames(sim: Simulator): string[] {
  return sim.cluster
    .listNodes()
    .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
    .map((n) => n.metadata.name);
}

function instanceIdOf(sim: Simulator, node: string): string {
  return sim.cluster.getNode(node)?.spec?.providerID?.split('/').pop() ?? '';
}

function k8s(sim: Simulator): K8sRecordedRequest[] {
  return sim.log.requests.filter((r): r is K8sRecordedRequest => r.service === 'k8s');
}

/** Cordon (true) and uncordon (false) patches; the karpenter.sh/do-not-disrupt annotation patches are separate. */
function schedulabilityPatches(sim: Simulator, node: string): boolean[] {
  return k8s(sim)
    .filter((r) => r.operation === 'patchNode' && r.name === node)
    .map((r) => JSON.parse(r.body) as { spec?: { unschedulable?: boolean | null } })
    .filter((b) => b.spec !== undefined && 'unschedulable' in b.spec)
    .map((b) => b.spec?.unschedulable === true);
}

function logged(m: Medic, msg: string): boolean {
  return m.child.logs().some((l) => l.msg === msg);
}

function context(sim: Simulator, medics: Medic[]): () => string {
  return () =>
    [
      `lease holder: ${holder(sim)}`,
      ...medics.map(
        (m) =>
          `${m.child.name}: steps ${stepsIn(m.db)
            .map((r) => `${r.step}:${r.status}`)
            .join(' ')} incidents ${JSON.stringify(incidentsIn(m.db))}\n${m.child.output(50)}`,
      ),
    ].join('\n');
}

describe.concurrent('leader election and human override with real `gpu-medic run` processes', () => {
  it('only the Lease holder acts; after it is killed the other takes over and acts', async () => {
    const sim = await startSimulator({
      // ECC DBE faults are read from the exporter's ECC counters: opt into the full counter set.
      counters: 'full',
      nodes: 4,
      rebootDelayMs: 1500,
      replaceDelayMs: 2000,
      devicePluginDelayMs: 600,
      exporterReadyDelayMs: 400,
      slack: false,
      controlPort: false,
    });
    const medics: Medic[] = [];
    try {
      const ctx = { context: context(sim, medics) };
      const nodes = gpuNodeNames(sim);
      const [, second = '', first = ''] = nodes;

      const a = await startMedic(sim, 'a');
      medics.push(a);
      await waitFor(
        'medic-a to hold the Lease and scan every node',
        () =>
          holder(sim).startsWith('medic-a-') && nodes.every((n) => scannedNodes(a.db).includes(n))
            ? true
            : undefined,
        { timeoutMs: 60_000, ...ctx },
      );
      const b = await startMedic(sim, 'b');
      medics.push(b);
      await waitFor('medic-b to be up', () => (logged(b, 'gpu-medic running') ? true : undefined), {
        timeoutMs: 60_000,
        ...ctx,
      });

      sim.cluster.injectEcc(first, 5, { dbe: 2 });
      const holders = new Set<string>();
      const incident = await waitFor(
        'medic-a to finish the ECC incident',
        () => {
          holders.add(holder(sim));
          return incidentsIn(a.db).find((i) => i.node === first && terminal.has(i.state));
        },
        { timeoutMs: 90_000, intervalMs: 100, ...ctx },
      );
      expect(incident.state, ctx.context()).toBe('resolved');
      expect(
        [...holders].every((h) => h.startsWith('medic-a-')),
        [...holders].join(', '),
      ).toBe(true);

      // Each external effect once, by the holder; the standby process did nothing at all.
      const reboots = sim.log.find('RebootInstances');
      expect(reboots).toHaveLength(1);
      expect(reboots[0]?.body).toContain(instanceIdOf(sim, first));
      expect(schedulabilityPatches(sim, first)).toEqual([true, false]);
      expect(stepsIn(b.db), ctx.context()).toEqual([]);
      expect(incidentsIn(b.db)).toEqual([]);
      expect(scannedNodes(b.db)).toEqual([]);
      expect(logged(b, 'became the leader')).toBe(false);
      expect(b.child.alive()).toBe(true);

      // The holder dies without releasing its Lease: the standby takes over once it runs out.
      await a.child.stop('SIGKILL');
      await waitFor(
        'medic-b to take the Lease over',
        () => (holder(sim).startsWith('medic-b-') ? true : undefined),
        {
          timeoutMs: 60_000,
          ...ctx,
        },
      );
      await waitFor(
        'medic-b to become the leader and scan every node',
        () =>
          logged(b, 'became the leader') && nodes.every((n) => scannedNodes(b.db).includes(n))
            ? true
            : undefined,
        { timeoutMs: 60_000, ...ctx },
      );

      sim.cluster.injectEcc(second, 2, { dbe: 1 });
      const taken = await waitFor(
        'medic-b to finish the new ECC incident',
        () => incidentsIn(b.db).find((i) => i.node === second && terminal.has(i.state)),
        { timeoutMs: 90_000, intervalMs: 100, ...ctx },
      );
      expect(taken.state, ctx.context()).toBe('resolved');
      const after = sim.log.find('RebootInstances');
      expect(after).toHaveLength(2);
      expect(after[1]?.body).toContain(instanceIdOf(sim, second));
      expect(schedulabilityPatches(sim, second)).toEqual([true, false]);
      // The first node was finished by medic-a: medic-b never touched it.
      expect(schedulabilityPatches(sim, first)).toEqual([true, false]);
      expect(incidentsIn(a.db).filter((i) => i.node === second)).toEqual([]);
      expect(new Set(stepsIn(b.db).map((r) => r.incident_id))).toEqual(new Set([taken.id]));
      sim.assertNoUnexpected();
    } finally {
      await Promise.all(medics.map((m) => m.child.stop('SIGKILL')));
      await sim.close();
    }
  }, 240_000);

  it('a human uncordon while the drain waits on a PDB cancels the remediation: no reboot', async () => {
    const sim = await startSimulator({
      // ECC DBE faults are read from the exporter's ECC counters: opt into the full counter set.
      counters: 'full',
      nodes: 4,
      rebootDelayMs: 1500,
      replaceDelayMs: 2000,
      devicePluginDelayMs: 600,
      exporterReadyDelayMs: 400,
      slack: false,
      controlPort: false,
    });
    const medics: Medic[] = [];
    try {
      const ctx = { context: context(sim, medics) };
      const nodes = gpuNodeNames(sim);
      // The node running the PDB-protected serving pods.
      const target =
        nodes.find((n) => sim.cluster.listPods({ namespace: SERVING_NAMESPACE, nodeName: n }).length > 0) ??
        '';
      expect(target).not.toBe('');
      sim.cluster.setPdbDisruptionsAllowed(SERVING_NAMESPACE, SERVING_PDB, 0);

      const m = await startMedic(sim, 'solo');
      medics.push(m);
      await waitFor(
        'the first scan of every GPU node',
        () => (nodes.every((n) => scannedNodes(m.db).includes(n)) ? true : undefined),
        { timeoutMs: 60_000, ...ctx },
      );
      sim.cluster.injectEcc(target, 1, { dbe: 1 });

      await waitFor(
        'the drain to be blocked by the PDB',
        () => {
          const draining = stepsIn(m.db).some((r) => r.step === 'drain' && r.status === 'started');
          const blocked = k8s(sim).some((r) => r.operation === 'evictPod' && r.status === 429);
          return draining && blocked ? true : undefined;
        },
        { timeoutMs: 60_000, ...ctx },
      );
      expect(sim.cluster.getNode(target)?.spec?.unschedulable).toBe(true);

      // What `kubectl uncordon` sends.
      const kc = new KubeConfig();
      kc.loadFromFile(sim.kubeconfigPath);
      await kc
        .makeApiClient(CoreV1Api)
        .patchNode(
          { name: target, body: { spec: { unschedulable: false } } },
          setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
        );

      const incident = await waitFor(
        'the incident to end',
        () => incidentsIn(m.db).find((i) => i.node === target && terminal.has(i.state)),
        { timeoutMs: 90_000, intervalMs: 100, ...ctx },
      );
      expect(incident.state, ctx.context()).toBe('cancelled');
      expect(incident.state_reason ?? '').toMatch(/uncordon/i);
      expect(sim.log.find('RebootInstances')).toHaveLength(0);
      expect(sim.log.find('TerminateInstanceInAutoScalingGroup')).toHaveLength(0);
      expect(k8s(sim).filter((r) => r.operation === 'evictPod' && r.status === 201)).toEqual([]);
      // Our cordon, then the human's uncordon, and nothing from gpu-medic after it.
      expect(schedulabilityPatches(sim, target)).toEqual([true, false]);
      expect(sim.cluster.getNode(target)?.spec?.unschedulable ?? false).toBe(false);
      const steps = stepsIn(m.db, incident.id);
      expect(steps.map((r) => r.step)).not.toContain('reboot');
      expect(steps.find((r) => r.step === 'drain')?.status).toBe('skipped');
      sim.assertNoUnexpected();
    } finally {
      await Promise.all(medics.map((x) => x.child.stop('SIGKILL')));
      await sim.close();
    }
  }, 180_000);
});
