/**
 * Starting a remediation, or refusing to. Two doors: `requestManual` for a person (Slack, the CLI, an
 * approval), authorized and never automatic; `startAuto` for the monitor's own path (triage, a deferral
 * that EKS did not take), which the facade does not expose, so no chat surface can claim an automatic
 * trigger. Both go through the same checks, in order: the action, the node, the incident, whether the node
 * is free, the safety limits; then the claim and the launch.
 */
import { hasGpus } from '../domain/gpu-count.js';
import type { Incident, RemediationAction } from '../domain/incident.js';
import { isWorking, PendingStates, RemediationActions } from '../domain/incident.js';
import { type GpuNode, isOptedOut } from '../domain/node.js';
import { refused, type ServiceResult } from '../domain/service-result.js';
import type { Brakes } from './breaker.js';
import { activeDeferral } from './deferral-state.js';
import { rebootUnavailableReason } from './node-kind.js';
import type { RunPlan } from './ports.js';
import { checkSafety } from './safety.js';
import type { AuditContext, ServiceKit } from './service-kit.js';
import { taken } from './service-kit.js';
import { claimState, PlanStep } from './state-machine.js';

export type Trigger = 'auto' | 'manual';
type ActingAction = Exclude<RemediationAction, 'none'>;

/** One request as it goes through the checks. */
interface Request {
  action: ActingAction;
  node: string;
  actor: string;
  reason: string;
  trigger: Trigger;
  incidentId?: string;
  /** Evict around a PDB after the drain timeout (a policy rule said so). */
  force?: boolean;
  /** reset: the GPU a person named. */
  gpu?: number;
}

/** A check either passes (with what it found) or ends the request with a refusal. */
type Checked<T> = { ok: true; value: T } | { ok: false; result: ServiceResult };
const pass = <T>(value: T): Checked<T> => ({ ok: true, value });
const stop = (result: ServiceResult): Checked<never> => ({ ok: false, result });

export class Requests {
  constructor(
    private readonly kit: ServiceKit,
    private readonly brakes: Brakes,
  ) {}

  /** A person asks for an action on a node; with `incidentId`, on that incident (an approval). */
  requestManual(
    action: RemediationAction,
    node: string,
    actor: string,
    reason: string,
    options: { incidentId?: string; gpu?: number } = {},
  ): Promise<ServiceResult> {
    return this.start(action, { node, actor, reason, trigger: 'manual', ...options });
  }

  /** The monitor starts what the policy chose on its own. Not reachable from a chat surface. */
  startAuto(
    action: RemediationAction,
    node: string,
    reason: string,
    options: { incidentId: string; force?: boolean },
  ): Promise<ServiceResult> {
    return this.start(action, { node, actor: 'monitor', reason, trigger: 'auto', ...options });
  }

  /** Puts an incident to a human (the approve buttons): the policy wants approval, or a limit held it back. */
  askHuman(incident: Incident, action: RemediationAction, reason: string): ServiceResult {
    if (!this.kit.deps.incidents.transition(incident.id, ['detected'], 'awaiting_approval', reason)) {
      return taken(this.kit.deps.incidents.get(incident.id));
    }
    this.kit.publish(
      incident,
      incident.node,
      { step: 'approval_needed', details: { action, reason } },
      'monitor',
    );
    return {
      ok: true,
      incidentId: incident.id,
      outcome: { kind: 'awaiting_approval', action, node: incident.node, reason },
    };
  }

  private async start(action: RemediationAction, rest: Omit<Request, 'action'>): Promise<ServiceResult> {
    const ctx: AuditContext = { node: rest.node, reason: rest.reason };
    const auditAs = `request.${action}`;
    if (!RemediationActions.includes(action) || action === 'none') {
      const refusal = refused('invalid', { reason: 'unknown_action', action: String(action) });
      return this.kit.audited(rest.actor, auditAs, refusal, ctx);
    }
    const req: Request = { action, ...rest };
    return this.kit.guarded(req.actor, action, ctx, (c) => this.checkAndStart(req, c), {
      auditAs,
      authorize: req.trigger === 'manual',
    });
  }

