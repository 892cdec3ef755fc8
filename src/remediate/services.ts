/**
 * The application services: the single entry point for the monitor, Slack buttons, slash commands and the
 * CLI. A thin facade over one module per responsibility:
 *   requests.ts   start a remediation or refuse it (the checks, the claim, the launch)
 *   decisions.ts  approve, cancel, dismiss
 *   exclusions.ts keep gpu-medic away from a node for a while
 *   breaker.ts    the circuit breaker, a human's pause, the hourly rate
 *   triage.ts     the monitor's path: policy decision, follow-up of a reboot that did not cure the fault
 *   deferrals.ts  leaving an incident to EKS node auto repair and reporting what it did
 *   queries.ts    the status read models
 * Every call is checked and audited; answers are structured results (domain/service-result.ts), put into
 * words by the chat layer. A person can only ask for a manual action (`requestManual`): automatic work
 * starts from the monitor's path (`triage`, a deferral EKS did not take), which owns the only way to it.
 */
import type { DiagLevel } from '../domain/diag.js';
import type { RemediationAction } from '../domain/incident.js';
import type {
  BreakerState,
  Deferral,
  NodeStatus,
  ServiceResult,
  StatusReport,
} from '../domain/service-result.js';
import { Brakes } from './breaker.js';
import { Decisions } from './decisions.js';
import { activeDeferral, deferralOf } from './deferral-state.js';
import { Deferrals } from './deferrals.js';
import { Diagnostics, type DiagnosticsResult } from './diagnostics.js';
import { type ExcludeOptions, Exclusions } from './exclusions.js';
import { Queries } from './queries.js';
import { Requests } from './requests.js';
import { type SafetyConfig, type ServiceDeps, ServiceKit } from './service-kit.js';
import { Triage, type TriageResult } from './triage.js';

export type {
  BreakerState,
  Deferral,
  NodeStatus,
  ServiceAction,
  ServiceErrorCode,
  ServiceOutcome,
  ServiceRefusal,
  ServiceResult,
  StatusReport,
} from '../domain/service-result.js';
export { ServiceActions } from '../domain/service-result.js';
export { AutoRepairStep } from './deferral-state.js';
export type { DiagnosticsResult } from './diagnostics.js';
export { defaultExclusionMs, type ExcludeOptions } from './exclusions.js';
export {
  type Authorize,
  type AutoRepairOptions,
  defaultSafetyConfig,
  type RunStarter,
  type SafetyConfig,
  type ServiceDeps,
} from './service-kit.js';
export type { TriageResult } from './triage.js';

export class RemediationServices {
  readonly safety: SafetyConfig;
  private readonly deps: ServiceDeps;
  private readonly brakes: Brakes;
  private readonly requests: Requests;
  private readonly decisions: Decisions;
  private readonly exclusions: Exclusions;
  private readonly deferrals: Deferrals;
  private readonly monitorPath: Triage;
  private readonly queries: Queries;
  private readonly diagnostics: Diagnostics;

  constructor(deps: ServiceDeps) {
    const kit = new ServiceKit(deps);
    this.deps = deps;
    this.safety = kit.safety;
    this.brakes = new Brakes(kit);
    this.requests = new Requests(kit, this.brakes);
    this.decisions = new Decisions(kit, this.requests);
    this.exclusions = new Exclusions(kit);
    this.deferrals = new Deferrals(kit, this.requests);
    this.monitorPath = new Triage(kit, this.requests, this.deferrals);
    this.queries = new Queries(kit, this.brakes);
    this.diagnostics = new Diagnostics(kit);
  }

  /** A DCGM diagnostic of the node now, without cordoning it (resolves when DCGM has answered). */
  runDiagnostics(node: string, level: DiagLevel, actor: string): Promise<DiagnosticsResult> {
    return this.diagnostics.run(node, level, actor);
  }

  // ---- A person's requests and decisions (Slack, the CLI). ----

  /** Start (or refuse) an action a person asked for. With `incidentId`, acts on that incident. */
  requestManual(
    action: RemediationAction,
    node: string,
    actor: string,
    reason: string,
    options: { incidentId?: string; gpu?: number } = {},
  ): Promise<ServiceResult> {
    return this.requests.requestManual(action, node, actor, reason, options);
  }

  approve(incidentId: string, actor: string, action?: RemediationAction): Promise<ServiceResult> {
    return this.decisions.approve(incidentId, actor, action);
  }

  cancel(incidentId: string, actor: string, reason: string): Promise<ServiceResult> {
    return this.decisions.cancel(incidentId, actor, reason);
  }

  dismiss(incidentId: string, actor: string, reason?: string): Promise<ServiceResult> {
    return this.decisions.dismiss(incidentId, actor, reason);
  }

  exclude(node: string, options: ExcludeOptions, actor: string): Promise<ServiceResult> {
    return this.exclusions.exclude(node, options, actor);
  }

  unexclude(node: string, actor: string): Promise<ServiceResult> {
    return this.exclusions.unexclude(node, actor);
  }

  /** Stops automatic remediation (manual actions still run) until `resume`. */
  pause(actor: string, reason?: string): Promise<ServiceResult> {
    return this.brakes.pause(actor, reason);
  }

  /** Closes the circuit breaker and lifts a pause. */
  resume(actor: string): Promise<ServiceResult> {
    return this.brakes.resume(actor);
  }

  // ---- The monitor's path. ----

  triage(incidentId: string): Promise<TriageResult> {
    return this.monitorPath.triage(incidentId);
  }

  followUp(escalatedId: string): Promise<ServiceResult> {
    return this.monitorPath.followUp(escalatedId);
  }

  resumeFollowUps(): Promise<string[]> {
    return this.monitorPath.resumeFollowUps();
  }

  resumeDeferrals(): string[] {
    return this.deferrals.resumeDeferrals();
  }

  stopWatching(): Promise<void> {
    return this.deferrals.stopWatching();
  }

  /** Resolves once no deferral is watched (tests). */
  whenDeferralsSettled(): Promise<void> {
    return this.deferrals.whenDeferralsSettled();
  }

  // ---- Read models. ----

  status(): StatusReport {
    return this.queries.status();
  }

  nodeStatus(node: string): Promise<NodeStatus> {
    return this.queries.nodeStatus(node);
  }

  breaker(): BreakerState {
    return this.brakes.breaker();
  }

  paused(): BreakerState {
    return this.brakes.paused();
  }

  /** The deferral to EKS node auto repair in progress on this node, if any. */
  activeDeferral(node: string): Deferral | undefined {
    return activeDeferral(this.deps, node);
  }

  deferralOf(incidentId: string): Deferral | undefined {
    return deferralOf(this.deps, incidentId);
  }
}
