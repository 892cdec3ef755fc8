/**
 * The remediation engine: runs an incident's step plan as a persisted state machine (DESIGN §5).
 * Each step writes a `started` row before its external effect and a `done` row after it; a run that
 * resumes after a crash skips done steps and lets each step check the real world before repeating itself.
 */
import type { Logger } from 'pino';
import { type ProgressBus, progressEvent, type StepDetails, type StepDetailsOf } from '../domain/events.js';
import type { Incident, IncidentState } from '../domain/incident.js';
import { isOpen } from '../domain/incident.js';
import type { JournalDetail } from './journal.js';
import { pendingReleases, releaseDisruptionGuard } from './karpenter.js';
import type {
  AuditLog,
  Clock,
  CloudPort,
  ClusterPort,
  ExclusionStore,
  HealthCheckPort,
  IncidentStore,
  RunPlan,
  StepRow,
  StepStore,
} from './ports.js';
import { isRetryable } from './ports.js';
import {
  canTransition,
  isWorking,
  PlanStep,
  planSteps,
  type StepName,
  stepDoneState,
  stepState,
} from './state-machine.js';
import { runStep, type StepContext, type StepOutcome } from './steps.js';

/** How the end of a Karpenter / Auto Mode replace with nothing pending reads (thread, incident, audit). */
export const ON_DEMAND_REASON = 'replaced — the pool provisions on demand (no pod is waiting for a GPU node)';
/** How far back a start looks for ended incidents whose do-not-disrupt annotation is still on. */
const releaseLookbackMs = 7 * 24 * 3_600_000;

export interface EngineConfig {
  dryRun: boolean;
  /** DRAIN_TIMEOUT: how long a PDB may block eviction before a human is asked. */
  drainTimeoutMs: number;
  /** How long to wait for a new boot ID and Ready after a reboot. */
  rebootTimeoutMs: number;
  /**
   * After a crash between "reboot started" and "reboot done", how long to watch for the reboot to show
   * (NotReady or a new boot ID) before concluding the call never reached EC2 and issuing it again.
   */
  rebootGraceMs: number;
  replaceTimeoutMs: number;
  /**
   * GPU_SETTLE_TIMEOUT: after a reboot (or on a replacement node), how long the settle gate waits for the GPUs
   * to be allocatable, a GPU agent pod Ready on the new boot and a complete scan (settle.ts).
   */
  settleTimeoutMs: number;
  /** How long to follow a training job after the node is back before reporting it is not running. */
  jobTimeoutMs: number;
  pollMs: number;
  /** Cap of the PDB retry backoff. */
  maxBackoffMs: number;
  /** Attempts of a step whose port call throws, before the incident fails. */
  maxStepAttempts: number;
  optOutLabel: string;
}

export const defaultEngineConfig: EngineConfig = {
  dryRun: false,
  drainTimeoutMs: 15 * 60_000,
  rebootTimeoutMs: 20 * 60_000,
  rebootGraceMs: 2 * 60_000,
  replaceTimeoutMs: 30 * 60_000,
  settleTimeoutMs: 15 * 60_000,
  jobTimeoutMs: 30 * 60_000,
  pollMs: 10_000,
  maxBackoffMs: 30_000,
  maxStepAttempts: 3,
  optOutLabel: 'gpu-medic.io/exclude',
};

export interface EngineDeps {
  cluster: ClusterPort;
  cloud: CloudPort;
  health: HealthCheckPort;
  incidents: IncidentStore;
  steps: StepStore;
  exclusions: ExclusionStore;
  audit: AuditLog;
  clock: Clock;
  bus: ProgressBus;
  /** Only the Lease holder acts; checked before every step. */
  isLeader?: () => boolean;
  config?: Partial<EngineConfig>;
  logger?: Logger;
}

