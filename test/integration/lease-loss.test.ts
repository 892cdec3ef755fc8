/**
 * Issue 11, item 5 ("Cancellation"), with two real runtimes (real @kubernetes/client-node, AWS SDK and
 * SQLite) against the simulator:
 *   - lease lost mid-drain: the drain waits on a PodDisruptionBudget when another holder takes the Lease;
 *     the runtime that lost it sends not one more eviction, and its run ends with the drain's `started`
 *     row in place; a second runtime on the same database becomes the leader, resumes from the journal
 *     and finishes the remediation with no step done twice;
 *   - the process stops mid-drain: the run is aborted at once instead of draining on while the store closes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/app/runtime.js';
import { loadConfig } from '../../src/config/config.js';
import { microTime } from '../../src/k8s/leader.js';
import { silentLogger } from '../../src/log/logger.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import type { K8sRecordedRequest } from '../../src/sim/k8s-server.js';
import { SERVING_NAMESPACE, SERVING_PDB } from '../../src/sim/workloads.js';
import { stepStore } from '../../src/store/remediation-stores.js';
import { restoreEnv } from '../support/sim-runtime.js';
import { waitFor } from '../support/wait.js';

const savedEnv = { ...process.env };
const LEASE_NAMESPACE = 'gpu-medic';
const LEASE_NAME = 'gpu-medic-leader';
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-lease-loss-'));
});

afterAll(() => {
  restoreEnv(savedEnv);
  rmSync(dir, { recursive: true, force: true });
});

function k8s(sim: Simulator): K8sRecordedRequest[] {
  return sim.log.requests.filter((r): r is K8sRecordedRequest => r.service === 'k8s');
}

function evictions(sim: Simulator): K8sRecordedRequest[] {
  return k8s(sim).filter((r) => r.operation === 'evictPod');
}

function schedulabilityPatches(sim: Simulator, node: string): boolean[] {
  return (
    k8s(sim)
      .filter((r) => r.operation === 'patchNode' && r.name === node)
      .map((r) => JSON.parse(r.body) as { spec?: { unschedulable?: boolean | null } })
      // Cordon and uncordon only, not the karpenter.sh/do-not-disrupt annotation's patches.
      .filter((b) => b.spec !== undefined && 'unschedulable' in b.spec)
      .map((b) => b.spec?.unschedulable === true)
  );
}

async function startSim(): Promise<{ sim: Simulator; target: string; gpuNodes: string[] }> {
  const sim = await startSimulator({
    nodes: 4,
    rebootDelayMs: 1500,
    replaceDelayMs: 2000,
    // The DBE is read from the ECC counter (gpu-medic's counters file); boot delays scaled down.
    counters: 'full',
    devicePluginDelayMs: 300,
    exporterReadyDelayMs: 200,
    slack: false,
    controlPort: false,
  });
  Object.assign(process.env, sim.env);
  const gpuNodes = sim.cluster
    .listNodes()
    .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
    .map((n) => n.metadata.name);
  // The node running the PDB-protected serving pods, which the PDB keeps from being evicted.
  const target =
    gpuNodes.find((n) => sim.cluster.listPods({ namespace: SERVING_NAMESPACE, nodeName: n }).length > 0) ??
    '';
  sim.cluster.setPdbDisruptionsAllowed(SERVING_NAMESPACE, SERVING_PDB, 0);
  return { sim, target, gpuNodes };
}

function runtimeOn(sim: Simulator, db: string, name: string): Promise<Runtime> {
  const config = loadConfig({
    ...sim.env,
    DB_PATH: db,
    MONITOR_INTERVAL: '1',
    CLASSIFIER: 'rules',
    LOG_LEVEL: 'silent',
    POD_NAMESPACE: LEASE_NAMESPACE,
    POD_NAME: name,
    REMEDIATIONS_PER_HOUR: '50',
    MAX_UNHEALTHY_PERCENT: '60',
    LEASE_DURATION: '2',
    LEASE_RENEW: '0.5',
    REBOOT_GRACE: '2',
    REMEDIATION_POLL: '0.25',
  });
  // The Lease identity is POD_NAME (read from the process environment) plus a random suffix.
  process.env.POD_NAME = name;
  // A short PDB backoff: the run that lost the lease would retry the eviction several times a second.
  return createRuntime(config, {
    logger: silentLogger(),
    leaderElection: true,
    engine: { pollMs: 200, maxBackoffMs: 200 },
  });
}

async function leadAndScan(rt: Runtime, gpuNodes: string[]): Promise<void> {
  await rt.start();
  await waitFor(
    'the leader to scan every GPU node',
    () => (rt.leader?.isLeader() && gpuNodes.every((n) => rt.lastScan.has(n)) ? true : undefined),
    { timeoutMs: 30_000 },
  );
}

describe('cancellation with real runtimes against the simulator', () => {
  it('lease lost mid-drain: evictions stop; the next leader resumes from the journal; no step done twice', async () => {
    const { sim, target, gpuNodes } = await startSim();
    const db = join(dir, 'shared.db');
    let a: Runtime | undefined;
    let b: Runtime | undefined;
    try {
      expect(target).not.toBe('');
      a = await runtimeOn(sim, db, 'medic-a');
      await leadAndScan(a, gpuNodes);
      const rtA = a;
      sim.cluster.injectEcc(target, 1, { dbe: 1 });

      const incidentId = await waitFor(
        'the drain to wait on the PDB',
        () => {
          const incident = rtA.store.incidents.listByNode(target, 10).find((i) => i.state === 'draining');
          const blocked = evictions(sim).filter((r) => r.status === 429).length >= 2;
          return incident && blocked ? incident.id : undefined;
        },
        { context: () => rtA.store.incidents.listByNode(target, 10), timeoutMs: 30_000 },
      );
      const evictedBefore = evictions(sim).filter((r) => r.status === 201);

      // Another candidate takes the Lease (say, after a network partition): medic-a finds out on its next renew.
      let lostAt: number | undefined;
      rtA.leader?.onChange((leading) => {
        if (!leading && lostAt === undefined) lostAt = Date.now();
      });
      const lease = sim.cluster.getLease(LEASE_NAMESPACE, LEASE_NAME);
      if (!lease) throw new Error('no Lease');
      sim.cluster.replaceLease(LEASE_NAMESPACE, LEASE_NAME, {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: 'medic-ghost',
          leaseDurationSeconds: 2,
          renewTime: String(microTime(Date.now())),
        },
      });
      await waitFor('medic-a to notice it lost the lease', () => (lostAt !== undefined ? true : undefined), {
        timeoutMs: 30_000,
      });
      // Its run ends on its own, the drain unfinished: without the abort it would retry until DRAIN_TIMEOUT.
      await waitFor('medic-a to stop its run', () => (rtA.engine.active().length === 0 ? true : undefined), {
        timeoutMs: 30_000,
      });
      const steps = stepStore(rtA.store);
      expect(steps.lastOf(incidentId, 'drain')?.status).toBe('started');
      expect(rtA.store.incidents.get(incidentId)?.state).toBe('draining');
      await rtA.stop();
      a = undefined;
      const afterLoss = evictions(sim).filter((r) => r.at >= (lostAt ?? 0));
      expect(afterLoss.map((r) => `${r.name} ${r.status}`)).toEqual([]);

      // The next leader: a second runtime on the same database, once the other holder's lease runs out.
      sim.cluster.setPdbDisruptionsAllowed(SERVING_NAMESPACE, SERVING_PDB, 100);
      b = await runtimeOn(sim, db, 'medic-b');
      await b.start();
      const rtB = b;
      const end = await waitFor(
        'medic-b to finish the remediation',
        () => {
          const incident = rtB.store.incidents.get(incidentId);
          return incident?.closedAt !== undefined ? incident : undefined;
        },
        {
          context: () =>
            stepStore(rtB.store)
              .list(incidentId)
              .map((r) => `${r.step}:${r.status}`),
          timeoutMs: 60_000,
        },
      );
      expect(end.state).toBe('resolved');
      expect(sim.cluster.getLease(LEASE_NAMESPACE, LEASE_NAME)?.spec?.holderIdentity).toMatch(/^medic-b-/);

      // No step done twice: one done row per step, one cordon and one uncordon, one reboot.
      const rows = stepStore(rtB.store).list(incidentId);
      const done = rows.filter((r) => r.status === 'done').map((r) => r.step);
      expect(new Set(done).size, done.join(' ')).toBe(done.length);
      expect(done).toContain('drain');
      expect(rows.filter((r) => r.step === 'drain')).toHaveLength(1);
      expect(schedulabilityPatches(sim, target)).toEqual([true, false]);
      expect(sim.log.find('RebootInstances')).toHaveLength(1);
      // Pods medic-a evicted were not evicted again; every pod was evicted at most once.
      const accepted = evictions(sim)
        .filter((r) => r.status === 201)
        .map((r) => `${r.namespace}/${r.name}`);
      expect(new Set(accepted).size).toBe(accepted.length);
      expect(accepted.slice(0, evictedBefore.length)).toEqual(
        evictedBefore.map((r) => `${r.namespace}/${r.name}`),
      );
      sim.assertNoUnexpected();
    } finally {
      await a?.stop();
      await b?.stop();
      await sim.close();
    }
  }, 120_000);

  it('the process stops mid-drain: the run is aborted at once and the drain is left for the next start', async () => {
    const { sim, target, gpuNodes } = await startSim();
    let rt: Runtime | undefined;
    try {
      rt = await runtimeOn(sim, join(dir, 'stop.db'), 'medic-stop');
      await leadAndScan(rt, gpuNodes);
      const live = rt;
      sim.cluster.injectEcc(target, 1, { dbe: 1 });
      const incidentId = await waitFor(
        'the drain to wait on the PDB',
        () => {
          const incident = live.store.incidents.listByNode(target, 10).find((i) => i.state === 'draining');
          return incident && evictions(sim).some((r) => r.status === 429) ? incident.id : undefined;
        },
        { timeoutMs: 30_000 },
      );
      const steps = stepStore(live.store);
      let runsAtClose: string[] | undefined;
      let drainAtClose: string | undefined;
      const close = live.store.close.bind(live.store);
      live.store.close = () => {
        // What was still running when the store went away: nothing may be.
        runsAtClose = live.engine.active();
        drainAtClose = steps.lastOf(incidentId, 'drain')?.status;
        close();
      };
      await live.stop();
      rt = undefined;
      expect(runsAtClose).toEqual([]);
      expect(drainAtClose).toBe('started');
      sim.assertNoUnexpected();
    } finally {
      await rt?.stop();
      await sim.close();
    }
  }, 60_000);
});
