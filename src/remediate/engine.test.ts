import { describe, expect, it } from 'vitest';
import {
  createHarness,
  eccFinding,
  type Harness,
  type HarnessOptions,
  testPolicy,
} from './testing/harness.js';
import { SimulatedCrash } from './testing/power.js';

const kubeflowJob = { kind: 'PyTorchJob', apiVersion: 'kubeflow.org/v1', namespace: 'ml', name: 'llama-ft' };

/** A 10-node p5 group in one Auto Scaling group; gpu-0 carries a training pod behind a PDB, a web pod, a DaemonSet pod and a static pod. */
function cluster(options: HarnessOptions = {}, pdbBlocks = 2): Harness {
  const h = createHarness(options);
  for (let i = 0; i < 10; i++) {
    h.world.addNode({
      name: `gpu-${i}`,
      instanceId: `i-0${i}`.padEnd(19, '0'),
      nodeGroup: 'p5',
      asg: 'asg-p5',
    });
  }
  h.world.addPod({ node: 'gpu-0', namespace: 'ml', name: 'llama-ft-worker-0', pdbBlocks, job: kubeflowJob });
  h.world.addPod({ node: 'gpu-0', name: 'web-1' });
  h.world.addPod({ node: 'gpu-0', namespace: 'gpu-operator', name: 'dcgm-exporter-x', daemonSet: true });
  h.world.addPod({ node: 'gpu-0', namespace: 'kube-system', name: 'static-gpu-0', mirror: true });
  h.world.jobStatuses.set('PyTorchJob/ml/llama-ft', ['restarting', 'restarting', 'running']);
  return h;
}

const ecc = {
  faultKey: 'ecc_dbe:gpu0',
  category: 'ECC_ERROR',
  xid: undefined,
  gpu: 0,
  recommendedAction: 'reboot' as const,
  plannedAction: 'reboot' as const,
};

function stepsOf(h: Harness): string[] {
  return h.events.map((e) => e.step);
}

