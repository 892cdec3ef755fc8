/**
 * A person's decisions about an incident: approve (start what was planned, or another action), cancel
 * (stop a run or withdraw a pending one), dismiss (nothing to do). Each is authorized and audited.
 */
import type { IncidentState, RemediationAction } from '../domain/incident.js';
import { isWorking, PendingStates, WorkingStates } from '../domain/incident.js';
import { refused, type ServiceResult } from '../domain/service-result.js';
import type { Requests } from './requests.js';
import { type ServiceKit, taken } from './service-kit.js';

export class Decisions {
  constructor(
    private readonly kit: ServiceKit,
    private readonly requests: Requests,
  ) {}

  async approve(incidentId: string, actor: string, action?: RemediationAction): Promise<ServiceResult> {
    const incident = this.kit.deps.incidents.get(incidentId);
    if (!incident) {
      const result = refused('not_found', { reason: 'no_incident', incidentId });
      return this.kit.audited(actor, 'approve', result, { incidentId });
    }
    if (!PendingStates.includes(incident.state)) {
      return this.kit.audited(actor, 'approve', taken(incident), { incidentId, node: incident.node });
    }
    return this.requests.requestManual(
      action ?? incident.plannedAction,
      incident.node,
      actor,
      `approved by ${actor}`,
      {
        incidentId,
      },
    );
  }

  cancel(incidentId: string, actor: string, reason: string): Promise<ServiceResult> {
    return this.kit.guarded(actor, 'cancel', { incidentId, reason }, (ctx) => {
      const { incidents } = this.kit.deps;
      const incident = incidents.get(incidentId);
      if (!incident) return refused('not_found', { reason: 'no_incident', incidentId });
      ctx.node = incident.node;
      const from: IncidentState[] = [...PendingStates, ...WorkingStates];
      if (!incidents.transition(incidentId, from, 'cancelled', `cancelled by ${actor}: ${reason}`)) {
        return refused('invalid', { reason: 'closed', incidentId, state: incidents.get(incidentId)?.state });
      }
      this.kit.publish(incident, incident.node, { step: 'cancelled', details: { reason } }, actor);
      return {
        ok: true,
        incidentId,
        outcome: {
          kind: 'cancelled',
          incidentId,
          node: incident.node,
          wasWorking: isWorking(incident.state),
        },
      };
    });
  }

  dismiss(incidentId: string, actor: string, reason = 'dismissed'): Promise<ServiceResult> {
    return this.kit.guarded(actor, 'dismiss', { incidentId, reason }, (ctx) => {
      const { incidents } = this.kit.deps;
      const incident = incidents.get(incidentId);
      if (!incident) return refused('not_found', { reason: 'no_incident', incidentId });
      ctx.node = incident.node;
      if (isWorking(incident.state)) return taken(incident, true);
      if (!incidents.transition(incidentId, PendingStates, 'dismissed', `dismissed by ${actor}: ${reason}`)) {
        return refused('invalid', { reason: 'closed', incidentId, state: incident.state });
      }
      this.kit.publish(incident, incident.node, { step: 'dismissed', details: { reason } }, actor);
      return { ok: true, incidentId, outcome: { kind: 'dismissed', incidentId, node: incident.node } };
    });
  }
}
