/**
 * The application services: the single entry point for the monitor, Slack buttons, slash commands and the CLI.
 * Every call is checked (node exists and has GPUs, not excluded, not already being remediated, actor allowed,
 * safety limits) and audited; the answer is a typed result with a message written for a human in Slack.
 */
import type { Logger } from 'pino';
import { type ProgressBus, type ProgressDetails, progressEvent, type StepDetails } from '../domain/events.js';
import { type FindingKind, FindingKinds } from '../domain/finding.js';
import { hasGpus } from '../domain/gpu-count.js';
import type { Incident, IncidentState, PolicyMode, RemediationAction } from '../domain/incident.js';
import { isOpen, RemediationActions } from '../domain/incident.js';
import type { GpuNode } from '../domain/node.js';
import type { Policy } from '../domain/policy.js';
import type { Exclusion } from '../domain/ports.js';
import {
  type AutoRepairMode,
  type AutoRepairOutcome,
  autoRepairOutcome,
  deferToAutoRepair,
  repairableCondition,
  repairOwnerOf,
} from './auto-repair.js';
import { remediationHistory } from './history.js';
import { rebootUnavailableReason } from './node-kind.js';
import { type Decision, decide } from './policy.js';
import type {
  AuditLog,
  AutoRepairPort,
  Clock,
  ClusterPort,
  ExclusionStore,
  IncidentStore,
  KvStore,
  NodeRepairConfig,
  RunPlan,
  StepRow,
  StepStore,
} from './ports.js';
import { breakerNodes, checkSafety, type SafetyLimit, shouldTripBreaker } from './safety.js';
import { claimState, isWorking, PendingStates, PlanStep, WorkingStates } from './state-machine.js';

export const ServiceActions = [
  ...RemediationActions.filter((a) => a !== 'none'),
  'approve',
  'cancel',
  'dismiss',
  'exclude',
  'unexclude',
  'pause',
  'resume',
] as const;
export type ServiceAction = (typeof ServiceActions)[number];

/** The bookkeeping row of a deferral to EKS node auto repair (beside `plan`; not a plan step). */
export const AutoRepairStep = 'auto_repair';

export type ServiceErrorCode =
  | 'not_found'
  | 'not_gpu'
  | 'excluded'
  | 'busy'
  | 'denied'
  | 'limited'
  | 'invalid';

export type ServiceResult =
  | { ok: true; incidentId?: string; message: string; dryRun?: boolean }
  | { ok: false; code: ServiceErrorCode; message: string };

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
  optOutLabel: string;
}

export const defaultSafetyConfig: SafetyConfig = {
  dryRun: false,
  maxConcurrent: 1,
  perHour: 5,
  maxUnhealthyPercent: 20,
  breakerWindowMs: 10 * 60_000,
  optOutLabel: 'gpu-medic.io/exclude',
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
  logger?: Logger;
}

/** An incident left to EKS node auto repair: what the thread and the alert say about it. */
export interface Deferral {
  incidentId: string;
  node: string;
  condition: string;
  reason?: string;
  owner: 'managed-node-group' | 'auto-mode';
  nodeGroup?: string;
  /** When gpu-medic stops waiting for EKS (epoch ms). */
  until: number;
}

export interface RequestOptions {
  incidentId?: string;
  trigger: 'auto' | 'manual';
  /** Evict around a PDB after the drain timeout (a policy rule said so). */
  force?: boolean;
}

export interface BreakerState {
  open: boolean;
  reason?: string;
  by?: string;
  at?: number;
}

export interface StatusReport {
  dryRun: boolean;
  paused: BreakerState;
  breaker: BreakerState;
  inFlight: Incident[];
  awaitingApproval: Incident[];
  exclusions: Exclusion[];
  remediationsLastHour: number;
  limits: { maxConcurrent: number; perHour: number; maxUnhealthyPercent: number; maxUnhealthyNodes?: number };
  message: string;
}

export interface NodeStatus {
  node: string;
  exists: boolean;
  gpuNode: boolean;
  unschedulable?: boolean;
  ready?: boolean;
  excluded?: Exclusion;
  optOut: boolean;
  openIncidents: Incident[];
  message: string;
}

const Keys = {
  breaker: 'remediate.breaker',
  paused: 'remediate.paused',
  starts: 'remediate.starts',
} as const;
const hourMs = 3_600_000;

const verbs: Record<RemediationAction, string> = {
  none: 'nothing',
  cordon: 'cordon',
  uncordon: 'uncordon',
  drain: 'drain',
  reboot: 'reboot',
  replace: 'replace',
};

/** `7/8 GPUs allocatable`, or `8 GPUs expected (mig-mixed)` where MIG devices are not whole GPUs. */
function gpuCountText(node: GpuNode): string {
  const expected = node.expectedGpus ?? '?';
  const sharing = node.gpuSharing && node.gpuSharing !== 'none' ? ` (${node.gpuSharing})` : '';
  return node.allocatableGpus !== undefined
    ? `${node.allocatableGpus}/${expected} GPUs allocatable${sharing}`
    : `${expected} GPUs expected${sharing}`;
}

export class RemediationServices {
  readonly safety: SafetyConfig;
  private readonly deps: ServiceDeps;
  private readonly log: Logger | undefined;
  private readonly watching = new Map<string, Promise<void>>();
  private stopWatch = new AbortController();

  constructor(deps: ServiceDeps) {
    this.deps = deps;
    this.safety = { ...defaultSafetyConfig, ...deps.safety };
    this.log = deps.logger?.child({ component: 'services' });
  }