  private async checkAndStart(req: Request, ctx: AuditContext): Promise<ServiceResult> {
    const node = await this.checkNode(req);
    if (!node.ok) return node.result;
    ctx.incidentId = req.incidentId;
    const gpuNodeCount =
      req.trigger === 'auto' ? (await this.kit.deps.cluster.listNodes()).filter(hasGpus).length : 0;

    // From here to the claim there is no await: a check and its compare-and-set cannot interleave with another.
    const now = this.kit.deps.clock.now();
    const incident = this.checkIncident(req);
    if (!incident.ok) return incident.result;
    const free = this.checkNodeFree(req);
    if (!free.ok) return free.result;
    const safe = this.checkLimits(req, node.value, incident.value, now, gpuNodeCount);
    if (!safe.ok) return safe.result;
    const claimed = this.claim(req, node.value, incident.value, now);
    if (!claimed.ok) return claimed.result;
    ctx.incidentId = claimed.value.id;
    return this.launch(req, claimed.value, now);
  }

  /** The node exists, has GPUs, and can take the action. */
  private async checkNode(req: Request): Promise<Checked<GpuNode>> {
    const node = await this.kit.deps.cluster.getNode(req.node);
    if (!node) return stop(refused('not_found', { reason: 'no_node', node: req.node }));
    if (!hasGpus(node)) {
      return stop(refused('not_gpu', { reason: 'not_gpu', node: req.node, action: req.action }));
    }
    const noReboot = req.action === 'reboot' ? rebootUnavailableReason(node) : undefined;
    if (noReboot)
      return stop(refused('invalid', { reason: 'cannot_reboot', node: req.node, says: noReboot }));
    return pass(node);
  }

  /** The incident acted on (an approval), still waiting, and about this node. */
  private checkIncident(req: Request): Checked<Incident | undefined> {
    if (!req.incidentId) return pass(undefined);
    const incident = this.kit.deps.incidents.get(req.incidentId);
    if (!incident) return stop(refused('not_found', { reason: 'no_incident', incidentId: req.incidentId }));
    if (incident.node !== req.node) {
      return stop(
        refused('invalid', {
          reason: 'other_node',
          incidentId: incident.id,
          incidentNode: incident.node,
          node: req.node,
        }),
      );
    }
    if (!PendingStates.includes(incident.state)) return stop(taken(incident));
    return pass(incident);
  }

  /** No run and no EKS node auto repair holds the node. */
  private checkNodeFree(req: Request): Checked<true> {
    const working = this.kit.deps.incidents
      .list({ node: req.node, open: true })
      .find((i) => isWorking(i.state));
    if (working) return stop(taken(working));
    const deferral = activeDeferral(this.kit.deps, req.node);
    if (deferral) return stop(refused('busy', { reason: 'auto_repair', deferral }));
    return pass(true);
  }

  /** Exclusions, the opt-out label, the breaker and pause, the rate and concurrency limits. */
  private checkLimits(
    req: Request,
    node: GpuNode,
    incident: Incident | undefined,
    now: number,
    gpuNodeCount: number,
  ): Checked<true> {
    const { incidents, exclusions } = this.kit.deps;
    const { safety } = this.kit;
    const excluded = exclusions.get(req.node, now);
    const optOut = isOptedOut(node);
    if (req.trigger === 'auto' && !excluded && !optOut) this.brakes.tripIfNeeded(now, gpuNodeCount);
    const verdict = checkSafety({
      trigger: req.trigger,
      action: req.action,
      node: req.node,
      inFlight: incidents.list({ open: true }).filter((i) => isWorking(i.state)).length,
      maxConcurrent: safety.maxConcurrent,
      recentRemediations: this.brakes.recentStarts(now),
      perHour: safety.perHour,
      now,
      breakerOpen: this.brakes.breaker().open || this.brakes.paused().open,
      dryRun: safety.dryRun,
      excluded,
      optOutLabel: optOut,
    });
    if (verdict.allowed) return pass(true);
    if (verdict.limit === 'excluded' && excluded) {
      this.kit.publish(
        incident,
        req.node,
        {
          step: 'excluded',
          details: {
            reason: excluded.reason,
            by: excluded.createdBy,
            action: req.action,
            ...(excluded.expiresAt !== undefined ? { until: excluded.expiresAt } : {}),
          },
        },
        req.actor,
      );
    } else {
      const told = this.brakes.limitDetails(verdict.limit, req.action, verdict.message, now, gpuNodeCount);
      this.kit.publish(incident, req.node, { step: 'safety_limit', details: told }, req.actor);
    }
    const code = verdict.limit === 'excluded' || verdict.limit === 'opt_out' ? 'excluded' : 'limited';
    return stop(refused(code, { reason: 'safety', limit: verdict.limit, says: verdict.message }));
  }

