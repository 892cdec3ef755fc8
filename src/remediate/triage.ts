/**
 * The monitor's path: a new incident is triaged (the policy decides the action and mode, then it is
 * started, put to a human, deferred to EKS node auto repair, or only alerted), and a reboot that did not
 * cure the fault is followed up by a successor incident.
 */
import { faultOfIncident } from '../domain/fault.js';
import { refused, type ServiceResult } from '../domain/service-result.js';
import type { Deferrals } from './deferrals.js';
import { remediationHistory } from './history.js';
import { rebootUnavailableReason } from './node-kind.js';
import { type Decision, decide } from './policy.js';
import type { Requests } from './requests.js';
import { refusalClause, type ServiceKit, taken } from './service-kit.js';

const hourMs = 3_600_000;

export type TriageResult = ServiceResult & { decision?: Decision };

export class Triage {
  constructor(
    private readonly kit: ServiceKit,
    private readonly requests: Requests,
    private readonly deferrals: Deferrals,
  ) {}

  /**
   * The monitor's entry for a new incident: the policy decides the action and mode, then it is started
   * (auto), put to a human (approve, or auto stopped by a safety limit), or only alerted (off).
   */
  async triage(incidentId: string): Promise<TriageResult> {
    const { incidents, clock } = this.kit.deps;
    const incident = incidents.get(incidentId);
    if (!incident) return refused('not_found', { reason: 'no_incident', incidentId });
    if (incident.state !== 'detected') return taken(incident);
    const now = clock.now();
    const decision = this.decideFor(incident, now);
    if (decision.action !== 'none' && decision.mode !== 'off') {
      const deferred = await this.deferrals.deferIfAutoRepair(incident, decision);
      if (deferred) return { ...deferred, decision };
    }
    if (decision.action === 'reboot' && decision.mode !== 'off') {
      const node = await this.kit.deps.cluster.getNode(incident.node);
      const noReboot = node ? rebootUnavailableReason(node) : undefined;
      // A reboot is not possible there; a replace is more than the policy chose on its own: a human decides.
      if (noReboot) {
        incidents.update(incident.id, { plannedAction: 'replace', mode: 'approve' });
        return { ...this.requests.askHuman(incident, 'replace', `${decision.reason} ${noReboot}`), decision };
      }
    }
    if (decision.action === 'none' || decision.mode === 'off') {
      this.kit.publish(
        incident,
        incident.node,
        {
          step: 'policy',
          details: {
            action: decision.action,
            mode: decision.mode,
            reason: decision.reason,
          },
        },
        'monitor',
      );
      return { ok: true, incidentId, outcome: { kind: 'alert_only', reason: decision.reason }, decision };
    }
    if (decision.mode === 'auto') {
      const result = await this.requests.startAuto(decision.action, incident.node, decision.reason, {
        incidentId,
        ...(decision.force ? { force: true } : {}),
      });
      if (result.ok || result.code !== 'limited') return { ...result, decision };
      const reason = `${decision.reason} ${refusalClause(result)}`;
      return { ...this.requests.askHuman(incident, decision.action, reason), decision };
    }
    return { ...this.requests.askHuman(incident, decision.action, decision.reason), decision };
  }

  /**
   * A reboot that did not cure the fault (`escalated` to replace by the verify step): open a successor
   * incident for the same fault and triage it. The policy sees the reboot that did not help and escalates
   * to replace (or hands it to a human when the node was remediated too often). Idempotent: a second call
   * finds the open successor.
   */
  async followUp(escalatedId: string): Promise<ServiceResult> {
    const { incidents, clock } = this.kit.deps;
    const prev = incidents.get(escalatedId);
    if (!prev) return refused('not_found', { reason: 'no_incident', incidentId: escalatedId });
    if (prev.state !== 'escalated') {
      return refused('invalid', { reason: 'not_escalated', incidentId: escalatedId, state: prev.state });
    }
    const later = incidents
      .list({ node: prev.node })
      .find((i) => i.id !== prev.id && i.faultKey === prev.faultKey && i.firstSeen >= prev.firstSeen);
    if (later)
      return { ok: true, incidentId: later.id, outcome: { kind: 'followed_up', incidentId: later.id } };
    const now = clock.now();
    const { id: _id, updatedAt: _u, closedAt: _c, ...rest } = prev;
    const successor = incidents.create({
      ...rest,
      state: 'detected',
      preexisting: false,
      firstSeen: now,
      lastSeen: now,
      count: 1,
      stateReason: `follow-up of ${prev.id}: ${prev.stateReason ?? 'the repair did not cure the fault'}`,
    });
    this.kit.deps.audit.append({
      at: now,
      actor: 'monitor',
      action: 'escalate',
      node: prev.node,
      incidentId: successor.id,
      reason: `the repair of ${prev.id} did not cure the fault`,
      result: 'opened',
    });
    this.kit.publish(
      successor,
      successor.node,
      {
        step: 'detected',
        details: {
          category: successor.category,
          severity: successor.severity,
          ...(successor.xid !== undefined ? { xid: successor.xid } : {}),
          ...(successor.gpu !== undefined ? { gpu: successor.gpu } : {}),
        },
      },
      'monitor',
    );
    return this.triage(successor.id);
  }

  /**
   * Escalations to replace that have no successor yet (the process stopped between the two): followed up
   * at start-up, so a crash never loses one. Only those closed within the escalation window count.
   */
  async resumeFollowUps(): Promise<string[]> {
    const { incidents, steps, clock, policy } = this.kit.deps;
    const since = clock.now() - policy.remediation.escalation.returnWithinHours * hourMs;
    const all = incidents.list({ updatedSince: since });
    const pending = all.filter(
      (i) =>
        i.state === 'escalated' &&
        steps.lastOf(i.id, 'escalate')?.detail.to !== undefined &&
        !all.some((j) => j.node === i.node && j.faultKey === i.faultKey && j.firstSeen > i.firstSeen),
    );
    for (const i of pending) await this.followUp(i.id);
    return pending.map((i) => i.id);
  }

  /** The policy's decision with the node's history, recorded on the incident and in the audit trail. */
  private decideFor(incident: Parameters<typeof faultOfIncident>[0], now: number): Decision {
    const { incidents, steps, policy, audit } = this.kit.deps;
    const history = remediationHistory(
      incidents.list({ node: incident.node }),
      (id) => steps.list(id),
      { id: incident.id, faultKey: incident.faultKey },
      policy.remediation.escalation,
      now,
    );
    const decision = decide(faultOfIncident(incident), policy, history, now);
    incidents.update(incident.id, { plannedAction: decision.action, mode: decision.mode });
    audit.append({
      at: now,
      actor: 'monitor',
      action: 'policy',
      node: incident.node,
      incidentId: incident.id,
      reason: decision.reason,
      result: `${decision.action}/${decision.mode}`,
      details: { ...history, escalated: decision.escalated === true },
    });
    return decision;
  }
}
