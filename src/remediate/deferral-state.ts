/**
 * Reading a deferral to EKS node auto repair back from its `auto_repair` step row: the one place that
 * knows the row's shape. The row is written by deferrals.ts; requests, the read models and the chat
 * bridge read it here.
 */
import type { Deferral } from '../domain/service-result.js';
import type { IncidentStore, StepStore } from './ports.js';

/** The bookkeeping row of a deferral to EKS node auto repair (beside `plan`; not a plan step). */
export const AutoRepairStep = 'auto_repair';

type Stores = { incidents: IncidentStore; steps: StepStore };

/** The deferral of this incident while it is under way (an untouched incident with a started row). */
export function deferralOf(deps: Stores, incidentId: string): Deferral | undefined {
  const incident = deps.incidents.get(incidentId);
  if (!incident || incident.state !== 'detected') return undefined;
  const row = deps.steps.lastOf(incidentId, AutoRepairStep);
  if (row?.status !== 'started') return undefined;
  const d = row.detail;
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const reason = str(d.reason);
  const nodeGroup = str(d.nodeGroup);
  return {
    incidentId,
    node: incident.node,
    condition: str(d.condition) ?? 'a node condition',
    ...(reason ? { reason } : {}),
    owner: d.owner === 'auto-mode' ? 'auto-mode' : 'managed-node-group',
    ...(nodeGroup ? { nodeGroup } : {}),
    until: typeof d.until === 'number' ? d.until : row.startedAt,
  };
}

/** The deferral in progress on this node, if any. */
export function activeDeferral(deps: Stores, nodeName: string): Deferral | undefined {
  for (const i of deps.incidents.list({ node: nodeName, open: true })) {
    const d = deferralOf(deps, i.id);
    if (d) return d;
  }
  return undefined;
}
