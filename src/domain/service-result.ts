/**
 * What the remediation services answer: a code and the facts behind it, never a sentence. The chat layer
 * (src/slack/service-text.ts) and the CLI turn these into words; the audit trail keeps them as they are.
 */
import type { GpuSharing } from './gpu-count.js';
import type { Incident, IncidentState, RemediationAction } from './incident.js';
import { RemediationActions } from './incident.js';
import type { Exclusion } from './ports.js';

/** Everything a person may ask of the services; each is checked against the actor before it runs. */
export const ServiceActions = [
  ...RemediationActions.filter((a) => a !== 'none'),
  'approve',
  'cancel',
  'dismiss',
  'exclude',
  'unexclude',
  'pause',
  'resume',
  // Read-only but costly: a DCGM diagnostic loads the node's GPUs for minutes.
  'diagnose',
] as const;
export type ServiceAction = (typeof ServiceActions)[number];

export type ServiceErrorCode =
  | 'not_found'
  | 'not_gpu'
  | 'excluded'
  | 'busy'
  | 'denied'
  | 'limited'
  | 'invalid';

/** An incident as a refusal names it: enough to say who holds the node and in which state. */
export interface IncidentBrief {
  id: string;
  node: string;
  state: IncidentState;
  plannedAction: RemediationAction;
  stateReason?: string;
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

/** Why a call was refused. `says` fields carry a sentence written by a pure check (safety, node kind). */
export type ServiceRefusal =
  | { reason: 'unknown_action'; action: string }
  | { reason: 'denied'; action: ServiceAction }
  | { reason: 'no_node'; node: string }
  | { reason: 'not_gpu'; node: string; action: ServiceAction }
  | { reason: 'cannot_reboot'; node: string; says: string }
  | { reason: 'no_incident'; incidentId: string }
  | { reason: 'other_node'; incidentId: string; incidentNode: string; node: string }
  /** Someone else holds it (a run, a human, a final state); `cancelInstead`: dismiss refused for a run. */
  | { reason: 'taken'; incident?: IncidentBrief; cancelInstead?: boolean }
  | { reason: 'auto_repair'; deferral: Deferral }
  | { reason: 'safety'; limit: string; says: string }
  | { reason: 'no_plan'; action: RemediationAction }
  | { reason: 'closed'; incidentId: string; state?: IncidentState }
  | { reason: 'not_escalated'; incidentId: string; state: IncidentState }
  | { reason: 'past_end' }
  | { reason: 'too_long'; maxMs: number }
  | { reason: 'not_excluded'; node: string };

/** What a call did. */
export type ServiceOutcome =
  | {
      kind: 'started';
      action: RemediationAction;
      node: string;
      incidentId: string;
      actor: string;
      reason: string;
      dryRun: boolean;
    }
  | { kind: 'awaiting_approval'; action: RemediationAction; node: string; reason: string }
  | { kind: 'alert_only'; reason: string }
  | {
      kind: 'deferred';
      node: string;
      condition: string;
      status: string;
      conditionReason?: string;
    }
  | { kind: 'followed_up'; incidentId: string }
  | { kind: 'cancelled'; incidentId: string; node: string; wasWorking: boolean }
  | { kind: 'dismissed'; incidentId: string; node: string }
  | { kind: 'excluded'; node: string; until?: number; runningIncidentId?: string }
  | { kind: 'unexcluded'; node: string }
  | { kind: 'paused'; by: string }
  | { kind: 'resumed'; by: string; wasPaused: boolean };

export type ServiceResult =
  | { ok: true; incidentId?: string; dryRun?: boolean; outcome: ServiceOutcome }
  | { ok: false; code: ServiceErrorCode; refusal: ServiceRefusal };

export function refused(code: ServiceErrorCode, refusal: ServiceRefusal): ServiceResult {
  return { ok: false, code, refusal };
}

/** The circuit breaker or a human's pause. */
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
}

export interface NodeStatus {
  node: string;
  exists: boolean;
  gpuNode: boolean;
  unschedulable?: boolean;
  ready?: boolean;
  /** What the node says about its GPUs (present when it exists). */
  gpus?: { allocatable?: number; expected?: number; sharing?: GpuSharing };
  excluded?: Exclusion;
  optOut: boolean;
  openIncidents: Incident[];
}