describe('RemediationEngine flows', () => {
  it('XID 79: cordon → drain (PDB blocks, then allows; DaemonSet and static pods stay) → replace via ASG → replacement Ready → resolved', async () => {
    const h = cluster();
    const incident = h.openIncident('gpu-0');
    const result = await h.services.triage(incident.id);
    expect(result).toMatchObject({ ok: true, decision: { action: 'replace', mode: 'auto' } });
    await h.engine.whenIdle();

    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.count('cordon')).toBe(1);
    expect(h.world.count('terminateInAutoScalingGroup')).toBe(1);
    expect(
      h.world.count('terminateInstance') + h.world.count('rebootInstance') + h.world.count('deleteNode'),
    ).toBe(0);
    // The eviction API refused the training pod twice (PDB) before it went; DS and static pods were never evicted.
    const evicted = h.events.filter((e) => e.step === 'pod_evicted').map((e) => e.details.pod);
    expect(evicted.sort()).toEqual(['default/web-1', 'ml/llama-ft-worker-0']);
    expect(stepsOf(h)).toContain('pdb_wait');
    expect(h.world.count('evictPod')).toBe(4);
    const ready = h.events.find((e) => e.step === 'replacement_ready');
    expect(ready?.details.newNode).toMatch(/^p5-new-/);
    expect(h.world.nodes.get(String(ready?.details.newNode))?.ready).toBe(true);
    expect(h.world.nodes.has('gpu-0')).toBe(false);
    const { apiVersion: _, ...jobRef } = kubeflowJob;
    expect(h.events.filter((e) => e.step === 'kubeflow_jobs').map((e) => e.details.jobs)).toEqual([[jobRef]]);
    expect(h.events.find((e) => e.step === 'kubeflow_job_running')?.details).toEqual({
      ...jobRef,
      status: 'running',
    });
    expect(h.events.filter((e) => e.step === 'kubeflow_jobs')).toHaveLength(1);
    expect(stepsOf(h)).not.toContain('kubeflow_job_not_running');
    expect(stepsOf(h).at(-1)).toBe('resolved');
    expect(
      h.audit.entries.some((e) => e.action === 'remediate.replace' && e.result.startsWith('resolved')),
    ).toBe(true);
  });

  it('publishes the details the thread reads (chat-events ProgressDetails) for replace, drain and jobs', async () => {
    const h = cluster();
    const incident = h.openIncident('gpu-0');
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    const details = (step: string) => h.events.filter((e) => e.step === step).map((e) => e.details);

    expect(details('policy')).toEqual([expect.objectContaining({ action: 'replace', mode: 'auto' })]);
    // Two pods to evict (web and training); the DaemonSet and static pods stay.
    expect(details('drain_started')).toEqual([{ pods: 2, skipped: 2 }]);
    const evictions = h.events.flatMap((e) => (e.step === 'pod_evicted' ? [e.details] : []));
    expect(evictions.map((d) => [d.evicted, d.total])).toEqual([
      [1, 2],
      [2, 2],
    ]);
    expect(details('pdb_wait')[0]).toMatchObject({
      pod: 'ml/llama-ft-worker-0',
      evicted: 1,
      total: 2,
      retryInMs: 1000,
    });
    expect(details('drained')).toEqual([{ evicted: 2 }]);
    expect(details('replace_issued')).toEqual([
      { instanceId: 'i-00'.padEnd(19, '0'), method: 'asg', asg: 'asg-p5' },
    ]);
    expect(details('replacement_ready')).toEqual([
      { newNode: expect.stringMatching(/^p5-new-/), group: 'p5' },
    ]);
    const running = h.events.filter((e) => e.step === 'kubeflow_job_running');
    expect(running.map((e) => e.details)).toEqual([
      { kind: 'PyTorchJob', namespace: 'ml', name: 'llama-ft', status: 'running' },
    ]);
    // "running again after …": from the drain's start, so it covers the drain, the replace and the wait.
    const drainStarted = h.events.find((e) => e.step === 'drain_started')?.at ?? 0;
    expect(running[0]?.elapsedMs).toBeGreaterThanOrEqual((running[0]?.at ?? 0) - drainStarted);
    expect(h.events.find((e) => e.step === 'resolved')?.details).toMatchObject({ action: 'replace' });
  });

  it('ECC DBE: reboot → new boot ID → healthy scan → uncordon → resolved', async () => {
    const h = cluster();
    const bootBefore = h.world.nodes.get('gpu-0')?.bootId;
    const incident = h.openIncident('gpu-0', ecc);
    expect(await h.services.triage(incident.id)).toMatchObject({
      ok: true,
      decision: { action: 'reboot', mode: 'auto' },
    });
    await h.engine.whenIdle();

    expect(h.stateOf(incident.id)).toBe('resolved');
    expect([h.world.count('cordon'), h.world.count('rebootInstance'), h.world.count('uncordon')]).toEqual([
      1, 1, 1,
    ]);
    const node = h.world.nodes.get('gpu-0');
    expect(node?.unschedulable).toBe(false);
    expect(node?.bootId).not.toBe(bootBefore);
    expect(h.health.scans).toBe(1);
    const back = h.events.find((e) => e.step === 'node_back');
    expect(back?.details).toMatchObject({ previousBootId: bootBefore, bootId: node?.bootId });
    expect(stepsOf(h).indexOf('gpu_scan')).toBeLessThan(stepsOf(h).indexOf('uncordoned'));
  });

  it('a node still failing its scan after the reboot is escalated and stays cordoned; the next occurrence is replaced', async () => {
    const h = cluster();
    h.health.failing.set('gpu-0', eccFinding(0));
    const first = h.openIncident('gpu-0', ecc);
    await h.services.triage(first.id);
    await h.engine.whenIdle();
    expect(h.stateOf(first.id)).toBe('escalated');
    expect(h.incidents.get(first.id)?.stateReason).toContain('still fails');
    expect(h.world.nodes.get('gpu-0')?.unschedulable).toBe(true);
    expect(h.world.count('uncordon')).toBe(0);

    const again = h.openIncident('gpu-0', ecc);
    const result = await h.services.triage(again.id);
    expect(result).toMatchObject({ decision: { action: 'replace', escalated: true } });
  });

  it('followUp opens the successor of a reboot that did not cure the fault, and it is replaced; a stop in between is resumed', async () => {
    const h = cluster();
    h.health.failing.set('gpu-0', eccFinding(0));
    const first = h.openIncident('gpu-0', ecc);
    await h.services.triage(first.id);
    await h.engine.whenIdle();
    expect(h.stateOf(first.id)).toBe('escalated');
    // As if the process had stopped before the bus listener ran: start-up finds and follows it up, once.
    expect(await h.services.resumeFollowUps()).toEqual([first.id]);
    await h.engine.whenIdle();
    expect(await h.services.resumeFollowUps()).toEqual([]);
    const successor = h.incidents.list({ node: 'gpu-0' }).find((i) => i.id !== first.id);
    expect(successor).toMatchObject({ faultKey: first.faultKey, plannedAction: 'replace' });
    expect(h.world.count('rebootInstance')).toBe(1);
    expect(h.world.count('terminateInAutoScalingGroup')).toBe(1);
    const again = await h.services.followUp(first.id);
    expect(again).toMatchObject({ ok: true });
    expect(h.incidents.list({ node: 'gpu-0' })).toHaveLength(2);
  });

  it('a fault that returns after a successful reboot escalates to replace', async () => {
    const h = cluster();
    const first = h.openIncident('gpu-0', ecc);
    await h.services.triage(first.id);
    await h.engine.whenIdle();
    expect(h.stateOf(first.id)).toBe('resolved');

    h.clock.advance(3 * 3_600_000);
    const again = h.openIncident('gpu-0', ecc);
    const result = await h.services.triage(again.id);
    expect(result).toMatchObject({
      ok: true,
      decision: { action: 'replace', mode: 'auto', escalated: true },
    });
    await h.engine.whenIdle();
    expect(h.stateOf(again.id)).toBe('resolved');
    expect(h.world.count('terminateInAutoScalingGroup')).toBe(1);
  });

  it('a PDB that never allows eviction: escalated to a human after DRAIN_TIMEOUT, nothing forced, no reboot', async () => {
    const h = cluster({}, 1_000_000);
    const incident = h.openIncident('gpu-0', ecc);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('escalated');
    expect(h.incidents.get(incident.id)?.stateReason).toContain('PodDisruptionBudget');
    expect(h.world.count('deletePod')).toBe(0);
    expect(h.world.count('rebootInstance')).toBe(0);
    expect(h.world.pods.has('ml/llama-ft-worker-0')).toBe(true);
    expect(h.world.nodes.get('gpu-0')?.unschedulable).toBe(true);
  });

  it('a rule with force deletes the PDB-blocked pod after DRAIN_TIMEOUT', async () => {
    const h = cluster(
      {
        policy: testPolicy({
          rules: [{ match: { category: 'ECC_ERROR' }, action: 'reboot', mode: 'auto', force: true }],
        }),
      },
      1_000_000,
    );
    const incident = h.openIncident('gpu-0', ecc);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.count('deletePod')).toBe(1);
  });

  it('Karpenter nodes are replaced by deleting the Node', async () => {
    const h = createHarness();
    for (let i = 0; i < 10; i++)
      h.world.addNode({ name: `k-${i}`, instanceId: `i-k${i}`, karpenterNodePool: 'gpu-pool' });
    const incident = h.openIncident('k-0');
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.count('deleteNode')).toBe(1);
    expect(h.world.count('terminateInAutoScalingGroup') + h.world.count('terminateInstance')).toBe(0);
    expect(h.events.find((e) => e.step === 'replacement_ready')?.details.newNode).toMatch(/^gpu-pool-new-/);
    expect(h.events.find((e) => e.step === 'replace_issued')?.details).toEqual({
      instanceId: 'i-k0',
      method: 'karpenter',
      nodePool: 'gpu-pool',
    });
  });

  it('a standalone instance is terminated through EC2 and no replacement is awaited', async () => {
    const h = createHarness();
    for (let i = 0; i < 10; i++) h.world.addNode({ name: `s-${i}`, instanceId: `i-s${i}` });
    const incident = h.openIncident('s-0');
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.count('terminateInstance')).toBe(1);
    expect(h.events.find((e) => e.step === 'replace_issued')?.details).toEqual({
      instanceId: 'i-s0',
      method: 'ec2',
    });
    // No node group brings a new node: nothing claims a replacement is Ready.
    expect(stepsOf(h)).not.toContain('replacement_ready');
  });

  it('DRY_RUN: every step reported as "would …", no mutating call reaches the cluster or the cloud', async () => {
    const h = cluster({ safety: { dryRun: true } });
    const incident = h.openIncident('gpu-0', ecc);
    const result = await h.services.triage(incident.id);
    expect(result).toMatchObject({ ok: true, dryRun: true });
    expect(result.message).toContain('DRY RUN');
    await h.engine.whenIdle();
    expect(h.world.mutations()).toBe(0);
    expect(h.stateOf(incident.id)).toBe('resolved');
    const engineEvents = h.events.filter((e) => e.incidentId === incident.id);
    expect(engineEvents.length).toBeGreaterThan(5);
    expect(engineEvents.every((e) => e.dryRun === true)).toBe(true);
    expect(h.events.find((e) => e.step === 'reboot_issued')?.details).toEqual({
      instanceId: expect.stringMatching(/^i-0+$/),
    });
    expect(h.events.find((e) => e.step === 'drain_started')?.details).toEqual({ pods: 2, skipped: 2 });
    expect(stepsOf(h)).not.toContain('drained');
    // A dry run is not a remediation in the history: the next real decision is not escalated.
    const again = h.openIncident('gpu-0', { ...ecc, faultKey: 'ecc_dbe:gpu0' });
    expect((await h.services.triage(again.id)).decision?.action).toBe('reboot');
  });

  it('a human uncordoning the node mid-drain cancels the remediation', async () => {
    const h = cluster({}, 5);
    h.bus.subscribe((e) => {
      if (e.step === 'pdb_wait') h.world.humanUncordon('gpu-0');
    });
    const incident = h.openIncident('gpu-0', ecc);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('cancelled');
    expect(h.incidents.get(incident.id)?.stateReason).toContain('uncordoned by someone else');
    expect(h.world.count('rebootInstance')).toBe(0);
    expect(h.world.count('uncordon')).toBe(0);
    expect(stepsOf(h)).toContain('cancelled');
  });

  it('an exclusion made mid-run stops the run before its next step', async () => {
    const h = cluster({}, 3);
    let excluded = false;
    h.bus.subscribe((e) => {
      if (e.step === 'pdb_wait' && !excluded) {
        excluded = true;
        h.exclusions.put({ node: 'gpu-0', reason: 'RMA', createdBy: 'slack:U1', createdAt: h.clock.now() });
      }
    });
    const incident = h.openIncident('gpu-0', ecc);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('cancelled');
    expect(h.world.count('rebootInstance')).toBe(0);
  });

  it('a node without the lease stops before acting', async () => {
    const h = cluster({ isLeader: () => false });
    const incident = h.openIncident('gpu-0', ecc);
    h.claim(incident.id, 'reboot', 'cordoned');
    const result = await h.engine.run(incident.id);
    expect(result).toMatchObject({ stopped: 'not_leader', state: 'cordoned' });
    expect(h.world.mutations()).toBe(0);
  });

  it('a second run of the same incident in one process is refused while the first is in progress', async () => {
    const h = cluster();
    const incident = h.openIncident('gpu-0', ecc);
    h.claim(incident.id, 'reboot', 'cordoned');
    const [a, b] = await Promise.all([h.engine.run(incident.id), h.engine.run(incident.id)]);
    expect(a.state).toBe('resolved');
    expect(b.stopped).toBe('already_running');
    expect(h.world.count('rebootInstance')).toBe(1);
  });
});