  /** Start (or refuse) a remediation. With `incidentId`, acts on that incident; else opens a manual one. */
  async request(
    action: RemediationAction,
    nodeName: string,
    actor: string,
    reason: string,
    options: RequestOptions,
  ): Promise<ServiceResult> {
    const audit = (result: ServiceResult, incidentId?: string) =>
      this.audited(actor, `request.${action}`, result, { node: nodeName, incidentId, reason });
    if (!RemediationActions.includes(action) || action === 'none') {
      return audit({
        ok: false,
        code: 'invalid',
        message: `"${String(action)}" is not an action gpu-medic can take.`,
      });
    }
    if (options.trigger === 'manual' && !(await this.deps.authorize(actor, action))) {
      return audit({ ok: false, code: 'denied', message: `You are not allowed to ${verbs[action]} nodes.` });
    }
    const node = await this.deps.cluster.getNode(nodeName);
    if (!node) return audit({ ok: false, code: 'not_found', message: `Node ${nodeName} does not exist.` });
    if (!hasGpus(node)) {
      return audit({
        ok: false,
        code: 'not_gpu',
        message: `${nodeName} has no GPUs: gpu-medic only manages GPU nodes.`,
      });
    }
    const noReboot = action === 'reboot' ? rebootUnavailableReason(node) : undefined;
    if (noReboot) return audit({ ok: false, code: 'invalid', message: noReboot }, options.incidentId);
    const gpuNodeCount =
      options.trigger === 'auto' ? (await this.deps.cluster.listNodes()).filter(hasGpus).length : 0;

    // From here to the claim there is no await: a check and its compare-and-set cannot interleave with another.
    const { incidents, exclusions, clock } = this.deps;
    const now = clock.now();
    let incident: Incident | undefined;
    if (options.incidentId) {
      incident = incidents.get(options.incidentId);
      if (!incident)
        return audit({
          ok: false,
          code: 'not_found',
          message: `Incident ${options.incidentId} does not exist.`,
        });
      if (incident.node !== nodeName) {
        return audit(
          {
            ok: false,
            code: 'invalid',
            message: `Incident ${incident.id} is about ${incident.node}, not ${nodeName}.`,
          },
          incident.id,
        );
      }
      if (!PendingStates.includes(incident.state)) {
        return audit({ ok: false, code: 'busy', message: alreadyMessage(incident) }, incident.id);
      }
    }
    const working = incidents.list({ node: nodeName, open: true }).find((i) => isWorking(i.state));
    if (working)
      return audit({ ok: false, code: 'busy', message: alreadyMessage(working) }, options.incidentId);
    const deferred = this.activeDeferral(nodeName);
    if (deferred) {
      return audit(
        {
          ok: false,
          code: 'busy',
          message: `EKS node auto repair is handling ${nodeName} (${deferred.condition}${deferred.reason ? ` ${deferred.reason}` : ''}): gpu-medic does not act on it meanwhile and reports the outcome in the thread of incident ${deferred.incidentId}.`,
        },
        options.incidentId,
      );
    }

    const excluded = exclusions.get(nodeName, now);
    const optOut = node.labels[this.safety.optOutLabel] === 'true';
    if (options.trigger === 'auto' && !excluded && !optOut && !this.breaker().open) {
      const unhealthy = this.unhealthyNodes(now);
      const trip = shouldTripBreaker({
        unhealthyOrCordonedByUs: unhealthy,
        gpuNodeCount,
        maxUnhealthyPercent: this.safety.maxUnhealthyPercent,
        ...(this.safety.maxUnhealthyNodes !== undefined
          ? { maxUnhealthyNodes: this.safety.maxUnhealthyNodes }
          : {}),
      });
      if (trip.trip) {
        const state: BreakerState = { open: true, reason: trip.message, by: 'gpu-medic', at: now };
        this.deps.kv.set(Keys.breaker, JSON.stringify(state));
        this.deps.audit.append({
          at: now,
          actor: 'gpu-medic',
          action: 'breaker.open',
          result: 'open',
          reason: trip.message,
        });
        this.log?.warn({ unhealthy, gpuNodeCount }, 'circuit breaker opened');
      }
    }
    const verdict = checkSafety({
      trigger: options.trigger,
      action,
      node: nodeName,
      inFlight: incidents.list({ open: true }).filter((i) => isWorking(i.state)).length,
      maxConcurrent: this.safety.maxConcurrent,
      recentRemediations: this.recentStarts(now),
      perHour: this.safety.perHour,
      now,
      breakerOpen: this.breaker().open || this.paused().open,
      dryRun: this.safety.dryRun,
      excluded,
      optOutLabel: optOut,
      optOutLabelName: `${this.safety.optOutLabel}=true`,
    });
    if (!verdict.allowed) {
      const code = verdict.limit === 'excluded' || verdict.limit === 'opt_out' ? 'excluded' : 'limited';
      if (verdict.limit === 'excluded' && excluded) {
        const told: ProgressDetails['excluded'] = {
          reason: excluded.reason,
          by: excluded.createdBy,
          action,
          ...(excluded.expiresAt !== undefined ? { until: excluded.expiresAt } : {}),
        };
        this.publishFor(incident, nodeName, { step: 'excluded', details: told }, actor);
      } else {
        const told = this.limitDetails(verdict.limit, action, verdict.message, now, gpuNodeCount);
        this.publishFor(incident, nodeName, { step: 'safety_limit', details: told }, actor);
      }
      return audit({ ok: false, code, message: verdict.message }, incident?.id);
    }

    const target = claimState(action);
    if (!target) return audit({ ok: false, code: 'invalid', message: `Nothing to do for ${action}.` });
    if (!incident) {
      incident = incidents.create(manualIncident(node, action, actor, reason, now));
    } else if (incident.plannedAction !== action) {
      incidents.update(incident.id, { plannedAction: action });
    }
    const by = options.trigger === 'manual' ? `${actor}: ${reason}` : reason;
    if (!incidents.transition(incident.id, PendingStates, target, by)) {
      const current = incidents.get(incident.id);
      return audit(
        { ok: false, code: 'busy', message: current ? alreadyMessage(current) : 'Already taken.' },
        incident.id,
      );
    }
    const plan: RunPlan = {
      action,
      actor,
      trigger: options.trigger,
      reason,
      force: options.force === true,
      dryRun: this.safety.dryRun,
    };
    const row = this.deps.steps.begin(incident.id, PlanStep, { ...plan }, now);
    this.deps.steps.finish(row.id, 'done', {}, now);
    if (!this.safety.dryRun) this.recordStart(now);
    if (options.trigger === 'manual') {
      const told: ProgressDetails['approved'] = { action, mode: 'manual', reason };
      this.publishFor(incident, nodeName, { step: 'approved', details: told }, actor);
    } else {
      const told: ProgressDetails['policy'] = { action, mode: 'auto', reason };
      this.publishFor(incident, nodeName, { step: 'policy', details: told }, actor);
    }
    this.deps.engine.run(incident.id).catch((error: unknown) => {
      this.log?.error({ err: error, incidentId: incident?.id }, 'remediation run crashed');
    });
    const dry = this.safety.dryRun ? 'DRY RUN — would ' : '';
    const message = `${dry}${capitalize(verbs[action], dry === '')} ${nodeName} (incident ${incident.id}), requested by ${actor}: ${reason}`;
    return audit(
      { ok: true, incidentId: incident.id, message, ...(this.safety.dryRun ? { dryRun: true } : {}) },
      incident.id,
    );
  }

