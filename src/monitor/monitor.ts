/**
 * The monitor loop: every interval (with jitter) scan every GPU node with bounded concurrency and a
 * per-node deadline, classify, and open or touch incidents. One slow or broken node never delays the
 * others, and its failure is itself a finding. The LLM is never awaited on the scan's critical path:
 * a node whose verdict needs the model gets the rules' verdict now and is refined when the answer lands.
 */
import type { Logger } from 'pino';
import { baseSnapshot, type Collector } from '../collect/collector.js';
import { coverageTally, missingFamilyPhrases, type SignalCoverage } from '../domain/coverage.js';
import { type Finding, gpuSeverity, type Verdict } from '../domain/finding.js';
import type { CollectionError, NodeSnapshot } from '../domain/gpu.js';
import { type Incident, isWorking, type PolicyMode, type RemediationAction } from '../domain/incident.js';
import type { GpuNode } from '../domain/node.js';
import type { Metrics } from '../metrics/metrics.js';
import { noteGpuCountSources } from './gpu-count-notes.js';
import { forEachBounded } from './pool.js';
import type { IncidentSighting, MonitorStore } from './ports.js';
import {
  actionable,
  changedGpuRows,
  QuietNodes,
  type QuietRecord,
  sameCounts,
  sameList,
} from './scan-memory.js';
import { takeFromScanRead } from './scan-read.js';
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

/** Optional work a collector does once at the start of every scan (e.g. refreshing API credentials). */
export interface ScanHooks {
  beforeScan?(): Promise<void>;
  /**
   * A source that reads the whole fleet once per scan (Prometheus) answers a node from that read, in memory,
   * without I/O; undefined when it cannot (no current read, or the node needs a query of its own), and the
   * node then goes through `collect`. The same snapshot `collect` would give.
   */
  fromScanRead?(node: GpuNode): NodeSnapshot | undefined;
}

export interface MonitorOptions {
  listNodes(): GpuNode[];
  collector: Collector & ScanHooks;
  classifier: NodeClassifier;
  /** Where incidents and XID state live; a read-only monitor (`gpu-medic scan`) has none. */
  store?: MonitorStore;
  /** The policy's decision for a new incident (the remediation layer's `decide`). */
  plan(finding: Finding, node: GpuNode, preexisting: boolean): Plan;
  /** A new incident (or one whose plan changed): the remediation services take it from here. */
  onIncident?(incident: Incident, node: GpuNode): void;
  /** Every scan's per-node result, for `gpu-medic scan`, `/gpu status` and the demo. */
  onNodeScanned?(result: NodeScanResult): void;
  intervalMs: number;
  concurrency: number;
  nodeTimeoutMs: number;
  /**
   * Each scan period is the interval × (1 ± jitter/2), uniformly at random, so replicas do not scan in
   * lockstep. Default 0.1 (± 5 %).
   */
  jitter?: number;
  /** Open no incidents: `gpu-medic scan` reads, it changes nothing. */
  readOnly?: boolean;
  /**
   * Keep every node's full snapshot in `ScanReport.results` until the scan ends. Default true. A
   * caller that needs only verdicts (`gpu-medic scan`, the benchmark, the loop) passes false: at
   * 5,000 nodes the snapshots held to the end of a scan are tens of MB of heap. `onNodeScanned`
   * still receives each full result as it is recorded.
   */
  retainSnapshots?: boolean;
  /**
   * An unchanged quiet node's stored last-scan time is written every this many full scans (staggered by node
   * name). Default 10. Its in-memory scan result (`/gpu status`) follows every scan.
   */
  quietTouchEvery?: number;
  metrics?: Metrics;
  logger?: Logger;
  now?: () => number;
}

export type { MonitorStore } from './ports.js';

/** What a scan keeps of one node: enough for verdict tables, counts and the benchmark. */
export interface NodeScanSummary {
  node: GpuNode;
  verdict: Verdict;
  ms: number;
  opened: Incident[];
  /** Why the node could not be read, when it could not. */
  error?: CollectionError;
}

export interface NodeScanResult extends NodeScanSummary {
  snapshot: NodeSnapshot;
}

