import { describe, expect, it } from 'vitest';
import { createHarness, type Harness } from '../../test/support/engine-harness.js';
import { serviceText } from '../slack/service-text.js';
import { ON_DEMAND_REASON } from './engine.js';
import { ReleaseStep } from './karpenter.js';

const ecc = {
  faultKey: 'ecc_dbe:gpu0',
  category: 'ECC_ERROR',
  xid: undefined,
  gpu: 0,
  recommendedAction: 'reboot' as const,
  plannedAction: 'reboot' as const,
};

function pool(kind: 'karpenter' | 'auto' | 'group'): Harness {
  const h = createHarness();
  for (let i = 0; i < 10; i++) {
    h.world.addNode({
      name: `n-${i}`,
      instanceId: `i-0${i}`.padEnd(19, '0'),
      ...(kind === 'group' ? { nodeGroup: 'p5', asg: 'asg-p5' } : { karpenterNodePool: 'gpu' }),
      ...(kind === 'auto' ? { labels: { 'eks.amazonaws.com/compute-type': 'auto' } } : {}),
    });
  }
  h.world.addPod({ node: 'n-0', name: 'web-1' });
  return h;
}

describe('karpenter.sh/do-not-disrupt while a node is under repair', () => {
  it('is on from before the cordon until the end of a reboot, then removed', async () => {
    const h = pool('group');
    const seen: boolean[] = [];
    h.bus.subscribe((e) => {
      if (e.step === 'drain_started' || e.step === 'reboot_issued')
        seen.push(h.world.doNotDisrupt.has('n-0'));
    });
    const incident = h.openIncident('n-0', ecc);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(seen).toEqual([true, true]);
    expect(h.world.doNotDisrupt.has('n-0')).toBe(false);
    expect(h.world.count('setDoNotDisrupt')).toBe(2);
    expect(h.steps.lastOf(incident.id, ReleaseStep)?.status).toBe('done');
  });

  it('is removed when the repair ends badly too (escalated: the reboot never comes back)', async () => {
    const h = createHarness({ engine: { rebootTimeoutMs: 60_000 } });
    for (let i = 0; i < 10; i++) h.world.addNode({ name: `n-${i}`, instanceId: `i-n${i}`, nodeGroup: 'p5' });
    h.world.rebootsComeBack = false;
    const incident = h.openIncident('n-0', ecc);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('escalated');
    expect(h.world.doNotDisrupt.has('n-0')).toBe(false);
  });

  it('a node that carried it before gpu-medic came keeps it', async () => {
    const h = pool('group');
    h.world.doNotDisrupt.add('n-0');
    const incident = h.openIncident('n-0', ecc);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.doNotDisrupt.has('n-0')).toBe(true);
    expect(h.world.count('setDoNotDisrupt')).toBe(0);
  });

  it('a cordon alone does not set it, nor does a dry run', async () => {
    const h = pool('group');
    const result = await h.services.requestManual('cordon', 'n-1', 'slack:U1', 'suspect');
    expect(result.ok).toBe(true);
    await h.engine.whenIdle();
    const dry = createHarness({ safety: { dryRun: true } });
    for (let i = 0; i < 10; i++)
      dry.world.addNode({ name: `n-${i}`, instanceId: `i-n${i}`, nodeGroup: 'p5' });
    const incident = dry.openIncident('n-0', ecc);
    await dry.services.triage(incident.id);
    await dry.engine.whenIdle();
    expect(h.world.count('setDoNotDisrupt') + dry.world.count('setDoNotDisrupt')).toBe(0);
  });
});

describe('replace of a Karpenter or Auto Mode node', () => {
  it('Karpenter with no pod waiting for a GPU node: resolved as "replaced — the pool provisions on demand"', async () => {
    const h = pool('karpenter');
    h.world.pendingGpuPods = 0;
    const start = h.clock.now();
    const incident = h.openIncident('n-0');
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.incidents.get(incident.id)?.stateReason).toBe(ON_DEMAND_REASON);
    expect(h.world.count('deleteNode')).toBe(1);
    expect(h.events.find((e) => e.step === 'replacement_ready')?.details).toEqual({
      group: 'gpu',
      onDemand: true,
    });
    expect(h.events.find((e) => e.step === 'resolved')?.details).toMatchObject({ onDemand: true });
    // Well before REPLACE_TIMEOUT (30 min): two quiet polls.
    expect(h.clock.now() - start).toBeLessThan(5 * 60_000);
  });

  it('Auto Mode: the Node is deleted and nothing goes to EC2 or Auto Scaling', async () => {
    const h = pool('auto');
    const incident = h.openIncident('n-0');
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.count('deleteNode')).toBe(1);
    for (const call of [
      'rebootInstance',
      'terminateInstance',
      'terminateInAutoScalingGroup',
      'describeInstance',
      'autoScalingGroupOf',
    ])
      expect(h.world.count(call), call).toBe(0);
    expect(h.events.find((e) => e.step === 'replace_issued')?.details).toMatchObject({
      method: 'auto-mode',
      nodePool: 'gpu',
    });
  });

  it('Auto Mode: a reboot is refused with the reason, and a policy reboot goes to a human as a replace', async () => {
    const h = pool('auto');
    const refused = await h.services.requestManual('reboot', 'n-2', 'slack:U1', 'try');
    expect(refused).toMatchObject({ ok: false, code: 'invalid' });
    expect(serviceText(refused)).toMatch(/EKS Auto Mode node.*cannot be rebooted through the EC2 API/);
    const incident = h.openIncident('n-0', ecc);
    const triaged = await h.services.triage(incident.id);
    expect(triaged.ok).toBe(true);
    expect(h.incidents.get(incident.id)).toMatchObject({
      state: 'awaiting_approval',
      plannedAction: 'replace',
      mode: 'approve',
    });
    expect(h.world.mutations()).toBe(0);
  });
});