  /**
   * A reboot that did not cure the fault (`escalated` to replace by the verify step): open a successor
   * incident for the same fault and triage it. The policy sees the reboot that did not help and escalates
   * to replace (or hands it to a human when the node was remediated too often). Idempotent: a second call
   * finds the open successor.
   */
  async followUp(escalatedId: string): Promise<ServiceResult> {
    const { incidents, clock } = this.deps;
    const prev = incidents.get(escalatedId);
    if (!prev) return { ok: false, code: 'not_found', message: `Incident ${escalatedId} does not exist.` };
    if (prev.state !== 'escalated') {
      return {
        ok: false,
        code: 'invalid',
        message: `Incident ${escalatedId} is ${prev.state}, not escalated.`,
      };
    }
    const later = incidents
      .list({ node: prev.node })
      .find((i) => i.id !== prev.id && i.faultKey === prev.faultKey && i.firstSeen >= prev.firstSeen);
    if (later) return { ok: true, incidentId: later.id, message: `Already followed up by ${later.id}.` };
    const now = clock.now();
    const { id: _id, updatedAt: _u, closedAt: _c, ...rest } = prev;
    const successor = incidents.create({
      ...rest,
      state: 'detected',
      preexisting: false,
      firstSeen: now,
      lastSeen: now,
      count: 1,
      stateReason: `follow-up of ${prev.id}: ${prev.stateReason ?? 'the reboot did not cure the fault'}`,
    });
    this.deps.audit.append({
      at: now,
      actor: 'monitor',
      action: 'escalate',
      node: prev.node,
      incidentId: successor.id,
      reason: `the fault came back after the reboot of ${prev.id}`,
      result: 'opened',
    });
    const told: ProgressDetails['detected'] = {
      category: successor.category,
      severity: successor.severity,
      ...(successor.xid !== undefined ? { xid: successor.xid } : {}),
      ...(successor.gpu !== undefined ? { gpu: successor.gpu } : {}),
    };
    this.publishFor(successor, successor.node, { step: 'detected', details: told }, 'monitor');
    return this.triage(successor.id);
  }

  /**
   * Escalations to replace that have no successor yet (the process stopped between the two): followed up
   * at start-up, so a crash never loses one. Only those closed within the escalation window count.
   */
  async resumeFollowUps(): Promise<string[]> {
    const { incidents, steps, clock, policy } = this.deps;
    const since = clock.now() - policy.remediation.escalation.returnWithinHours * hourMs;
    const all = incidents.list({ updatedSince: since });
    const pending = all.filter(
      (i) =>
        i.state === 'escalated' &&
        steps.lastOf(i.id, 'escalate')?.detail.to === 'replace' &&
        !all.some((j) => j.node === i.node && j.faultKey === i.faultKey && j.firstSeen > i.firstSeen),
    );
    for (const i of pending) await this.followUp(i.id);
    return pending.map((i) => i.id);
  }

  /**
   * The monitor's entry for a new incident: the policy decides the action and mode, then it is started
   * (auto), put to a human (approve, or auto stopped by a safety limit), or only alerted (off).
   */
  async triage(incidentId: string): Promise<ServiceResult & { decision?: Decision }> {
    const { incidents, steps, clock, policy } = this.deps;
    const incident = incidents.get(incidentId);
    if (!incident) return { ok: false, code: 'not_found', message: `Incident ${incidentId} does not exist.` };
    if (incident.state !== 'detected') return { ok: false, code: 'busy', message: alreadyMessage(incident) };
    const now = clock.now();
    const history = remediationHistory(
      incidents.list({ node: incident.node }),
      (id) => steps.list(id),
      { id: incident.id, faultKey: incident.faultKey },
      policy.remediation.escalation,
      now,
    );
    const decision = decide(
      {
        category: incident.category,
        ...(incident.xid !== undefined ? { xid: incident.xid } : {}),
        kind: kindOf(incident.faultKey),
        severity: incident.severity,
        source: incident.source,
        faultKey: incident.faultKey,
        node: incident.node,
        recommendedAction: incident.recommendedAction,
        preexisting: incident.preexisting,
      },
      policy,
      history,
      now,
    );
    incidents.update(incident.id, { plannedAction: decision.action, mode: decision.mode });
    this.deps.audit.append({
      at: now,
      actor: 'monitor',
      action: 'policy',
      node: incident.node,
      incidentId,
      reason: decision.reason,
      result: `${decision.action}/${decision.mode}`,
      details: { ...history, escalated: decision.escalated === true },
    });
    if (decision.action !== 'none' && decision.mode !== 'off') {
      const deferred = await this.deferIfAutoRepair(incident, decision);
      if (deferred) return { ...deferred, decision };
    }
    if (decision.action === 'reboot' && decision.mode !== 'off') {
      const node = await this.deps.cluster.getNode(incident.node);
      const noReboot = node ? rebootUnavailableReason(node) : undefined;
      // A reboot is not possible there; a replace is more than the policy chose on its own: a human decides.
      if (noReboot) {
        incidents.update(incident.id, { plannedAction: 'replace', mode: 'approve' });
        return { ...this.askHuman(incident, 'replace', `${decision.reason} ${noReboot}`), decision };
      }
    }
    if (decision.action === 'none' || decision.mode === 'off') {
      const told: ProgressDetails['policy'] = {
        action: decision.action,
        mode: decision.mode,
        reason: decision.reason,
      };
      this.publishFor(incident, incident.node, { step: 'policy', details: told }, 'monitor');
      return { ok: true, incidentId, message: `Alert only: ${decision.reason}`, decision };
    }
    if (decision.mode === 'auto') {
      const result = await this.request(decision.action, incident.node, 'monitor', decision.reason, {
        incidentId,
        trigger: 'auto',
        ...(decision.force ? { force: true } : {}),
      });
      if (result.ok || result.code !== 'limited') return { ...result, decision };
      return {
        ...this.askHuman(incident, decision.action, `${decision.reason} ${result.message}`),
        decision,
      };
    }
    return { ...this.askHuman(incident, decision.action, decision.reason), decision };
  }

