/**
 * The core as the chat layer sees it: a ChatPort over the application services and the store's read
 * models, and a bus subscription that turns progress events into one alert per incident, its thread
 * replies and root updates. Lives in the composition layer: Slack code never imports the store.
 */
import { type CoverageInput, signalCoverage } from '../domain/coverage.js';
import { type DiagLevel, diagVerdict } from '../domain/diag.js';
import type { ProgressEvent } from '../domain/events.js';
import { gpuSeverity, isNodeProblem, type Verdict } from '../domain/finding.js';
import { type Incident, isOpen, isWorking } from '../domain/incident.js';
import type { GpuNode } from '../domain/node.js';
import type { AuditLog, Exclusion } from '../domain/ports.js';
import type { Logger } from '../log/logger.js';
import { isAutoModeNode, rebootUnavailableReason } from '../remediate/node-kind.js';
import { repairCsv, repairSummary } from '../remediate/repair-report.js';
import type { Deferral, DiagnosticsResult } from '../remediate/services.js';
import type { AlertView } from '../slack/blocks/alert.js';
import type { ChatDiagResult, ChatPort, ChatSink } from '../slack/chat-port.js';
import type { FleetSummary, NodeDetail } from '../slack/format.js';
import { toChatResult } from '../slack/service-text.js';
import type { Runtime } from './runtime.js';

/** What the chat bridge reads from the store for its views, and the audit trail it appends to. */
export interface ChatBridgeStore {
  readonly incidents: {
    get(id: string): Incident | undefined;
    /** Oldest first. */
    listOpen(): Incident[];
    /** Newest first, at most `limit`. */
    listByNode(node: string, limit?: number): Incident[];
  };
  readonly nodeState: {
    /** The node's last recorded verdict and scan time; undefined when the node was never recorded. */
    get(node: string): { verdict?: Verdict; lastScanAt?: number } | undefined;
  };
  readonly exclusions: {
    get(node: string, now: number): Exclusion | undefined;
    list(now: number): Exclusion[];
  };
  readonly audit: AuditLog;
}

export function createChatPort(rt: Runtime): ChatPort {
  const { services, clock } = rt;
  const store: ChatBridgeStore = rt.store;
  return {
    requestManual: async (action, node, actor, reason, options) =>
      toChatResult(await services.requestManual(action, node, actor, reason, options)),
    approve: async (id, actor, action) => toChatResult(await services.approve(id, actor, action)),
    cancel: async (id, actor, reason) => toChatResult(await services.cancel(id, actor, reason)),
    dismiss: async (id, actor, reason) => toChatResult(await services.dismiss(id, actor, reason)),
    exclude: async (node, options, actor) => toChatResult(await services.exclude(node, options, actor)),
    unexclude: async (node, actor) => toChatResult(await services.unexclude(node, actor)),
    pause: async (actor, reason) => toChatResult(await services.pause(actor, reason)),
    resume: async (actor) => toChatResult(await services.resume(actor)),
    fleetSummary: () => fleetSummaryOf(rt, store),
    nodeDetail: (name) => nodeDetailOf(rt, store, name),
    exclusions: async () => store.exclusions.list(clock.now()),
    async history(name) {
      const entries = store.audit.list({ node: name, limit: 20 });
      if (entries.length === 0 && !rt.sensing.watcher.get(name)) return undefined;
      return entries;
    },
    openIncidents: async () => store.incidents.listOpen(),
    async alertView(id) {
      const incident = store.incidents.get(id);
      return incident ? alertViewOf(rt, incident) : undefined;
    },
    async repairReport(days) {
      const records = rt.store.repairs.listSince(clock.now() - days * 86_400_000);
      const day = new Date(clock.now()).toISOString().slice(0, 10);
      return {
        repairs: new Set(records.map((r) => r.incidentId)).size,
        csv: repairCsv(records),
        filename: `gpu-medic-repairs-${day}-${days}d.csv`,
        summary: repairSummary(records, days),
      };
    },
    runDiagnostics: async (node, level, actor) =>
      diagAnswer(await services.runDiagnostics(node, level, actor), node, level),
    audit: (entry) => store.audit.append(entry),
    now: () => clock.now(),
  };
}

