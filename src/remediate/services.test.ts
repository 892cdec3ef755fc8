import { describe, expect, it } from 'vitest';
import { createHarness, type Harness, type HarnessOptions } from '../../test/support/engine-harness.js';
import { nodeStatusText, serviceText, statusText } from '../slack/service-text.js';
import { defaultExclusionMs, type ServiceAction } from './services.js';

function fleet(n: number, options: HarnessOptions = {}): Harness {
  const h = createHarness(options);
  for (let i = 0; i < n; i++)
    h.world.addNode({ name: `gpu-${i}`, instanceId: `i-${i}`, nodeGroup: 'p5', asg: 'asg-p5' });
  h.world.addNode({ name: 'cpu-0', instanceId: 'i-cpu', gpus: 0 });
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

describe('RemediationServices.request checks', () => {
  it.each([
    ['an unknown node', 'gpu-99', 'not_found'],
    ['a CPU node', 'cpu-0', 'not_gpu'],
  ])('refuses %s', async (_, node, code) => {
    const h = fleet(3);
    const r = await h.services.requestManual('reboot', node, 'slack:U1', 'test');
    expect(r).toMatchObject({ ok: false, code });
    expect(h.world.mutations()).toBe(0);
    expect(h.audit.entries.at(-1)).toMatchObject({
      actor: 'slack:U1',
      action: 'request.reboot',
      result: code,
    });
  });

  it('refuses and audits an actor who is not allowed', async () => {
    const seen: [string, ServiceAction][] = [];
    const h = fleet(3, {
      authorize: (actor, action) => {
        seen.push([actor, action]);
        return actor === 'slack:ADMIN';
      },
    });
    const r = await h.services.requestManual('replace', 'gpu-0', 'slack:U2', 'I think it is broken');
    expect(r).toMatchObject({ ok: false, code: 'denied' });
    expect(seen).toEqual([['slack:U2', 'replace']]);
    expect(h.audit.entries.at(-1)).toMatchObject({
      actor: 'slack:U2',
      result: 'denied',
      reason: 'I think it is broken',
    });
    expect(h.world.mutations()).toBe(0);
  });

  it('refuses an invalid action', async () => {
    const h = fleet(3);
    expect(await h.services.requestManual('none', 'gpu-0', 'cli:alice', 'x')).toMatchObject({
      ok: false,
      code: 'invalid',
    });
  });

  it('a manual cordon opens an incident, cordons once and resolves', async () => {
    const h = fleet(3);
    const r = await h.services.requestManual('cordon', 'gpu-1', 'cli:alice', 'maintenance');
    expect(r).toMatchObject({ ok: true });
    expect(serviceText(r)).toContain('Cordoning gpu-1');
    await h.engine.whenIdle();
    expect(r.ok && h.incidents.get(r.incidentId ?? '')).toMatchObject({
      state: 'resolved',
      category: 'MANUAL',
      plannedAction: 'cordon',
    });
    expect(h.world.nodes.get('gpu-1')?.unschedulable).toBe(true);
    // And the uncordon, by a human, of a node it did not cordon itself in that run.
    const u = await h.services.requestManual('uncordon', 'gpu-1', 'cli:alice', 'done');
    expect(u.ok).toBe(true);
    await h.engine.whenIdle();
    expect(h.world.nodes.get('gpu-1')?.unschedulable).toBe(false);
    expect([h.world.count('cordon'), h.world.count('uncordon')]).toEqual([1, 1]);
  });

  it('an excluded node is never touched, by the monitor or by a human', async () => {
    const h = fleet(10);
    expect(await h.services.exclude('gpu-0', { reason: 'vendor RMA' }, 'slack:U1')).toMatchObject({
      ok: true,
    });
    const incident = h.openIncident('gpu-0', ecc);
    const auto = await h.services.triage(incident.id);
    expect(auto).toMatchObject({ ok: false, code: 'excluded' });
    const manual = await h.services.requestManual('reboot', 'gpu-0', 'slack:U1', 'please');
    expect(manual).toMatchObject({ ok: false, code: 'excluded' });
    expect(serviceText(manual)).toContain('/gpu unexclude gpu-0');
    await h.engine.whenIdle();
    expect(h.world.mutations()).toBe(0);
    expect(h.events.some((e) => e.step === 'excluded')).toBe(true);

    expect(await h.services.unexclude('gpu-0', 'slack:U1')).toMatchObject({ ok: true });
    expect(await h.services.unexclude('gpu-0', 'slack:U1')).toMatchObject({ ok: false, code: 'not_found' });
  });

  it('an exclusion expires', async () => {
    const h = fleet(10);
    await h.services.exclude('gpu-0', { reason: 'one hour', until: h.clock.now() + 3_600_000 }, 'slack:U1');
    expect((await h.services.requestManual('cordon', 'gpu-0', 'u', 'x')).ok).toBe(false);
    h.clock.advance(3_600_001);
    expect((await h.services.requestManual('cordon', 'gpu-0', 'u', 'x')).ok).toBe(true);
  });

  it('an exclusion asked for without an end lasts the default 24 h, from any surface; 30 d at most', async () => {
    const h = fleet(10);
    const start = h.clock.now();
    expect(await h.services.exclude('gpu-0', { reason: 'no end given' }, 'cli:alice')).toMatchObject({
      ok: true,
      outcome: { kind: 'excluded', until: start + defaultExclusionMs },
    });
    h.clock.advance(defaultExclusionMs - 1);
    expect(await h.services.requestManual('cordon', 'gpu-0', 'u', 'x')).toMatchObject({ code: 'excluded' });
    h.clock.advance(2);
    expect((await h.services.requestManual('cordon', 'gpu-0', 'u', 'x')).ok).toBe(true);
    const tooLong = { reason: 'forever', until: h.clock.now() + 31 * defaultExclusionMs };
    expect(await h.services.exclude('gpu-1', tooLong, 'cli:alice')).toMatchObject({
      ok: false,
      code: 'invalid',
    });
  });

  it('the opt-out label keeps gpu-medic away', async () => {
    const h = fleet(10);
    h.world.addNode({ name: 'gpu-opt', instanceId: 'i-opt', labels: { 'gpu-medic.io/exclude': 'true' } });
    const r = await h.services.requestManual('reboot', 'gpu-opt', 'u', 'x');
    expect(r).toMatchObject({ ok: false, code: 'excluded' });
    expect(h.world.mutations()).toBe(0);
  });
});

describe('approvals', () => {
  it('two concurrent approvals of one incident start ONE remediation', async () => {
    const h = fleet(10);
    const incident = h.openIncident('gpu-0', { ...ecc, faultKey: 'gpu_missing', category: 'GPU_MISSING' });
    const triage = await h.services.triage(incident.id);
    expect(triage).toMatchObject({ ok: true, decision: { action: 'reboot', mode: 'approve' } });
    expect(h.stateOf(incident.id)).toBe('awaiting_approval');
    expect(h.events.some((e) => e.step === 'approval_needed')).toBe(true);

    const [a, b] = await Promise.all([
      h.services.approve(incident.id, 'slack:U1'),
      h.services.approve(incident.id, 'slack:U2'),
    ]);
    expect([a.ok, b.ok].sort()).toEqual([false, true]);
    const refused = a.ok ? b : a;
    expect(refused).toMatchObject({ ok: false, code: 'busy' });
    expect(serviceText(refused)).toContain('already being remediated');
    await h.engine.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect([h.world.count('cordon'), h.world.count('rebootInstance')]).toEqual([1, 1]);
    expect(h.steps.list(incident.id).filter((r) => r.step === 'plan')).toHaveLength(1);
  });

  it('an approval may choose another action (the Replace button on a reboot proposal)', async () => {
    const h = fleet(10);
    const incident = h.openIncident('gpu-0', { ...ecc, faultKey: 'gpu_missing', category: 'GPU_MISSING' });
    await h.services.triage(incident.id);
    expect((await h.services.approve(incident.id, 'slack:U1', 'replace')).ok).toBe(true);
    await h.engine.whenIdle();
    expect(h.world.count('terminateInAutoScalingGroup')).toBe(1);
    expect(h.world.count('rebootInstance')).toBe(0);
  });

  it('dismiss closes a proposal; cancel stops a run', async () => {
    const h = fleet(10);
    const one = h.openIncident('gpu-0', { ...ecc, faultKey: 'gpu_missing', category: 'GPU_MISSING' });
    await h.services.triage(one.id);
    expect(await h.services.dismiss(one.id, 'slack:U1', 'known issue')).toMatchObject({ ok: true });
    expect(h.stateOf(one.id)).toBe('dismissed');
    expect(await h.services.approve(one.id, 'slack:U1')).toMatchObject({ ok: false, code: 'busy' });

    const two = h.openIncident('gpu-1', ecc);
    h.claim(two.id, 'reboot', 'cordoned');
    const c = await h.services.cancel(two.id, 'slack:U1', 'I will handle it');
    expect(c).toMatchObject({ ok: true });
    expect(serviceText(c)).toContain('/gpu uncordon gpu-1');
    expect(await h.engine.run(two.id)).toMatchObject({ state: 'cancelled', stopped: 'not_claimed' });
    expect(h.world.mutations()).toBe(0);
  });
});

describe('safety limits', () => {
  it('at most maxConcurrent in flight; the others go to a human', async () => {
    const h = fleet(20, { safety: { maxConcurrent: 1 } });
    let maxInFlight = 0;
    h.bus.subscribe(() => {
      maxInFlight = Math.max(maxInFlight, h.services.status().inFlight.length);
    });
    const ids = [0, 1, 2].map((i) => h.openIncident(`gpu-${i}`, ecc).id);
    const results = await Promise.all(ids.map((id) => h.services.triage(id)));
    expect(results.filter((r) => r.ok && h.stateOf(r.incidentId ?? '') !== 'awaiting_approval')).toHaveLength(
      1,
    );
    await h.engine.whenIdle();
    expect(maxInFlight).toBe(1);
    expect(ids.map((id) => h.stateOf(id)).sort()).toEqual([
      'awaiting_approval',
      'awaiting_approval',
      'resolved',
    ]);
    const limits = h.events.filter((e) => e.step === 'safety_limit').map((e) => e.details);
    expect(limits).toEqual([
      expect.objectContaining({ limit: 'max_concurrent', action: 'reboot', inFlight: 1, maxConcurrent: 1 }),
      expect.objectContaining({ limit: 'max_concurrent', action: 'reboot', inFlight: 1, maxConcurrent: 1 }),
    ]);
    expect(limits[0]?.message).toContain('limit 1');
    expect(h.world.count('rebootInstance')).toBe(1);
  });

  it('faults on 40% of nodes open the breaker: nothing more automatic until resume; a human still can act', async () => {
    const h = fleet(10, { safety: { maxConcurrent: 5 } });
    const ids = [0, 1, 2, 3].map((i) => h.openIncident(`gpu-${i}`, ecc).id);
    for (const id of ids) {
      const r = await h.services.triage(id);
      expect(r).toMatchObject({ ok: true });
    }
    await h.engine.whenIdle();
    expect(ids.map((id) => h.stateOf(id))).toEqual(Array(4).fill('awaiting_approval'));
    expect(h.world.mutations()).toBe(0);
    const status = h.services.status();
    expect(status.breaker.open).toBe(true);
    expect(statusText(status)).toContain('Circuit breaker OPEN');
    const breaker = h.events.filter((e) => e.step === 'safety_limit').map((e) => e.details);
    expect(breaker.length).toBeGreaterThan(0);
    expect(breaker.every((d) => d.limit === 'circuit_breaker' && d.action === 'reboot')).toBe(true);
    expect(breaker[0]).toMatchObject({ total: 10, thresholdPct: h.services.safety.maxUnhealthyPercent });
    // All four critical incidents were open when the first one was triaged: 4 of 10 > 20 %.
    expect(breaker.map((d) => d.unhealthy)).toEqual([4, 4, 4, 4]);

    // An authorized human bypasses the breaker.
    expect((await h.services.approve(ids[0] ?? '', 'slack:ADMIN')).ok).toBe(true);
    await h.engine.whenIdle();
    expect(h.stateOf(ids[0] ?? '')).toBe('resolved');

    const resumed = await h.services.resume('slack:ADMIN');
    expect(resumed).toMatchObject({
      ok: true,
      outcome: { kind: 'resumed', by: 'slack:ADMIN', wasPaused: true },
    });
    expect(serviceText(resumed)).toBe('Automatic remediation resumed by slack:ADMIN.');
    expect(h.services.status().breaker.open).toBe(false);
  });

  it('the rate limit holds automatic remediations per hour', async () => {
    const h = fleet(50, { safety: { perHour: 2, maxConcurrent: 5 } });
    for (let i = 0; i < 3; i++) {
      const id = h.openIncident(`gpu-${i}`, ecc).id;
      await h.services.triage(id);
      await h.engine.whenIdle();
    }
    expect(h.events.filter((e) => e.step === 'safety_limit').map((e) => e.details)).toEqual([
      expect.objectContaining({
        limit: 'rate_limit',
        action: 'reboot',
        count: 2,
        perHour: 2,
        windowMinutes: 60,
      }),
    ]);
    expect(h.world.count('rebootInstance')).toBe(2);
  });

  it('an unreadable breaker record counts as open (fails safe); a pause record keeps who and why', async () => {
    const h = fleet(10);
    h.kv.set('remediate.breaker', '{"open": "maybe"}');
    expect(h.services.status().breaker).toEqual({ open: true, reason: 'unreadable breaker state' });
    h.kv.set('remediate.breaker', 'not json');
    expect(h.services.breaker().open).toBe(true);
    await h.services.resume('slack:U1');
    expect(h.services.breaker()).toEqual({ open: false });
    await h.services.pause('slack:U1', 'change freeze');
    expect(h.services.paused()).toEqual({
      open: true,
      reason: 'change freeze',
      by: 'slack:U1',
      at: h.clock.now(),
    });
    h.kv.set('remediate.starts', '[1, "two"]');
    expect(h.services.status().remediationsLastHour).toBe(0);
  });

  it('pause stops automatic action; resume lifts it', async () => {
    const h = fleet(10);
    await h.services.pause('slack:U1', 'change freeze');
    const id = h.openIncident('gpu-0', ecc).id;
    await h.services.triage(id);
    expect(h.stateOf(id)).toBe('awaiting_approval');
    expect(h.services.status().paused).toMatchObject({ open: true, by: 'slack:U1' });
    await h.services.resume('slack:U1');
    const next = h.openIncident('gpu-1', ecc).id;
    await h.services.triage(next);
    await h.engine.whenIdle();
    expect(h.stateOf(next)).toBe('resolved');
  });

  it('alert-only faults change nothing', async () => {
    const h = fleet(10);
    const id = h.openIncident('gpu-0', {
      faultKey: 'xid:31:gpu0',
      category: 'XID_WARNING_31',
      xid: 31,
      severity: 'warning',
      recommendedAction: 'restart_app',
    }).id;
    const r = await h.services.triage(id);
    expect(r).toMatchObject({ ok: true, decision: { action: 'none', mode: 'off' } });
    expect(h.stateOf(id)).toBe('detected');
    expect(h.world.mutations()).toBe(0);
  });
});

describe('status', () => {
  it('nodeStatus tells a human about a node', async () => {
    const h = fleet(3);
    await h.services.exclude('gpu-2', { reason: 'RMA' }, 'slack:U1');
    const s = await h.services.nodeStatus('gpu-2');
    expect(s).toMatchObject({ exists: true, gpuNode: true, optOut: false, excluded: { reason: 'RMA' } });
    expect(nodeStatusText(s)).toContain('Excluded by slack:U1');
    expect((await h.services.nodeStatus('nope')).exists).toBe(false);
  });
});