describe('RemediationEngine: crash at every step and resume', () => {
  async function crashAndResume(action: 'reboot' | 'replace', write: number, phase: 'before' | 'after') {
    const h = cluster();
    const incident = action === 'reboot' ? h.openIncident('gpu-0', ecc) : h.openIncident('gpu-0');
    h.claim(incident.id, action, 'cordoned');
    h.power.arm(write, phase);
    let crashed = false;
    try {
      await h.engine.run(incident.id);
    } catch (error) {
      expect(error).toBeInstanceOf(SimulatedCrash);
      crashed = true;
    }
    h.power.restore();
    const restarted = h.newEngine();
    restarted.start();
    await restarted.whenIdle();
    return { h, incident, crashed };
  }

  it.each([
    'reboot',
    'replace',
  ] as const)('%s: each external action happens exactly once, whatever the crash point', async (action) => {
    let points = 0;
    for (let write = 1; ; write++) {
      let anyCrash = false;
      for (const phase of ['before', 'after'] as const) {
        const { h, incident, crashed } = await crashAndResume(action, write, phase);
        anyCrash ||= crashed;
        const where = `${action}, crash ${phase} write ${write}`;
        expect(h.stateOf(incident.id), where).toBe('resolved');
        expect(h.world.count('cordon'), where).toBe(1);
        for (const pod of h.world.pods.values()) expect(pod.evictions, where).toBeLessThanOrEqual(1);
        if (action === 'reboot') {
          expect(h.world.count('rebootInstance'), where).toBe(1);
          expect(h.world.count('uncordon'), where).toBe(1);
          expect(h.world.nodes.get('gpu-0')?.unschedulable, where).toBe(false);
          // The do-not-disrupt annotation is off again, whatever the crash point.
          expect(h.world.doNotDisrupt.has('gpu-0'), where).toBe(false);
        } else {
          expect(h.world.count('terminateInAutoScalingGroup'), where).toBe(1);
          expect(h.world.count('uncordon'), where).toBe(0);
        }
        expect(h.world.count('deletePod') + h.world.count('terminateInstance'), where).toBe(0);
      }
      if (!anyCrash) break;
      points++;
    }
    // Every write of a full run was a crash point (plan, steps, transitions, audit): dozens of them.
    expect(points).toBeGreaterThan(20);
  });
});

