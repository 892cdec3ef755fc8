import { describe, expect, it } from 'vitest';
import type { ProgressEvent, StepDetails } from '../domain/events.js';
import { createMetrics, renderMetrics } from './metrics.js';
import { RepairPhaseClock } from './repair-phases.js';

const ev = (told: StepDetails, at: number, extra: Partial<ProgressEvent> = {}): ProgressEvent =>
  ({ incidentId: 'inc-1', node: 'n', state: 'cordoned', at, ...told, ...extra }) as ProgressEvent;

describe('RepairPhaseClock', () => {
  it('detection → cordon → drained → healthy, each once, in seconds', () => {
    const clock = new RepairPhaseClock();
    const incident = { firstSeen: 1_000, action: 'reboot' };
    const seen = [
      ev({ step: 'cordoned', details: {} }, 3_000),
      ev({ step: 'cordoned', details: {} }, 3_500),
      ev({ step: 'drained', details: { evicted: 2 } }, 13_000),
      ev({ step: 'gpu_scan', details: { healthy: false } }, 60_000),
      ev({ step: 'gpu_scan', details: { healthy: true } }, 100_000),
      ev({ step: 'gpu_scan', details: { healthy: true } }, 110_000),
    ].flatMap((e) => clock.observe(e, incident));
    expect(seen.map((s) => [s.action, s.phase, s.seconds])).toEqual([
      ['reboot', 'detection_to_cordon', 2],
      ['reboot', 'cordon_to_drained', 10],
      ['reboot', 'drained_to_healthy', 87],
    ]);
    clock.observe(ev({ step: 'resolved', details: {} }, 120_000), incident);
    expect(clock.size).toBe(0);
  });

  it('measures nothing for a dry run, an action that repairs nothing, or a drain with no cordon seen', () => {
    const clock = new RepairPhaseClock();
    expect(
      clock.observe(ev({ step: 'cordoned', details: {} }, 2, { dryRun: true }), {
        firstSeen: 1,
        action: 'replace',
      }),
    ).toEqual([]);
    expect(
      clock.observe(ev({ step: 'cordoned', details: {} }, 2), { firstSeen: 1, action: 'cordon' }),
    ).toEqual([]);
    expect(
      clock.observe(ev({ step: 'drained', details: {} }, 2), { firstSeen: 1, action: 'replace' }),
    ).toEqual([]);
  });

  it('lands on /metrics as gpu_medic_repair_phase_seconds by action and phase', async () => {
    const m = createMetrics(undefined, { defaultMetrics: false });
    m.repairPhase.observe({ action: 'replace', phase: 'cordon_to_drained' }, 42);
    const { body } = await renderMetrics(m);
    expect(body).toContain(
      'gpu_medic_repair_phase_seconds_bucket{le="60",action="replace",phase="cordon_to_drained"} 1',
    );
    expect(body).toContain(
      'gpu_medic_repair_phase_seconds_sum{action="replace",phase="cordon_to_drained"} 42',
    );
  });
});