  /**
   * Leaves the incident to EKS node auto repair when it will act on the node (auto-repair.ts): a
   * `auto_repair` row records what was deferred and until when, the thread says so, and a watcher reports
   * the outcome. Undefined when gpu-medic handles the node itself.
   */
  private async deferIfAutoRepair(
    incident: Incident,
    decision: Decision,
  ): Promise<ServiceResult | undefined> {
    const ar = this.deps.autoRepair;
    if (!ar || ar.mode === 'ignore') return undefined;
    const node = await this.deps.cluster.getNode(incident.node);
    if (!node) return undefined;
    const owner = repairOwnerOf(node);
    let groupRepair: NodeRepairConfig | 'unknown' | undefined;
    if (owner?.kind === 'managed-node-group' && ar.mode === 'detect' && repairableCondition(node)) {
      try {
        groupRepair = ar.port ? await ar.port.nodeRepairOf(owner.nodeGroup) : 'unknown';
      } catch {
        // The adapter logged why; not knowing is not a reason to leave a broken node alone.
        groupRepair = 'unknown';
      }
    }
    const d = deferToAutoRepair({
      mode: ar.mode,
      node,
      ...(groupRepair !== undefined ? { groupRepair } : {}),
      ...(ar.windowMs !== undefined ? { windowMs: ar.windowMs } : {}),
    });
    if (!d.defer) {
      if (owner && repairableCondition(node)) {
        this.log?.info({ node: node.name, why: d.why }, 'not deferring to EKS node auto repair');
      }
      return undefined;
    }
    const { incidents, steps, clock } = this.deps;
    const now = clock.now();
    if (incidents.get(incident.id)?.state !== 'detected') return undefined;
    const nodeGroup = d.owner.kind === 'managed-node-group' ? d.owner.nodeGroup : undefined;
    const row = steps.begin(
      incident.id,
      AutoRepairStep,
      {
        condition: d.condition.type,
        status: d.condition.status,
        ...(d.condition.reason ? { reason: d.condition.reason } : {}),
        owner: d.owner.kind,
        ...(nodeGroup ? { nodeGroup } : {}),
        waitMs: d.condition.waitMs,
        windowMs: d.windowMs,
        until: now + d.windowMs,
        bootIdBefore: node.bootId ?? null,
        instanceIdBefore: node.instanceId ?? null,
        action: decision.action,
        mode: decision.mode,
        reasonForAction: decision.reason,
        force: decision.force === true,
      },
      now,
    );
    const who = d.owner.kind === 'auto-mode' ? 'EKS Auto Mode' : `node group ${nodeGroup}`;
    const why = `${d.condition.type}=${d.condition.status}${d.condition.reason ? ` (${d.condition.reason})` : ''}`;
    incidents.update(incident.id, { stateReason: `EKS node auto repair will act (${why}, ${who})` });
    this.deps.audit.append({
      at: now,
      actor: 'monitor',
      action: 'defer.auto_repair',
      node: incident.node,
      incidentId: incident.id,
      reason: `${why}: EKS node auto repair of ${who} acts on it`,
      result: 'deferred',
      details: { ...row.detail },
    });
    const told: ProgressDetails['auto_repair_deferred'] = {
      condition: d.condition.type,
      status: d.condition.status,
      ...(d.condition.reason ? { reason: d.condition.reason } : {}),
      owner: d.owner.kind,
      ...(nodeGroup ? { nodeGroup } : {}),
      waitMs: d.condition.waitMs,
      windowMs: d.windowMs,
      action: decision.action,
    };
    this.publishFor(incident, incident.node, { step: 'auto_repair_deferred', details: told }, 'monitor');
    this.watchDeferral(incident.id);
    return {
      ok: true,
      incidentId: incident.id,
      message: `EKS node auto repair will act on ${incident.node} (${why}); gpu-medic watches and reports the outcome.`,
    };
  }

  /** The deferral in progress on this node, if any (an open, untouched incident with a started row). */
  activeDeferral(nodeName: string): Deferral | undefined {
    for (const i of this.deps.incidents.list({ node: nodeName, open: true })) {
      const d = this.deferralOf(i.id);
      if (d) return d;
    }
    return undefined;
  }

