import { describe, expect, it } from 'vitest';
import { nodeStatusText, serviceText, toChatResult } from './service-text.js';

describe('service answers in words', () => {
  it('names the action and the node of a started remediation, and says a dry run would', () => {
    const started = {
      kind: 'started',
      action: 'reboot',
      node: 'gpu-1',
      incidentId: 'inc-1',
      actor: 'slack:U1',
      reason: 'flaky',
      dryRun: false,
    } as const;
    expect(serviceText({ ok: true, outcome: started })).toBe(
      'Rebooting gpu-1 (incident inc-1), requested by slack:U1: flaky',
    );
    expect(serviceText({ ok: true, dryRun: true, outcome: { ...started, dryRun: true } })).toBe(
      'DRY RUN — would reboot gpu-1 (incident inc-1), requested by slack:U1: flaky',
    );
  });

  it('tells who holds a busy node, and points a dismissal of a run to cancel', () => {
    const incident = { id: 'inc-2', node: 'gpu-2', state: 'draining', plannedAction: 'reboot' } as const;
    const busy = {
      ok: false,
      code: 'busy',
      refusal: { reason: 'taken', incident, cancelInstead: true },
    } as const;
    expect(toChatResult(busy)).toEqual({
      ok: false,
      code: 'busy',
      message: 'gpu-2 is already being remediated (incident inc-2: reboot, draining). Cancel it instead.',
    });
  });

  it('refuses a person with the action they may not take', () => {
    expect(serviceText({ ok: false, code: 'denied', refusal: { reason: 'denied', action: 'pause' } })).toBe(
      'You are not allowed to pause gpu-medic.',
    );
  });

  it('describes a node: readiness, GPU count with its sharing, exclusion', () => {
    const text = nodeStatusText({
      node: 'gpu-3',
      exists: true,
      gpuNode: true,
      ready: true,
      unschedulable: true,
      gpus: { expected: 8, sharing: 'mig-mixed' },
      excluded: { node: 'gpu-3', reason: 'RMA', createdBy: 'slack:U1', createdAt: 0 },
      optOut: false,
      openIncidents: [],
    });
    expect(text).toBe('gpu-3: Ready, cordoned, 8 GPUs expected (mig-mixed).\nExcluded by slack:U1: RMA.');
  });
});
