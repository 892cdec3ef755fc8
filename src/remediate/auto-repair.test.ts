import { describe, expect, it } from 'vitest';
import { createHarness, type Harness, testPolicy } from '../../test/support/engine-harness.js';
import { serviceText } from '../slack/service-text.js';
import {
  AUTO_REPAIR_GRACE_MS,
  autoRepairOutcome,
  deferToAutoRepair,
  repairableCondition,
} from './auto-repair.js';
import type { AutoRepairPort } from './ports.js';
import { type AutoRepairOptions, RemediationServices } from './services.js';

const gpuBad = { type: 'AcceleratedHardwareReady', status: 'False' as const, reason: 'NvidiaXID79Error' };

describe('which faults EKS node auto repair acts on (pure)', () => {
  const node = (
    conditions: { type: string; status: 'True' | 'False' | 'Unknown'; reason?: string }[],
    labels = {},
  ) => ({
    labels: { 'eks.amazonaws.com/nodegroup': 'p5', ...labels },
    conditions,
  });

  it.each([
    [[gpuBad], 'AcceleratedHardwareReady', 10],
    [[{ type: 'KernelReady', status: 'False' as const }], 'KernelReady', 30],
    [[{ type: 'Ready', status: 'Unknown' as const }], 'Ready', 30],
  ])('%j → %s after %i min', (conditions, type, wait) => {
    expect(repairableCondition(node(conditions))).toMatchObject({ type, waitMs: wait * 60_000 });
  });

  it('healthy conditions, and ones auto repair ignores (MemoryPressure), are not repairable', () => {
    expect(
      repairableCondition(
        node([
          { type: 'Ready', status: 'True' },
          { type: 'AcceleratedHardwareReady', status: 'True' },
          { type: 'MemoryPressure', status: 'True' },
        ]),
      ),
    ).toBeUndefined();
  });

  it('detect defers only when the group has it on; defer does not ask; ignore never defers', () => {
    const n = node([gpuBad]);
    expect(deferToAutoRepair({ mode: 'detect', node: n, groupRepair: { enabled: true } })).toMatchObject({
      defer: true,
      owner: { kind: 'managed-node-group', nodeGroup: 'p5' },
      windowMs: 10 * 60_000 + AUTO_REPAIR_GRACE_MS,
    });
    expect(deferToAutoRepair({ mode: 'detect', node: n, groupRepair: { enabled: false } }).defer).toBe(false);
    expect(deferToAutoRepair({ mode: 'detect', node: n, groupRepair: 'unknown' }).defer).toBe(false);
    expect(deferToAutoRepair({ mode: 'detect', node: n }).defer).toBe(false);
    expect(deferToAutoRepair({ mode: 'defer', node: n, windowMs: 5000 })).toMatchObject({
      defer: true,
      windowMs: 5000,
    });
    expect(deferToAutoRepair({ mode: 'ignore', node: n, groupRepair: { enabled: true } }).defer).toBe(false);
    // Auto Mode has auto repair on, always; a Karpenter node's repair cannot be seen.
    const auto = { labels: { 'eks.amazonaws.com/compute-type': 'auto' }, conditions: [gpuBad] };
    expect(deferToAutoRepair({ mode: 'detect', node: auto })).toMatchObject({
      defer: true,
      owner: { kind: 'auto-mode' },
    });
    const karpenter = { labels: { 'karpenter.sh/nodepool': 'gpu' }, conditions: [gpuBad] };
    expect(deferToAutoRepair({ mode: 'defer', node: karpenter }).defer).toBe(false);
  });

  it('outcomes: gone or a new instance = replaced; Ready with a new boot ID = rebooted; else not acted at the deadline', () => {
    const before = { bootId: 'b1', instanceId: 'i-1' };
    expect(autoRepairOutcome(undefined, before, false)).toBe('replaced');
    expect(autoRepairOutcome({ ready: false, bootId: 'b1', instanceId: 'i-2' }, before, false)).toBe(
      'replaced',
    );
    expect(autoRepairOutcome({ ready: true, bootId: 'b2', instanceId: 'i-1' }, before, false)).toBe(
      'rebooted',
    );
    expect(
      autoRepairOutcome({ ready: false, bootId: 'b2', instanceId: 'i-1' }, before, false),
    ).toBeUndefined();
    expect(
      autoRepairOutcome({ ready: true, bootId: 'b1', instanceId: 'i-1' }, before, false),
    ).toBeUndefined();
    expect(autoRepairOutcome({ ready: true, bootId: 'b1', instanceId: 'i-1' }, before, true)).toBe(
      'not_acted',
    );
  });
});

function fleet(
  autoRepair: AutoRepairOptions,
  port?: { enabled?: boolean; fail?: boolean },
): Harness & { asked: string[] } {
  const asked: string[] = [];
  const fakePort: AutoRepairPort = {
    async nodeRepairOf(group) {
      asked.push(group);
      if (port?.fail) throw new Error('AccessDeniedException');
      return { enabled: port?.enabled === true };
    },
  };
  const h = createHarness({
    autoRepair: { pollMs: 10_000, ...autoRepair, ...(port ? { port: fakePort } : {}) },
  });
  for (let i = 0; i < 10; i++) {
    h.world.addNode({
      name: `g-${i}`,
      instanceId: `i-0${i}`.padEnd(19, '0'),
      nodeGroup: 'p5',
      asg: 'asg-p5',
    });
  }
  const n0 = h.world.nodes.get('g-0');
  n0?.conditions.push({ ...gpuBad });
  return Object.assign(h, { asked });
}

