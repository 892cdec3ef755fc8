import { describe, expect, it } from 'vitest';
import { createHarness, eccFinding, type Harness } from '../../test/support/engine-harness.js';
import { verdictOf } from '../domain/finding.js';
import type { GpuNode } from '../domain/node.js';
import type { GpuAgentPod } from './ports.js';
import {
  agentOnNewBoot,
  combineExpectations,
  gpuExpectationOf,
  judgeScan,
  missingResources,
  physicalGpuCount,
} from './settle.js';

function gpuNode(over: Partial<GpuNode> = {}): GpuNode {
  return {
    name: 'gpu-0',
    expectedGpus: 8,
    allocatableGpus: 8,
    gpuResources: { 'nvidia.com/gpu': 8 },
    unschedulable: true,
    ready: true,
    labels: {},
    conditions: [],
    ...over,
  };
}

const agent = (over: Partial<GpuAgentPod> = {}): GpuAgentPod => ({
  namespace: 'gpu-operator',
  name: 'nvidia-dcgm-exporter-abcde',
  uid: 'u1',
  ready: true,
  restarts: 0,
  ...over,
});

describe('the expectation', () => {
  it('a plain node: its physical count, also when a GPU off the bus lowered allocatable', () => {
    expect(physicalGpuCount(gpuNode({ allocatableGpus: 7, gpuResources: { 'nvidia.com/gpu': 7 } }))).toBe(8);
    expect(gpuExpectationOf(gpuNode({ allocatableGpus: 7, gpuResources: { 'nvidia.com/gpu': 7 } }))).toEqual({
      gpus: 8,
      resources: { 'nvidia.com/gpu': 8 },
    });
  });

  // GpuNode.expectedGpus is the physical count (src/domain/gpu-count.ts: 8 for a p5 whatever it shares).
  it('time-slicing: the replicas it advertised, and the physical count', () => {
    const node = gpuNode({
      expectedGpus: 8,
      allocatableGpus: 8,
      gpuResources: { 'nvidia.com/gpu': 32 },
      labels: { 'nvidia.com/gpu.replicas': '4', 'nvidia.com/gpu.count': '8' },
    });
    expect(gpuExpectationOf(node)).toEqual({ gpus: 8, resources: { 'nvidia.com/gpu': 32 } });
  });

  it('time-slicing renamed to nvidia.com/gpu.shared: only the shared resource, never a nvidia.com/gpu it never had', () => {
    const node = gpuNode({
      expectedGpus: 8,
      allocatableGpus: 8,
      gpuSharing: 'time-slicing',
      gpuResources: { 'nvidia.com/gpu.shared': 32 },
      labels: { 'nvidia.com/gpu.replicas': '4', 'nvidia.com/gpu.count': '8' },
    });
    expect(gpuExpectationOf(node)).toEqual({ gpus: 8, resources: { 'nvidia.com/gpu.shared': 32 } });
    expect(missingResources(gpuExpectationOf(node), node)).toBeUndefined();
  });

  it('MIG mixed: its MIG profiles and no nvidia.com/gpu; MIG single: its MIG devices; both 8 physical GPUs', () => {
    const mixed = gpuNode({
      expectedGpus: 8,
      allocatableGpus: undefined,
      gpuResources: { 'nvidia.com/mig-1g.10gb': 56 },
      labels: { 'nvidia.com/mig.strategy': 'mixed', 'nvidia.com/gpu.count': '8' },
    });
    expect(gpuExpectationOf(mixed)).toEqual({ gpus: 8, resources: { 'nvidia.com/mig-1g.10gb': 56 } });
    const single = gpuNode({
      expectedGpus: 8,
      allocatableGpus: undefined,
      gpuResources: { 'nvidia.com/gpu': 56 },
      labels: { 'nvidia.com/mig.strategy': 'single', 'nvidia.com/gpu.count': '56' },
    });
    expect(gpuExpectationOf(single)).toEqual({ gpus: 8, resources: { 'nvidia.com/gpu': 56 } });
  });

  it('what the node says after the reboot never lowers what it had before', () => {
    const before = gpuExpectationOf(gpuNode());
    const after = gpuExpectationOf(
      gpuNode({ expectedGpus: 7, allocatableGpus: 7, gpuResources: { 'nvidia.com/gpu': 7 } }),
    );
    expect(combineExpectations(before, after)).toEqual(before);
  });

  it('names what the device plugin still lacks', () => {
    const expect8 = { gpus: 8, resources: { 'nvidia.com/gpu': 8 } };
    expect(missingResources(expect8, gpuNode({ gpuResources: { 'nvidia.com/gpu': 0 } }))).toEqual({
      kind: 'gpus',
      text: 'the device plugin reports 0 of 8 GPUs',
      have: 0,
      want: 8,
    });
    expect(missingResources(expect8, gpuNode())).toBeUndefined();
    expect(
      missingResources(
        { gpus: 8, resources: { 'nvidia.com/mig-1g.10gb': 56 } },
        gpuNode({ gpuResources: {} }),
      )?.text,
    ).toBe('the device plugin reports 0 of 56 nvidia.com/mig-1g.10gb');
  });
});