export interface RunResult {
  incidentId: string;
  state: IncidentState | undefined;
  /** Why the run stopped without reaching an end state. */
  stopped?: 'not_leader' | 'already_running' | 'not_found' | 'not_claimed' | 'superseded' | 'aborted';
}

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

    for (const step of planSteps(plan.action)) {
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
        stop = await this.guard(incident, plan);
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
    let backoff = 1_000;
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
        humanUncordoned: () => this.humanUncordoned(incident, plan),
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
        await clock.sleep(backoff, signal);
        if (signal.aborted) return 'aborted';
        backoff = Math.min(backoff * 2, this.config.maxBackoffMs);
      }
    }
  }

  /** A reason to stop touching the node, or undefined. */
  private async guard(incident: Incident, plan: RunPlan): Promise<string | undefined> {
    const { exclusions, clock, cluster } = this.deps;
    const exclusion = exclusions.get(incident.node, clock.now());
    if (exclusion) {
      return `${incident.node} was excluded by ${exclusion.createdBy} (${exclusion.reason}): gpu-medic stopped and left it as it is.`;
    }
    const node = await cluster.getNode(incident.node);
    if (node?.labels[this.config.optOutLabel] === 'true') {
      return `${incident.node} got the opt-out label ${this.config.optOutLabel}=true: gpu-medic stopped and left it as it is.`;
    }
    return this.humanUncordoned(incident, plan, node);
  }

  /**
   * Someone made the node schedulable while we hold it cordoned: they know something we do not, so we stop.
   * Only between our own cordon and our own uncordon, and never once the node is being replaced.
   */
  private async humanUncordoned(
    incident: Incident,
    plan: RunPlan,
    known?: Awaited<ReturnType<ClusterPort['getNode']>>,
  ): Promise<string | undefined> {
    if (plan.dryRun || plan.action === 'uncordon') return undefined;
    const { steps, cluster } = this.deps;
    const cordon = steps.lastOf(incident.id, 'cordon');
    if (cordon?.status !== 'done' || cordon.detail.cordonedByUs !== true) return undefined;
    if (steps.lastOf(incident.id, 'uncordon') || steps.lastOf(incident.id, 'replace')) return undefined;
    const node = known ?? (await cluster.getNode(incident.node));
    if (node && !node.unschedulable) {
      return `${incident.node} was uncordoned by someone else while gpu-medic worked on it: remediation cancelled.`;
    }
    return undefined;
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
    if (state === 'escalated' && detail.escalateTo === 'replace') {
      // On record before the state change: a follow-up lost to a crash is found again at start-up.
      const mark = steps.begin(incident.id, 'escalate', { to: 'replace', reason }, at);
      steps.finish(mark.id, 'done', {}, at);
    }
    if (!incidents.transition(incident.id, [current.state], state, reason)) {
      return { incidentId: incident.id, state: incidents.get(incident.id)?.state, stopped: 'superseded' };
    }
    const told: StepDetailsOf<typeof state> =
      state === 'failed'
        ? { step: state, details: { reason, stage: current.state } }
        : state === 'escalated'
          ? { step: state, details: { reason, to: detail.escalateTo === 'replace' ? 'replace' : 'human' } }
          : state === 'resolved'
            ? {
                step: state,
                details: {
                  reason,
                  action: plan.action,
                  ...(detail.onDemand === true ? { onDemand: true } : {}),
                },
              }
            : { step: state, details: { reason } };
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

/** Why a run's signal fired. */
export class RunAborted extends Error {
  override readonly name = 'RunAborted';
}

/** The plan row the services wrote; an incident claimed without one (crash in between) runs its planned action. */
export function readPlan(row: StepRow | undefined, incident: Incident, dryRun: boolean): RunPlan {
  const d = row?.detail ?? {};
  return {
    action: d.action ?? incident.plannedAction,
    actor: d.actor ?? 'monitor',
    trigger: d.trigger ?? 'auto',
    reason: d.reason ?? incident.stateReason ?? incident.explanation,
    force: d.force ?? false,
    dryRun: d.dryRun ?? dryRun,
  };
}
