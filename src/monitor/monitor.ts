/**
 * The monitor loop: every interval (with jitter) scan every GPU node with bounded concurrency and a
 * per-node deadline, classify, and open or touch incidents. One slow or broken node never delays the
 * others, and its failure is itself a finding. The LLM is never awaited on the scan's critical path:
 * a node whose verdict needs the model gets the rules' verdict now and is refined when the answer lands.
 */
import type { Logger } from 'pino';
import type { Collector } from '../collect/collector.js';
import type { Finding, Verdict } from '../domain/finding.js';
import type { NodeSnapshot } from '../domain/gpu.js';
import type { Incident, PolicyMode, RemediationAction } from '../domain/incident.js';
import type { GpuNode } from '../domain/node.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Store } from '../store/index.js';
import { mapBounded } from './pool.js';
import { triage } from './triage.js';

export interface Plan {
  plannedAction: RemediationAction;
  mode: PolicyMode;
}

export interface NodeClassifier {
  /** The rules' verdict, synchronously. */
  rules(snapshot: NodeSnapshot): Verdict;
  /** The full verdict (LLM / cache) when the rules could not settle it; undefined when not needed. */
  refine?(snapshot: NodeSnapshot, rulesVerdict: Verdict): Promise<Verdict> | undefined;
}

export interface MonitorOptions {
  listNodes(): GpuNode[];
  collector: Collector;
  classifier: NodeClassifier;
  store: Pick<Store, 'incidents' | 'gpuState' | 'nodeState' | 'kv' | 'exclusions' | 'transaction'>;
  /** The policy's decision for a new incident (the remediation layer's `decide`). */
  plan(finding: Finding, node: GpuNode, preexisting: boolean): Plan;
  /** A new incident (or one whose plan changed): the remediation services take it from here. */
  onIncident?(incident: Incident, node: GpuNode): void;
  /** Every scan's per-node result, for `gpu-medic scan`, `/gpu status` and the demo. */
  onNodeScanned?(result: NodeScanResult): void;
  intervalMs: number;
  concurrency: number;
  nodeTimeoutMs: number;
  /** Fraction of the interval added at random to each wait, so many replicas do not scan in lockstep. */
  jitter?: number;
  /** How long a scan waits for a (cached) LLM verdict before going on with the rules'. */
  llmWaitMs?: number;
  /** Open no incidents: `gpu-medic scan` reads, it changes nothing. */
  readOnly?: boolean;
  metrics?: Metrics;
  logger?: Logger;
  now?: () => number;
}

export interface NodeScanResult {
  node: GpuNode;
  snapshot: NodeSnapshot;
  verdict: Verdict;
  ms: number;
  opened: Incident[];
}

export interface ScanReport {
  startedAt: number;
  durationMs: number;
  results: NodeScanResult[];
  opened: Incident[];
  failures: number;
}

const activeKeysKey = (node: string) => `active-keys:${node}`;
const xidCountsKey = (node: string) => `xid-counts:${node}`;

