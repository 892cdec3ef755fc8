/**
 * Issue 4, "Done when": the process is killed (SIGKILL, a real child process) at every step in turn and
 * restarted: each external action happens exactly once, and every incident reaches the same end state.
 *
 * `gpu-medic run` runs as a child process against a simulator in this process. For each kill point the
 * scenario gets a fresh simulator and database: start the child, inject the fault, SIGKILL the child at
 * the kill point, start a second child on the same database and wait for the incident's end state.
 *
 * Kill points, per step of the plan:
 *   - `started`: the step's `started` row is in the database (the effect may or may not have happened);
 *   - `effect`:  the simulator has just served the step's mutating request; the child is killed from inside
 *                the simulator's request log, before it can read the answer and write `done`;
 *   - `done`:    the step's `done` row is in the database.
 * Steps that write no `started` row (kubeflow_snapshot, verify_scan, follow_jobs: the engine writes their
 * row when they finish) are killed at `done`; `resolve` writes no row and ends the run, so it has no kill
 * point. A poll sees a row some milliseconds after it is written, so a kill lands at that point or a little
 * later: each scenario's name says where the kill was aimed, not where it provably landed.
 *
 * A restarted child waits until the killed child's Lease runs out (LEASE_DURATION, 5 s here), and a
 * reboot interrupted before the EC2 call is re-sent only after REBOOT_GRACE; the scenarios run concurrently.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { planSteps, type StepName } from '../../src/remediate/state-machine.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import type { K8sRecordedRequest } from '../../src/sim/k8s-server.js';
import type { RecordedRequest } from '../../src/sim/recorder.js';
import {
  type ChildRun,
  childEnv,
  type IncidentView,
  incidentsIn,
  killAllChildren,
  scannedNodes,
  startRun,
  stepsIn,
} from '../support/child-run.js';
import { waitFor } from '../support/wait.js';

type Boundary = 'started' | 'effect' | 'done';
interface KillPoint {
  step: StepName;
  at: Boundary;
}

/** Steps whose `started` row is written before their effect (the others are recorded when they finish). */
const bracketed = new Set<StepName>([
  'cordon',
  'drain',
  'reboot',
  'wait_node_back',
  'diagnose',
  'uncordon',
  'replace',
  'wait_replacement',
]);
/** Steps with an external effect the simulator can see, and the request that is that effect. */
const effects: Partial<Record<StepName, (r: RecordedRequest, node: string) => boolean>> = {
  cordon: (r, node) => isSchedulabilityPatch(r, node, true),
  drain: (r) => r.operation === 'evictPod' && r.status === 201,
  reboot: (r) => r.operation === 'RebootInstances',
  uncordon: (r, node) => isSchedulabilityPatch(r, node, false),
  replace: (r) => r.operation === 'TerminateInstanceInAutoScalingGroup',
};

function isSchedulabilityPatch(r: RecordedRequest, node: string, unschedulable: boolean): boolean {
  const k = r as K8sRecordedRequest;
  if (k.service !== 'k8s' || k.operation !== 'patchNode' || k.name !== node) return false;
  try {
    const body = JSON.parse(k.body) as { spec?: { unschedulable?: unknown } };
    return (body.spec?.unschedulable === true) === unschedulable && body.spec?.unschedulable !== undefined;
  } catch {
    return false;
  }
}

function killPoints(steps: readonly StepName[]): KillPoint[] {
  const points: KillPoint[] = [];
  for (const step of steps) {
    if (step === 'resolve') continue;
    if (!bracketed.has(step)) {
      points.push({ step, at: 'done' });
      continue;
    }
    points.push({ step, at: 'started' });
    if (effects[step]) points.push({ step, at: 'effect' }, { step, at: 'done' });
  }
  return points;
}

// As the child runs it: POST_REPAIR_DIAG defaults to 1, so a DCGM diagnostic comes before the uncordon.
const rebootPlan = planSteps('reboot', { diagnose: true });
const rebootKills = killPoints(rebootPlan);
const replaceKills = killPoints(['replace', 'wait_replacement']);

// Most of a scenario is waiting (lease expiry, reboot grace, boot delays), so ten run at a time; more would
// starve the other test files of CPU, as each scenario starts two gpu-medic children.
vi.setConfig({ maxConcurrency: 10 });

const terminal = new Set(['resolved', 'escalated', 'failed', 'cancelled', 'dismissed']);
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-crash-'));
});

afterAll(async () => {
  await killAllChildren();
  rmSync(dir, { recursive: true, force: true });
});

let scenarioCounter = 0;

