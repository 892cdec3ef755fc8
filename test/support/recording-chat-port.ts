/**
 * Test support: a ChatPort that records every call and keeps just enough state to answer like the services
 * — including their atomic claim: the first approve of a pending incident wins, later ones are `busy`.
 */

import type { DiagLevel, DiagResult } from '../../src/domain/diag.js';
import { withoutDetails } from '../../src/domain/event-details.js';
import {
  type ProgressEvent,
  type ProgressEventBase,
  progressEvent,
  type StepDetails,
} from '../../src/domain/events.js';
import type { Incident, RemediationAction } from '../../src/domain/incident.js';
import type { AuditEntry, Exclusion } from '../../src/domain/ports.js';
import type { AlertButtonAction, AlertView } from '../../src/slack/blocks/alert.js';
import type {
  ChatDiagResult,
  ChatPort,
  ChatResult,
  ChatSink,
  RepairReport,
} from '../../src/slack/chat-port.js';
import { userIdFromActor } from '../../src/slack/chat-port.js';
import type { FleetSummary, IncidentSummary, NodeDetail } from '../../src/slack/format.js';
import { incident } from './fixtures.js';

/** The chat layer's incident: a p4d node awaiting approval of a replacement, at `slackT0`. */
export const slackT0 = Date.UTC(2026, 10, 29, 3, 12, 5);

export function slackIncident(over: Partial<Incident> = {}): Incident {
  return incident({
    id: 'inc-0001',
    node: 'ip-10-0-1-2.ec2.internal',
    instanceId: 'i-0abc1234def567890',
    instanceType: 'p4d.24xlarge',
    nodeGroup: 'gpu-a100',
    mode: 'approve',
    explanation: 'GPU 3 has fallen off the bus.',
    evidence: ['NVRM: Xid (PCI:0000:91:00): 79, GPU has fallen off the bus.'],
    state: 'awaiting_approval',
    firstSeen: slackT0,
    lastSeen: slackT0,
    count: 1,
    updatedAt: slackT0,
    ...over,
  });
}

/** The `i`th progress event of a thread, one second apart from `slackT0`. */
export function slackEvent(incidentId: string, step: ProgressEvent['step'], i: number): ProgressEvent {
  const told: StepDetails =
    step === 'pod_evicted'
      ? { step, details: { pod: `ml/train-${i}`, evicted: i, total: 9 } }
      : withoutDetails(step);
  const base: ProgressEventBase = {
    incidentId,
    node: 'ip-10-0-1-2.ec2.internal',
    state: 'draining',
    at: slackT0 + i * 1000,
    elapsedMs: 1200 + i,
  };
  return progressEvent(base, told);
}

export interface PortCall {
  method: string;
  args: unknown[];
}

export class RecordingChatPort implements ChatPort {
  readonly calls: PortCall[] = [];
  readonly audits: AuditEntry[] = [];
  readonly exclusionList: Exclusion[] = [];
  readonly incidents = new Map<string, { incident: Incident; actedBy?: AlertView['actedBy'] }>();
  nodes = new Set(['ip-10-0-1-2.ec2.internal', 'ip-10-0-1-3.ec2.internal']);
  clock = slackT0;
  /** Make the next call throw, to prove handlers never leak errors. */
  failWith: Error | undefined;

  constructor(incidents: Incident[] = [slackIncident()]) {
    for (const i of incidents) this.incidents.set(i.id, { incident: i });
  }

  private record(method: string, args: unknown[]): void {
    this.calls.push({ method, args });
    if (this.failWith) throw this.failWith;
  }

  callsOf(method: string): PortCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  now(): number {
    return this.clock;
  }

  async requestManual(
    action: RemediationAction,
    node: string,
    actor: string,
    reason: string,
    options?: { incidentId?: string; gpu?: number },
  ): Promise<ChatResult> {
    this.record(
      'requestManual',
      options ? [action, node, actor, reason, options] : [action, node, actor, reason],
    );
    if (!this.nodes.has(node))
      return { ok: false, code: 'not_found', message: `Node ${node} does not exist.` };
    return { ok: true, incidentId: 'inc-manual', message: `Started ${action} of ${node}.` };
  }

  async approve(incidentId: string, actor: string, action?: RemediationAction): Promise<ChatResult> {
    this.record('approve', [incidentId, actor, action]);
    // Yield first, so concurrent clicks really interleave before the claim.
    await new Promise((r) => setImmediate(r));
    const entry = this.incidents.get(incidentId);
    if (!entry) return { ok: false, code: 'not_found', message: `Incident ${incidentId} does not exist.` };
    // The claim: check and set with no await in between, like the services' compare-and-set.
    if (entry.incident.state !== 'awaiting_approval' && entry.incident.state !== 'detected') {
      return { ok: false, code: 'busy', message: `${entry.incident.node} is already being remediated.` };
    }
    entry.incident = { ...entry.incident, state: 'cordoned' };
    const userId = userIdFromActor(actor);
    const acted = action ?? entry.incident.plannedAction;
    if (userId && acted !== 'none' && acted !== 'drain' && acted !== 'uncordon') {
      entry.actedBy = { action: acted as AlertButtonAction, userId };
    }
    return {
      ok: true,
      incidentId,
      message: `${action ?? 'Remediation'} of ${entry.incident.node} approved.`,
    };
  }

  async cancel(incidentId: string, actor: string, reason: string): Promise<ChatResult> {
    this.record('cancel', [incidentId, actor, reason]);
    return { ok: true, incidentId, message: 'Cancelled.' };
  }