  deferralOf(incidentId: string): Deferral | undefined {
    const incident = this.deps.incidents.get(incidentId);
    if (!incident || incident.state !== 'detected') return undefined;
    const row = this.deps.steps.lastOf(incidentId, AutoRepairStep);
    if (row?.status !== 'started') return undefined;
    const { reason, nodeGroup, condition, owner, until } = row.detail;
    return {
      incidentId,
      node: incident.node,
      condition: condition || 'a node condition',
      ...(reason ? { reason } : {}),
      owner: owner ?? 'managed-node-group',
      ...(nodeGroup ? { nodeGroup } : {}),
      until: until ?? row.startedAt,
    };
  }

  /** Deferrals left by a stop: watched again (at start-up, by the leader). */
  resumeDeferrals(): string[] {
    if (this.stopWatch.signal.aborted) this.stopWatch = new AbortController();
    const ids = this.deps.incidents
      .list({ open: true })
      .filter((i) => this.deferralOf(i.id) !== undefined)
      .map((i) => i.id);
    for (const id of ids) this.watchDeferral(id);
    return ids;
  }

  /** Stops the deferral watchers (shutdown, lost lease); resumeDeferrals picks them up from their rows. */
  async stopWatching(): Promise<void> {
    this.stopWatch.abort();
    await Promise.allSettled([...this.watching.values()]);
  }

  /** Resolves once no deferral is watched (tests). */
  async whenDeferralsSettled(): Promise<void> {
    while (this.watching.size > 0) await Promise.allSettled([...this.watching.values()]);
  }

  private watchDeferral(incidentId: string): void {
    if (this.watching.has(incidentId) || this.stopWatch.signal.aborted) return;
    const p = this.watch(incidentId)
      .catch((err: unknown) => this.log?.error({ err, incidentId }, 'watching EKS node auto repair failed'))
      .finally(() => this.watching.delete(incidentId));
    this.watching.set(incidentId, p);
  }

  private async watch(incidentId: string): Promise<void> {
    const { incidents, steps, clock, cluster } = this.deps;
    const pollMs = this.deps.autoRepair?.pollMs ?? 10_000;
    const signal = this.stopWatch.signal;
    for (;;) {
      if (signal.aborted) return;
      const deferral = this.deferralOf(incidentId);
      const row = steps.lastOf(incidentId, AutoRepairStep);
      const incident = incidents.get(incidentId);
      // Dismissed, excluded-and-closed or otherwise taken out of our hands: nothing left to report.
      if (!deferral || !row || !incident) return;
      const { bootIdBefore: bootId, instanceIdBefore: instanceId } = row.detail;
      const before = { ...(bootId ? { bootId } : {}), ...(instanceId ? { instanceId } : {}) };
      let node: Awaited<ReturnType<ClusterPort['getNode']>>;
      try {
        node = await cluster.getNode(incident.node);
      } catch (err) {
        this.log?.warn({ err, incidentId }, 'reading a deferred node failed; looking again');
        await clock.sleep(pollMs, signal);
        continue;
      }
      const now = clock.now();
      const outcome = autoRepairOutcome(node, before, now >= deferral.until);
      if (!outcome) {
        await clock.sleep(Math.min(pollMs, Math.max(1, deferral.until - now)), signal);
        continue;
      }
      await this.concludeDeferral(incident, row, outcome, now);
      return;
    }
  }

  private async concludeDeferral(
    incident: Incident,
    row: StepRow,
    outcome: AutoRepairOutcome,
    now: number,
  ): Promise<void> {
    const { incidents, steps } = this.deps;
    const d = row.detail;
    const elapsedMs = now - row.startedAt;
    steps.finish(row.id, 'done', { outcome, at: now }, now);
    const action = d.action ?? incident.plannedAction;
    const told: ProgressDetails['auto_repair_outcome'] = {
      outcome,
      ...(d.condition !== undefined ? { condition: d.condition } : {}),
      ...(d.windowMs !== undefined ? { windowMs: d.windowMs } : {}),
      ...(outcome === 'not_acted' ? { policyAction: action } : {}),
    };
    this.publishFor(
      incident,
      incident.node,
      { step: 'auto_repair_outcome', details: told },
      'monitor',
      elapsedMs,
    );
    this.deps.audit.append({
      at: now,
      actor: 'monitor',
      action: 'defer.auto_repair.outcome',
      node: incident.node,
      incidentId: incident.id,
      result: outcome,
      details: { elapsedMs },
    });
    if (outcome !== 'not_acted') {
      const reason =
        outcome === 'rebooted'
          ? `EKS node auto repair rebooted ${incident.node}`
          : `EKS node auto repair replaced ${incident.node}`;
      if (incidents.transition(incident.id, ['detected'], 'resolved', reason)) {
        this.publishFor(
          incident,
          incident.node,
          { step: 'resolved', details: { reason, byAutoRepair: outcome } },
          'monitor',
          elapsedMs,
        );
      }
      return;
    }
    // EKS did not act in its window (a paused repair, a threshold): gpu-medic's own policy applies now.
    const mode = d.mode === 'auto' || d.mode === 'approve' ? d.mode : incident.mode;
    const reason = `EKS node auto repair did not act within its window; ${d.reasonForAction ?? incident.explanation}`;
    if (action === 'reboot') {
      // An Auto Mode node cannot be rebooted (and always defers): a replace is more than the policy chose on
      // its own, so a human decides, as triage does.
      const node = await this.deps.cluster.getNode(incident.node);
      const noReboot = node ? rebootUnavailableReason(node) : undefined;
      if (noReboot) {
        incidents.update(incident.id, { plannedAction: 'replace', mode: 'approve' });
        this.askHuman(incident, 'replace', `${reason} ${noReboot}`);
        return;
      }
    }
    if (mode === 'auto') {
      const result = await this.request(action, incident.node, 'monitor', reason, {
        incidentId: incident.id,
        trigger: 'auto',
        ...(d.force === true ? { force: true } : {}),
      });
      if (result.ok) return;
      // Whatever kept it from starting (a limit, another repair, a refusal), the incident is not left silent.
      this.askHuman(incident, action, `${reason} ${result.message}`);
      return;
    }
    this.askHuman(incident, action, reason);
  }