/** The services' diagnostic answer with its words. */
function diagAnswer(r: DiagnosticsResult, node: string, level: DiagLevel): ChatDiagResult {
  if (!r.ok) {
    const message =
      r.code === 'denied'
        ? 'You are not allowed to run DCGM diagnostics.'
        : r.code === 'not_found'
          ? `Node ${node} does not exist.`
          : r.code === 'busy'
            ? `${node} is being repaired (incident ${r.detail ?? '?'}); the repair runs its own diagnostics.`
            : `DCGM diagnostics cannot run: ${r.detail ?? 'not configured'}.`;
    return { ok: false, code: r.code, message };
  }
  const { run } = r;
  if (run.kind !== 'report') {
    const verdict = run.kind;
    const what = verdict === 'unavailable' ? 'could not run' : 'gave no verdict';
    return {
      ok: true,
      node,
      level,
      verdict,
      results: [],
      message: `DCGM diagnostics level ${level} ${what} on ${node}: ${run.reason}.`,
    };
  }
  const verdict = diagVerdict(run.report);
  const said = verdict === 'pass' ? 'passed' : verdict === 'warn' ? 'passed with warnings' : 'failed';
  return {
    ok: true,
    node,
    level,
    verdict,
    results: run.report.results,
    ...(run.report.nodeWide ? { nodeWide: run.report.nodeWide } : {}),
    message: `DCGM diagnostics level ${level} ${said} on ${node}.`,
  };
}

/** The alert of an incident as the chat layer shows it: the node's kind, a deferral to EKS auto repair. */
function alertViewOf(rt: Runtime, incident: Incident): AlertView {
  const { services, config } = rt;
  const node = rt.sensing.watcher.get(incident.node);
  const deferral = services.deferralOf(incident.id);
  return {
    incident,
    cluster: config.clusterName,
    node: {
      instanceId: incident.instanceId,
      instanceType: incident.instanceType,
      nodeGroup: incident.nodeGroup,
      ...(node && isAutoModeNode(node) ? { autoMode: true } : {}),
    },
    ...(deferral
      ? {
          autoRepair: {
            condition: deferral.condition,
            ...(deferral.reason ? { reason: deferral.reason } : {}),
            until: deferral.until,
          },
        }
      : {}),
    dryRun: config.dryRun,
    statusLine: statusLine(incident),
  };
}

/** `/gpu status`: per-node health from the last scan, open incidents, limits, the model's use, coverage. */
export async function fleetSummaryOf(
  rt: Pick<Runtime, 'services' | 'config' | 'clock' | 'sensing' | 'lastScan'>,
  store: Pick<ChatBridgeStore, 'incidents'>,
): Promise<FleetSummary> {
  const { services, config, clock } = rt;
  const status = await services.status();
  const nodes = rt.sensing.watcher.list();
  const counts = { healthy: 0, warning: 0, critical: 0, unknown: 0 };
  const reads: CoverageInput[] = [];
  for (const n of nodes) {
    const r = rt.lastScan.get(n.name);
    if (r) reads.push(r.snapshot);
    // GPU health: a node problem (NODE_CONDITION) is listed on its own, not counted as a GPU warning.
    const severity = r ? gpuSeverity(r.verdict.findings) : undefined;
    if (!r || r.snapshot.error) counts.unknown++;
    else if (severity === 'critical') counts.critical++;
    else if (severity === 'warning') counts.warning++;
    else counts.healthy++;
  }
  const open = store.incidents.listOpen();
  return {
    cluster: config.clusterName,
    at: clock.now(),
    gpuNodes: nodes.length,
    ...counts,
    inRemediation: open.filter((i) => isWorking(i.state)).length,
    excluded: status.exclusions.length,
    breaker: status.paused.open
      ? { state: 'paused', reason: status.paused.reason, since: status.paused.at }
      : status.breaker.open
        ? { state: 'open', reason: status.breaker.reason, since: status.breaker.at }
        : { state: 'closed' },
    dryRun: config.dryRun,
    llm: {
      calls: rt.sensing.llmStats.calls,
      cacheHits: rt.sensing.llmStats.cacheHits,
      fallbacks: Object.values(rt.sensing.llmStats.fallbacks ?? {}).reduce((a, b) => a + Number(b), 0),
      ...(rt.sensing.llmStats.modelUnavailable
        ? {
            modelUnavailable: {
              modelId: rt.sensing.llmStats.modelUnavailable.modelId,
              reason: rt.sensing.llmStats.modelUnavailable.reason,
            },
          }
        : {}),
    },
    openIncidents: open,
    coverage: signalCoverage(reads),
  };
}

