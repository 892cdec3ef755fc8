/**
 * The `diagnose` step: after a repair's settle gate and before uncordon, `dcgmi diag -r <POST_REPAIR_DIAG>` in the
 * node's DCGM pod. A pass (or warnings only) lets the plan go on to uncordon; a failure ends the run escalated
 * with the node still cordoned. The diagnostic changes nothing on the node, so a run interrupted by a restart
 * simply runs it again (its `started` row keeps the level it was asked for).
 */

import { type DiagLevel, type DiagReport, diagVerdict } from '../domain/diag.js';
import { escalateToAfter } from './escalation.js';
import type { DiagRun } from './ports.js';
import { done, type StepContext, type StepOutcome } from './step-kit.js';

function reportDetail(report: DiagReport) {
  return {
    level: report.level,
    results: report.results,
    ...(report.nodeWide && report.nodeWide.length > 0 ? { nodeWide: report.nodeWide } : {}),
  };
}

/** Waits for the run, saying every `diagProgressMs` that it still runs; stops waiting when the run is aborted. */
async function awaitRun(
  ctx: StepContext,
  run: Promise<DiagRun>,
  level: DiagLevel,
  startedAt: number,
  expectedMs: number,
): Promise<DiagRun> {
  const tick: unique symbol = Symbol('tick');
  for (;;) {
    const stopTimer = new AbortController();
    const timer = ctx.deps.clock
      .sleep(ctx.config.diagProgressMs, AbortSignal.any([ctx.signal, stopTimer.signal]))
      .then(() => tick);
    try {
      const r = await Promise.race([run, timer]);
      ctx.signal.throwIfAborted();
      if (typeof r !== 'symbol') return r;
    } finally {
      stopTimer.abort();
    }
    const waitedMs = ctx.deps.clock.now() - startedAt;
    ctx.publish({ step: 'diag_progress', details: { level, waitedMs, expectedMs } });
  }
}

export async function diagnose(ctx: StepContext): Promise<StepOutcome> {
  const level = ctx.resumed?.detail.level ?? ctx.config.postRepairDiag;
  if (level === undefined) return done({ skipped: 'POST_REPAIR_DIAG is off' }, null);
  if (ctx.plan.dryRun) {
    return done({ would: `run dcgmi diag -r ${level} on ${ctx.incident.node}` }, null);
  }
  const port = ctx.deps.diag;
  if (!port) {
    const reason = 'this process has no DCGM diagnostics';
    return done(
      { level, skipped: reason },
      { step: 'diag_result', details: { level, verdict: 'unavailable', message: reason } },
    );
  }
  const again = ctx.resumed !== undefined;
  const row = ctx.begin({ level });
  const expectedMs = port.expectedMs(level);
  ctx.publish({ step: 'diag_started', details: { level, expectedMs, ...(again ? { resumed: true } : {}) } });
  ctx.signal.throwIfAborted();
  const run = await awaitRun(
    ctx,
    port.run(ctx.incident.node, level, ctx.signal),
    level,
    row.startedAt,
    expectedMs,
  );
  const elapsedMs = ctx.deps.clock.now() - row.startedAt;
  const node = ctx.incident.node;

  if (run.kind === 'unavailable') {
    // No DCGM host engine to ask: not a verdict on the GPUs. The settle gate's scan stands; the thread says so.
    ctx.publish({ step: 'diag_result', details: { level, verdict: 'unavailable', message: run.reason } });
    return done({ level, skipped: run.reason }, null);
  }
  if (run.kind === 'error') {
    ctx.publish(
      { step: 'diag_result', details: { level, verdict: 'error', message: run.reason } },
      elapsedMs,
    );
    return {
      kind: 'end',
      state: 'escalated',
      reason: `DCGM diagnostics level ${level} on ${node} gave no verdict (${run.reason}); it stays cordoned and a human decides.`,
      detail: { level, needsHuman: true },
    };
  }
  const { report } = run;
  const verdict = diagVerdict(report);
  const detail = { ...reportDetail(report), verdict };
  ctx.publish(
    {
      step: 'diag_result',
      details: {
        level,
        verdict,
        results: report.results,
        ...(report.nodeWide ? { nodeWide: report.nodeWide } : {}),
      },
    },
    elapsedMs,
  );
  if (verdict !== 'fail') return done(detail, null);

  const failing = [
    ...new Set(report.results.filter((r) => r.status === 'fail').map((r) => `${r.test} on GPU ${r.gpu}`)),
  ];
  const nodeWide = (report.nodeWide ?? []).filter((r) => r.status === 'fail').map((r) => r.test);
  const what = [...failing, ...nodeWide.map((t) => `${t} (node)`)].slice(0, 6).join(', ');
  const to = escalateToAfter(ctx.plan.action);
  return {
    kind: 'end',
    state: 'escalated',
    reason: `DCGM diagnostics level ${level} failed after the ${ctx.plan.action} (${what}): ${node} stays cordoned${to ? `; the fault goes to the escalation policy (${to})` : '; a human decides'}.`,
    detail: { ...detail, ...(to ? { escalateTo: to } : { needsHuman: true }) },
  };
}
