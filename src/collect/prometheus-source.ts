/**
 * DCGM_SOURCE=prometheus: the exporters' series, read through Prometheus (or Amazon Managed Prometheus) with a
 * handful of instant queries per scan instead of one scrape per node (prometheus-queries.ts says which).
 *
 * Decisions:
 * - One fleet read per scan (`beforeScan`), shared by every node's `collect`; a `collect` outside a scan (the
 *   remediation's health check) reads afresh unless the last read is younger than `freshForMs`.
 * - A node with no coverage series is not read: `no-exporter`, a coverage gap, never "healthy".
 * - A failed query fails the whole read: every node of that scan reports the same clear error (a partial
 *   answer would make the missing nodes look healthy).
 * - The snapshot has the exporter source's shape. Abnormal series go through the exporter parser (MIG
 *   folding, `err_msg`, health watches). The other GPUs the node reports are listed by index with what their
 *   absence from the abnormal answers proves: last XID 0 and XID count 0 where those families are carried,
 *   health `pass` where the health watches are. So triage sees every GPU's last XID, as with a scrape, and a
 *   sticky XID that clears and comes back is a change. Indices are 0…n−1 (DCGM numbers the GPUs it sees from
 *   0) unless the node reports fewer GPUs than it should: then one more query asks which indices it reports.
 */
import type { CollectionError, GpuSample, NodeSnapshot, SignalFamily } from '../domain/gpu.js';
import type { GpuNode } from '../domain/node.js';
import { baseSnapshot, type Collector, collectionError } from './collector.js';
import { gpusFromExporter } from './parse/exporter.js';
import type { Sample } from './parse/prometheus.js';
import {
  abnormalQueries,
  coverageQuery,
  decodeCoverage,
  GPU_UNIT,
  gpuIndexQuery,
  joinKey,
  type NodeCoverage,
  type PromThresholds,
} from './prometheus-queries.js';

/** One element of an instant vector. */
export interface PromVectorSample {
  metric: Record<string, string>;
  value: number;
}

/** The Prometheus HTTP API as the source needs it (prometheus-client.ts). */
export interface PromQueryPort {
  /** The instant vector `promql` evaluates to now; rejects with a CollectError saying what went wrong. */
  query(promql: string, signal?: AbortSignal): Promise<PromVectorSample[]>;
}

export interface PrometheusCollectorOptions {
  port: PromQueryPort;
  thresholds: PromThresholds;
  /** Bound on one fleet read (all its queries). */
  timeoutMs: number;
  /** A read younger than this serves a `collect` outside a scan. Default 5 s. */
  freshForMs?: number;
  now?: () => number;
}

/** What one fleet read found, by join key (a node name or its short host name). */
export interface FleetRead {
  at: number;
  coverage: Map<string, NodeCoverage>;
  abnormal: Map<string, PromVectorSample[]>;
  error?: CollectionError;
}

/** Coverage and abnormal answers → per-node maps; several series for one node (two exporters) merge. */
export function joinFleet(
  at: number,
  coverage: PromVectorSample[],
  abnormal: PromVectorSample[][],
): FleetRead {
  const byNode = new Map<string, NodeCoverage>();
  for (const s of coverage) {
    const join = joinKey(s.metric);
    const decoded = decodeCoverage(s.value);
    if (!join || !decoded) continue;
    const prev = byNode.get(join.key);
    if (!prev) {
      byNode.set(join.key, { ...decoded, value: s.value, label: join.label, key: join.key });
      continue;
    }
    // Two exporters on one node: the families either carries, the larger GPU count.
    const value =
      Math.max(prev.gpus, decoded.gpus) * GPU_UNIT + ((prev.value % GPU_UNIT) | (s.value % GPU_UNIT));
    const merged = decodeCoverage(value);
    if (merged) Object.assign(prev, merged, { value });
  }
  const bad = new Map<string, PromVectorSample[]>();
  for (const answer of abnormal) {
    for (const s of answer) {
      const join = joinKey(s.metric);
      if (!join) continue;
      const list = bad.get(join.key);
      if (list) list.push(s);
      else bad.set(join.key, [s]);
    }
  }
  return { at, coverage: byNode, abnormal: bad };
}

