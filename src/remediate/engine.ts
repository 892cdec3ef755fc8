/**
 * The remediation engine: runs an incident's step plan as a persisted state machine.
 * Each step writes a `started` row before its external effect and a `done` row after it; a run that
 * resumes after a crash skips done steps and lets each step check the real world before repeating itself.
 */
import type { Logger } from 'pino';
import { backoffDelay } from '../domain/backoff.js';
import { progressEvent, type StepDetails } from '../domain/events.js';
import type { Incident, IncidentState } from '../domain/incident.js';
import { isOpen } from '../domain/incident.js';
import {
  defaultEngineConfig,
  type EngineConfig,
  type EngineDeps,
  ON_DEMAND_REASON,
  type RunResult,
} from './engine-config.js';
import type { JournalDetail } from './journal.js';
import { pendingReleases, releaseDisruptionGuard } from './karpenter.js';
import type { RunPlan, StepRow } from './ports.js';
import { isRetryable } from './ports.js';
import { endEvent, humanUncordoned, RunAborted, readPlan, stopReason } from './run-guards.js';
import {
  canTransition,
  isWorking,
  PlanStep,
  planSteps,
  type StepName,
  stepDoneState,
  stepState,
} from './state-machine.js';
import { RETRY_BASE_MS, runStep, type StepContext, type StepOutcome } from './steps.js';

export {
  defaultEngineConfig,
  type EngineConfig,
  type EngineDeps,
  ON_DEMAND_REASON,
  type RunResult,
} from './engine-config.js';
export { RunAborted, readPlan } from './run-guards.js';

/** How far back a start looks for ended incidents whose do-not-disrupt annotation is still on. */
const releaseLookbackMs = 7 * 24 * 3_600_000;

export class RemediationEngine {
  readonly config: EngineConfig;
  private readonly deps: EngineDeps;
  private readonly running = new Map<string, Promise<RunResult>>();
  /** One controller per run in progress: aborting it stops the run at its next wait or effect. */
  private readonly controllers = new Map<string, AbortController>();
  private readonly releasing = new Set<Promise<void>>();
  private readonly log: Logger | undefined;

  constructor(deps: EngineDeps) {
    this.deps = deps;
    this.config = { ...defaultEngineConfig, ...deps.config };
    this.log = deps.logger?.child({ component: 'remediate' });
  }

  /** Resumes every claimed, unfinished incident (after a restart or on gaining the lease). */
  start(): string[] {
    // Incidents that ended while the process stopped before taking its do-not-disrupt annotation off.
    const since = this.deps.clock.now() - releaseLookbackMs;
    for (const id of pendingReleases(this.deps.incidents, this.deps.steps, since)) {
      const p = this.release(id).finally(() => this.releasing.delete(p));
      this.releasing.add(p);
    }
    const ids = this.deps.incidents
      .list({ open: true })
      .filter((i) => isWorking(i.state))
      .map((i) => i.id);
    for (const id of ids) {
      this.run(id).catch((error: unknown) =>
        this.log?.error({ err: error, incidentId: id }, 'remediation run crashed'),
      );
    }
    return ids;
  }

  /** Ids of the runs in progress in this process. */
  active(): string[] {
    return [...this.running.keys()];
  }

  /** Resolves once no run is in progress (for shutdown and tests). */
  async whenIdle(): Promise<void> {
    while (this.running.size > 0 || this.releasing.size > 0)
      await Promise.allSettled([...this.running.values(), ...this.releasing]);
  }

  /**
   * Stops every run in progress (leadership lost, process stopping): drains stop evicting, waits stop
   * waiting, and each interrupted step keeps its `started` row, so the next leader resumes from the journal.
   * Resolves once the runs have returned.
   */
  async abort(reason = 'stopped acting'): Promise<void> {
    const runs = [...this.running.values()];
    for (const c of this.controllers.values()) if (!c.signal.aborted) c.abort(new RunAborted(reason));
    await Promise.allSettled(runs);
  }

  run(incidentId: string): Promise<RunResult> {
    const existing = this.running.get(incidentId);
    if (existing) {
      // Leadership lost and regained before the aborted run wound down: resume once it has.
      if (this.controllers.get(incidentId)?.signal.aborted) return existing.then(() => this.run(incidentId));
      return Promise.resolve({ incidentId, state: undefined, stopped: 'already_running' });
    }
    const controller = new AbortController();
    const promise = this.execute(incidentId, controller.signal)
      .then(async (result) => {
        // Whatever the end, the node is no longer under repair: Karpenter may disrupt it again. An aborted run
        // has not ended: the next leader resumes it under the same annotation.
        if (result.stopped !== 'aborted') await this.release(incidentId);
        return result;
      })
      .finally(() => {
        this.running.delete(incidentId);
        this.controllers.delete(incidentId);
      });
    this.running.set(incidentId, promise);
    this.controllers.set(incidentId, controller);
    return promise;
  }