interface Scenario {
  sim: Simulator;
  db: string;
  gpuNodes: string[];
  target: string;
  instanceId: string;
  /** Pods a drain must evict: not DaemonSet, not mirror pods. */
  evictable: string[];
  children: ChildRun[];
  /** Where the kill landed: the step rows and the incident as read right after SIGKILL. */
  atKill: { rows: string; incident: IncidentView | undefined };
  incident: IncidentView;
  start(name: string): Promise<ChildRun>;
  output(): string;
}

/**
 * One kill-and-restart run: a fresh simulator and database, the fault injected once the child has scanned
 * every node, SIGKILL at `kill`, a second child, and the incident's end state.
 */
async function crashAndResume(
  kill: KillPoint,
  fault: (sim: Simulator, node: string) => void,
  check: (s: Scenario) => void,
): Promise<void> {
  const sim = await startSimulator({
    // ECC DBE faults are read from the exporter's ECC counters: opt into the full counter set (stock has none).
    counters: 'full',
    nodes: 4,
    rebootDelayMs: 1500,
    replaceDelayMs: 2000,
    // After a boot the GPUs come back late, as on a real node (scaled down): the settle gate waits for them.
    devicePluginDelayMs: 600,
    exporterReadyDelayMs: 400,
    slack: false,
    controlPort: false,
  });
  const db = join(dir, `crash-${++scenarioCounter}.db`);
  const children: ChildRun[] = [];
  try {
    const nodes = sim.cluster.listNodes().filter((n) => n.status?.capacity?.['nvidia.com/gpu']);
    const gpuNodes = nodes.map((n) => n.metadata.name);
    // A node-group node (replace goes through Auto Scaling) that runs a training pod the drain must evict.
    const managed = nodes
      .filter((n) => !n.metadata.labels?.['karpenter.sh/nodepool'])
      .map((n) => n.metadata.name);
    const target = managed.at(-1) ?? '';
    const instanceId = sim.cluster.getNode(target)?.spec?.providerID?.split('/').pop() ?? '';
    const evictable = sim.cluster
      .listPods({ nodeName: target })
      .filter((p) => !p.metadata.ownerReferences?.some((o) => o.kind === 'DaemonSet' || o.kind === 'Node'))
      .map((p) => `${p.metadata.namespace}/${p.metadata.name}`);
    expect(instanceId).toMatch(/^i-/);
    expect(evictable.length).toBeGreaterThan(0);

    const s: Scenario = {
      sim,
      db,
      gpuNodes,
      target,
      instanceId,
      evictable,
      children,
      atKill: { rows: '', incident: undefined },
      incident: undefined as unknown as IncidentView,
      async start(name) {
        const child = startRun(
          name,
          childEnv(sim.env, {
            DB_PATH: db,
            MONITOR_INTERVAL: '1',
            CLASSIFIER: 'rules',
            LOG_LEVEL: 'info',
            // Ephemeral: a port picked in advance can be taken by another test's server before the child binds it.
            PORT: '0',
            POD_NAMESPACE: 'gpu-medic',
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
        children.push(child);
        return child;
      },
      output: () =>
        [
          `kill point: ${kill.step} ${kill.at}`,
          `steps at kill: ${s.atKill.rows}`,
          `steps now: ${stepsIn(db)
            .map((r) => `${r.step}:${r.status}`)
            .join(' ')}`,
          `incidents: ${JSON.stringify(incidentsIn(db))}`,
          ...children.map((c) => c.output(60)),
        ].join('\n'),
    };
    const ctx = { context: () => s.output() };

    const first = await s.start('first');
    await waitFor(
      'the first scan of every GPU node',
      () => (gpuNodes.every((n) => scannedNodes(db).includes(n)) ? true : undefined),
      { timeoutMs: 60_000, alive: [first], ...ctx },
    );

    let killed = false;
    const killNow = () => {
      if (killed) return;
      killed = true;
      if (first.pid) process.kill(first.pid, 'SIGKILL');
    };
    const effect = effects[kill.step];
    if (kill.at === 'effect' && effect) {
      // Killed from inside the simulator's request log: the effect happened, its answer is never read.
      const record = sim.log.record.bind(sim.log);
      sim.log.record = (r: RecordedRequest) => {
        record(r);
        if (effect(r, target)) killNow();
      };
    }
    fault(sim, target);

    await waitFor(
      `the kill point ${kill.step} ${kill.at}`,
      () => {
        if (kill.at !== 'effect') {
          const row = stepsIn(db).find(
            (r) =>
              r.step === kill.step &&
              (r.status === kill.at || (kill.at === 'started' && r.status === 'done')),
          );
          if (row) killNow();
        }
        return killed ? true : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 20, alive: [first], ...ctx },
    );
    const exit = await first.exited;
    expect(exit.signal, s.output()).toBe('SIGKILL');
    s.atKill = {
      rows: stepsIn(db)
        .map((r) => `${r.step}:${r.status}`)
        .join(' '),
      incident: incidentsIn(db).find((i) => i.node === target),
    };

    const second = await s.start('second');
    s.incident = await waitFor(
      'the incident to reach an end state after the restart',
      () => incidentsIn(db).find((i) => i.node === target && terminal.has(i.state)),
      // A reboot killed between its `started` row and the EC2 call is re-issued only after REBOOT_GRACE (8 s
      // here) shows no sign of it, after the killed child's Lease ran out (5 s). The deadline only bounds a hung
      // run: ten scenarios and their children share the machine.
      { timeoutMs: 240_000, intervalMs: 200, alive: [second], ...ctx },
    );
    // The do-not-disrupt annotation comes off just after the end (also when the kill came between the two).
    // Wait for its journal row, not just the patch: a first process killed between the patch and the row
    // leaves the patch in the log, and the restarted one must still finish the row.
    const incidentId = s.incident.id;
    await waitFor(
      'the do-not-disrupt annotation to be released and its release recorded',
      () =>
        k8s(sim).some(
          (r) =>
            r.operation === 'patchNode' &&
            r.name === target &&
            r.body.includes('do-not-disrupt') &&
            JSON.parse(r.body).metadata?.annotations?.['karpenter.sh/do-not-disrupt'] === null,
        ) &&
        stepsIn(db, incidentId)
          .filter((r) => r.step === 'release_guard')
          .every((r) => r.status === 'done')
          ? true
          : undefined,
      { timeoutMs: 30_000, intervalMs: 200, alive: [second], ...ctx },
    );
    await second.stop('SIGTERM');
    // Work in flight at the kill is resumed by the restarted process, not started again from the monitor.
    const wasWorking =
      s.atKill.incident !== undefined &&
      !terminal.has(s.atKill.incident.state) &&
      s.atKill.incident.state !== 'detected';
    if (wasWorking) {
      const resumed = second.logs().find((l) => l.msg === 'resumed unfinished remediations');
      expect(resumed?.incidents, s.output()).toEqual([s.incident.id]);
    }
    check(s);
    sim.assertNoUnexpected();
  } finally {
    await Promise.all(children.map((c) => c.stop('SIGKILL')));
    await sim.close();
    rmSync(db, { force: true });
    rmSync(`${db}-wal`, { force: true });
    rmSync(`${db}-shm`, { force: true });
  }
}

function k8s(sim: Simulator): K8sRecordedRequest[] {
  return sim.log.requests.filter((r): r is K8sRecordedRequest => r.service === 'k8s');
}

/** Each step of the plan ran to `done` exactly once: a resume finishes the interrupted row, never adds one. */
function expectEachStepOnce(s: Scenario, plan: readonly StepName[]): void {
  // `plan` and `release_guard` (the do-not-disrupt annotation's removal) are bookkeeping, not plan steps.
  const rows = stepsIn(s.db, s.incident.id).filter((r) => r.step !== 'plan' && r.step !== 'release_guard');
  const summary = rows.map((r) => `${r.step}:${r.status}`);
  expect(summary, s.output()).toEqual(plan.filter((p) => p !== 'resolve').map((p) => `${p}:done`));
}

function expectEvictionsOnce(s: Scenario): void {
  const evictions = k8s(s.sim).filter((r) => r.operation === 'evictPod');
  const ok = evictions.filter((r) => r.status === 201).map((r) => `${r.namespace}/${r.name}`);
  // No pod is evicted twice, and no eviction is sent for a pod that is already gone.
  expect(new Set(ok).size, s.output()).toBe(ok.length);
  expect(
    evictions.filter((r) => r.status === 404),
    s.output(),
  ).toEqual([]);
  expect(ok.length).toBeLessThanOrEqual(s.evictable.length);
  for (const p of s.evictable) expect(ok, s.output()).toContain(p);
}

describe.concurrent('SIGKILL of `gpu-medic run` and restart: ECC DBE → reboot', () => {
  it('covers every step of the reboot plan', () => {
    const covered = new Set(rebootKills.map((k) => k.step));
    expect([...covered].sort()).toEqual(rebootPlan.filter((s) => s !== 'resolve').sort());
  });

  it.each(rebootKills.map((k) => [`${k.step} ${k.at}`, k] as const))(
    'killed at %s: one reboot, one cordon, one uncordon, resolved',
    async (_name, kill) => {
      await crashAndResume(
        kill,
        (sim, node) => sim.cluster.injectEcc(node, 5, { dbe: 2 }),
        (s) => {
          expect(s.incident, s.output()).toMatchObject({
            category: 'ECC_ERROR',
            planned_action: 'reboot',
            state: 'resolved',
          });
          expect(
            incidentsIn(s.db).filter((i) => i.node === s.target && i.planned_action !== 'none'),
          ).toHaveLength(1);

          const reboots = s.sim.log.find('RebootInstances');
          expect(reboots, s.output()).toHaveLength(1);
          expect(reboots[0]?.body).toContain(s.instanceId);
          expect(s.sim.log.find('TerminateInstanceInAutoScalingGroup')).toHaveLength(0);

          const cordons = k8s(s.sim).filter((r) => isSchedulabilityPatch(r, s.target, true));
          const uncordons = k8s(s.sim).filter((r) => isSchedulabilityPatch(r, s.target, false));
          expect(cordons.length, s.output()).toBe(1);
          expect(uncordons.length, s.output()).toBe(1);
          expect(s.sim.cluster.getNode(s.target)?.spec?.unschedulable ?? false).toBe(false);
          // The node carried karpenter.sh/do-not-disrupt during the repair and no longer does, whatever the
          // kill point: set once (a resumed cordon asks first), removed once the incident ended.
          const guard = k8s(s.sim)
            .filter(
              (r) => r.operation === 'patchNode' && r.name === s.target && r.body.includes('do-not-disrupt'),
            )
            .map((r) => JSON.parse(r.body).metadata.annotations['karpenter.sh/do-not-disrupt']);
          expect(guard, s.output()).toContain('true');
          expect(guard.at(-1), s.output()).toBeNull();
          expect(
            s.sim.cluster.getNode(s.target)?.metadata.annotations?.['karpenter.sh/do-not-disrupt'],
            s.output(),
          ).toBeUndefined();
          expect(
            stepsIn(s.db, s.incident.id)
              .filter((r) => r.step === 'release_guard')
              .map((r) => r.status),
            s.output(),
          ).toEqual(['done']);

          expectEvictionsOnce(s);
          expectEachStepOnce(s, rebootPlan);
        },
      );
    },
    300_000,
  );
});

describe.concurrent('SIGKILL of `gpu-medic run` and restart: XID 79 → replace through Auto Scaling', () => {
  it.each(replaceKills.map((k) => [`${k.step} ${k.at}`, k] as const))(
    'killed at %s: one termination, a replacement node, resolved',
    async (_name, kill) => {
      await crashAndResume(
        kill,
        (sim, node) => sim.cluster.injectXid(node, 3, 79),
        (s) => {
          expect(s.incident, s.output()).toMatchObject({
            category: 'XID_CRITICAL_79',
            planned_action: 'replace',
            state: 'resolved',
          });

          const terminations = s.sim.log.find('TerminateInstanceInAutoScalingGroup');
          expect(terminations, s.output()).toHaveLength(1);
          expect(terminations[0]?.body).toContain(s.instanceId);
          expect(terminations[0]?.body).toMatch(/ShouldDecrementDesiredCapacity=false/);
          expect(s.sim.log.find('RebootInstances')).toHaveLength(0);
          expect(s.sim.log.find('TerminateInstances')).toHaveLength(0);

          const nowGpu = s.sim.cluster.listNodes().filter((n) => n.status?.capacity?.['nvidia.com/gpu']);
          const added = nowGpu.filter((n) => !s.gpuNodes.includes(n.metadata.name));
          // One successor in the node group; any other new node is one Karpenter started for the evicted
          // training pod while it waited for a GPU node (Karpenter provisions for pending pods).
          const fresh = added.filter((n) => n.metadata.labels?.['eks.amazonaws.com/nodegroup']);
          expect(fresh, s.output()).toHaveLength(1);
          for (const n of added.filter((x) => !fresh.includes(x)))
            expect(n.metadata.labels?.['karpenter.sh/nodepool'], s.output()).toBe('gpu');
          expect(nowGpu.map((n) => n.metadata.name)).not.toContain(s.target);
          const waited = stepsIn(s.db, s.incident.id).find((r) => r.step === 'wait_replacement');
          expect(JSON.parse(waited?.detail ?? '{}')).toMatchObject({ replacement: fresh[0]?.metadata.name });

          const cordons = k8s(s.sim).filter((r) => isSchedulabilityPatch(r, s.target, true));
          expect(cordons.length, s.output()).toBe(1);
          expectEvictionsOnce(s);
          expectEachStepOnce(s, planSteps('replace'));
        },
      );
    },
    300_000,
  );
});
