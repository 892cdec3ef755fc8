import { describe, expect, it } from 'vitest';
import { createHarness, p5Cluster } from '../../test/support/engine-harness.js';
import { SimulatedCrash } from '../../test/support/power.js';
import { RMA_TAG, rmaTags } from './rma-tags.js';

const gpus = [
  { index: 0, uuid: 'GPU-aaaa', pciBusId: '00000000:18:00.0' },
  { index: 3, uuid: 'GPU-dddd', pciBusId: '00000000:53:00.0', xids: [79] },
];

describe('rmaTags', () => {
  it('names the incident, the fault (with its XID) and the faulty GPU by UUID', () => {
    expect(rmaTags({ id: 'inc-1', faultKey: 'xid:79:gpu3', xid: 79, gpu: 3 }, gpus)).toEqual({
      [RMA_TAG.incident]: 'inc-1',
      [RMA_TAG.fault]: 'xid:79:gpu3 (XID 79)',
      [RMA_TAG.gpuUuid]: 'GPU-dddd',
    });
  });

  it('leaves the UUID out when no scan named that GPU, or the fault is not one GPU', () => {
    expect(rmaTags({ id: 'i', faultKey: 'ecc_dbe:gpu5', gpu: 5 }, gpus)).not.toHaveProperty(RMA_TAG.gpuUuid);
    expect(rmaTags({ id: 'i', faultKey: 'gpu_missing' }, gpus)).toEqual({
      [RMA_TAG.incident]: 'i',
      [RMA_TAG.fault]: 'gpu_missing',
    });
    expect(rmaTags({ id: 'i', faultKey: 'ecc_dbe:gpu0', gpu: 0 }, undefined)).not.toHaveProperty(
      RMA_TAG.gpuUuid,
    );
  });
});

describe('the replace step tags the instance before terminating it', () => {
  it('an Auto Scaling replace: the cordon row keeps the GPUs, the instance carries the three tags', async () => {
    const h = p5Cluster();
    h.health.identities.set('gpu-0', gpus);
    const incident = h.openIncident('gpu-0');
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.count('tagInstance')).toBe(1);
    expect(h.world.count('terminateInAutoScalingGroup')).toBe(1);
    expect(h.world.instances.get('i-00'.padEnd(19, '0'))?.tags).toEqual({
      'gpu-medic:incident': incident.id,
      'gpu-medic:fault': 'xid:79:gpu3 (XID 79)',
      'gpu-medic:gpu-uuid': 'GPU-dddd',
    });
    expect(h.steps.lastOf(incident.id, 'cordon')?.detail.gpuIds).toEqual(gpus);
    expect(h.steps.lastOf(incident.id, 'replace')?.detail).toMatchObject({ tagged: true });
  });

  it('a tag that fails (no ec2:CreateTags) is kept in the journal and the node is still replaced', async () => {
    const h = createHarness();
    for (let i = 0; i < 10; i++) h.world.addNode({ name: `s-${i}`, instanceId: `i-s${i}` });
    h.world.cloud.tagInstance = async () => {
      throw new Error("gpu-medic's IAM role may not ec2:CreateTags");
    };
    const incident = h.openIncident('s-0');
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.count('terminateInstance')).toBe(1);
    expect(h.steps.lastOf(incident.id, 'replace')?.detail).toMatchObject({
      tagged: false,
      tagError: expect.stringContaining('ec2:CreateTags'),
    });
  });

  it('a Karpenter node is deleted through Kubernetes, with no tag call', async () => {
    const h = createHarness();
    for (let i = 0; i < 10; i++)
      h.world.addNode({ name: `k-${i}`, instanceId: `i-k${i}`, karpenterNodePool: 'gpu-pool' });
    const incident = h.openIncident('k-0');
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.world.count('deleteNode')).toBe(1);
    expect(h.world.count('tagInstance')).toBe(0);
  });

  it('a crash between the tags and the terminate: the resumed step writes the same tags, then terminates once', async () => {
    const h = p5Cluster();
    h.health.identities.set('gpu-0', gpus);
    const incident = h.openIncident('gpu-0');
    h.claim(incident.id, 'replace', 'cordoned');
    const tag = h.world.cloud.tagInstance;
    let calls = 0;
    h.world.cloud.tagInstance = async (id, tags) => {
      calls++;
      await tag(id, tags);
      // The process dies right after the tags are written: the terminate is never sent.
      if (calls === 1) h.power.dead = true;
    };
    await h.engine.run(incident.id).catch((e: unknown) => expect(e).toBeInstanceOf(SimulatedCrash));
    expect(h.world.count('terminateInAutoScalingGroup')).toBe(0);
    h.power.restore();
    const restarted = h.newEngine();
    restarted.start();
    await restarted.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(calls).toBe(2);
    expect(h.world.count('terminateInAutoScalingGroup')).toBe(1);
    expect(h.world.instances.get('i-00'.padEnd(19, '0'))?.tags?.['gpu-medic:gpu-uuid']).toBe('GPU-dddd');
  });
});