export class Monitor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ScanReport> | undefined;
  private stopped = true;
  private readonly now: () => number;
  private scans = 0;

  constructor(private readonly opts: MonitorOptions) {
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  /** Stops scheduling; resolves when the scan in progress (if any) has finished and been recorded. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running?.catch(() => undefined);
  }

  get scanCount(): number {
    return this.scans;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.scanOnce();
      this.running
        .catch((err) => this.opts.logger?.error({ err }, 'scan failed'))
        .finally(() => {
          this.running = undefined;
          const jitter = (this.opts.jitter ?? 0.1) * this.opts.intervalMs * Math.random();
          this.schedule(this.opts.intervalMs + jitter);
        });
    }, delayMs);
  }

  /** One pass over every GPU node. */
  async scanOnce(): Promise<ScanReport> {
    const startedAt = this.now();
    const t0 = performance.now();
    const nodes = this.opts.listNodes();
    const results: NodeScanResult[] = [];
    let failures = 0;
    await mapBounded(
      nodes,
      this.opts.concurrency,
      this.opts.nodeTimeoutMs,
      (node, signal) => this.opts.collector.collect(node, signal),
      (node, outcome) => {
        const snapshot: NodeSnapshot = outcome.ok
          ? outcome.value
          : {
              node: node.name,
              takenAt: this.now(),
              source: this.opts.collector.source,
              gpus: [],
              expectedGpus: node.expectedGpus || undefined,
              allocatableGpus: node.allocatableGpus,
              conditions: node.conditions,
              bootId: node.bootId,
              error: {
                kind: outcome.timedOut ? 'timeout' : 'unreachable',
                message: outcome.timedOut
                  ? `no answer within ${this.opts.nodeTimeoutMs} ms`
                  : outcome.error.message,
              },
            };
        if (snapshot.error) failures++;
        try {
          results.push(this.record(node, snapshot, outcome.ms));
        } catch (err) {
          failures++;
          this.opts.logger?.error({ err, node: node.name }, 'recording a node scan failed');
        }
      },
    );
    const durationMs = performance.now() - t0;
    this.scans++;
    const m = this.opts.metrics;
    if (m) {
      m.scans.inc({ result: failures > 0 ? 'error' : 'ok' });
      m.scanDuration.observe(durationMs / 1000);
      const counts = { healthy: 0, warning: 0, critical: 0, unknown: 0 };
      for (const r of results) {
        if (r.snapshot.error) counts.unknown++;
        else if (r.verdict.severity === 'critical') counts.critical++;
        else if (r.verdict.severity === 'warning') counts.warning++;
        else counts.healthy++;
      }
      for (const [verdict, n] of Object.entries(counts)) m.nodes.set({ verdict }, n);
    }
    const opened = results.flatMap((r) => r.opened);
    this.opts.logger?.info(
      { nodes: nodes.length, failures, opened: opened.length, ms: Math.round(durationMs) },
      'scan finished',
    );
    return { startedAt, durationMs, results, opened, failures };
  }

  private record(node: GpuNode, snapshot: NodeSnapshot, ms: number): NodeScanResult {
    const verdict = this.opts.classifier.rules(snapshot);
    const opened = this.opts.readOnly ? [] : this.apply(node, snapshot, verdict);
    const refined = this.opts.readOnly ? undefined : this.opts.classifier.refine?.(snapshot, verdict);
    refined?.then(
      (v) => this.applyRefined(node, snapshot, v),
      (err) =>
        this.opts.logger?.warn({ err, node: node.name }, 'LLM refinement failed; the rules verdict stands'),
    );
    const result = { node, snapshot, verdict, ms, opened };
    this.opts.onNodeScanned?.(result);
    return result;
  }

  /** Triage one node's verdict against what we remember, in one transaction. */
  private apply(node: GpuNode, snapshot: NodeSnapshot, verdict: Verdict): Incident[] {
    const { store } = this.opts;
    const now = this.now();
    const created: Incident[] = [];
    store.transaction(() => {
      const known = store.nodeState.get(node.name);
      const previousKeys = store.kv.get<string[]>(activeKeysKey(node.name));
      const gpuRows = store.gpuState.get(node.name);
      const openKeys = new Set(
        store.incidents
          .listByNode(node.name, 200)
          .filter((i) => !['resolved', 'escalated', 'failed', 'cancelled', 'dismissed'].includes(i.state))
          .map((i) => i.faultKey),
      );
      const result = triage({
        snapshot,
        verdict,
        previousGpuState: known || gpuRows.length > 0 ? gpuRows : undefined,
        previousKeys: previousKeys ? new Set(previousKeys) : known ? new Set() : undefined,
        openKeys,
        previousXidCounts: store.kv.get<Record<string, number>>(xidCountsKey(node.name)),
        // Excluded, or already being remediated (a node we are rebooting is expected to look broken).
        excluded:
          store.exclusions.get(node.name, now) !== undefined ||
          store.incidents
            .listByNode(node.name, 50)
            .some((i) =>
              ['cordoned', 'draining', 'drained', 'rebooting', 'replacing', 'verifying'].includes(i.state),
            ),
      });
      for (const f of result.touch) store.incidents.openOrTouch(this.incidentInput(node, f, false), now);
      for (const { finding, preexisting } of result.open) {
        const r = store.incidents.openOrTouch(this.incidentInput(node, finding, preexisting), now);
        if (r.created) created.push(r.incident);
      }
      if (result.gpuState.length > 0) store.gpuState.upsertMany(node.name, result.gpuState, now);
      store.kv.set(activeKeysKey(node.name), result.activeKeys, now);
      if (Object.keys(result.xidCounts).length > 0)
        store.kv.set(xidCountsKey(node.name), result.xidCounts, now);
      store.nodeState.upsert({ node: node.name, verdict, lastScanAt: now, bootId: node.bootId }, now);
    });
    for (const incident of created) {
      this.opts.logger?.info(
        {
          node: node.name,
          incident: incident.id,
          category: incident.category,
          preexisting: incident.preexisting,
        },
        'incident opened',
      );
      this.opts.onIncident?.(incident, node);
    }
    return created;
  }

  /** The model's verdict arrived after the scan moved on: update open incidents, open what is new. */
  private applyRefined(node: GpuNode, snapshot: NodeSnapshot, verdict: Verdict): void {
    const { store } = this.opts;
    const now = this.now();
    const changed: Incident[] = [];
    store.transaction(() => {
      for (const f of verdict.findings) {
        if (f.severity !== 'warning' && f.severity !== 'critical') continue;
        const open = store.incidents.findOpen(node.name, f.key);
        if (open) {
          if (open.category === f.category && open.source === f.source) continue;
          const plan = this.opts.plan(f, node, open.preexisting);
          const replan = open.state === 'detected' && plan.plannedAction !== open.plannedAction;
          const updated = store.incidents.update(
            open.id,
            {
              category: f.category,
              severity: f.severity,
              recommendedAction: f.action,
              explanation: f.explanation,
              source: f.source,
              ...(replan ? plan : {}),
            },
            now,
          );
          if (updated && replan) changed.push(updated);
        } else if (f.source !== 'rules' && store.exclusions.get(node.name, now) === undefined) {
          const r = store.incidents.openOrTouch(this.incidentInput(node, f, false), now);
          if (r.created) changed.push(r.incident);
        }
      }
      store.nodeState.upsert({ node: node.name, verdict, lastScanAt: snapshot.takenAt }, now);
    });
    for (const incident of changed) this.opts.onIncident?.(incident, node);
  }

  private incidentInput(node: GpuNode, f: Finding, preexisting: boolean) {
    return {
      node: node.name,
      instanceId: node.instanceId,
      instanceType: node.instanceType,
      nodeGroup: node.nodeGroup,
      faultKey: f.key,
      category: f.category,
      severity: f.severity,
      recommendedAction: f.action,
      ...this.opts.plan(f, node, preexisting),
      xid: f.xid,
      gpu: f.gpu,
      explanation: f.explanation,
      source: f.source,
      evidence: f.evidence,
      preexisting,
    };
  }
}