  private askHuman(incident: Incident, action: RemediationAction, reason: string): ServiceResult {
    if (!this.deps.incidents.transition(incident.id, ['detected'], 'awaiting_approval', reason)) {
      const current = this.deps.incidents.get(incident.id);
      return { ok: false, code: 'busy', message: current ? alreadyMessage(current) : 'Already taken.' };
    }
    this.publishFor(
      incident,
      incident.node,
      { step: 'approval_needed', details: { action, reason } },
      'monitor',
    );
    return {
      ok: true,
      incidentId: incident.id,
      message: `Waiting for approval to ${verbs[action]} ${incident.node}: ${reason}`,
    };
  }

  async approve(incidentId: string, actor: string, action?: RemediationAction): Promise<ServiceResult> {
    const incident = this.deps.incidents.get(incidentId);
    if (!incident) {
      return this.audited(
        actor,
        'approve',
        { ok: false, code: 'not_found', message: `Incident ${incidentId} does not exist.` },
        { incidentId },
      );
    }
    if (!PendingStates.includes(incident.state)) {
      return this.audited(
        actor,
        'approve',
        { ok: false, code: 'busy', message: alreadyMessage(incident) },
        { incidentId, node: incident.node },
      );
    }
    const chosen = action ?? incident.plannedAction;
    return this.request(chosen, incident.node, actor, `approved by ${actor}`, {
      incidentId,
      trigger: 'manual',
    });
  }

  async cancel(incidentId: string, actor: string, reason: string): Promise<ServiceResult> {
    const ctx = { incidentId, reason };
    if (!(await this.deps.authorize(actor, 'cancel'))) {
      return this.audited(
        actor,
        'cancel',
        { ok: false, code: 'denied', message: 'You are not allowed to cancel remediations.' },
        ctx,
      );
    }
    const incident = this.deps.incidents.get(incidentId);
    if (!incident)
      return this.audited(
        actor,
        'cancel',
        { ok: false, code: 'not_found', message: `Incident ${incidentId} does not exist.` },
        ctx,
      );
    const from: IncidentState[] = [...PendingStates, ...WorkingStates];
    if (!this.deps.incidents.transition(incidentId, from, 'cancelled', `cancelled by ${actor}: ${reason}`)) {
      return this.audited(
        actor,
        'cancel',
        {
          ok: false,
          code: 'invalid',
          message: `Incident ${incidentId} is already ${this.deps.incidents.get(incidentId)?.state}.`,
        },
        { ...ctx, node: incident.node },
      );
    }
    this.publishFor(incident, incident.node, { step: 'cancelled', details: { reason } }, actor);
    const note = isWorking(incident.state)
      ? ` ${incident.node} is left as it is (it may still be cordoned: \`/gpu uncordon ${incident.node}\`).`
      : '';
    return this.audited(
      actor,
      'cancel',
      { ok: true, incidentId, message: `Cancelled incident ${incidentId} on ${incident.node}.${note}` },
      { ...ctx, node: incident.node },
    );
  }

  async dismiss(incidentId: string, actor: string, reason = 'dismissed'): Promise<ServiceResult> {
    const ctx = { incidentId, reason };
    if (!(await this.deps.authorize(actor, 'dismiss'))) {
      return this.audited(
        actor,
        'dismiss',
        { ok: false, code: 'denied', message: 'You are not allowed to dismiss incidents.' },
        ctx,
      );
    }
    const incident = this.deps.incidents.get(incidentId);
    if (!incident)
      return this.audited(
        actor,
        'dismiss',
        { ok: false, code: 'not_found', message: `Incident ${incidentId} does not exist.` },
        ctx,
      );
    if (isWorking(incident.state)) {
      return this.audited(
        actor,
        'dismiss',
        { ok: false, code: 'busy', message: `${alreadyMessage(incident)} Cancel it instead.` },
        { ...ctx, node: incident.node },
      );
    }
    if (
      !this.deps.incidents.transition(
        incidentId,
        PendingStates,
        'dismissed',
        `dismissed by ${actor}: ${reason}`,
      )
    ) {
      return this.audited(
        actor,
        'dismiss',
        { ok: false, code: 'invalid', message: `Incident ${incidentId} is already ${incident.state}.` },
        { ...ctx, node: incident.node },
      );
    }
    this.publishFor(incident, incident.node, { step: 'dismissed', details: { reason } }, actor);
    return this.audited(
      actor,
      'dismiss',
      { ok: true, incidentId, message: `Dismissed incident ${incidentId} on ${incident.node}.` },
      { ...ctx, node: incident.node },
    );
  }

  async exclude(
    nodeName: string,
    options: { until?: number; reason: string },
    actor: string,
  ): Promise<ServiceResult> {
    const ctx = { node: nodeName, reason: options.reason };
    if (!(await this.deps.authorize(actor, 'exclude'))) {
      return this.audited(
        actor,
        'exclude',
        { ok: false, code: 'denied', message: 'You are not allowed to exclude nodes.' },
        ctx,
      );
    }
    const now = this.deps.clock.now();
    if (options.until !== undefined && !(options.until > now)) {
      return this.audited(
        actor,
        'exclude',
        { ok: false, code: 'invalid', message: 'The exclusion must end in the future.' },
        ctx,
      );
    }
    const node = await this.deps.cluster.getNode(nodeName);
    if (!node)
      return this.audited(
        actor,
        'exclude',
        { ok: false, code: 'not_found', message: `Node ${nodeName} does not exist.` },
        ctx,
      );
    if (!hasGpus(node)) {
      return this.audited(
        actor,
        'exclude',
        { ok: false, code: 'not_gpu', message: `${nodeName} has no GPUs: nothing to exclude.` },
        ctx,
      );
    }
    this.deps.exclusions.put({
      node: nodeName,
      reason: options.reason,
      createdBy: actor,
      createdAt: now,
      ...(options.until !== undefined ? { expiresAt: options.until } : {}),
    });
    const running = this.deps.incidents.list({ node: nodeName, open: true }).find((i) => isWorking(i.state));
    const until = options.until !== undefined ? ` until ${new Date(options.until).toISOString()}` : '';
    const note = running
      ? ` The running remediation (incident ${running.id}) stops before its next step.`
      : '';
    return this.audited(
      actor,
      'exclude',
      { ok: true, message: `${nodeName} is excluded${until}: gpu-medic will not touch it.${note}` },
      ctx,
    );
  }