describe('RemediationEngine: aborted runs (leadership lost, process stopping)', () => {
  it('an abort mid-drain stops the evictions at once; the next engine resumes from the journal and does no step twice', async () => {
    // The training pod stays behind its PDB until the test lets it go.
    const h = cluster({}, 1_000_000);
    const incident = h.openIncident('gpu-0');
    let evictionsAtAbort: number | undefined;
    let aborting: Promise<void> | undefined;
    const unsubscribe = h.bus.subscribe((e) => {
      if (e.step === 'pdb_wait' && aborting === undefined) {
        evictionsAtAbort = h.world.count('evictPod');
        aborting = h.engine.abort('lost the lease');
      }
    });
    const run = h.services.triage(incident.id);
    await run;
    await h.engine.whenIdle();
    await aborting;
    unsubscribe();

    expect(evictionsAtAbort).toBeGreaterThan(0);
    // Not one eviction after the abort, and the run left the drain for the next leader.
    expect(h.world.count('evictPod')).toBe(evictionsAtAbort);
    expect(h.engine.active()).toEqual([]);
    expect(h.stateOf(incident.id)).toBe('draining');
    expect(h.steps.lastOf(incident.id, 'drain')?.status).toBe('started');
    expect(h.events.map((e) => e.step)).not.toContain('failed');

    // The next leader (a fresh engine on the same journal) finishes it once the PDB allows.
    const pod = h.world.pods.get('ml/llama-ft-worker-0');
    if (!pod) throw new Error('the training pod is gone');
    pod.pdbBlocks = 0;
    const next = h.newEngine();
    expect(next.start()).toEqual([incident.id]);
    await next.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.count('cordon')).toBe(1);
    expect(h.world.count('terminateInAutoScalingGroup')).toBe(1);
    const rows = h.steps.list(incident.id).filter((r) => r.status === 'done');
    const names = rows.map((r) => r.step);
    expect(new Set(names).size, names.join(' ')).toBe(names.length);
    // web-1 was evicted before the abort and never again; the training pod once, by the next leader.
    expect(h.events.filter((e) => e.step === 'pod_evicted').map((e) => e.details.pod)).toEqual([
      'default/web-1',
      'ml/llama-ft-worker-0',
    ]);
  });

  it('leadership lost and regained at once: the aborted run winds down, then the same engine resumes it', async () => {
    const h = cluster({}, 3);
    const incident = h.openIncident('gpu-0');
    let aborted = false;
    let resumed: Promise<unknown> | undefined;
    h.bus.subscribe((e) => {
      if (e.step === 'pdb_wait' && !aborted) {
        aborted = true;
        void h.engine.abort('lost the lease');
        // Regained before the aborted run returned: start() must not drop the incident as "already running".
        expect(h.engine.start()).toEqual([incident.id]);
        resumed = h.engine.whenIdle();
      }
    });
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    await resumed;
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.count('cordon')).toBe(1);
    expect(h.world.count('terminateInAutoScalingGroup')).toBe(1);
    const done = h.steps
      .list(incident.id)
      .filter((r) => r.status === 'done')
      .map((r) => r.step);
    expect(new Set(done).size, done.join(' ')).toBe(done.length);
  });

  it('an abort ends a wait at once: the engine does not sleep out its backoff', async () => {
    const h = cluster({}, 1_000_000);
    const incident = h.openIncident('gpu-0');
    h.bus.subscribe((e) => {
      if (e.step === 'pdb_wait') void h.engine.abort('the process is stopping');
    });
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    // Without the abort the drain would retry until DRAIN_TIMEOUT (15 min of fake time, hundreds of sleeps).
    expect(h.clock.sleeps).toBeLessThanOrEqual(1);
    expect(h.steps.lastOf(incident.id, 'drain')?.status).toBe('started');
  });
});

describe('RemediationEngine: step errors', () => {
  it.each([
    [false, 1, 'failed', /^gpu-medic's IAM role may not ec2:RebootInstances$/],
    [true, 3, 'failed', /^reboot failed after 3 attempts: /],
  ] as const)('an error with retryable=%s is tried %i time(s)', async (retryable, calls, state, reason) => {
    const h = cluster();
    let tries = 0;
    h.world.cloud.rebootInstance = async () => {
      tries++;
      throw Object.assign(new Error("gpu-medic's IAM role may not ec2:RebootInstances"), { retryable });
    };
    const incident = h.openIncident('gpu-0', ecc);
    h.claim(incident.id, 'reboot', 'cordoned');
    await h.engine.run(incident.id);
    expect(tries).toBe(calls);
    expect(h.stateOf(incident.id)).toBe(state);
    const failed = h.events.filter((e) => e.step === 'failed');
    expect(failed).toHaveLength(1);
    expect(String(failed[0]?.details.reason)).toMatch(reason);
  });
});
