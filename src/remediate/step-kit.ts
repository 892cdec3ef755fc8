/**
 * What every remediation step shares: its context, its outcome, and the small helpers (waits that stop on
 * abort, the node it works on, the settle gate's timeout). The steps themselves live in drain-steps.ts,
 * reboot-steps.ts, replace-steps.ts and job-steps.ts; steps.ts dispatches to them.
 */
import type { StepDetails } from '../domain/events.js';
import type { Incident } from '../domain/incident.js';
import type { GpuNode } from '../domain/node.js';
import type { EngineConfig, EngineDeps } from './engine-config.js';
import { escalateToAfter } from './escalation.js';
import type { JournalDetail } from './journal.js';
import type { RunPlan, StepRow } from './ports.js';
import type { Missing, SettleResult } from './settle.js';
import type { StepName } from './state-machine.js';

export interface StepContext {
  incident: Incident;
  plan: RunPlan;
  /** This step's `started` row from an earlier, interrupted attempt. */
  resumed: StepRow | undefined;
  config: EngineConfig;
  deps: EngineDeps;
  begin(detail: JournalDetail): StepRow;
  doneDetail(step: StepName): JournalDetail | undefined;
  rowOf(step: StepName): StepRow | undefined;
  /** A progress event within the step; `elapsedMs` when the line should say how long something took. */
  publish(told: StepDetails, elapsedMs?: number): void;
  humanUncordoned(): Promise<string | undefined>;
  /**
   * Fires when this process must stop acting (leadership lost, process stopping). A step stops at its next
   * wait or before its next effect, leaving its `started` row for the next leader to resume.
   */
  signal: AbortSignal;
}

/** The progress event announcing a finished step, typed by the contract in src/domain/events.ts. */
export type StepProgress = StepDetails;

export type StepOutcome =
  | {
      kind: 'done';
      /** Persisted in the step row (what a resumed run reads); never shown as is. */
      detail: JournalDetail;
      /** What the thread is told; null = the step already told it with its own events. */
      progress: StepProgress | null;
    }
  | {
      kind: 'end';
      state: 'escalated' | 'failed' | 'cancelled';
      reason: string;
      detail?: JournalDetail;
    };

export const done = (detail: JournalDetail, progress: StepProgress | null): StepOutcome => ({
  kind: 'done',
  detail,
  progress,
});

export function minutes(ms: number): string {
  return ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`;
}

/**
 * Every wait of a step: returns early when the run is aborted and then throws, so nothing after the wait
 * (an eviction, an EC2 call) happens in a process that is no longer allowed to act.
 */
export async function pause(ctx: StepContext, ms: number): Promise<void> {
  await ctx.deps.clock.sleep(ms, ctx.signal);
  ctx.signal.throwIfAborted();
}

export async function requireNode(ctx: StepContext): Promise<GpuNode> {
  const node = await ctx.deps.cluster.getNode(ctx.incident.node);
  if (!node) throw new Error(`node ${ctx.incident.node} not found`);
  return node;
}

export function instanceIdOf(ctx: StepContext, node: GpuNode | undefined): string {
  const id = ctx.incident.instanceId ?? node?.instanceId;
  if (!id) throw new Error(`no EC2 instance id for ${ctx.incident.node} (spec.providerID)`);
  return id;
}

/** The settle gate's timeout, as the thread and the escalation policy see it. */
export function settleTimeout(
  ctx: StepContext,
  node: string,
  when: string,
  missing: Missing,
  replaceable: boolean,
): StepOutcome {
  // Fewer GPUs than before (the device plugin or the scan counts some, not all): the hardware lost one, and a
  // reboot that did not bring it back escalates to replace. Nothing read at all: a human looks first.
  const lost =
    replaceable && missing.have !== undefined && missing.have > 0 && (missing.want ?? 0) > missing.have;
  // A GPU lost after a reset may come back with a reboot; after a reboot it needs new hardware.
  const next = escalateToAfter(ctx.plan.action) ?? 'replace';
  return {
    kind: 'end',
    state: 'escalated',
    reason: `${node} ${when} but did not settle within ${minutes(ctx.config.settleTimeoutMs)}: ${missing.text}. It stays cordoned${lost ? `; the lost GPU goes to the escalation ladder (${next})` : '; a human decides'}.`,
    detail: {
      settled: false,
      waitingFor: missing.kind,
      missing: missing.text,
      ...(lost ? { escalateTo: next } : { needsHuman: true }),
    },
  };
}

export function settledDetail(result: Extract<SettleResult, { kind: 'settled' }>): JournalDetail {
  return { healthy: true, gpus: result.gpus, waitedMs: result.waitedMs };
}
