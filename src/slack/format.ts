/**
 * Text helpers shared by the Block Kit builders, and the plain-data inputs of the status builders.
 * Everything here is pure: the caller passes `now` where time matters, so output is reproducible.
 */
import type { SignalCoverage } from '../domain/coverage.js';
import type { ClassificationSource, Severity } from '../domain/finding.js';
import type { SignalFamily } from '../domain/gpu.js';
import type { Incident, IncidentState, PolicyMode, RemediationAction } from '../domain/incident.js';
import type { AuditEntry, Exclusion } from '../domain/ports.js';

/**
 * Slack mrkdwn needs `&`, `<` and `>` escaped; unescaped, log text could render `<!channel>` or a fake link.
 * Every string that did not come from our own templates goes through this.
 */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Inline code that untrusted text cannot break out of (backticks would end the span). */
export function inlineCode(text: string): string {
  const clean = escapeMrkdwn(text)
    .replace(/`/g, 'ˋ')
    .replace(/[\r\n]+/g, ' ');
  return clean.length > 0 ? '`' + clean + '`' : '—';
}

/** A Slack user mention for a real user ID; anything else is shown as escaped text, never as a ping. */
export function userMention(userId: string): string {
  return /^[UW][A-Z0-9]{2,30}$/.test(userId) ? `<@${userId}>` : escapeMrkdwn(userId);
}

/** `slack:U123` or a bare user ID → `<@U123>`; `monitor` → gpu-medic; `cli:alice` → escaped text. */
export function actorLabel(actor: string | undefined): string {
  if (!actor) return 'gpu-medic';
  if (actor.startsWith('slack:')) return userMention(actor.slice('slack:'.length));
  if (actor === 'monitor' || actor === 'engine') return 'gpu-medic';
  if (/^[UW][A-Z0-9]{8,30}$/.test(actor)) return userMention(actor);
  return escapeMrkdwn(actor);
}

/**
 * Human durations: `0.3 s`, `12 s`, `2m 10s`, `3m`, `1h 5m`, `2d 3h`. Sub-10-second steps keep a decimal
 * because "cordoned in 0 s" says nothing; longer ones drop it because nobody reads "130.4 s".
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 10_000) return `${(Math.round(ms / 100) / 10).toFixed(1)} s`;
  const totalSeconds = Math.round(ms / 1000);
  if (totalSeconds < 60) return `${totalSeconds} s`;
  const days = Math.floor(totalSeconds / 86_400);
  const hours = Math.floor((totalSeconds % 86_400) / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const seconds = totalSeconds % 60;
  if (days > 0) return hours > 0 ? `${days}d ${hours}h` : `${days}d`;
  if (hours > 0) return minutes > 0 ? `${hours}h ${minutes}m` : `${hours}h`;
  return seconds > 0 ? `${minutes}m ${seconds}s` : `${minutes}m`;
}

/** UTC `2026-11-29 14:32 UTC`: the fallback Slack shows where it cannot localise a date. */
export function utcStamp(ms: number): string {
  if (!Number.isFinite(ms)) return 'unknown time';
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

/** Slack date formatting, rendered in each reader's own time zone: `<!date^1700000000^{date_short_pretty} {time}|…>`. */
export function slackDate(ms: number, format = '{date_short_pretty} {time}'): string {
  if (!Number.isFinite(ms)) return 'unknown time';
  return `<!date^${Math.floor(ms / 1000)}^${format}|${utcStamp(ms)}>`;
}

export const severityEmoji: Record<Severity, string> = {
  critical: '🔴',
  warning: '🟠',
  info: '🔵',
  healthy: '🟢',
};

export const sourceLabel: Record<ClassificationSource, string> = {
  rules: 'rules (NVIDIA XID catalog)',
  llm: 'LLM (Bedrock)',
  cache: 'LLM (cached answer)',
};

/** `reboot` → `Reboot`. */
export function capitalize(text: string): string {
  return text.length > 0 ? text[0]?.toUpperCase() + text.slice(1) : text;
}

/** "Policy: reboot · auto" / "Policy: replace · waiting for approval" / "Policy: alert only". */
export function policyLine(action: RemediationAction, mode: PolicyMode, state?: IncidentState): string {
  if (action === 'none' || mode === 'off') return 'Policy: alert only';
  if (mode === 'auto') return `Policy: ${action} · auto`;
  return state === 'awaiting_approval' || state === 'detected' || state === undefined
    ? `Policy: ${action} · waiting for approval`
    : `Policy: ${action} · approval required`;
}

/** `XID 79 · XID_CRITICAL_79`, or just the category. */
export function faultLabel(incident: Pick<Incident, 'xid' | 'category'>): string {
  return incident.xid !== undefined ? `XID ${incident.xid} · ${incident.category}` : incident.category;
}

export const stateLabel: Record<IncidentState, string> = {
  detected: 'detected',
  awaiting_approval: 'awaiting approval',
  cordoned: 'cordoned',
  draining: 'draining',
  drained: 'drained',
  rebooting: 'rebooting',
  replacing: 'replacing',
  verifying: 'verifying',
  resolved: 'resolved',
  escalated: 'escalated',
  failed: 'failed',
  cancelled: 'cancelled',
  dismissed: 'dismissed',
};

// ---- Inputs of the status builders: plain data, filled by the application services. ----

/** What a list of incidents shows; a full `Incident` fits. */
export type IncidentSummary = Pick<
  Incident,
  'id' | 'node' | 'severity' | 'category' | 'xid' | 'gpu' | 'state' | 'plannedAction' | 'mode' | 'firstSeen'
> &
  Partial<Pick<Incident, 'instanceType' | 'faultKey' | 'explanation'>>;

export const BreakerStates = ['closed', 'open', 'paused'] as const;
/** closed: automatic actions run · open: tripped by the fleet's health · paused: an operator said `/gpu pause`. */
export type BreakerState = (typeof BreakerStates)[number];

export interface BreakerStatus {
  state: BreakerState;
  /** "4 of 10 GPU nodes unhealthy (limit 20 %)", "paused by <user>". */
  reason?: string;
  since?: number;
}

export interface LlmStats {
  calls: number;
  cacheHits: number;
  fallbacks: number;
  /** Set when Bedrock refused the model for good: the model id and Bedrock's words. */
  modelUnavailable?: { modelId: string; reason: string };
}

export interface FleetSummary {
  cluster: string;
  /** When the summary was taken. */
  at: number;
  gpuNodes: number;
  healthy: number;
  warning: number;
  critical: number;
  /** Not read yet, or unreadable (exporter down …). */
  unknown: number;
  inRemediation: number;
  excluded: number;
  breaker: BreakerStatus;
  dryRun?: boolean;
  llm?: LlmStats;
  /** All open incidents; builders show the most severe first and cap the list. */
  openIncidents: IncidentSummary[];
  /** Which signal families the nodes' last reads carried (ECC counters: 0 of 40 nodes on stock exporters). */
  coverage?: SignalCoverage;
}

export interface GpuRow {
  index: number;
  model?: string;
  health?: 'pass' | 'warn' | 'fail';
  /** Last XID (sticky), 0 or undefined = none. */
  xidLast?: number;
  temperatureC?: number;
  eccDbeVolatile?: number;
  utilizationPct?: number;
}

export interface NodeDetail {
  node: string;
  cluster?: string;
  instanceId?: string;
  instanceType?: string;
  nodeGroup?: string;
  ready?: boolean;
  unschedulable?: boolean;
  /** Physical GPUs the node should have (GpuNode.expectedGpus). */
  expectedGpus?: number;
  /** Physical GPUs allocatable; undefined under MIG (GpuNode.allocatableGpus). */
  allocatableGpus?: number;
  verdict: {
    severity: Severity;
    category: string;
    explanation: string;
    source: ClassificationSource;
    xid?: number;
    gpu?: number;
  };
  /** When the verdict was taken; undefined = never scanned. */
  checkedAt?: number;
  gpus: GpuRow[];
  openIncident?: IncidentSummary;
  /** Node conditions that are not GPU faults (NODE_CONDITION findings of the last scan), one sentence each. */
  nodeProblems?: string[];
  exclusion?: Exclusion;
  /** Most recent first. */
  lastActions: AuditEntry[];
  /** Signal families the node's last read carried; undefined = not read, or the source does not say. */
  signals?: readonly SignalFamily[];
  /** How this node is repaired where it differs from the usual (Auto Mode: no reboot; EKS auto repair acting). */
  repairNotes?: string[];
  /** Why `/gpu reboot` is refused for this node before any confirmation (an EKS Auto Mode node). */
  rebootUnavailable?: string;
}