describe('the agent pod on the new boot', () => {
  const before = [{ uid: 'u1', restarts: 2 }];
  it.each<[string, GpuAgentPod[], boolean]>([
    ['restarted since the record and Ready', [agent({ restarts: 3 })], true],
    ['a new pod (new uid) and Ready', [agent({ uid: 'u2' })], true],
    ['Ready since after the reboot', [agent({ restarts: 2, readySince: 2_000 })], true],
    ['restarted but not Ready', [agent({ restarts: 3, ready: false })], false],
    ['Ready but still the pre-reboot container', [agent({ restarts: 2, readySince: 500 })], false],
    ['no pod at all', [], false],
  ])('%s → %s', (_name, pods, ok) => {
    expect(agentOnNewBoot(pods, before, 1_000) === undefined).toBe(ok);
  });

  it('says which pod is not Ready', () => {
    expect(agentOnNewBoot([agent({ ready: false, restarts: 3 })], before, 1_000)?.text).toBe(
      'gpu-operator/nvidia-dcgm-exporter-abcde is not Ready',
    );
  });

  it('on a new node (no record) any Ready pod counts', () => {
    expect(agentOnNewBoot([agent()], undefined, undefined)).toBeUndefined();
  });
});

describe('judging a scan', () => {
  const expect8 = { gpus: 8, resources: { 'nvidia.com/gpu': 8 } };
  it('a failed scrape is "not yet", never healthy', () => {
    const r = judgeScan(
      { verdict: verdictOf('gpu-0', []), gpusRead: 0, error: 'http: connection refused' },
      expect8,
      undefined,
    );
    expect(r).toMatchObject({ kind: 'missing', missing: { kind: 'scan' } });
  });

  it('fewer GPUs read than expected is "not yet"', () => {
    const r = judgeScan({ verdict: verdictOf('gpu-0', []), gpusRead: 7 }, expect8, undefined);
    expect(r).toEqual({
      kind: 'missing',
      missing: { kind: 'scan', text: 'the GPU scan read 7 of 8 GPUs', have: 7, want: 8 },
    });
  });

  it('a complete read with a critical finding is a failure; without, healthy', () => {
    expect(
      judgeScan({ verdict: verdictOf('gpu-0', [eccFinding(0)]), gpusRead: 8 }, expect8, undefined).kind,
    ).toBe('critical');
    expect(judgeScan({ verdict: verdictOf('gpu-0', []), gpusRead: 8 }, expect8, undefined).kind).toBe(
      'healthy',
    );
  });
});

// ---- The gate in the engine, against the fake world (reboot lag, exporter readiness, lost GPUs). ----

const ecc = {
  faultKey: 'ecc_dbe:gpu0',
  category: 'ECC_ERROR',
  xid: undefined,
  gpu: 0,
  recommendedAction: 'reboot' as const,
  plannedAction: 'reboot' as const,
};