export interface ScanReport {
  startedAt: number;
  durationMs: number;
  /** Every recorded node, without its snapshot. */
  summaries: NodeScanSummary[];
  /** Every recorded node with its snapshot; empty when the monitor runs with `retainSnapshots: false`. */
  results: NodeScanResult[];
  opened: Incident[];
  failures: number;
  /** Quiet nodes read the same as at their last record: their recorded verdict stood, no rules, no triage. */
  unchanged: number;
  /** Which signal families this scan's reads carried (see domain/coverage.ts). */
  coverage: SignalCoverage;
}

/** Default jitter: each period is the interval ± 5 %. */
export const DEFAULT_JITTER = 0.1;

/** Most nodes recorded in one transaction. */
const MAX_BATCH = 64;
/** Unchanged quiet nodes taken between two yields to the event loop. */
const YIELD_EVERY = 1024;
const NONE: readonly Incident[] = Object.freeze([]);

interface Scanned {
  node: GpuNode;
  snapshot: NodeSnapshot;
  ms: number;
}

const activeKeysKey = (node: string) => `active-keys:${node}`;
const xidCountsKey = (node: string) => `xid-counts:${node}`;

export class Monitor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ScanReport> | undefined;
  private stopped = true;
  private readonly now: () => number;
  private scans = 0;
  /** Instance types whose GPU count did not come from the EC2 table, already said in the log. */
  private readonly countNoticed = new Set<string>();
  /** The missing families last logged (joined), so a gap is logged once, and again only when it changes. */
  private loggedMissing: string | undefined;
  /**
   * Nodes whose last record said nothing: a scan that finds such a node unchanged records nothing for it
   * (instead of six reads and two writes), and one read the same as the last skips even the rules.
   */
  private readonly quiet: QuietNodes;

  constructor(private readonly opts: MonitorOptions) {
    this.now = opts.now ?? Date.now;
    this.quiet = new QuietNodes(opts.quietTouchEvery ?? 10);
    if (!opts.readOnly && !opts.store) throw new Error('a monitor that opens incidents needs a store');
  }

  private get store(): MonitorStore {
    if (!this.opts.store) throw new Error('a read-only monitor has no store');
    return this.opts.store;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    // A replica that leads again after another did meanwhile cannot trust what it recorded before.
    this.quiet.clear();
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

  /**
   * Fixed-period scheduling: a scan starts one period after the previous one STARTED, so a node is
   * read about every interval whatever a scan costs; a scan that overran its period is followed at
   * once, and never overlapped. Each period is the interval ± jitter/2 (uniform), so replicas or
   * restarts do not fall into lockstep while the mean period stays the interval.
   */
  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      const startedAt = performance.now();
      this.running = this.scanOnce();
      this.running
        .catch((err) => this.opts.logger?.error({ err }, 'scan failed'))
        .finally(() => {
          this.running = undefined;
          const jitter = this.opts.jitter ?? DEFAULT_JITTER;
          const period = this.opts.intervalMs * (1 + jitter * (Math.random() - 0.5));
          const wait = Math.max(0, startedAt + period - performance.now());
          if (wait === 0)
            this.opts.logger?.warn({ intervalMs: this.opts.intervalMs }, 'scan overran its interval');
          this.schedule(wait);
        });
    }, delayMs);
  }

  /** False once stopped (or before start): a standby replica's monitor is not running. */
  get isRunning(): boolean {
    return !this.stopped;
  }

  /** One pass over every GPU node. */
  scanOnce(): Promise<ScanReport> {
    return this.scan(undefined);
  }

  /**
   * An immediate scan of the named nodes (an Alertmanager push), recorded exactly like the periodic
   * scan's reads of them. It is not a scan of the fleet: the scan counter, the metrics of whole scans
   * and the coverage log are left alone. Names the node watch does not know come back in `unknown`.
   */
  async scanNodes(names: readonly string[]): Promise<{ report: ScanReport; unknown: string[] }> {
    const wanted = new Set(names);
    const report = await this.scan(wanted);
    const seen = new Set(report.summaries.map((s) => s.node.name));
    return { report, unknown: [...wanted].filter((n) => !seen.has(n)) };
  }

  private async scan(only: ReadonlySet<string> | undefined): Promise<ScanReport> {
    const full = only === undefined;
    const startedAt = this.now();
    const t0 = performance.now();
    if (this.opts.collector.beforeScan) {
      // Credentials refresh (rotating tokens); a failure is logged and the scrapes report their own errors.
      await this.opts.collector
        .beforeScan()
        .catch((err) => this.opts.logger?.warn({ err }, 'preparing the scan failed; scanning anyway'));
    }
    const listed = this.opts.listNodes();
    const nodes = full ? listed : listed.filter((n) => only.has(n.name));
    if (full) noteGpuCountSources(nodes, this.countNoticed, this.opts.logger);
    this.quiet.beginScan(full ? this.scans : undefined, full ? nodes : undefined);
    const results: NodeScanResult[] = [];
    const summaries: NodeScanSummary[] = [];
    const retain = this.opts.retainSnapshots !== false;
    let failures = 0;
    // Coverage counts each recorded node as it goes (its snapshot may not be retained).
    const covered = coverageTally();
    const keep = (r: NodeScanResult) => {
      const { node, verdict, ms, opened } = r;
      summaries.push(
        r.snapshot.error
          ? { node, verdict, ms, opened, error: r.snapshot.error }
          : { node, verdict, ms, opened },
      );
      if (retain) results.push(r);
      covered.add(r.snapshot);
    };
    let unchanged = 0;
    // Nodes finished in the same event-loop turn are recorded in one SQLite transaction (a savepoint
    // each, so one bad node rolls back alone): a commit per node was a tenth of a scan's CPU.
    const batch: Scanned[] = [];
    let queued: NodeJS.Immediate | undefined;
    const flush = () => {
      clearImmediate(queued);
      queued = undefined;
      if (batch.length === 0) return;
      const recorded = this.recordBatch(batch.splice(0));
      failures += recorded.failed;
      for (const r of recorded.results) keep(r);
    };
    /** Records the node with the next batch; true when that recorded the batch (or it is time to yield). */
    const take = (node: GpuNode, snapshot: NodeSnapshot, ms: number): boolean => {
      if (snapshot.error) failures++;
      // Read the same as when it was last recorded quiet: its verdict stands, and there is nothing to record.
      const same = this.opts.readOnly ? undefined : this.quiet.unchanged(node, snapshot);
      if (same) {
        const result: NodeScanResult = { node, snapshot, verdict: same, ms, opened: NONE as Incident[] };
        this.announce(result);
        keep(result);
        return ++unchanged % YIELD_EVERY === 0;
      }
      batch.push({ node, snapshot, ms });
      if (batch.length < MAX_BATCH) {
        queued ??= setImmediate(flush);
        return false;
      }
      flush();
      return true;
    };
    const { collector } = this.opts;
    const pooled = collector.fromScanRead
      ? await takeFromScanRead(nodes, (n) => collector.fromScanRead?.(n), take, this.opts.logger)
      : nodes;
    await forEachBounded(
      pooled,
      this.opts.concurrency,
      this.opts.nodeTimeoutMs,
      (node, signal) => this.opts.collector.collect(node, signal),
      (node, outcome) => {
        const snapshot: NodeSnapshot = outcome.ok
          ? outcome.value
          : {
              ...baseSnapshot(node, this.opts.collector.source, this.now()),
              error: {
                kind: outcome.timedOut ? 'timeout' : 'unreachable',
                message: outcome.timedOut
                  ? `no answer within ${this.opts.nodeTimeoutMs} ms`
                  : outcome.error.message,
              },
            };
        take(node, snapshot, outcome.ms);
      },
    );
    flush();
    this.touchQuiet();
    const durationMs = performance.now() - t0;
    const m = full ? this.opts.metrics : undefined;
    if (full) this.scans++;
    if (m) {
      m.scans.inc({ result: failures > 0 ? 'error' : 'ok' });
      m.scanDuration.observe(durationMs / 1000);
      const counts = { healthy: 0, warning: 0, critical: 0, unknown: 0 };
      for (const r of summaries) {
        // GPU health: a node problem (NODE_CONDITION) alone leaves the node's GPUs healthy.
        const severity = gpuSeverity(r.verdict.findings);
        if (r.error) counts.unknown++;
        else if (severity === 'critical') counts.critical++;
        else if (severity === 'warning') counts.warning++;
        else counts.healthy++;
      }
      for (const [verdict, n] of Object.entries(counts)) m.nodes.set({ verdict }, n);
    }
    const coverage = covered.result();
    if (m) for (const [family, n] of Object.entries(coverage.byFamily)) m.signalNodes.set({ family }, n);
    if (full) this.logCoverage(coverage);
    const opened = summaries.flatMap((r) => r.opened);
    this.opts.logger?.info(
      { nodes: nodes.length, unchanged, failures, opened: opened.length, ms: Math.round(durationMs) },
      full ? 'scan finished' : 'targeted scan finished',
    );
    return { startedAt, durationMs, summaries, results, opened, failures, unchanged, coverage };
  }

  /**
   * One warning naming the families some nodes did not carry (a stock exporter: ECC, retired pages, NVLink
   * errors …), not one per scan: logged again only when the set of missing families changes. A scan that
   * read no node says nothing about coverage and changes nothing.
   */
  private logCoverage(coverage: SignalCoverage): void {
    if (coverage.read === 0) return;
    const key = coverage.missing.join(',');
    if (key === (this.loggedMissing ?? '')) return;
    const hadGap = this.loggedMissing !== undefined && this.loggedMissing !== '';
    this.loggedMissing = key;
    if (coverage.missing.length > 0) {
      this.opts.logger?.warn(
        {
          missing: coverage.missing,
          coverage: missingFamilyPhrases(coverage),
          nodesRead: coverage.read,
        },
        'signal families missing: faults of these kinds cannot be detected on those nodes (README: Detection coverage)',
      );
    } else if (hadGap) {
      this.opts.logger?.info(
        { nodesRead: coverage.read },
        'every node read now carries every expected signal family',
      );
    }
  }

  /** Classifies and records a batch of scanned nodes; incidents are announced after the commit. */
  private recordBatch(items: Scanned[]): { results: NodeScanResult[]; failed: number } {
    const fail = (node: GpuNode, err: unknown) =>
      this.opts.logger?.error({ err, node: node.name }, 'recording a node scan failed');
    const classified: (Scanned & { verdict: Verdict; opened: Incident[] })[] = [];
    let failed = 0;
    for (const item of items) {
      try {
        classified.push({ ...item, verdict: this.opts.classifier.rules(item.snapshot), opened: [] });
      } catch (err) {
        failed++;
        fail(item.node, err);
      }
    }
    let recorded = classified;
    if (!this.opts.readOnly && classified.length > 0) {
      const { store } = this;
      const ok = new Set<(typeof classified)[number]>();
      // An unchanged quiet node needs no transaction: its scan time moves with the others' at the scan's end.
      const full = classified.filter((c) => {
        if (!this.quiet.still(c.node, c.snapshot, c.verdict)) return true;
        ok.add(c);
        return false;
      });
      const noted = new Map<string, QuietRecord | undefined>();
      try {
        if (full.length > 0)
          store.transaction(() => {
            for (const c of full) {
              try {
                c.opened = store.transaction(() => this.apply(c.node, c.snapshot, c.verdict, noted));
                ok.add(c);
              } catch (err) {
                noted.delete(c.node.name);
                fail(c.node, err);
              }
            }
          });
        for (const [name, record] of noted) this.quiet.set(name, record);
      } catch (err) {
        for (const c of full) {
          ok.delete(c);
          this.quiet.delete(c.node.name);
          fail(c.node, err);
        }
      }
      recorded = classified.filter((c) => ok.has(c));
      failed += classified.length - recorded.length;
    }
    const results: NodeScanResult[] = [];
    for (const { node, snapshot, verdict, ms, opened } of recorded) {
      const result = { node, snapshot, verdict, ms, opened };
      this.announce(result);
      results.push(result);
    }
    return { results, failed };
  }

  /** Tells the listeners about a recorded node: its new incidents, the model's refinement, the scan result. */
  private announce(result: NodeScanResult): void {
    const { node, snapshot, verdict, opened } = result;
    // Listeners run from a timer callback here: a throwing one must not crash the process.
    try {
      for (const incident of opened) {
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
      const refined = this.opts.readOnly ? undefined : this.opts.classifier.refine?.(snapshot, verdict);
      refined?.then(
        (v) => this.applyRefined(node, snapshot, v),
        (err) =>
          this.opts.logger?.warn({ err, node: node.name }, 'LLM refinement failed; the rules verdict stands'),
      );
      this.opts.onNodeScanned?.(result);
    } catch (err) {
      this.opts.logger?.error({ err, node: node.name }, 'a scan listener failed');
    }
  }

  /** Triage one node's verdict against what we remember; runs inside the batch's transaction. */
  private apply(
    node: GpuNode,
    snapshot: NodeSnapshot,
    verdict: Verdict,
    noted: Map<string, QuietRecord | undefined>,
  ): Incident[] {
    const { store } = this;
    const now = this.now();
    const created: Incident[] = [];
    {
      const previousKeys = store.kv.get<string[]>(activeKeysKey(node.name));
      const gpuRows = store.gpuState.get(node.name);
      // node_state only matters when the other records say nothing.
      const known = () => store.nodeState.has(node.name);
      const openStates = store.incidents.openFaultStates(node.name);
      const previousXidCounts = store.kv.get<Record<string, number>>(xidCountsKey(node.name));
      const result = triage({
        snapshot,
        verdict,
        previousGpuState: gpuRows.length > 0 || known() ? gpuRows : undefined,
        previousKeys: previousKeys ? new Set(previousKeys) : known() ? new Set() : undefined,
        openKeys: new Set(openStates.map((o) => o.faultKey)),
        previousXidCounts,
        // Excluded, or already being remediated (a node we are rebooting is expected to look broken).
        excluded:
          store.exclusions.get(node.name, now) !== undefined || openStates.some((o) => isWorking(o.state)),
      });
      for (const f of result.touch) store.incidents.openOrTouch(this.incidentInput(node, f, false), now);
      for (const { finding, preexisting } of result.open) {
        const r = store.incidents.openOrTouch(this.incidentInput(node, finding, preexisting), now);
        if (r.created) created.push(r.incident);
      }
      // Write only what changed: on a healthy fleet almost nothing does, and these are per-node rows.
      const changedGpus = changedGpuRows(result.gpuState, gpuRows);
      if (changedGpus.length > 0) store.gpuState.upsertMany(node.name, changedGpus, now);
      if (!previousKeys || !sameList(previousKeys, result.activeKeys))
        store.kv.set(activeKeysKey(node.name), result.activeKeys, now);
      if (Object.keys(result.xidCounts).length > 0 && !sameCounts(previousXidCounts, result.xidCounts))
        store.kv.set(xidCountsKey(node.name), result.xidCounts, now);
      store.nodeState.upsert({ node: node.name, verdict, lastScanAt: now, bootId: node.bootId }, now);
      const nothingToRemember =
        result.open.length === 0 &&
        result.touch.length === 0 &&
        result.activeKeys.length === 0 &&
        Object.keys(result.xidCounts).length === 0 &&
        openStates.length === 0 &&
        !verdict.findings.some(actionable);
      noted.set(node.name, nothingToRemember ? this.quiet.record(node, snapshot, verdict) : undefined);
    }
    return created;
  }

  /** One statement for the quiet nodes whose scan time is due; a failure only leaves their scan times behind. */
  private touchQuiet(): void {
    const names = this.quiet.takeDue();
    if (names.length === 0) return;
    const now = this.now();
    try {
      this.store.transaction(() => this.store.nodeState.touchMany(names, now, now));
    } catch (err) {
      // The next scan records them in full rather than trust a cache the store did not follow.
      this.quiet.forget(names);
      this.opts.logger?.error({ err, nodes: names.length }, 'recording the scan time of quiet nodes failed');
    }
  }

  /** The model's verdict arrived after the scan moved on: update open incidents, open what is new. */
  private applyRefined(node: GpuNode, snapshot: NodeSnapshot, verdict: Verdict): void {
    const { store } = this;
    // The refined verdict replaces the recorded one: the next scan records the node in full.
    this.quiet.delete(node.name);
    const now = this.now();
    const changed: Incident[] = [];
    store.transaction(() => {
      for (const f of verdict.findings) {
        if (f.severity !== 'warning' && f.severity !== 'critical') continue;
        const open = store.incidents.findOpen(node.name, f.key);
        if (open) {
          // The same model answer later served from the cache is not a change (keep `llm` as its source).
          const sameAnswer = open.source === f.source || (open.source !== 'rules' && f.source !== 'rules');
          if (open.category === f.category && sameAnswer) continue;
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

  private incidentInput(node: GpuNode, f: Finding, preexisting: boolean): IncidentSighting {
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