  async unexclude(nodeName: string, actor: string): Promise<ServiceResult> {
    if (!(await this.deps.authorize(actor, 'unexclude'))) {
      return this.audited(
        actor,
        'unexclude',
        { ok: false, code: 'denied', message: 'You are not allowed to unexclude nodes.' },
        { node: nodeName },
      );
    }
    if (!this.deps.exclusions.remove(nodeName)) {
      return this.audited(
        actor,
        'unexclude',
        { ok: false, code: 'not_found', message: `${nodeName} is not excluded.` },
        { node: nodeName },
      );
    }
    return this.audited(
      actor,
      'unexclude',
      { ok: true, message: `${nodeName} is no longer excluded.` },
      { node: nodeName },
    );
  }

  /** Stops automatic remediation (manual actions still run) until `resume`. */
  async pause(actor: string, reason = 'paused'): Promise<ServiceResult> {
    if (!(await this.deps.authorize(actor, 'pause'))) {
      return this.audited(
        actor,
        'pause',
        { ok: false, code: 'denied', message: 'You are not allowed to pause gpu-medic.' },
        { reason },
      );
    }
    const state: BreakerState = { open: true, reason, by: actor, at: this.deps.clock.now() };
    this.deps.kv.set(Keys.paused, JSON.stringify(state));
    return this.audited(
      actor,
      'pause',
      { ok: true, message: `Automatic remediation paused by ${actor}. \`/gpu resume\` re-enables it.` },
      { reason },
    );
  }

  /** Closes the circuit breaker and lifts a pause. */
  async resume(actor: string): Promise<ServiceResult> {
    if (!(await this.deps.authorize(actor, 'resume'))) {
      return this.audited(
        actor,
        'resume',
        { ok: false, code: 'denied', message: 'You are not allowed to resume gpu-medic.' },
        {},
      );
    }
    const was = this.breaker().open || this.paused().open;
    this.deps.kv.delete(Keys.breaker);
    this.deps.kv.delete(Keys.paused);
    const message = was
      ? `Automatic remediation resumed by ${actor}.`
      : 'Automatic remediation was not paused.';
    return this.audited(actor, 'resume', { ok: true, message }, {});
  }

  status(): StatusReport {
    const now = this.deps.clock.now();
    const open = this.deps.incidents.list({ open: true });
    const inFlight = open.filter((i) => isWorking(i.state));
    const awaitingApproval = open.filter((i) => i.state === 'awaiting_approval');
    const breaker = this.breaker();
    const paused = this.paused();
    const remediationsLastHour = this.recentStarts(now).length;
    const lines = [
      this.safety.dryRun ? 'DRY RUN: nothing is changed.' : undefined,
      breaker.open ? `Circuit breaker OPEN: ${breaker.reason ?? ''}` : undefined,
      paused.open ? `Paused by ${paused.by ?? 'someone'}.` : undefined,
      `${inFlight.length} remediation(s) in flight (limit ${this.safety.maxConcurrent}), ${awaitingApproval.length} awaiting approval, ${remediationsLastHour} in the last hour (limit ${this.safety.perHour}).`,
    ].filter((l): l is string => l !== undefined);
    return {
      dryRun: this.safety.dryRun,
      paused,
      breaker,
      inFlight,
      awaitingApproval,
      exclusions: this.deps.exclusions.list(now),
      remediationsLastHour,
      limits: {
        maxConcurrent: this.safety.maxConcurrent,
        perHour: this.safety.perHour,
        maxUnhealthyPercent: this.safety.maxUnhealthyPercent,
        ...(this.safety.maxUnhealthyNodes !== undefined
          ? { maxUnhealthyNodes: this.safety.maxUnhealthyNodes }
          : {}),
      },
      message: lines.join('\n'),
    };
  }

  async nodeStatus(nodeName: string): Promise<NodeStatus> {
    const node = await this.deps.cluster.getNode(nodeName);
    const excluded = this.deps.exclusions.get(nodeName, this.deps.clock.now());
    const openIncidents = this.deps.incidents.list({ node: nodeName, open: true });
    const optOut = node?.labels[this.safety.optOutLabel] === 'true';
    const parts = !node
      ? [`Node ${nodeName} does not exist.`]
      : [
          `${nodeName}: ${node.ready ? 'Ready' : 'NotReady'}${node.unschedulable ? ', cordoned' : ''}, ${gpuCountText(node)}.`,
          excluded ? `Excluded by ${excluded.createdBy}: ${excluded.reason}.` : undefined,
          optOut ? 'Opted out by label.' : undefined,
          ...openIncidents.map(
            (i) => `Incident ${i.id}: ${i.category}, ${i.state} (${i.plannedAction}/${i.mode}).`,
          ),
        ];
    return {
      node: nodeName,
      exists: node !== undefined,
      gpuNode: node ? hasGpus(node) : false,
      ...(node ? { unschedulable: node.unschedulable, ready: node.ready } : {}),
      ...(excluded ? { excluded } : {}),
      optOut,
      openIncidents,
      message: parts.filter((p): p is string => p !== undefined).join('\n'),
    };
  }

