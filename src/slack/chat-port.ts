/**
 * What the Slack layer needs from the core, and what the core hands to a chat surface. The Slack code never
 * imports k8s, aws or store: the composition root wires these ports to the application services
 * (src/remediate/services.ts) and to the SQLite store, which satisfy them structurally.
 */
import type { DiagLevel, DiagNodeResult, DiagResult } from '../domain/diag.js';
import type { ProgressEvent } from '../domain/events.js';
import type { RemediationAction } from '../domain/incident.js';
import type { AuditEntry, Exclusion } from '../domain/ports.js';
import type { ServiceErrorCode } from '../domain/service-result.js';
import type { AlertView } from './blocks/alert.js';
import type { FleetSummary, IncidentSummary, NodeDetail } from './format.js';

/** The services' refusal codes (domain/service-result.ts). */
export type ChatErrorCode = ServiceErrorCode;

/** The services' answer put into words for a human (src/slack/service-text.ts `toChatResult`). */
export type ChatResult =
  | { ok: true; incidentId?: string; message: string; dryRun?: boolean }
  | { ok: false; code: ChatErrorCode; message: string };

/** A DCGM diagnostic run on demand: its verdict and table, and a sentence for a human. */
export type ChatDiagResult =
  | {
      ok: true;
      node: string;
      level: DiagLevel;
      /** `unavailable`: nothing to run it in; `error`: it ran but gave no verdict (`message` says why). */
      verdict: 'pass' | 'warn' | 'fail' | 'unavailable' | 'error';
      results: DiagResult[];
      nodeWide?: DiagNodeResult[];
      message: string;
    }
  | { ok: false; code: ChatErrorCode; message: string };

/**
 * The application services plus the read models the answers are built from. Commands and clicks call the
 * same entry points as the monitor; the services make every state change atomic and audit it.
 * Actors are `slack:<userId>`.
 */
export interface ChatPort {
  /** A person's request: always manual. Automatic work starts only from the monitor, never from chat. */
  requestManual(
    action: RemediationAction,
    node: string,
    actor: string,
    reason: string,
    /** `gpu`: the GPU a reset takes (ignored by other actions; NVSwitch types reset all GPUs anyway). */
    options?: { incidentId?: string; gpu?: number },
  ): Promise<ChatResult>;
  approve(incidentId: string, actor: string, action?: RemediationAction): Promise<ChatResult>;
  cancel(incidentId: string, actor: string, reason: string): Promise<ChatResult>;
  dismiss(incidentId: string, actor: string, reason?: string): Promise<ChatResult>;
  exclude(node: string, options: { until?: number; reason: string }, actor: string): Promise<ChatResult>;
  unexclude(node: string, actor: string): Promise<ChatResult>;
  pause(actor: string, reason?: string): Promise<ChatResult>;
  resume(actor: string): Promise<ChatResult>;

  /**
   * `/gpu diag` and the alert's "Run diagnostics": `dcgmi diag -r <level>` on the node now, without cordoning it
   * (authorized and audited like an action: it loads the GPUs for minutes). Resolves when DCGM has answered.
   */
  runDiagnostics(node: string, level: DiagLevel, actor: string): Promise<ChatDiagResult>;

  /** `/gpu status` and the App Home. */
  fleetSummary(): Promise<FleetSummary>;
  /** `/gpu status <node>`; undefined when the cluster has no such node. */
  nodeDetail(node: string): Promise<NodeDetail | undefined>;
  exclusions(): Promise<Exclusion[]>;
  /** Most recent first; undefined when the cluster has no such node (and there is no history for it). */
  history(node: string): Promise<AuditEntry[] | undefined>;
  openIncidents(): Promise<IncidentSummary[]>;
  /** The alert as it should look now, for re-rendering the root message after a click. */
  alertView(incidentId: string): Promise<AlertView | undefined>;
  /**
   * `/gpu report [days]`: the repair records (RMA evidence) of the last `days` days, as a CSV file (one row
   * per GPU and repair) and as a few lines for a chat where files cannot be posted.
   */
  repairReport(days: number): Promise<RepairReport>;
  /** For refusals decided in the Slack layer (authorization), which never reach the services. */
  audit(entry: AuditEntry): void | Promise<void>;
  now(): number;
}

/**
 * Where alerts and their threads go: the Slack outbox (SlackDelivery) or the demo console (ConsoleChat).
 * The core calls postAlert once per incident (repeats are ignored), postProgress for every step, and
 * updateRoot when the alert should show a new state.
 */
export interface ChatSink {
  postAlert(view: AlertView): void | Promise<void>;
  postProgress(event: ProgressEvent): void | Promise<void>;
  updateRoot(incidentId: string, view: AlertView): void | Promise<void>;
}

/** The repair report as the chat posts it. */
export interface RepairReport {
  /** Repairs (not rows: one repair has a row per GPU it touched). */
  repairs: number;
  csv: string;
  filename: string;
  summary: string;
}

/** Slack user → the actor string the services and the audit trail use. */
export function slackActor(userId: string): string {
  return `slack:${userId}`;
}

/** `slack:U123` → `U123`; any other actor (monitor, cli:…) → undefined. */
export function userIdFromActor(actor: string): string | undefined {
  return actor.startsWith('slack:') ? actor.slice('slack:'.length) : undefined;
}

// ---- Persistence ports of the Slack outbox; the store's OutboxRepo and SlackRefRepo fit them as they are. ----

export interface ChatOutboxEntry<P = unknown> {
  id: number;
  orderingKey: string;
  payload: P;
  attempts: number;
  createdAt: number;
  dedupeKey?: string;
}

export interface ChatOutbox {
  enqueue(
    sink: string,
    orderingKey: string,
    payload: unknown,
    options?: { dedupeKey?: string; now?: number },
  ): { id: number; duplicate: boolean };
  /**
   * Per ordering key only its oldest pending message, and only when it is due; taken until `leaseUntil`, so
   * another replica delivering from the same database never posts the same message too.
   */
  claimBatch<P = unknown>(sink: string, now: number, limit: number, leaseUntil: number): ChatOutboxEntry<P>[];
  /** Gives a taken message back, due at `dueAt`, without counting an attempt. */
  defer(id: number, dueAt: number): boolean;
  markDelivered(id: number, result?: unknown, now?: number): boolean;
  markRetry(id: number, error: string, nextAttemptAt: number): boolean;
  markDead(id: number, error: string, now?: number): boolean;
}

/** Where each incident's alert lives: replies and chat.update need its channel and ts. */
export interface SlackRefs {
  get(incidentId: string): { channel: string; ts: string } | undefined;
  set(incidentId: string, channel: string, ts: string): void;
}
