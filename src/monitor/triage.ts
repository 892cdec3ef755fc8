/**
 * Which findings open an incident — pure. The rules:
 * - An XID read from DCGM's sticky "last XID" gauge is an *event* only when the value changes or an XID
 *   count grows (per GPU, remembered across restarts). A sticky value already there at first sight is
 *   reported once, as `preexisting` (its age is unknown), and never again while it stays the same.
 * - Any other finding opens an incident when it appears: it was not among the node's active fault keys
 *   at the previous scan. A fault that persists after its incident closed does not reopen it.
 * - A finding whose incident is still open only touches it (last seen, count).
 * - Only warnings and criticals open incidents; info/healthy findings are kept in the verdict only.
 */
import type { Finding, Verdict } from '../domain/finding.js';
import type { NodeSnapshot } from '../domain/gpu.js';

export interface GpuXidState {
  gpu: number;
  xidLast?: number;
  xidCount?: number;
}

export interface TriageInput {
  snapshot: NodeSnapshot;
  verdict: Verdict;
  /** The stored XID state of the node's GPUs; undefined when the node was never scanned. */
  previousGpuState: GpuXidState[] | undefined;
  /** Fault keys present at the previous scan; undefined when the node was never scanned. */
  previousKeys: ReadonlySet<string> | undefined;
  /** Fault keys with an open incident on this node. */
  openKeys: ReadonlySet<string>;
  /** Per-GPU, per-XID counts (DCGM_EXP_XID_ERRORS_COUNT) at the previous scan, keyed `gpu:xid`. */
  previousXidCounts?: Readonly<Record<string, number>>;
  /** Excluded nodes are scanned and shown, but open no incident. */
  excluded: boolean;
}

export interface TriageResult {
  open: { finding: Finding; preexisting: boolean }[];
  touch: Finding[];
  /** XID state to remember (unchanged for GPUs the snapshot did not report). */
  gpuState: GpuXidState[];
  /** Fault keys to remember as present. */
  activeKeys: string[];
  /** Per-XID counts to remember. */
  xidCounts: Record<string, number>;
}

const actionable = (f: Finding) => f.severity === 'warning' || f.severity === 'critical';

export function triage(input: TriageInput): TriageResult {
  const { snapshot, verdict, previousGpuState, previousKeys, openKeys } = input;
  const firstSight = previousKeys === undefined;
  const prevByGpu = new Map((previousGpuState ?? []).map((r) => [r.gpu, r]));

  const gpuState = new Map<number, GpuXidState>(prevByGpu);
  const prevCounts = input.previousXidCounts ?? {};
  const xidCounts: Record<string, number> = { ...prevCounts };
  if (!snapshot.error) {
    for (const g of snapshot.gpus) {
      for (const x of g.xids ?? []) if (x.count !== undefined) xidCounts[`${g.index}:${x.xid}`] = x.count;
    }
    for (const g of snapshot.gpus) {
      if (g.xidLast === undefined && g.xidCount === undefined) continue;
      gpuState.set(g.index, { gpu: g.index, xidLast: g.xidLast, xidCount: g.xidCount });
    }
  }

  const open: TriageResult['open'] = [];
  const touch: Finding[] = [];
  for (const finding of verdict.findings) {
    if (!actionable(finding)) continue;
    if (openKeys.has(finding.key)) {
      touch.push(finding);
      continue;
    }
    if (input.excluded) continue;
    const sticky = stickyXid(finding, snapshot);
    if (sticky) {
      const prev = prevByGpu.get(sticky.gpu);
      if (!prev) {
        open.push({ finding, preexisting: firstSight || previousGpuState === undefined });
        continue;
      }
      const changed = sticky.xidLast === finding.xid && (prev.xidLast ?? 0) !== finding.xid;
      const countKey = `${sticky.gpu}:${finding.xid}`;
      const counted = sticky.count !== undefined && sticky.count > (prevCounts[countKey] ?? 0);
      if (changed || counted) open.push({ finding, preexisting: false });
      continue;
    }
    if (firstSight || !previousKeys.has(finding.key)) open.push({ finding, preexisting: false });
  }

  const current = verdict.findings.filter(actionable).map((f) => f.key);
  // A node we could not read keeps its previous keys: its faults did not go away because we were blind.
  const activeKeys = snapshot.error ? [...new Set([...(previousKeys ?? []), ...current])] : current;
  return { open, touch, gpuState: [...gpuState.values()], activeKeys, xidCounts };
}

/** The GPU sample behind an XID finding, when the XID came from DCGM's gauges (not a log line). */
function stickyXid(
  finding: Finding,
  snapshot: NodeSnapshot,
): { gpu: number; xidLast?: number; count?: number } | undefined {
  if (finding.kind !== 'xid' || finding.gpu === undefined || finding.xid === undefined) return undefined;
  const sample = snapshot.gpus.find((g) => g.index === finding.gpu);
  if (!sample) return undefined;
  const fromGauge = sample.xidLast === finding.xid;
  const counted = sample.xids?.find((x) => x.xid === finding.xid && x.count !== undefined);
  if (!fromGauge && !counted) return undefined;
  return { gpu: sample.index, xidLast: sample.xidLast, count: counted?.count };
}
