/**
 * Leaving an incident to EKS node auto repair when it will act on the node (auto-repair.ts): an
 * `auto_repair` row records what was deferred and until when, the thread says so, and a watcher reports
 * the outcome — or, when EKS did not act in its window, gpu-medic's own policy applies after all.
 */
import type { Incident } from '../domain/incident.js';
import { RemediationActions } from '../domain/incident.js';
import type { ServiceResult } from '../domain/service-result.js';
import {
  type AutoRepairOutcome,
  autoRepairOutcome,
  deferToAutoRepair,
  repairableCondition,
  repairOwnerOf,
} from './auto-repair.js';
import { AutoRepairStep, deferralOf } from './deferral-state.js';
import { rebootUnavailableReason } from './node-kind.js';
import type { Decision } from './policy.js';
import type { ClusterPort, NodeRepairConfig, StepRow } from './ports.js';
import type { Requests } from './requests.js';
import { refusalClause, type ServiceKit } from './service-kit.js';

export class Deferrals {
  private readonly watching = new Map<string, Promise<void>>();
  private stopWatch = new AbortController();

  constructor(
    private readonly kit: ServiceKit,
    private readonly requests: Requests,
  ) {}

  /** Defers the incident when EKS will act on its node; undefined when gpu-medic handles the node itself. */
  async deferIfAutoRepair(incident: Incident, decision: Decision): Promise<ServiceResult | undefined> {
    const ar = this.kit.deps.autoRepair;
    if (!ar || ar.mode === 'ignore') return undefined;
    const node = await this.kit.deps.cluster.getNode(incident.node);
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
        this.kit.log?.info({ node: node.name, why: d.why }, 'not deferring to EKS node auto repair');
      }
      return undefined;
    }
    const { incidents, steps, clock, audit } = this.kit.deps;
    const now = clock.now();
    if (incidents.get(incident.id)?.state !== 'detected') return undefined;
    const nodeGroup = d.owner.kind === 'managed-node-group' ? d.owner.nodeGroup : undefined;
    const condition = {
      condition: d.condition.type,
      status: d.condition.status,
      ...(d.condition.reason ? { reason: d.condition.reason } : {}),
      owner: d.owner.kind,
      ...(nodeGroup ? { nodeGroup } : {}),
      waitMs: d.condition.waitMs,
      windowMs: d.windowMs,
    };
    const row = steps.begin(
      incident.id,
      AutoRepairStep,
      {
        ...condition,
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
    audit.append({
      at: now,
      actor: 'monitor',
      action: 'defer.auto_repair',
      node: incident.node,
      incidentId: incident.id,
      reason: `${why}: EKS node auto repair of ${who} acts on it`,
      result: 'deferred',
      details: { ...row.detail },
    });
    this.kit.publish(
      incident,
      incident.node,
      {
        step: 'auto_repair_deferred',
        details: {
          ...condition,
          action: decision.action,
        },
      },
      'monitor',
    );
    this.watchDeferral(incident.id);
    return {
      ok: true,
      incidentId: incident.id,
      outcome: {
        kind: 'deferred',
        node: incident.node,
        condition: d.condition.type,
        status: d.condition.status,
        ...(d.condition.reason ? { conditionReason: d.condition.reason } : {}),
      },
    };
  }

  /** Deferrals left by a stop: watched again (at start-up, by the leader). */
  resumeDeferrals(): string[] {
    if (this.stopWatch.signal.aborted) this.stopWatch = new AbortController();
    const ids = this.kit.deps.incidents
      .list({ open: true })
      .filter((i) => deferralOf(this.kit.deps, i.id) !== undefined)
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
      .catch((err: unknown) =>
        this.kit.log?.error({ err, incidentId }, 'watching EKS node auto repair failed'),
      )
      .finally(() => this.watching.delete(incidentId));
    this.watching.set(incidentId, p);
  }

  private async watch(incidentId: string): Promise<void> {
    const { incidents, steps, clock, cluster } = this.kit.deps;
    const pollMs = this.kit.deps.autoRepair?.pollMs ?? 10_000;
    const signal = this.stopWatch.signal;
    for (;;) {
      if (signal.aborted) return;
      const deferral = deferralOf(this.kit.deps, incidentId);
      const row = steps.lastOf(incidentId, AutoRepairStep);
      const incident = incidents.get(incidentId);
      // Dismissed, excluded-and-closed or otherwise taken out of our hands: nothing left to report.
      if (!deferral || !row || !incident) return;
      const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
      const before = {
        ...(str(row.detail.bootIdBefore) ? { bootId: str(row.detail.bootIdBefore) } : {}),
        ...(str(row.detail.instanceIdBefore) ? { instanceId: str(row.detail.instanceIdBefore) } : {}),
      };
      let node: Awaited<ReturnType<ClusterPort['getNode']>>;
      try {
        node = await cluster.getNode(incident.node);
      } catch (err) {
        this.kit.log?.warn({ err, incidentId }, 'reading a deferred node failed; looking again');
        await clock.sleep(pollMs, signal);
        continue;
      }
      const now = clock.now();
      const outcome = autoRepairOutcome(node, before, now >= deferral.until);
      if (!outcome) {
        await clock.sleep(Math.min(pollMs, Math.max(1, deferral.until - now)), signal);
        continue;
      }
      await this.conclude(incident, row, outcome, now);
      return;
    }
  }

  private async conclude(
    incident: Incident,
    row: StepRow,
    outcome: AutoRepairOutcome,
    now: number,
  ): Promise<void> {
    const { incidents, steps, audit } = this.kit.deps;
    const d = row.detail;
    const elapsedMs = now - row.startedAt;
    steps.finish(row.id, 'done', { outcome, at: now }, now);
    const action = RemediationActions.find((a) => a === d.action) ?? incident.plannedAction;
    this.kit.publish(
      incident,
      incident.node,
      {
        step: 'auto_repair_outcome',
        details: {
          outcome,
          ...(typeof d.condition === 'string' ? { condition: d.condition } : {}),
          ...(typeof d.windowMs === 'number' ? { windowMs: d.windowMs } : {}),
          ...(outcome === 'not_acted' ? { policyAction: action } : {}),
        },
      },
      'monitor',
      elapsedMs,
    );
    audit.append({
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
        const told = { reason, byAutoRepair: outcome };
        this.kit.publish(incident, incident.node, { step: 'resolved', details: told }, 'monitor', elapsedMs);
      }
      return;
    }
    // EKS did not act in its window (a paused repair, a threshold): gpu-medic's own policy applies now.
    const mode = d.mode === 'auto' || d.mode === 'approve' ? d.mode : incident.mode;
    const reason = `EKS node auto repair did not act within its window; ${typeof d.reasonForAction === 'string' ? d.reasonForAction : incident.explanation}`;
    if (action === 'reboot') {
      // An Auto Mode node cannot be rebooted (and always defers): a replace is more than the policy chose on
      // its own, so a human decides, as triage does.
      const node = await this.kit.deps.cluster.getNode(incident.node);
      const noReboot = node ? rebootUnavailableReason(node) : undefined;
      if (noReboot) {
        incidents.update(incident.id, { plannedAction: 'replace', mode: 'approve' });
        this.requests.askHuman(incident, 'replace', `${reason} ${noReboot}`);
        return;
      }
    }
    if (mode === 'auto') {
      const result = await this.requests.startAuto(action, incident.node, reason, {
        incidentId: incident.id,
        ...(d.force === true ? { force: true } : {}),
      });
      if (result.ok) return;
      // Whatever kept it from starting (a limit, another repair, a refusal), the incident is not left silent.
      this.requests.askHuman(incident, action, `${reason} ${refusalClause(result)}`);
      return;
    }
    this.requests.askHuman(incident, action, reason);
  }
}