/** `/gpu status <node>`: the node, its last verdict and GPUs, its open incident, exclusion and last actions. */
async function nodeDetailOf(
  rt: Runtime,
  store: ChatBridgeStore,
  name: string,
): Promise<NodeDetail | undefined> {
  const { services, config, clock } = rt;
  const node = rt.sensing.watcher.get(name);
  const known = store.nodeState.get(name);
  if (!node && !known) return undefined;
  const scan = rt.lastScan.get(name);
  const verdict = scan?.verdict ?? known?.verdict;
  const open = store.incidents.listByNode(name, 20).filter((i) => isOpen(i.state));
  return {
    node: name,
    cluster: config.clusterName,
    instanceId: node?.instanceId,
    instanceType: node?.instanceType,
    nodeGroup: node?.nodeGroup,
    ready: node?.ready,
    unschedulable: node?.unschedulable,
    expectedGpus: node?.expectedGpus,
    allocatableGpus: node?.allocatableGpus,
    verdict: verdict
      ? {
          severity: verdict.severity,
          category: verdict.category,
          explanation: verdict.explanation,
          source: verdict.source,
          xid: verdict.xid,
          gpu: verdict.gpu,
        }
      : { severity: 'info', category: 'UNKNOWN', explanation: 'Not scanned yet.', source: 'rules' },
    // This process's last scan of the node; the store's time (written less often for quiet nodes) before one.
    checkedAt: scan?.snapshot.takenAt ?? known?.lastScanAt,
    gpus: (scan?.snapshot.gpus ?? []).map((g) => ({
      index: g.index,
      model: g.model,
      health: g.health,
      xidLast: g.xidLast,
      temperatureC: g.temperatureC,
      eccDbeVolatile: g.eccDbeVolatile,
      utilizationPct: g.utilizationPct,
    })),
    openIncident: open[0],
    nodeProblems: (scan?.verdict.findings ?? []).filter(isNodeProblem).map((f) => f.explanation),
    exclusion: store.exclusions.get(name, clock.now()),
    lastActions: store.audit.list({ node: name, limit: 10 }),
    ...(scan?.snapshot.signals ? { signals: scan.snapshot.signals } : {}),
    ...repairNotesOf(node, services.activeDeferral(name)),
  };
}

function repairNotesOf(
  node: GpuNode | undefined,
  deferral: Deferral | undefined,
): { repairNotes?: string[]; rebootUnavailable?: string } {
  const notes: string[] = [];
  const noReboot = node ? rebootUnavailableReason(node) : undefined;
  if (noReboot) notes.push(`Reboot not offered: ${noReboot}`);
  if (deferral) {
    notes.push(
      `EKS node auto repair is acting on ${deferral.condition}${deferral.reason ? ` (${deferral.reason})` : ''}: gpu-medic does not touch the node until ${new Date(deferral.until).toISOString()} and reports the outcome.`,
    );
  }
  return {
    ...(notes.length > 0 ? { repairNotes: notes } : {}),
    ...(noReboot ? { rebootUnavailable: noReboot } : {}),
  };
}

function statusLine(incident: Incident): string | undefined {
  if (incident.state === 'detected') return undefined;
  const reason = incident.stateReason ? ` — ${incident.stateReason}` : '';
  return `${incident.state.replace('_', ' ')}${reason}`;
}

/** A live progress → chat subscription. */
export interface ChatConnection {
  disconnect(): void;
  /** Resolves once every event published so far has been delivered to the sink (or failed and logged). */
  whenIdle(): Promise<void>;
}

/**
 * Progress → chat: one alert per incident (on `detected`), every step threaded under it, and the root
 * re-rendered when the incident's state changes. Events of one incident are handled strictly in publish
 * order: building the alert reads the store (async), and without the queue a step published right after
 * `detected` (triage's `policy`) reached the outbox first and became the thread's root.
 */
export function connectChat(
  rt: Pick<Runtime, 'bus'>,
  sink: ChatSink,
  port: ChatPort,
  logger?: Logger,
): ChatConnection {
  const lastState = new Map<string, string>();
  const queues = new Map<string, Promise<void>>();
  const handle = async (event: ProgressEvent) => {
    if (event.step === 'detected') {
      const v = await port.alertView(event.incidentId);
      // Detected again (the LLM refined the category after the scan): the alert is re-rendered, not re-posted.
      if (v && lastState.has(event.incidentId)) await sink.updateRoot(event.incidentId, v);
      else if (v) await sink.postAlert(v);
      lastState.set(event.incidentId, event.state);
      return;
    }
    await sink.postProgress(event);
    // A deferral to EKS node auto repair changes what the root offers (no buttons) without a state change.
    const rootChanges = event.step === 'auto_repair_deferred' || event.step === 'auto_repair_outcome';
    if (lastState.get(event.incidentId) !== event.state || rootChanges) {
      lastState.set(event.incidentId, event.state);
      const v = await port.alertView(event.incidentId);
      if (v) await sink.updateRoot(event.incidentId, v);
    }
    if (!isOpen(event.state)) lastState.delete(event.incidentId);
  };
  const disconnect = rt.bus.subscribe((event: ProgressEvent) => {
    const id = event.incidentId;
    const next = (queues.get(id) ?? Promise.resolve())
      .then(() => handle(event))
      .catch((err) => logger?.error({ err, incident: id }, 'chat delivery failed'));
    queues.set(id, next);
    void next.then(() => {
      if (queues.get(id) === next) queues.delete(id);
    });
  });
  return {
    disconnect,
    async whenIdle() {
      // A queue's tail never rejects (failures are logged); an event published meanwhile extends the wait.
      while (queues.size > 0) await Promise.all(queues.values());
    },
  };
}
