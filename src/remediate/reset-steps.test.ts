import { describe, expect, it } from 'vitest';
import { createHarness, p5Cluster, stepsOf } from '../../test/support/engine-harness.js';
import { EXPORTER_DEPLOY_LABEL, IN_USE_ATTEMPTS, resetScope } from './reset-steps.js';

describe('resetScope: one GPU where the topology allows it', () => {
  it.each([
    ['g6e.12xlarge', 2, { gpu: 2, wholeNode: false }],
    ['g5.48xlarge', 7, { gpu: 7, wholeNode: false }],
    ['p5.4xlarge', 0, { gpu: 0, wholeNode: false }],
    ['p4d.24xlarge', 3, { gpu: undefined, wholeNode: true }],
    ['p4de.24xlarge', 3, { gpu: undefined, wholeNode: true }],
    ['p5.48xlarge', 3, { gpu: undefined, wholeNode: true }],
    ['p5e.48xlarge', 3, { gpu: undefined, wholeNode: true }],
    ['p5en.48xlarge', 3, { gpu: undefined, wholeNode: true }],
    ['p6-b200.48xlarge', 3, { gpu: undefined, wholeNode: true }],
  ])('%s GPU %d → %j', (type, gpu, want) => {
    expect(resetScope(type, gpu)).toEqual(want);
  });

  it('no GPU known → the whole node', () => {
    expect(resetScope('g6e.12xlarge', undefined)).toEqual({ gpu: undefined, wholeNode: true });
  });
});

const xid119 = {
  faultKey: 'xid:119:gpu3',
  category: 'XID_CRITICAL_119',
  xid: 119,
  gpu: 3,
  recommendedAction: 'reboot' as const,
  plannedAction: 'reset' as const,
};

describe('the reset step in the engine', () => {
  it('XID 119 on a p5: the policy resets, all GPUs together, the exporter is paused and put back, no EC2 call', async () => {
    const h = p5Cluster();
    const incident = h.openIncident('gpu-0', xid119);
    const result = await h.services.triage(incident.id);
    expect(result).toMatchObject({ ok: true, decision: { action: 'reset', mode: 'auto' } });
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.resets).toEqual([{ node: 'gpu-0', gpu: undefined }]);
    expect(h.world.count('setNodeLabel')).toBe(2);
    expect(h.world.labels.get('gpu-0')?.has(EXPORTER_DEPLOY_LABEL)).toBe(false);
    expect(h.world.count('rebootInstance') + h.world.count('terminateInAutoScalingGroup')).toBe(0);
    const reset = h.events.find((e) => e.step === 'gpu_reset');
    expect(reset?.details).toEqual({
      gpus: [0, 1, 2, 3, 4, 5, 6, 7],
      wholeNode: true,
      pod: 'kube-system/dcgm-server-gpu-0',
    });
    // Drained before the reset, uncordoned after the settle gate.
    const steps = stepsOf(h);
    expect(steps.indexOf('drained')).toBeLessThan(steps.indexOf('gpu_reset'));
    expect(steps.indexOf('gpu_reset')).toBeLessThan(steps.indexOf('gpu_scan'));
    expect(steps.indexOf('gpu_scan')).toBeLessThan(steps.indexOf('uncordoned'));
  });

  it('on a g6e only the incident GPU; a label the node had before is put back as it was', async () => {
    const h = createHarness();
    h.world.addNode({
      name: 'g-0',
      instanceId: 'i-0g00000000000000',
      asg: 'asg-g6e',
      instanceType: 'g6e.48xlarge',
    });
    for (let i = 1; i < 6; i++)
      h.world.addNode({ name: `g-${i}`, instanceId: `i-0g${i}`.padEnd(19, '0'), asg: 'asg-g6e' });
    h.world.labels.set('g-0', new Map([[EXPORTER_DEPLOY_LABEL, 'true']]));
    const incident = h.openIncident('g-0', xid119);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.resets).toEqual([{ node: 'g-0', gpu: 3 }]);
    expect(h.world.labels.get('g-0')?.get(EXPORTER_DEPLOY_LABEL)).toBe('true');
  });

  it('"In use" while the paused exporter is still going away: tried again, then reset', async () => {
    const h = p5Cluster();
    const busy = {
      kind: 'ran' as const,
      pod: 'kube-system/dcgm-server-gpu-0',
      exitCode: 255,
      output: 'The following GPUs could not be reset:\n  GPU 00000000:53:00.0: In use by another client\n',
    };
    h.world.resetResults.push(busy, busy);
    const incident = h.openIncident('gpu-0', xid119);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.resets).toHaveLength(3);
  });

  it.each([
    [
      'nvidia-smi refuses',
      {
        kind: 'ran' as const,
        pod: 'kube-system/dcgm-server-gpu-0',
        exitCode: 255,
        output: 'The following GPUs could not be reset:\n  GPU 00000000:53:00.0: In use by another client\n',
      },
      /exit 255: The following GPUs could not be reset: GPU 00000000:53:00.0: In use by another client/,
    ],
    [
      'no reset pod',
      { kind: 'unavailable' as const, reason: 'no Ready reset pod (k8s-app=dcgm-server) on gpu-0' },
      /no Ready reset pod/,
    ],
  ])('%s: escalated to reboot, still cordoned, the label put back', async (_, run, reason) => {
    const h = p5Cluster();
    // Refused every time (a process that never lets go): IN_USE_ATTEMPTS tries, then the escalation.
    for (let i = 0; i < IN_USE_ATTEMPTS; i++) h.world.resetResults.push(run);
    const incident = h.openIncident('gpu-0', xid119);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    const after = h.incidents.get(incident.id);
    expect(after?.state).toBe('escalated');
    expect(after?.stateReason).toMatch(reason);
    expect(h.events.find((e) => e.step === 'escalated')?.details.to).toBe('reboot');
    expect(h.steps.lastOf(incident.id, 'escalate')?.detail.to).toBe('reboot');
    expect(h.world.nodes.get('gpu-0')?.unschedulable).toBe(true);
    expect(h.world.labels.get('gpu-0')?.has(EXPORTER_DEPLOY_LABEL)).toBe(false);
    expect(h.world.count('uncordon') + h.world.count('rebootInstance')).toBe(0);
    expect(h.world.resets).toHaveLength(run.kind === 'ran' ? IN_USE_ATTEMPTS : 1);
  });
});
