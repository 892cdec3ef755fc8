/**
 * The PromQL gpu-medic sends when it reads DCGM through Prometheus, and how the answers decode — pure.
 *
 * A scan asks only for what is wrong, so its cost follows the faults, not the fleet:
 * - abnormal series: the last XID, XID counts, health watches, DBE, pending retirements and row remaps that
 *   are non-zero; SBE, NVLink error counters and temperature at or above the policy's thresholds. Each comes
 *   back with all its labels (GPU, UUID, MIG instance, `err_msg`), and becomes a sample the exporter parser
 *   reads as it reads a scrape;
 * - one coverage series per node: which signal families the node's exporter currently carries and how many
 *   GPUs it reports, packed into the value (`gpus × 256 + family bits`). A node with no coverage series has no
 *   current DCGM series in Prometheus (exporter stopped, target down, stale): a gap, never "healthy";
 * - only for nodes reporting fewer GPUs than they should: the GPU indices they do report.
 * Series join to nodes by the label `node` (a Kubernetes relabeling), else the exporter's `Hostname` /
 * `hostname`. Comparison filters keep `__name__`, and selecting by `{__name__=~…}` keeps one query per
 * threshold without `or` (which would drop a series whose labels match another's except for the name).
 */
import type { SignalFamily } from '../domain/gpu.js';
import { EXPORTER_METRICS_READ, SIGNAL_OF_METRIC } from './parse/exporter.js';

/** Labels that name a series' node, in order of trust. */
export const JOIN_LABELS = ['node', 'Hostname', 'hostname'] as const;
export type JoinLabel = (typeof JOIN_LABELS)[number];

/** Families packed into the coverage value, one bit each (kernel_log is never in Prometheus). */
export const COVERAGE_FAMILIES: readonly SignalFamily[] = [
  'xid',
  'xid_count',
  'ecc',
  'retired_pages',
  'row_remap',
  'nvlink',
  'health',
  'thermal',
];
/** The coverage value's GPU count is this multiple (above every family bit). */
export const GPU_UNIT = 256;

export interface PromThresholds {
  /** Volatile SBE ECC errors at or above: an SBE storm. */
  sbeStormThreshold: number;
  /** NVLink CRC / replay / recovery errors at or above. */
  nvlinkErrorThreshold: number;
  /** GPU temperature (°C) at or above. */
  thermalWarningC: number;
}

/** Metrics whose any non-zero value is a finding (codes, DBE, pending repairs, health 10/20). */
const NONZERO_METRICS = [
  'DCGM_FI_DEV_XID_ERRORS',
  'DCGM_EXP_XID_ERRORS_COUNT',
  'DCGM_EXP_GPU_HEALTH_STATUS',
  'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL',
  'DCGM_FI_DEV_RETIRED_PENDING',
  'DCGM_FI_DEV_ROW_REMAP_FAILURE',
  'DCGM_FI_DEV_ROW_REMAP_PENDING',
];
const NVLINK_METRICS = [
  'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL',
  'DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL',
  'DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL',
  'DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL',
];

const GROUP = JOIN_LABELS.join(', ');
const names = (metrics: readonly string[]) => `{__name__=~"${metrics.join('|')}"}`;
/** A threshold as PromQL reads it: integers plainly, anything else as a decimal. */
const num = (n: number) => (Number.isFinite(n) ? String(n) : '0');

/** The instant queries returning abnormal series, one per threshold. */
export function abnormalQueries(t: PromThresholds): string[] {
  return [
    `${names(NONZERO_METRICS)} > 0`,
    `${names(['DCGM_FI_DEV_ECC_SBE_VOL_TOTAL'])} >= ${num(t.sbeStormThreshold)}`,
    `${names(NVLINK_METRICS)} >= ${num(t.nvlinkErrorThreshold)}`,
    `${names(['DCGM_FI_DEV_GPU_TEMP'])} >= ${num(t.thermalWarningC)}`,
  ];
}

function familyMetrics(family: SignalFamily): string[] {
  return Object.entries(SIGNAL_OF_METRIC)
    .filter(([, f]) => f === family)
    .map(([m]) => m);
}

/** One series per node: `gpus × 256 + Σ 2^bit` over the families it carries. */
export function coverageQuery(): string {
  const parts = COVERAGE_FAMILIES.map(
    (f, bit) =>
      `label_replace(group by (${GROUP}) (${names(familyMetrics(f))}), "family", "${f}", "", "") * ${2 ** bit}`,
  );
  parts.push(
    `label_replace(count by (${GROUP}) (count by (${GROUP}, gpu) (${names(EXPORTER_METRICS_READ)})), "family", "gpus", "", "") * ${GPU_UNIT}`,
  );
  return `sum by (${GROUP}) (${parts.join(' or ')})`;
}

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A PromQL string literal (double-quoted; backslashes and quotes escaped). */
const quote = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/** The GPU indices the named nodes report, for nodes whose coverage counted fewer GPUs than expected. */
export function gpuIndexQuery(label: JoinLabel, values: readonly string[]): string {
  const re = values.map(escapeRegex).join('|');
  return `count by (${label}, gpu) ({__name__=~"${EXPORTER_METRICS_READ.join('|')}", ${label}=~${quote(re)}})`;
}

/** The node a series belongs to, and by which label; undefined: nothing names it. */
export function joinKey(
  labels: Readonly<Record<string, string>>,
): { key: string; label: JoinLabel } | undefined {
  for (const label of JOIN_LABELS) {
    const v = labels[label];
    if (v) return { key: v, label };
  }
  return undefined;
}

export interface NodeCoverage {
  families: readonly SignalFamily[];
  gpus: number;
  /** The coverage value these were decoded from (`gpus × 256 + family bits`). */
  value: number;
  /** The label that named the node, for a follow-up query. */
  label: JoinLabel;
  /** The label's value (may be the short host name of the node). */
  key: string;
}

export interface DecodedCoverage {
  readonly families: readonly SignalFamily[];
  readonly gpus: number;
}

/** A fleet has a handful of distinct coverage values: each is decoded once, and its answer shared (frozen). */
const decoded = new Map<number, DecodedCoverage>();

/** Decodes one coverage value; undefined when it is not what coverageQuery() builds. */
export function decodeCoverage(value: number): DecodedCoverage | undefined {
  const known = decoded.get(value);
  if (known) return known;
  if (!Number.isInteger(value) || value < 0) return undefined;
  const mask = value % GPU_UNIT;
  const families = Object.freeze(COVERAGE_FAMILIES.filter((_, bit) => (mask & (2 ** bit)) !== 0));
  const answer = Object.freeze({ families, gpus: Math.floor(value / GPU_UNIT) });
  // Bounded: a misbehaving Prometheus must not grow it without end (a value is 8 bits of families × GPUs).
  if (decoded.size < 4096) decoded.set(value, answer);
  return answer;
}