  private async execute(id: string, signal: AbortSignal): Promise<RunResult> {
    const { incidents, steps, clock } = this.deps;
    const first = incidents.get(id);
    if (!first) return { incidentId: id, state: undefined, stopped: 'not_found' };
    if (!isWorking(first.state)) return { incidentId: id, state: first.state, stopped: 'not_claimed' };
    const plan = readPlan(steps.lastOf(id, PlanStep), first, this.config.dryRun);
    const runStartedAt = steps.lastOf(id, PlanStep)?.startedAt ?? clock.now();

    const diagnose = this.config.postRepairDiag !== undefined;
    for (const step of planSteps(plan.action, { diagnose })) {
      const incident = incidents.get(id);
      if (!incident) return { incidentId: id, state: undefined, stopped: 'not_found' };
      if (!isOpen(incident.state)) return { incidentId: id, state: incident.state };
      if (this.deps.isLeader && !this.deps.isLeader()) {
        this.log?.warn({ incidentId: id, step }, 'not the leader: stopped acting');
        return { incidentId: id, state: incident.state, stopped: 'not_leader' };
      }
      if (signal.aborted) return this.aborted(incident, step, signal);
      const last = steps.lastOf(id, step);
      if (last && (last.status === 'done' || last.status === 'skipped')) continue;

      let stop: string | undefined;
      try {
        stop = await stopReason(this.deps, incident, plan);
      } catch (error) {
        if (signal.aborted) return this.aborted(incident, step, signal);
        // The node could not be read (the API's retries ran out): say so and stop; never act blind.
        const message = error instanceof Error ? error.message : String(error);
        const reason = `gpu-medic could not read ${incident.node} before ${step} (${message}); the node is left as it is.`;
        return this.end(incident, plan, 'failed', reason, runStartedAt, last);
      }
      if (stop) return this.end(incident, plan, 'cancelled', stop, runStartedAt, last);
      // The guard's read may outlast the lease: an aborted run changes nothing more.
      if (signal.aborted) return this.aborted(incident, step, signal);

      if (step === 'resolve') {
        const onDemand = steps.lastOf(id, 'wait_replacement')?.detail.onDemand === true;
        const reason = plan.dryRun
          ? 'dry run: every step reported, nothing was changed'
          : onDemand
            ? ON_DEMAND_REASON
            : `${plan.action} done`;
        return this.end(
          incident,
          plan,
          'resolved',
          reason,
          runStartedAt,
          undefined,
          onDemand ? { onDemand } : {},
        );
      }
      // A crash between finishing the drain row and recording `drained` leaves the state one behind.
      if (incident.state === 'draining' && step !== 'drain' && !this.move(incident, 'drained')) {
        return { incidentId: id, state: incidents.get(id)?.state, stopped: 'superseded' };
      }
      if (!this.move(incident, stepState[step])) {
        return { incidentId: id, state: incidents.get(id)?.state, stopped: 'superseded' };
      }

      const outcome = await this.attempt(step, incident, plan, signal);
      if (outcome === 'aborted') return this.aborted(incident, step, signal);
      const row = steps.lastOf(id, step);
      if (outcome.kind === 'end') {
        return this.end(incident, plan, outcome.state, outcome.reason, runStartedAt, row, outcome.detail);
      }
      const finishedAt = clock.now();
      const startedAt = row?.status === 'started' ? row.startedAt : finishedAt;
      if (row?.status === 'started') {
        steps.finish(
          row.id,
          'done',
          { ...outcome.detail, ...(plan.dryRun ? { dryRun: true } : {}) },
          finishedAt,
        );
      } else {
        // A step with nothing to bracket (e.g. nothing to do): record it anyway, so a resume skips it.
        const r = steps.begin(id, step, { ...(plan.dryRun ? { dryRun: true } : {}) }, finishedAt);
        steps.finish(r.id, 'done', outcome.detail, finishedAt);
      }
      const after = stepDoneState[step];
      const current = incidents.get(id);
      if (after && current && !this.move(current, after)) {
        return { incidentId: id, state: incidents.get(id)?.state, stopped: 'superseded' };
      }
      if (outcome.progress) {
        this.publish(
          incident,
          plan,
          outcome.progress,
          after ?? stepState[step],
          finishedAt,
          finishedAt - startedAt,
        );
      }
      this.deps.audit.append({
        at: finishedAt,
        actor: plan.actor,
        action: `remediate.${step}`,
        node: incident.node,
        incidentId: id,
        reason: plan.reason,
        result: plan.dryRun ? 'dry_run' : 'done',
        details: outcome.detail,
      });
    }
    const final = incidents.get(id);
    return { incidentId: id, state: final?.state };
  }

  /** Removes the `karpenter.sh/do-not-disrupt` annotation gpu-medic put on an ended incident's node. */
  private async release(incidentId: string): Promise<void> {
    if (this.deps.isLeader && !this.deps.isLeader()) return;
    const { cluster, steps, incidents, clock } = this.deps;
    await releaseDisruptionGuard({ cluster, steps, incidents, now: () => clock.now() }, incidentId, this.log);
  }