function world(): Harness {
  const h = createHarness({ engine: { pollMs: 10_000, settleTimeoutMs: 15 * 60_000 } });
  for (let i = 0; i < 4; i++) {
    h.world.addNode({
      name: `gpu-${i}`,
      instanceId: `i-0${i}`.padEnd(19, '0'),
      nodeGroup: 'p5',
      asg: 'asg-p5',
    });
  }
  return h;
}

/** Every uncordon the fake saw, with the world as it was at that moment. */
function watchUncordon(h: Harness, node: string): { gpus: number; agentReady: boolean; scans: number }[] {
  const seen: { gpus: number; agentReady: boolean; scans: number }[] = [];
  const original = h.world.cluster.uncordon;
  h.world.cluster.uncordon = async (name) => {
    if (name === node) {
      seen.push({
        gpus: h.world.nodes.get(node)?.allocatableGpus ?? -1,
        agentReady: h.world.agents.get(node)?.ready ?? false,
        scans: h.health.scans,
      });
    }
    return original(name);
  };
  return seen;
}

describe('the settle gate in a reboot', () => {
  it('waits for the device plugin and the exporter, scans once, then uncordons', async () => {
    const h = world();
    h.world.timing.devicePluginMs = 60_000;
    h.world.timing.agentReadyMs = 30_000;
    const uncordons = watchUncordon(h, 'gpu-0');
    const incident = h.openIncident('gpu-0', ecc);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();

    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(uncordons).toEqual([{ gpus: 8, agentReady: true, scans: 1 }]);
    const steps = h.events.map((e) => e.step);
    const waits = h.events.filter((e) => e.step === 'settle_wait').map((e) => e.details);
    expect(waits).toEqual([
      { waitingFor: 'node_ready', waitedMs: 0, timeoutMs: 20 * 60_000 },
      expect.objectContaining({
        waitingFor: 'gpus',
        missing: 'the device plugin reports 0 of 8 GPUs',
        node: 'gpu-0',
      }),
    ]);
    expect(steps.indexOf('node_back')).toBeLessThan(steps.lastIndexOf('settle_wait'));
    expect(steps.lastIndexOf('settle_wait')).toBeLessThan(steps.indexOf('gpu_scan'));
    expect(h.events.find((e) => e.step === 'gpu_scan')?.details).toEqual({
      healthy: true,
      gpus: 8,
      expected: 8,
    });
  });

  it('tells each thing it waits for: the exporter after the GPUs when the exporter is the slower', async () => {
    const h = world();
    h.world.timing.devicePluginMs = 20_000;
    h.world.timing.agentReadyMs = 90_000;
    const incident = h.openIncident('gpu-0', ecc);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    const waits = h.events.filter((e) => e.step === 'settle_wait').map((e) => e.details.waitingFor);
    expect(waits).toEqual(['node_ready', 'gpus', 'agent']);
  });

  it('a node that never comes back: escalated, still cordoned, never uncordoned, and the thread says so', async () => {
    const h = world();
    h.world.rebootsComeBack = false;
    const incident = h.openIncident('gpu-0', ecc);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('escalated');
    expect(h.world.nodes.get('gpu-0')?.unschedulable).toBe(true);
    expect(h.world.count('uncordon')).toBe(0);
    expect(h.health.scans).toBe(0);
    const escalated = h.events.find((e) => e.step === 'escalated');
    expect(escalated?.details).toMatchObject({ to: 'human' });
    expect(String(escalated?.details.reason)).toMatch(/did not come back Ready .* stays cordoned/);
  });

  it('the device plugin never re-registers: escalated after GPU_SETTLE_TIMEOUT, naming what was missing', async () => {
    const h = world();
    h.world.devicePluginRegisters = false;
    const incident = h.openIncident('gpu-0', ecc);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('escalated');
    expect(h.world.count('uncordon')).toBe(0);
    expect(h.world.nodes.get('gpu-0')?.unschedulable).toBe(true);
    expect(h.incidents.get(incident.id)?.stateReason).toBe(
      'gpu-0 came back after the reboot but did not settle within 15 min: the device plugin reports 0 of 8 GPUs. It stays cordoned; a human decides.',
    );
    expect(h.events.find((e) => e.step === 'escalated')?.details).toMatchObject({ to: 'human' });
    // Nothing to read, nothing scanned: a scan of a node without GPUs proves nothing.
    expect(h.health.scans).toBe(0);
  });

  it('a GPU lost in the reboot: no uncordon, escalated to replace, and the successor replaces the node', async () => {
    const h = world();
    h.world.gpusLostOnReboot.set('gpu-0', 1);
    const first = h.openIncident('gpu-0', ecc);
    await h.services.triage(first.id);
    await h.engine.whenIdle();
    expect(h.stateOf(first.id)).toBe('escalated');
    expect(h.incidents.get(first.id)?.stateReason).toMatch(
      /the device plugin reports 7 of 8 GPUs\. It stays cordoned/,
    );
    expect(h.events.find((e) => e.step === 'escalated')?.details).toMatchObject({ to: 'replace' });
    expect(h.world.count('uncordon')).toBe(0);

    expect(await h.services.resumeFollowUps()).toEqual([first.id]);
    await h.engine.whenIdle();
    const successor = h.incidents.list({ node: 'gpu-0' }).find((i) => i.id !== first.id);
    expect(successor).toMatchObject({ plannedAction: 'replace', state: 'resolved' });
    expect(h.world.count('terminateInAutoScalingGroup')).toBe(1);
    expect(h.world.count('uncordon')).toBe(0);
  });

  it('a critical finding on a complete read after the reboot escalates to replace (the reboot did not help)', async () => {
    const h = world();
    h.health.failing.set('gpu-0', eccFinding(0));
    const incident = h.openIncident('gpu-0', ecc);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('escalated');
    expect(h.events.find((e) => e.step === 'escalated')?.details).toMatchObject({ to: 'replace' });
    // Read only once the node had settled: one scan, and it was the complete one.
    expect(h.health.scans).toBe(1);
  });
});