  /** Opens a manual incident (or takes the approved one) and moves it into its first working state. */
  private claim(req: Request, node: GpuNode, found: Incident | undefined, now: number): Checked<Incident> {
    const { incidents } = this.kit.deps;
    const target = claimState(req.action);
    if (!target) return stop(refused('invalid', { reason: 'no_plan', action: req.action }));
    let incident = found;
    if (!incident) {
      incident = incidents.create(manualIncident(node, req, now));
    } else if (incident.plannedAction !== req.action) {
      incidents.update(incident.id, { plannedAction: req.action });
    }
    const by = req.trigger === 'manual' ? `${req.actor}: ${req.reason}` : req.reason;
    if (!incidents.transition(incident.id, PendingStates, target, by)) {
      return stop(taken(incidents.get(incident.id)));
    }
    return pass(incident);
  }

  /** Records the plan, counts the start, tells the thread, and hands the run to the engine. */
  private launch(req: Request, incident: Incident, now: number): ServiceResult {
    const { steps, engine } = this.kit.deps;
    const { dryRun } = this.kit.safety;
    const plan: RunPlan = {
      action: req.action,
      actor: req.actor,
      trigger: req.trigger,
      reason: req.reason,
      force: req.force === true,
      dryRun,
      ...(req.gpu !== undefined ? { gpu: req.gpu } : {}),
    };
    const row = steps.begin(incident.id, PlanStep, { ...plan }, now);
    steps.finish(row.id, 'done', {}, now);
    if (!dryRun) this.brakes.recordStart(now);
    if (req.trigger === 'manual') {
      this.kit.publish(
        incident,
        req.node,
        {
          step: 'approved',
          details: {
            action: req.action,
            mode: 'manual',
            reason: req.reason,
          },
        },
        req.actor,
      );
    } else {
      this.kit.publish(
        incident,
        req.node,
        {
          step: 'policy',
          details: {
            action: req.action,
            mode: 'auto',
            reason: req.reason,
          },
        },
        req.actor,
      );
    }
    engine.run(incident.id).catch((error: unknown) => {
      this.kit.log?.error({ err: error, incidentId: incident.id }, 'remediation run crashed');
    });
    return {
      ok: true,
      incidentId: incident.id,
      ...(dryRun ? { dryRun: true } : {}),
      outcome: {
        kind: 'started',
        action: req.action,
        node: req.node,
        incidentId: incident.id,
        actor: req.actor,
        reason: req.reason,
        dryRun,
      },
    };
  }
}

function manualIncident(node: GpuNode, req: Request, now: number) {
  return {
    node: node.name,
    ...(node.instanceId ? { instanceId: node.instanceId } : {}),
    ...(node.instanceType ? { instanceType: node.instanceType } : {}),
    ...(node.nodeGroup ? { nodeGroup: node.nodeGroup } : {}),
    faultKey: `manual:${req.action}:${now}`,
    category: 'MANUAL',
    severity: 'info' as const,
    recommendedAction: 'none' as const,
    plannedAction: req.action,
    mode: 'approve' as const,
    explanation: `${req.action} requested by ${req.actor}: ${req.reason}`,
    source: 'rules' as const,
    evidence: [],
    state: 'detected' as const,
    preexisting: false,
    firstSeen: now,
    lastSeen: now,
    count: 1,
  };
}