  /** Left as it is: the `started` row and the incident state are what the next leader resumes from. */
  private aborted(incident: Incident, step: StepName, signal: AbortSignal): RunResult {
    const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
    this.log?.warn(
      { incidentId: incident.id, step, reason },
      'remediation run aborted; left for the next leader',
    );
    return {
      incidentId: incident.id,
      state: this.deps.incidents.get(incident.id)?.state,
      stopped: 'aborted',
    };
  }

  private async attempt(
    step: StepName,
    incident: Incident,
    plan: RunPlan,
    signal: AbortSignal,
  ): Promise<StepOutcome | 'aborted'> {
    const { steps, clock } = this.deps;
    for (let attempt = 1; ; attempt++) {
      const last = steps.lastOf(incident.id, step);
      const resumed = last?.status === 'started' ? last : undefined;
      const ctx: StepContext = {
        incident,
        plan,
        resumed,
        config: this.config,
        deps: this.deps,
        begin: (detail) =>
          resumed ??
          steps.begin(
            incident.id,
            step,
            { ...detail, ...(plan.dryRun ? { dryRun: true } : {}) },
            clock.now(),
          ),
        doneDetail: (name) => {
          const row = steps.lastOf(incident.id, name);
          return row?.status === 'done' ? row.detail : undefined;
        },
        rowOf: (name) => steps.lastOf(incident.id, name),
        publish: (told, elapsedMs) =>
          this.publish(incident, plan, told, stepState[step], clock.now(), elapsedMs),
        humanUncordoned: () => humanUncordoned(this.deps, incident, plan),
        signal,
      };
      try {
        return await runStep(step, ctx);
      } catch (error) {
        // Whatever failed after the abort (often the abort itself) is not this step's failure.
        if (signal.aborted) return 'aborted';
        const message = error instanceof Error ? error.message : String(error);
        this.log?.warn({ incidentId: incident.id, step, attempt, err: error }, 'remediation step failed');
        if (!isRetryable(error)) {
          // Trying again cannot help (a missing permission, an instance that is gone): say so once, in the
          // adapter's words (the thread line already names the stage).
          return { kind: 'end', state: 'failed', reason: message };
        }
        if (attempt >= this.config.maxStepAttempts) {
          return {
            kind: 'end',
            state: 'failed',
            reason: `${step} failed after ${attempt} attempts: ${message}`,
          };
        }
        await clock.sleep(
          backoffDelay(attempt - 1, { baseMs: RETRY_BASE_MS, capMs: this.config.maxBackoffMs }),
          signal,
        );
        if (signal.aborted) return 'aborted';
      }
    }
  }

  private move(incident: Incident, to: IncidentState): boolean {
    const current = this.deps.incidents.get(incident.id);
    if (!current) return false;
    if (current.state === to) return true;
    if (!canTransition(current.state, to)) {
      this.log?.error({ incidentId: incident.id, from: current.state, to }, 'invalid incident transition');
      return false;
    }
    return this.deps.incidents.transition(incident.id, [current.state], to);
  }

  private end(
    incident: Incident,
    plan: RunPlan,
    state: 'resolved' | 'escalated' | 'failed' | 'cancelled',
    reason: string,
    runStartedAt: number,
    row: StepRow | undefined,
    detail: JournalDetail = {},
  ): RunResult {
    const { steps, incidents, clock } = this.deps;
    const at = clock.now();
    if (row?.status === 'started')
      steps.finish(row.id, state === 'cancelled' ? 'skipped' : 'failed', { ...detail, reason }, at);
    const current = incidents.get(incident.id);
    if (!current || !isOpen(current.state)) return { incidentId: incident.id, state: current?.state };
    if (state === 'escalated' && detail.escalateTo !== undefined) {
      // On record before the state change: a follow-up lost to a crash is found again at start-up.
      const mark = steps.begin(incident.id, 'escalate', { to: detail.escalateTo, reason }, at);
      steps.finish(mark.id, 'done', {}, at);
    }
    if (!incidents.transition(incident.id, [current.state], state, reason)) {
      return { incidentId: incident.id, state: incidents.get(incident.id)?.state, stopped: 'superseded' };
    }
    const told = endEvent(state, reason, current.state, plan, detail);
    this.publish(incident, plan, told, state, at, at - runStartedAt);
    this.deps.audit.append({
      at,
      actor: plan.actor,
      action: `remediate.${plan.action}`,
      node: incident.node,
      incidentId: incident.id,
      reason: plan.reason,
      result: `${state}: ${reason}`,
      details: { dryRun: plan.dryRun, ...detail },
    });
    const level = state === 'resolved' ? 'info' : 'warn';
    this.log?.[level]({ incidentId: incident.id, node: incident.node, state, reason }, 'remediation ended');
    return { incidentId: incident.id, state };
  }

  private publish(
    incident: Incident,
    plan: RunPlan,
    told: StepDetails,
    state: IncidentState,
    at: number,
    elapsedMs?: number,
  ): void {
    const base = {
      incidentId: incident.id,
      node: incident.node,
      state,
      at,
      actor: plan.actor,
      ...(elapsedMs !== undefined ? { elapsedMs } : {}),
      ...(plan.dryRun ? { dryRun: true } : {}),
    };
    this.deps.bus.publish(progressEvent(base, told));
  }
}