describe('the settle gate on a replacement', () => {
  const xid79 = {}; // the harness default incident is an XID 79 → replace

  it('verifies the replacement before resolving: its GPUs, its exporter, one complete scan', async () => {
    const h = world();
    const incident = h.openIncident('gpu-0', xid79);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    const steps = h.events.map((e) => e.step);
    expect(steps.indexOf('replacement_ready')).toBeLessThan(steps.indexOf('gpu_scan'));
    expect(steps.indexOf('gpu_scan')).toBeLessThan(steps.indexOf('resolved'));
    const fresh = String(h.events.find((e) => e.step === 'replacement_ready')?.details.newNode);
    expect(h.events.find((e) => e.step === 'gpu_scan')?.details).toEqual({
      healthy: true,
      gpus: 8,
      expected: 8,
      node: fresh,
    });
    expect(h.events.filter((e) => e.step === 'settle_wait').map((e) => e.details.waitingFor)).toContain(
      'replacement',
    );
  });

  it('a replacement that never joins: escalated after REPLACE_TIMEOUT', async () => {
    const h = world();
    h.world.replacementsJoin = false;
    const incident = h.openIncident('gpu-0', xid79);
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('escalated');
    expect(h.incidents.get(incident.id)?.stateReason).toMatch(
      /no replacement node in p5 became Ready within 30 min/,
    );
    expect(h.events.find((e) => e.step === 'escalated')?.details).toMatchObject({ to: 'human' });
  });

  it('a replacement whose device plugin never registers: escalated, not resolved', async () => {
    const h = world();
    const incident = h.openIncident('gpu-0', xid79);
    h.world.devicePluginRegisters = false;
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('escalated');
    expect(h.incidents.get(incident.id)?.stateReason).toMatch(
      /joined as the replacement but did not settle within 15 min: the device plugin reports 0 of 8 GPUs/,
    );
  });
});
