import { describe, expect, it } from 'vitest';
import { eccIncident, type Harness, p5Cluster, stepsOf } from '../../test/support/engine-harness.js';
import type { FakeClock } from '../../test/support/fake-clock.js';
import type { DiagLevel, DiagResult, DiagRun } from '../domain/diag.js';
import { escalateToAfter } from './escalation.js';
import type { DiagPort } from './ports.js';
import { planSteps } from './state-machine.js';

const passing = (level: DiagLevel, gpus = 8): DiagRun => ({
  kind: 'report',
  pod: 'kube-system/dcgm-server-x',
  report: {
    level,
    results: Array.from(
      { length: gpus },
      (_, gpu): DiagResult => ({ test: 'software', gpu, status: 'pass' }),
    ),
  },
});

const failing = (level: DiagLevel): DiagRun => ({
  kind: 'report',
  pod: 'kube-system/dcgm-server-x',
  report: {
    level,
    results: [
      { test: 'software', gpu: 0, status: 'pass' },
      {
        test: 'software',
        gpu: 3,
        status: 'fail',
        info: 'Pending page retirements together with a DBE were detected on GPU 3.',
      },
    ],
  },
});

/** A DCGM that answers after `durationMs` of the harness clock (or never, until aborted, when `hang`). */
class FakeDiag implements DiagPort {
  runs: { node: string; level: DiagLevel }[] = [];
  answers: DiagRun[] = [];
  hang = false;
  durationMs = 1_000;
  constructor(private readonly clock: FakeClock) {}
  expectedMs(level: DiagLevel): number {
    return level * 60_000;
  }
  run(node: string, level: DiagLevel, signal?: AbortSignal): Promise<DiagRun> {
    this.runs.push({ node, level });
    const answer = this.answers.shift() ?? passing(level);
    return new Promise((resolve, reject) => {
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      if (!this.hang) this.clock.schedule(this.durationMs, () => resolve(answer));
    });
  }
}

function setup(level: DiagLevel | 'off') {
  let diag: FakeDiag | undefined;
  const h: Harness = p5Cluster({
    engine: { ...(level !== 'off' ? { postRepairDiag: level } : {}), diagProgressMs: 60_000 },
    diag: {
      run: (...a) => (diag as FakeDiag).run(...a),
      expectedMs: (l) => (diag as FakeDiag).expectedMs(l),
    },
  });
  diag = new FakeDiag(h.clock);
  return { h, diag };
}

async function reboot(h: Harness) {
  const incident = h.openIncident('gpu-0', eccIncident);
  await h.services.triage(incident.id);
  await h.engine.whenIdle();
  return incident.id;
}

describe('planSteps with post-repair diagnostics', () => {
  it('puts diagnose after the settle gate and right before uncordon in the reboot plan', () => {
    const steps = planSteps('reboot', { diagnose: true });
    expect(steps.indexOf('diagnose')).toBe(steps.indexOf('verify_scan') + 1);
    expect(steps.indexOf('diagnose')).toBe(steps.indexOf('uncordon') - 1);
    expect(planSteps('reboot')).not.toContain('diagnose');
  });

  it('leaves plans that do not repair and uncordon as they are', () => {
    for (const action of ['none', 'cordon', 'uncordon', 'drain', 'replace'] as const) {
      expect(planSteps(action, { diagnose: true })).toEqual(planSteps(action));
    }
  });

  it('escalates a failure along the ladder: after a reset to reboot, after a reboot to replace, else a human', () => {
    expect(escalateToAfter('reset')).toBe('reboot');
    expect(escalateToAfter('reboot')).toBe('replace');
    expect(escalateToAfter('replace')).toBeUndefined();
    expect(escalateToAfter('drain')).toBeUndefined();
  });
});

