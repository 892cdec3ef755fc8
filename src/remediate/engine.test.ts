import { describe, expect, it } from 'vitest';
import {
  createHarness,
  eccFinding,
  eccIncident,
  kubeflowJob,
  p5Cluster,
  stepsOf,
  testPolicy,
} from '../../test/support/engine-harness.js';
import { serviceText } from '../slack/service-text.js';

describe('RemediationEngine flows', () => {
  it('XID 79: cordon → drain (PDB blocks, then allows; DaemonSet and static pods stay) → replace via ASG → replacement Ready → resolved', async () => {
    const h = p5Cluster();
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
    const h = p5Cluster();
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
    const h = p5Cluster();
    const bootBefore = h.world.nodes.get('gpu-0')?.bootId;
    const incident = h.openIncident('gpu-0', eccIncident);
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
    const h = p5Cluster();
    h.health.failing.set('gpu-0', eccFinding(0));
    const first = h.openIncident('gpu-0', eccIncident);
    await h.services.triage(first.id);
    await h.engine.whenIdle();
    expect(h.stateOf(first.id)).toBe('escalated');
    expect(h.incidents.get(first.id)?.stateReason).toContain('still fails');
    expect(h.world.nodes.get('gpu-0')?.unschedulable).toBe(true);
    expect(h.world.count('uncordon')).toBe(0);

    const again = h.openIncident('gpu-0', eccIncident);
    const result = await h.services.triage(again.id);
    expect(result).toMatchObject({ decision: { action: 'replace', escalated: true } });
  });

  it('followUp opens the successor of a reboot that did not cure the fault, and it is replaced; a stop in between is resumed', async () => {
    const h = p5Cluster();
    h.health.failing.set('gpu-0', eccFinding(0));
    const first = h.openIncident('gpu-0', eccIncident);
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
    const h = p5Cluster();
    const first = h.openIncident('gpu-0', eccIncident);
    await h.services.triage(first.id);
    await h.engine.whenIdle();
    expect(h.stateOf(first.id)).toBe('resolved');

    h.clock.advance(3 * 3_600_000);
    const again = h.openIncident('gpu-0', eccIncident);
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
    const h = p5Cluster({}, 1_000_000);
    const incident = h.openIncident('gpu-0', eccIncident);
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
    const h = p5Cluster(
      {
        policy: testPolicy({
          rules: [{ match: { category: 'ECC_ERROR' }, action: 'reboot', mode: 'auto', force: true }],
        }),
      },
      1_000_000,
    );
    const incident = h.openIncident('gpu-0', eccIncident);
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
    const h = p5Cluster({ safety: { dryRun: true } });
    const incident = h.openIncident('gpu-0', eccIncident);
    const result = await h.services.triage(incident.id);
    expect(result).toMatchObject({ ok: true, dryRun: true });
    expect(serviceText(result)).toContain('DRY RUN');
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
    const again = h.openIncident('gpu-0', { ...eccIncident, faultKey: 'ecc_dbe:gpu0' });
    expect((await h.services.triage(again.id)).decision?.action).toBe('reboot');
  });

  it('a human uncordoning the node mid-drain cancels the remediation', async () => {
    const h = p5Cluster({}, 5);
    h.bus.subscribe((e) => {
      if (e.step === 'pdb_wait') h.world.humanUncordon('gpu-0');
    });
    const incident = h.openIncident('gpu-0', eccIncident);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('cancelled');
    expect(h.incidents.get(incident.id)?.stateReason).toContain('uncordoned by someone else');
    expect(h.world.count('rebootInstance')).toBe(0);
    expect(h.world.count('uncordon')).toBe(0);
    expect(stepsOf(h)).toContain('cancelled');
  });

  it('an exclusion made mid-run stops the run before its next step', async () => {
    const h = p5Cluster({}, 3);
    let excluded = false;
    h.bus.subscribe((e) => {
      if (e.step === 'pdb_wait' && !excluded) {
        excluded = true;
        h.exclusions.put({ node: 'gpu-0', reason: 'RMA', createdBy: 'slack:U1', createdAt: h.clock.now() });
      }
    });
    const incident = h.openIncident('gpu-0', eccIncident);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('cancelled');
    expect(h.world.count('rebootInstance')).toBe(0);
  });

  it('a node without the lease stops before acting', async () => {
    const h = p5Cluster({ isLeader: () => false });
    const incident = h.openIncident('gpu-0', eccIncident);
    h.claim(incident.id, 'reboot', 'cordoned');
    const result = await h.engine.run(incident.id);
    expect(result).toMatchObject({ stopped: 'not_leader', state: 'cordoned' });
    expect(h.world.mutations()).toBe(0);
  });

  it('a second run of the same incident in one process is refused while the first is in progress', async () => {
    const h = p5Cluster();
    const incident = h.openIncident('gpu-0', eccIncident);
    h.claim(incident.id, 'reboot', 'cordoned');
    const [a, b] = await Promise.all([h.engine.run(incident.id), h.engine.run(incident.id)]);
    expect(a.state).toBe('resolved');
    expect(b.stopped).toBe('already_running');
    expect(h.world.count('rebootInstance')).toBe(1);
  });
});