  breaker(): BreakerState {
    return readState(this.deps.kv.get(Keys.breaker));
  }

  paused(): BreakerState {
    return readState(this.deps.kv.get(Keys.paused));
  }

  /** The numbers behind a safety limit, so the thread can say which limit and by how much. */
  private limitDetails(
    limit: SafetyLimit,
    action: RemediationAction,
    message: string,
    now: number,
    gpuNodeCount: number,
  ): ProgressDetails['safety_limit'] {
    const base = { action, message };
    switch (limit) {
      case 'breaker': {
        // checkSafety folds a human's pause into the breaker; the thread tells them apart.
        if (this.paused().open && !this.breaker().open) return { limit: 'paused', ...base };
        return {
          limit: 'circuit_breaker',
          ...base,
          unhealthy: this.unhealthyNodes(now),
          total: gpuNodeCount,
          thresholdPct: this.safety.maxUnhealthyPercent,
          ...(this.safety.maxUnhealthyNodes !== undefined ? { maxNodes: this.safety.maxUnhealthyNodes } : {}),
        };
      }
      case 'rate':
        return {
          limit: 'rate_limit',
          ...base,
          count: this.recentStarts(now).length,
          perHour: this.safety.perHour,
          windowMinutes: 60,
        };
      case 'concurrency':
        return {
          limit: 'max_concurrent',
          ...base,
          inFlight: this.deps.incidents.list({ open: true }).filter((i) => isWorking(i.state)).length,
          maxConcurrent: this.safety.maxConcurrent,
        };
      case 'opt_out':
        return { limit: 'opt_out', ...base, label: `${this.safety.optOutLabel}=true` };
      case 'excluded':
        return base;
    }
  }

  /** Distinct GPU nodes with a recent critical open incident or a remediation in flight (node problems aside). */
  private unhealthyNodes(now: number): number {
    return breakerNodes(this.deps.incidents.list({ open: true }), now - this.safety.breakerWindowMs).size;
  }

  private recentStarts(now: number): number[] {
    const raw = this.deps.kv.get(Keys.starts);
    let list: unknown;
    try {
      list = raw ? JSON.parse(raw) : [];
    } catch {
      list = [];
    }
    return Array.isArray(list)
      ? list.filter((t): t is number => typeof t === 'number' && now - t < hourMs)
      : [];
  }

  private recordStart(now: number): void {
    this.deps.kv.set(Keys.starts, JSON.stringify([...this.recentStarts(now), now]));
  }

  private publishFor(
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
    };
    this.deps.bus.publish(progressEvent(base, told));
  }

  private audited(
    actor: string,
    action: string,
    result: ServiceResult,
    ctx: { node?: string; incidentId?: string; reason?: string },
  ): ServiceResult {
    this.deps.audit.append({
      at: this.deps.clock.now(),
      actor,
      action,
      ...(ctx.node !== undefined ? { node: ctx.node } : {}),
      ...(ctx.incidentId !== undefined ? { incidentId: ctx.incidentId } : {}),
      ...(ctx.reason !== undefined ? { reason: ctx.reason } : {}),
      result: result.ok ? 'ok' : result.code,
      details: { message: result.message },
    });
    if (!result.ok) this.log?.info({ actor, action, code: result.code, ...ctx }, 'request refused');
    return result;
  }
}

function readState(raw: string | undefined): BreakerState {
  if (!raw) return { open: false };
  try {
    const v = JSON.parse(raw) as Partial<BreakerState>;
    return {
      open: v.open === true,
      ...(typeof v.reason === 'string' ? { reason: v.reason } : {}),
      ...(typeof v.by === 'string' ? { by: v.by } : {}),
      ...(typeof v.at === 'number' ? { at: v.at } : {}),
    };
  } catch {
    // An unreadable breaker record fails safe: treated as open.
    return { open: true, reason: 'unreadable breaker state' };
  }
}

function alreadyMessage(incident: Incident): string {
  if (isWorking(incident.state)) {
    return `${incident.node} is already being remediated (incident ${incident.id}: ${incident.plannedAction}, ${incident.state}).`;
  }
  if (!isOpen(incident.state))
    return `Incident ${incident.id} is already ${incident.state}${incident.stateReason ? ` (${incident.stateReason})` : ''}.`;
  return `Incident ${incident.id} is ${incident.state}.`;
}

function capitalize(s: string, yes: boolean): string {
  if (!yes) return s;
  const verbed: Record<string, string> = {
    cordon: 'Cordoning',
    uncordon: 'Uncordoning',
    drain: 'Draining',
    reboot: 'Rebooting',
    replace: 'Replacing',
  };
  return verbed[s] ?? s;
}

/** The fault key's prefix is the finding kind (`xid:79:gpu3`, `ecc_dbe:gpu0`, `gpu_missing`). */
export function kindOf(faultKey: string): FindingKind {
  const prefix = faultKey.split(':')[0] ?? '';
  return FindingKinds.find((k) => k === prefix) ?? 'unknown';
}

function manualIncident(
  node: GpuNode,
  action: RemediationAction,
  actor: string,
  reason: string,
  now: number,
) {
  const mode: PolicyMode = 'approve';
  return {
    node: node.name,
    ...(node.instanceId ? { instanceId: node.instanceId } : {}),
    ...(node.instanceType ? { instanceType: node.instanceType } : {}),
    ...(node.nodeGroup ? { nodeGroup: node.nodeGroup } : {}),
    faultKey: `manual:${action}:${now}`,
    category: 'MANUAL',
    severity: 'info' as const,
    recommendedAction: 'none' as const,
    plannedAction: action,
    mode,
    explanation: `${action} requested by ${actor}: ${reason}`,
    source: 'rules' as const,
    evidence: [],
    state: 'detected' as const,
    preexisting: false,
    firstSeen: now,
    lastSeen: now,
    count: 1,
  };
}