describe('the diagnose step', () => {
  it('a reboot whose diagnostic passes is uncordoned after it, with the table in the thread and the journal', async () => {
    const { h, diag } = setup(2);
    const id = await reboot(h);
    expect(h.stateOf(id)).toBe('resolved');
    expect(diag.runs).toEqual([{ node: 'gpu-0', level: 2 }]);
    const steps = stepsOf(h);
    expect(steps.indexOf('gpu_scan')).toBeLessThan(steps.indexOf('diag_started'));
    expect(steps.indexOf('diag_result')).toBeLessThan(steps.indexOf('uncordoned'));
    const result = h.events.find((e) => e.step === 'diag_result');
    expect(result?.details).toMatchObject({ level: 2, verdict: 'pass' });
    expect(h.events.find((e) => e.step === 'diag_started')?.details).toEqual({
      level: 2,
      expectedMs: 120_000,
    });
    const row = h.steps.lastOf(id, 'diagnose');
    expect(row?.status).toBe('done');
    expect(row?.detail).toMatchObject({ level: 2, verdict: 'pass' });
    expect(row?.detail.results).toHaveLength(8);
    expect(h.world.nodes.get('gpu-0')?.unschedulable).toBe(false);
  });

  it('a failing diagnostic after a reboot escalates to replace and the node stays cordoned', async () => {
    const { h, diag } = setup(1);
    diag.answers.push(failing(1));
    const id = await reboot(h);
    expect(h.stateOf(id)).toBe('escalated');
    expect(h.world.count('uncordon')).toBe(0);
    expect(h.world.nodes.get('gpu-0')?.unschedulable).toBe(true);
    expect(h.incidents.get(id)?.stateReason).toMatch(
      /DCGM diagnostics level 1 failed after the reboot \(software on GPU 3\)/,
    );
    const row = h.steps.lastOf(id, 'diagnose');
    expect(row?.status).toBe('failed');
    expect(row?.detail).toMatchObject({ level: 1, verdict: 'fail', escalateTo: 'replace' });
    expect(row?.detail.results).toContainEqual({
      test: 'software',
      gpu: 3,
      status: 'fail',
      info: 'Pending page retirements together with a DBE were detected on GPU 3.',
    });
    expect(h.steps.lastOf(id, 'escalate')?.detail).toMatchObject({ to: 'replace' });
    expect(h.events.find((e) => e.step === 'escalated')?.details).toMatchObject({ to: 'replace' });
  });

  it('no DCGM pod on the node: said in the thread, not a verdict; the node is uncordoned', async () => {
    const { h, diag } = setup(1);
    diag.answers.push({ kind: 'unavailable', reason: 'no DCGM host-engine pod is running on gpu-0' });
    const id = await reboot(h);
    expect(h.stateOf(id)).toBe('resolved');
    expect(h.events.find((e) => e.step === 'diag_result')?.details).toEqual({
      level: 1,
      verdict: 'unavailable',
      message: 'no DCGM host-engine pod is running on gpu-0',
    });
    expect(h.steps.lastOf(id, 'diagnose')?.detail).toMatchObject({
      skipped: expect.stringContaining('no DCGM'),
    });
  });

  it('no verdict (DCGM refused, unreadable output): escalated to a human, the node stays cordoned', async () => {
    const { h, diag } = setup(1);
    diag.answers.push({ kind: 'error', reason: 'DCGM: the host engine is not running' });
    const id = await reboot(h);
    expect(h.stateOf(id)).toBe('escalated');
    expect(h.world.count('uncordon')).toBe(0);
    expect(h.steps.lastOf(id, 'diagnose')?.detail).toMatchObject({ needsHuman: true });
    expect(h.events.find((e) => e.step === 'escalated')?.details).toMatchObject({ to: 'human' });
  });

  it('a long level says it is still running, at every progress interval', async () => {
    const { h, diag } = setup(3);
    diag.durationMs = 150_000;
    const id = await reboot(h);
    expect(h.stateOf(id)).toBe('resolved');
    const progress = h.events.filter((e) => e.step === 'diag_progress').map((e) => e.details);
    expect(progress).toEqual([
      { level: 3, waitedMs: 60_000, expectedMs: 180_000 },
      { level: 3, waitedMs: 120_000, expectedMs: 180_000 },
    ]);
  });

  it('stops when the run is aborted, and a new leader runs the journaled level again', async () => {
    const { h, diag } = setup(2);
    diag.hang = true;
    const incident = h.openIncident('gpu-0', eccIncident);
    await h.services.triage(incident.id);
    for (let i = 0; i < 200 && diag.runs.length === 0; i++) await new Promise((r) => setImmediate(r));
    expect(diag.runs).toHaveLength(1);
    await h.engine.abort('lease lost');
    expect(h.steps.lastOf(incident.id, 'diagnose')?.status).toBe('started');
    expect(h.world.count('uncordon')).toBe(0);

    diag.hang = false;
    const next = h.newEngine();
    expect(next.start()).toEqual([incident.id]);
    await next.whenIdle();
    expect(h.stateOf(incident.id)).toBe('resolved');
    expect(diag.runs).toEqual([
      { node: 'gpu-0', level: 2 },
      { node: 'gpu-0', level: 2 },
    ]);
    expect(h.events.filter((e) => e.step === 'diag_started').map((e) => e.details.resumed)).toEqual([
      undefined,
      true,
    ]);
  });

  it('POST_REPAIR_DIAG off: no diagnose step at all', async () => {
    const { h, diag } = setup('off');
    const id = await reboot(h);
    expect(h.stateOf(id)).toBe('resolved');
    expect(diag.runs).toEqual([]);
    expect(h.steps.lastOf(id, 'diagnose')).toBeUndefined();
  });
});