  async dismiss(incidentId: string, actor: string, reason?: string): Promise<ChatResult> {
    this.record('dismiss', [incidentId, actor, reason]);
    return { ok: true, incidentId, message: `Dismissed incident ${incidentId}.` };
  }

  async exclude(
    node: string,
    options: { until?: number; reason: string },
    actor: string,
  ): Promise<ChatResult> {
    this.record('exclude', [node, options, actor]);
    if (!this.nodes.has(node))
      return { ok: false, code: 'not_found', message: `Node ${node} does not exist.` };
    this.exclusionList.push({
      node,
      reason: options.reason,
      createdBy: actor,
      createdAt: this.clock,
      ...(options.until !== undefined ? { expiresAt: options.until } : {}),
    });
    return { ok: true, message: `${node} excluded.` };
  }

  async unexclude(node: string, actor: string): Promise<ChatResult> {
    this.record('unexclude', [node, actor]);
    const at = this.exclusionList.findIndex((e) => e.node === node);
    if (at < 0) return { ok: false, code: 'not_found', message: `${node} is not excluded.` };
    this.exclusionList.splice(at, 1);
    return { ok: true, message: `${node} is no longer excluded.` };
  }

  async pause(actor: string, reason?: string): Promise<ChatResult> {
    this.record('pause', [actor, reason]);
    return { ok: true, message: 'Automatic remediation paused.' };
  }

  async resume(actor: string): Promise<ChatResult> {
    this.record('resume', [actor]);
    return { ok: true, message: 'Automatic remediation resumed.' };
  }

  async fleetSummary(): Promise<FleetSummary> {
    this.record('fleetSummary', []);
    return {
      cluster: 'sim-cluster',
      at: this.clock,
      gpuNodes: this.nodes.size,
      healthy: this.nodes.size - 1,
      warning: 0,
      critical: 1,
      unknown: 0,
      inRemediation: 0,
      excluded: this.exclusionList.length,
      breaker: { state: 'closed' },
      openIncidents: await this.openIncidents(),
    };
  }

  /** Nodes answered as EKS Auto Mode nodes (no reboot). */
  readonly autoModeNodes = new Set<string>();

  async nodeDetail(node: string): Promise<NodeDetail | undefined> {
    this.record('nodeDetail', [node]);
    if (!this.nodes.has(node)) return undefined;
    const noReboot = this.autoModeNodes.has(node)
      ? `${node} is an EKS Auto Mode node: its EC2 instance is managed by EKS and cannot be rebooted through the EC2 API.`
      : undefined;
    return {
      node,
      verdict: { severity: 'healthy', category: 'HEALTHY', explanation: 'All GPUs pass.', source: 'rules' },
      checkedAt: this.clock,
      gpus: [{ index: 0, model: 'A100', health: 'pass' }],
      lastActions: [],
      ...(noReboot ? { rebootUnavailable: noReboot, repairNotes: [`Reboot not offered: ${noReboot}`] } : {}),
    };
  }

  async exclusions(): Promise<Exclusion[]> {
    this.record('exclusions', []);
    return [...this.exclusionList];
  }

  async history(node: string): Promise<AuditEntry[] | undefined> {
    this.record('history', [node]);
    return this.nodes.has(node) ? this.audits.filter((a) => a.node === node) : undefined;
  }

  async openIncidents(): Promise<IncidentSummary[]> {
    return [...this.incidents.values()].map((e) => e.incident);
  }

  async alertView(incidentId: string): Promise<AlertView | undefined> {
    const entry = this.incidents.get(incidentId);
    if (!entry) return undefined;
    return {
      incident: entry.incident,
      cluster: 'sim-cluster',
      ...(entry.actedBy ? { actedBy: entry.actedBy } : {}),
    };
  }

  /** What `repairReport` answers: no repairs unless a test sets some. */
  report: RepairReport = {
    repairs: 0,
    csv: 'ended_at,incident\r\n',
    filename: 'gpu-medic-repairs.csv',
    summary: 'No GPU repairs in the last 30 days.',
  };

  async repairReport(days: number): Promise<RepairReport> {
    this.record('repairReport', [days]);
    return this.report;
  }

  /** What the next diagnostic finds on a known node: every GPU passes unless a test set this. */
  diagResults: DiagResult[] = [0, 1, 2, 3].map((gpu) => ({ test: 'software', gpu, status: 'pass' }));

  async runDiagnostics(node: string, level: DiagLevel, actor: string): Promise<ChatDiagResult> {
    this.record('runDiagnostics', [node, level, actor]);
    if (!this.nodes.has(node))
      return { ok: false, code: 'not_found', message: `Node ${node} does not exist.` };
    const failed = this.diagResults.some((r) => r.status === 'fail');
    return {
      ok: true,
      node,
      level,
      verdict: failed ? 'fail' : 'pass',
      results: this.diagResults,
      message: `DCGM diagnostics level ${level} ${failed ? 'failed' : 'passed'} on ${node}.`,
    };
  }

  audit(entry: AuditEntry): void {
    this.calls.push({ method: 'audit', args: [entry] });
    this.audits.push(entry);
  }
}

/** A ChatSink that only records, for listener tests. */
export class RecordingSink implements ChatSink {
  readonly alerts: AlertView[] = [];
  readonly progress: ProgressEvent[] = [];
  readonly updates: { incidentId: string; view: AlertView }[] = [];
  postAlert(view: AlertView): void {
    this.alerts.push(view);
  }
  postProgress(event: ProgressEvent): void {
    this.progress.push(event);
  }
  updateRoot(incidentId: string, view: AlertView): void {
    this.updates.push({ incidentId, view });
  }
}