/** A node's entry under its name, else under its short host name (`ip-10-0-1-2` for `ip-10-0-1-2.ec2.internal`). */
function lookup<T>(map: Map<string, T>, node: string): { value: T; key: string } | undefined {
  const full = map.get(node);
  if (full !== undefined) return { value: full, key: node };
  const dot = node.indexOf('.');
  if (dot < 0) return undefined;
  const short = node.slice(0, dot);
  const v = map.get(short);
  return v !== undefined ? { value: v, key: short } : undefined;
}

function toSamples(series: PromVectorSample[]): Sample[] {
  return series.map((s, i) => ({
    name: s.metric.__name__ ?? '',
    labels: s.metric,
    value: s.value,
    line: i + 1,
  }));
}

/**
 * The node's GPUs: the abnormal ones as the exporter parser reads them, the rest by index, each with what the
 * carried families prove about it (see the module comment).
 */
export function gpusOf(
  abnormal: PromVectorSample[],
  families: readonly SignalFamily[],
  indices: Iterable<number>,
): GpuSample[] {
  // Nearly every node has no abnormal series: no parser pass for those.
  const parsed =
    abnormal.length > 0
      ? gpusFromExporter({ samples: toSamples(abnormal), families: new Map(), errors: [] }).gpus
      : [];
  const byIndex = new Map(parsed.map((g) => [g.index, g]));
  for (const i of indices) if (!byIndex.has(i)) byIndex.set(i, { index: i });
  const xid = families.includes('xid');
  const counted = families.includes('xid_count');
  const health = families.includes('health');
  const gpus = [...byIndex.values()].sort((a, b) => a.index - b.index);
  for (const g of gpus) {
    if (xid && g.xidLast === undefined) g.xidLast = 0;
    if (counted && g.xidCount === undefined) g.xidCount = 0;
    if (health && g.health === undefined) g.health = 'pass';
  }
  return gpus;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Reads DCGM through Prometheus: one fleet read per scan, joined per node (see the module comment). */
export function createPrometheusCollector(opts: PrometheusCollectorOptions): Collector & {
  beforeScan(): Promise<void>;
  /** The snapshot `collect` would give, when the scan's fleet read has it without a query (see Monitor). */
  fromScanRead(node: GpuNode): NodeSnapshot | undefined;
} {
  const now = opts.now ?? Date.now;
  const freshForMs = opts.freshForMs ?? 5000;
  const queries = { coverage: coverageQuery(), abnormal: abnormalQueries(opts.thresholds) };
  let last: FleetRead | undefined;
  let inFlight: Promise<FleetRead> | undefined;

  async function readFleet(): Promise<FleetRead> {
    const signal = AbortSignal.timeout(opts.timeoutMs);
    try {
      const [coverage, ...abnormal] = await Promise.all([
        opts.port.query(queries.coverage, signal),
        ...queries.abnormal.map((q) => opts.port.query(q, signal)),
      ]);
      return joinFleet(now(), coverage ?? [], abnormal);
    } catch (error) {
      const e = collectionError(error);
      return {
        at: now(),
        coverage: new Map(),
        abnormal: new Map(),
        error: { kind: e.kind, message: `Prometheus: ${e.message}` },
      };
    }
  }

  function fleet(force: boolean): Promise<FleetRead> {
    if (inFlight) return inFlight;
    if (!force && last && now() - last.at <= freshForMs) return Promise.resolve(last);
    inFlight = readFleet().then((read) => {
      last = read;
      inFlight = undefined;
      return read;
    });
    return inFlight;
  }

  /**
   * A node without abnormal series has GPUs that depend only on its families and GPU count, so one set of GPU
   * objects per combination serves every such node: at 5,000 nodes that is 40,000 objects a scan not built.
   * Each node gets its own list (a write to the list stays its own); the shared GPU objects are frozen, so a
   * consumer writing to one throws instead of changing other nodes' snapshots. (Freezing the list itself
   * would not do: V8 iterates a frozen array several times slower.)
   */
  const healthyLists = new Map<number, readonly GpuSample[]>();
  function healthyGpus(cov: NodeCoverage): GpuSample[] {
    let list = healthyLists.get(cov.value);
    if (!list) {
      list = gpusOf([], cov.families, range(cov.gpus)).map((g) => Object.freeze(g));
      healthyLists.set(cov.value, list);
    }
    return list.slice();
  }

  /** The GPU indices a node reports, when its coverage counted fewer than it should have. */
  async function indicesOf(cov: NodeCoverage, signal: AbortSignal): Promise<number[]> {
    const answer = await opts.port.query(gpuIndexQuery(cov.label, [cov.key]), signal);
    const out = new Set<number>();
    for (const s of answer) {
      const gpu = s.metric.gpu;
      if (gpu !== undefined && /^(0|[1-9]\d*)$/.test(gpu)) out.add(Number(gpu));
    }
    return [...out];
  }

  /**
   * The node's snapshot from a fleet read, or `indices: cov` when the node reports fewer GPUs than it should
   * and its indices need a query of their own.
   */
  function fromRead(read: FleetRead, node: GpuNode): NodeSnapshot | { indices: NodeCoverage } {
    const snapshot = baseSnapshot(node, 'prometheus', read.at);
    if (read.error) {
      snapshot.error = read.error;
      return snapshot;
    }
    const cov = lookup(read.coverage, node.name);
    if (!cov) {
      snapshot.error = {
        kind: 'no-exporter',
        message: `Prometheus has no current DCGM series for ${node.name} (by label node, Hostname or hostname): its exporter is down, not scraped, or its series went stale`,
      };
      return snapshot;
    }
    const expected = node.expectedGpus;
    if (expected !== undefined && cov.value.gpus < expected) return { indices: cov.value };
    return withGpus(snapshot, read, node, cov.value);
  }

  function withGpus(
    snapshot: NodeSnapshot,
    read: FleetRead,
    node: GpuNode,
    cov: NodeCoverage,
    /** The indices the node reports, when not 0…n−1 (see indicesOf). */
    indices?: number[],
  ): NodeSnapshot {
    const abnormal = lookup(read.abnormal, node.name)?.value;
    if (abnormal === undefined && indices === undefined) {
      snapshot.gpus = healthyGpus(cov);
      snapshot.signals = cov.families;
      // Nothing abnormal: the snapshot follows from the node and its coverage alone (plus the clock while the
      // device plugin is starting, which `missingParts` then says).
      if (snapshot.missingParts === undefined) snapshot.readKey = `prometheus:${cov.value}`;
    } else {
      try {
        snapshot.gpus = gpusOf(abnormal ?? [], cov.families, indices ?? range(cov.gpus));
      } catch (error) {
        // Series the exporter parser cannot read are this node's error, never the scan's.
        const e = collectionError(error);
        snapshot.error = { kind: e.kind, message: `Prometheus: ${e.message}` };
        return snapshot;
      }
      snapshot.signals = cov.families;
    }
    if (snapshot.gpus.length === 0) {
      snapshot.signals = undefined;
      snapshot.readKey = undefined;
      snapshot.error = {
        kind: 'parse',
        message: 'Prometheus has DCGM series for this node but none names a GPU (no `gpu` label)',
      };
    }
    return snapshot;
  }

  return {
    source: 'prometheus',
    async beforeScan() {
      await fleet(true);
    },
    fromScanRead(node: GpuNode): NodeSnapshot | undefined {
      // Only a read that `collect` would use as it stands: none in flight, and fresh.
      if (inFlight || !last || now() - last.at > freshForMs) return undefined;
      const snapshot = fromRead(last, node);
      return 'indices' in snapshot ? undefined : snapshot;
    },
    async collect(node: GpuNode, signal: AbortSignal): Promise<NodeSnapshot> {
      const read = await fleet(false);
      const snapshot = fromRead(read, node);
      if (!('indices' in snapshot)) return snapshot;
      const cov = snapshot.indices;
      const base = baseSnapshot(node, 'prometheus', read.at);
      try {
        return withGpus(base, read, node, cov, await indicesOf(cov, signal));
      } catch (error) {
        const e = collectionError(error);
        base.error = { kind: e.kind, message: `Prometheus: ${e.message}` };
        return base;
      }
    },
  };
}
