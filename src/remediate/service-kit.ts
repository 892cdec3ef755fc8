/**
 * What every remediation service shares: its dependencies, the safety configuration, and the two habits of
 * the layer: publish a progress event for an incident, and audit every answer. `guarded` runs a call
 * through authorize → deny → audit, so no entry point can forget one of the three.
 */
import type { Logger } from 'pino';
import { type ProgressBus, progressEvent, type StepDetails } from '../domain/events.js';
import type { Incident } from '../domain/incident.js';
import type { Policy } from '../domain/policy.js';
import {
  type IncidentBrief,
  refused,
  type ServiceAction,
  type ServiceResult,
} from '../domain/service-result.js';
import type { AutoRepairMode } from './auto-repair.js';
import type {
  AuditLog,
  AutoRepairPort,
  Clock,
  ClusterPort,
  DiagPort,
  ExclusionStore,
  IncidentStore,
  KvStore,
  StepStore,
} from './ports.js';

/** The Slack layer resolves the actor (allow-list, user group) and answers here; read-only calls skip it. */
export type Authorize = (actor: string, action: ServiceAction) => boolean | Promise<boolean>;

/** Starts a claimed run; the engine in production (RemediationEngine.run). */
export interface RunStarter {
  run(incidentId: string): Promise<unknown>;
}

export interface SafetyConfig {
  dryRun: boolean;
  maxConcurrent: number;
  perHour: number;
  maxUnhealthyPercent: number;
  maxUnhealthyNodes?: number;
  /** Window in which unhealthy / cordoned-by-us nodes count toward the breaker. */
  breakerWindowMs: number;
}

export const defaultSafetyConfig: SafetyConfig = {
  dryRun: false,
  maxConcurrent: 1,
  perHour: 5,
  maxUnhealthyPercent: 20,
  breakerWindowMs: 10 * 60_000,
};

/** How the services share nodes with EKS node auto repair (auto-repair.ts). */
export interface AutoRepairOptions {
  mode: AutoRepairMode;
  /** DescribeNodegroup reader (detect mode); without it, a node group's setting counts as unknown. */
  port?: AutoRepairPort;
  /** EKS_AUTO_REPAIR_WINDOW; default: the condition's documented wait plus AUTO_REPAIR_GRACE_MS. */
  windowMs?: number;
  /** How often a deferred node is looked at. */
  pollMs?: number;
}

export interface ServiceDeps {
  cluster: ClusterPort;
  incidents: IncidentStore;
  steps: StepStore;
  exclusions: ExclusionStore;
  audit: AuditLog;
  kv: KvStore;
  clock: Clock;
  bus: ProgressBus;
  engine: RunStarter;
  policy: Policy;
  authorize: Authorize;
  safety?: Partial<SafetyConfig>;
  autoRepair?: AutoRepairOptions;
  /** DCGM diagnostics on demand (`/gpu diag`, the alert's button). */
  diag?: DiagPort;
  logger?: Logger;
}

/** What an audit row says about the call besides its result; filled in as the call learns it. */
export interface AuditContext {
  node?: string;
  incidentId?: string;
  reason?: string;
}

/** The refusal when the actor may not do this (the call is audited as denied and goes no further). */
export const denied = (action: ServiceAction): ServiceResult =>
  refused('denied', { reason: 'denied', action });

export class ServiceKit {
  readonly deps: ServiceDeps;
  readonly safety: SafetyConfig;
  readonly log: Logger | undefined;

  constructor(deps: ServiceDeps) {
    this.deps = deps;
    this.safety = { ...defaultSafetyConfig, ...deps.safety };
    this.log = deps.logger?.child({ component: 'services' });
  }

  /**
   * Authorize (unless `authorize` is false: the monitor's own path), run the body, audit whatever it
   * answers under `auditAs` with the context the body filled in.
   */
  async guarded(
    actor: string,
    action: ServiceAction,
    ctx: AuditContext,
    body: (ctx: AuditContext) => ServiceResult | Promise<ServiceResult>,
    options: { auditAs?: string; authorize?: boolean } = {},
  ): Promise<ServiceResult> {
    const auditAs = options.auditAs ?? action;
    if (options.authorize !== false && !(await this.deps.authorize(actor, action))) {
      return this.audited(actor, auditAs, denied(action), ctx);
    }
    return this.audited(actor, auditAs, await body(ctx), ctx);
  }

  audited(actor: string, action: string, result: ServiceResult, ctx: AuditContext): ServiceResult {
    this.deps.audit.append({
      at: this.deps.clock.now(),
      actor,
      action,
      ...(ctx.node !== undefined ? { node: ctx.node } : {}),
      ...(ctx.incidentId !== undefined ? { incidentId: ctx.incidentId } : {}),
      ...(ctx.reason !== undefined ? { reason: ctx.reason } : {}),
      result: result.ok ? 'ok' : result.code,
      details: result.ok ? { outcome: result.outcome } : { refusal: result.refusal },
    });
    if (!result.ok) this.log?.info({ actor, action, code: result.code, ...ctx }, 'request refused');
    return result;
  }

  /** A progress event for an incident: `told` is a step with its details, written as a literal. */
  publish(
    incident: Incident | undefined,
    node: string,
    told: StepDetails,
    actor: string,
    elapsedMs?: number,
  ): void {
    const base = {
      incidentId: incident?.id ?? '',
      node,
      state: incident ? (this.deps.incidents.get(incident.id)?.state ?? incident.state) : 'detected',
      at: this.deps.clock.now(),
      actor,
      ...(elapsedMs !== undefined ? { elapsedMs } : {}),
      ...(this.safety.dryRun ? { dryRun: true } : {}),
    } as const;
    this.deps.bus.publish(progressEvent(base, told));
  }
}

/** The brief of an incident a refusal names. */
export function briefOf(incident: Incident): IncidentBrief {
  return {
    id: incident.id,
    node: incident.node,
    state: incident.state,
    plannedAction: incident.plannedAction,
    ...(incident.stateReason ? { stateReason: incident.stateReason } : {}),
  };
}

/** Refused because another run, a human or a final state holds the incident. */
export function taken(incident: Incident | undefined, cancelInstead = false): ServiceResult {
  return refused('busy', {
    reason: 'taken',
    ...(incident ? { incident: briefOf(incident) } : {}),
    ...(cancelInstead ? { cancelInstead: true } : {}),
  });
}

/**
 * What a refused automatic start adds to the reason the incident is put to a human with (its state reason
 * and the approval request in the thread): the check's own sentence when it wrote one.
 */
export function refusalClause(result: ServiceResult): string {
  if (result.ok) return '';
  const r = result.refusal;
  switch (r.reason) {
    case 'safety':
    case 'cannot_reboot':
      return r.says;
    case 'auto_repair':
      return `EKS node auto repair is handling ${r.deferral.node}.`;
    case 'taken':
      return r.incident
        ? `Incident ${r.incident.id} holds ${r.incident.node} (${r.incident.state}).`
        : 'Already taken.';
    default:
      return `Refused: ${r.reason}.`;
  }
}
