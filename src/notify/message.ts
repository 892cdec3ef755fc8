/**
 * The neutral notification body every sink sends (SNS message, webhook body, Lambda event) and the
 * CloudWatch sink turns into datapoints. Pure: built from an incident and one progress event.
 *
 * Besides gpu-medic's own snake_case fields it carries the AWS sample's event fields
 * (`timestamp, error_type, node_name, instance_id, error_details, cluster_name`) so receivers written
 * for the sample keep working unchanged.
 */
import type { ProgressEvent, ProgressStep } from '../domain/events.js';
import type { Incident } from '../domain/incident.js';

/**
 * The steps worth telling other systems about: an incident opening, its state changes and the safety
 * limits. Per-pod detail (pod_evicted, pdb_wait …) stays in the Slack thread and the audit trail.
 */
export const NotifiedSteps = [
  'detected',
  'approval_needed',
  'cordoned',
  'reboot_issued',
  'replace_issued',
  'resolved',
  'escalated',
  'failed',
  'cancelled',
  'dismissed',
  'safety_limit',
] as const satisfies readonly ProgressStep[];
export type NotifiedStep = (typeof NotifiedSteps)[number];

const notified: ReadonlySet<string> = new Set(NotifiedSteps);

export function isNotifiedStep(step: ProgressStep): step is NotifiedStep {
  return notified.has(step);
}

/** Explanations come from rules or an LLM: bounded so a message always fits SNS's 256 KB. */
export const EXPLANATION_MAX_CHARS = 2000;
const EVIDENCE_MAX_LINES = 20;
const EVIDENCE_LINE_MAX_CHARS = 500;

export interface NotificationMessage {
  /** Body format version: receivers can switch on it when fields change. */
  schema: 'gpu-medic.notification/v1';
  incident_id: string;
  cluster: string;
  node: string;
  instance_id: string | null;
  instance_type: string | null;
  node_group: string | null;
  category: string;
  severity: string;
  /** What the policy decided to do (none, cordon, reboot, replace …). */
  action: string;
  /** The incident's state after this step. */
  state: string;
  step: NotifiedStep;
  explanation: string;
  /** Who classified it: rules, llm or cache. */
  source: string | null;
  xid: number | null;
  gpu: number | null;
  first_seen: string | null;
  last_seen: string | null;
  /** When the step happened (ISO 8601). */
  at: string;
  /** Nothing was changed: the step is reported as "would …". */
  dry_run: boolean;
  actor: string | null;
  /** Step-specific facts (limit names, replacement node, boot ids …), as the event carried them. */
  details: Record<string, unknown>;

  // ── the AWS sample's event fields ──
  timestamp: string;
  error_type: string;
  node_name: string;
  error_details: {
    explanation: string;
    evidence: string[];
    xid: number | null;
    gpu: number | null;
    step: NotifiedStep;
    state: string;
  };
  cluster_name: string;
}

function iso(ms: number | undefined): string | null {
  return ms === undefined || !Number.isFinite(ms) ? null : new Date(ms).toISOString();
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}

/** JSON-safe copy of the event details: functions, bigints and cycles would break every sink. */
function jsonSafe(details: ProgressEvent['details']): Record<string, unknown> {
  try {
    const text = JSON.stringify(details, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    const parsed: unknown = text === undefined ? {} : JSON.parse(text);
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? Object.fromEntries(Object.entries(parsed))
      : {};
  } catch {
    return { unserializable: true };
  }
}

/**
 * Builds the body for one event, or undefined when the step is not notified. The incident may be
 * missing (deleted, or a lookup failure): the message then carries what the event knows.
 */
export function buildNotification(
  event: ProgressEvent,
  incident: Incident | undefined,
  cluster: string,
): NotificationMessage | undefined {
  if (!isNotifiedStep(event.step)) return undefined;
  const at = iso(event.at) ?? new Date(0).toISOString();
  const explanation = clip(incident?.explanation ?? '', EXPLANATION_MAX_CHARS);
  const category = incident?.category ?? 'UNKNOWN';
  const xid = incident?.xid ?? null;
  const gpu = incident?.gpu ?? null;
  const instanceId = incident?.instanceId ?? null;
  return {
    schema: 'gpu-medic.notification/v1',
    incident_id: event.incidentId,
    cluster,
    node: event.node,
    instance_id: instanceId,
    instance_type: incident?.instanceType ?? null,
    node_group: incident?.nodeGroup ?? null,
    category,
    severity: incident?.severity ?? 'unknown',
    action: incident?.plannedAction ?? 'none',
    state: event.state,
    step: event.step,
    explanation,
    source: incident?.source ?? null,
    xid,
    gpu,
    first_seen: iso(incident?.firstSeen),
    last_seen: iso(incident?.lastSeen),
    at,
    dry_run: event.dryRun === true,
    actor: event.actor ?? null,
    details: jsonSafe(event.details),
    timestamp: at,
    error_type: category,
    node_name: event.node,
    error_details: {
      explanation,
      evidence: (incident?.evidence ?? [])
        .slice(0, EVIDENCE_MAX_LINES)
        .map((l) => clip(l, EVIDENCE_LINE_MAX_CHARS)),
      xid,
      gpu,
      step: event.step,
      state: event.state,
    },
    cluster_name: cluster,
  };
}

/** The SNS Subject: printable ASCII, one line, under 100 characters (SNS rejects anything else). */
export const SUBJECT_MAX_CHARS = 99;

export function notificationSubject(
  m: Pick<NotificationMessage, 'severity' | 'category' | 'node' | 'step'>,
): string {
  const raw = `[gpu-medic] ${m.severity} ${m.category} on ${m.node}: ${m.step}`;
  const ascii = raw
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/\s+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .trim();
  return clip(ascii, SUBJECT_MAX_CHARS);
}