describe('deferring to EKS node auto repair', () => {
  it('detect + auto repair on: alert, thread line, no action; EKS reboots → reported and resolved', async () => {
    const h = fleet({ mode: 'detect' }, { enabled: true });
    const incident = h.openIncident('g-0');
    // EKS reboots the node after its documented wait (the fake clock runs the watcher's polls at once).
    h.clock.schedule(10 * 60_000 + 30_000, () => {
      const node = h.world.nodes.get('g-0');
      if (node) node.bootId = 'boot-by-eks';
    });
    const result = await h.services.triage(incident.id);
    expect(result).toMatchObject({ ok: true });
    expect(serviceText(result)).toMatch(/EKS node auto repair will act on g-0/);
    expect(h.asked).toEqual(['p5']);
    expect(h.events.map((e) => e.step)).toContain('auto_repair_deferred');
    expect(h.events.find((e) => e.step === 'auto_repair_deferred')?.details).toMatchObject({
      condition: 'AcceleratedHardwareReady',
      reason: 'NvidiaXID79Error',
      nodeGroup: 'p5',
      action: 'replace',
    });
    expect(h.stateOf(incident.id)).toBe('detected');
    expect(h.services.deferralOf(incident.id)).toMatchObject({ condition: 'AcceleratedHardwareReady' });
    // A human (or a second fault) cannot make gpu-medic act meanwhile.
    const refused = await h.services.requestManual('reboot', 'g-0', 'slack:U1', 'now');
    expect(refused).toMatchObject({ ok: false, code: 'busy' });
    expect(serviceText(refused)).toMatch(/EKS node auto repair is handling g-0/);

    await h.services.whenDeferralsSettled();
    expect(h.events.find((e) => e.step === 'auto_repair_outcome')?.details).toMatchObject({
      outcome: 'rebooted',
    });
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.events.find((e) => e.step === 'resolved')?.details).toMatchObject({ byAutoRepair: 'rebooted' });
    expect(h.world.mutations()).toBe(0);
  });

  it('EKS does not act within the window: reported, then gpu-medic follows its policy (replace)', async () => {
    const h = fleet({ mode: 'defer', windowMs: 60_000 });
    const incident = h.openIncident('g-0');
    await h.services.triage(incident.id);
    expect(h.asked).toEqual([]);
    await h.services.whenDeferralsSettled();
    await h.engine.whenIdle();
    expect(h.events.find((e) => e.step === 'auto_repair_outcome')?.details).toMatchObject({
      outcome: 'not_acted',
      policyAction: 'replace',
    });
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.count('terminateInAutoScalingGroup')).toBe(1);
  });

  it('EKS replaces the node: reported as replaced, gpu-medic never touched it', async () => {
    const h = fleet({ mode: 'defer' });
    const incident = h.openIncident('g-0');
    h.clock.schedule(5 * 60_000, () => h.world.nodes.delete('g-0'));
    await h.services.triage(incident.id);
    await h.services.whenDeferralsSettled();
    expect(h.events.find((e) => e.step === 'auto_repair_outcome')?.details).toMatchObject({
      outcome: 'replaced',
    });
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.mutations()).toBe(0);
  });

  it.each([
    ['auto repair off for the group', { mode: 'detect' as const }, { enabled: false }],
    ['EKS cannot be asked', { mode: 'detect' as const }, { fail: true }],
    ['EKS_AUTO_REPAIR=ignore', { mode: 'ignore' as const }, { enabled: true }],
  ])('%s: gpu-medic acts itself', async (_name, options, port) => {
    const h = fleet(options, port);
    const incident = h.openIncident('g-0');
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.events.map((e) => e.step)).not.toContain('auto_repair_deferred');
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.world.count('terminateInAutoScalingGroup')).toBe(1);
  });

  it('a node whose conditions are healthy is not deferred, and EKS is not asked', async () => {
    const h = fleet({ mode: 'detect' }, { enabled: true });
    const incident = h.openIncident('g-1');
    await h.services.triage(incident.id);
    await h.engine.whenIdle();
    expect(h.asked).toEqual([]);
    expect(h.stateOf(incident.id)).toBe('resolved');
  });

  it('a deferral left by a stop is found again from its row and watched to its outcome', async () => {
    const h = fleet({ mode: 'defer' });
    const incident = h.openIncident('g-0');
    await h.services.triage(incident.id);
    await h.services.stopWatching();
    expect(h.services.deferralOf(incident.id)).toBeDefined();
    // A new process on the same stores (same incidents, steps, world): the row says what to watch for.
    const again = new RemediationServices({
      cluster: h.world.cluster,
      incidents: h.incidents,
      steps: h.steps,
      exclusions: h.exclusions,
      audit: h.audit,
      kv: h.kv,
      clock: h.clock,
      bus: h.bus,
      engine: h.engine,
      policy: testPolicy(),
      authorize: () => true,
      autoRepair: { mode: 'defer', pollMs: 10_000 },
    });
    h.clock.schedule(60_000, () => {
      const node = h.world.nodes.get('g-0');
      if (node) node.bootId = 'boot-after-restart';
    });
    expect(again.resumeDeferrals()).toEqual([incident.id]);
    await again.whenDeferralsSettled();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(h.events.filter((e) => e.step === 'auto_repair_outcome')).toHaveLength(1);
  });
});
