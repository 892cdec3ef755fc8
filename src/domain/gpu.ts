/**
 * What we know about the GPUs of one node at one moment, whatever source it came from.
 * Every field but the identity is optional: sources differ (dcgm-exporter's default counters leave
 * ECC, retired pages and NVLink out), and an absent value means "not reported", never "zero".
 */

/** One XID occurrence as a source reports it (kernel log line, exporter err_code label, dcgmi). */
export interface XidObservation {
  xid: number;
  /** The driver's message text, when the source carries it (kernel log, err_msg label). */
  message?: string;
  /** How many times it was seen, where the source counts (DCGM_EXP_XID_ERRORS_COUNT). */
  count?: number;
}

export const HealthStates = ['pass', 'warn', 'fail'] as const;
export type HealthState = (typeof HealthStates)[number];

/** A DCGM health-check incident (`dcgmi health -c -j`, DCGM_FR_* codes). */
export interface HealthIncident {
  severity: 'warn' | 'fail';
  /** DCGM subsystem: PCIe, NVLink, PMU, MCU, Memory, SM, Inforom, Thermal, Power, Driver … */
  system?: string;
  /** DCGM_FR_* name or numeric code, when given. */
  code?: string;
  message: string;
}

export interface GpuSample {
  /** DCGM GPU index (the `gpu` label). */
  index: number;
  uuid?: string;
  model?: string;
  pciBusId?: string;
  /** MIG instances seen on this GPU (GPU_I_ID labels); device-level values are reported once. */
  migInstances?: string[];

  /** DCGM_FI_DEV_XID_ERRORS: the LAST XID code (sticky until driver/exporter restart), 0 = none. Not a count. */
  xidLast?: number;
  /** DCGM_EXP_XID_ERRORS_COUNT summed over codes, where the exporter is configured to count. */
  xidCount?: number;
  /** Individual XIDs with text/counts where the source carries them. */
  xids?: XidObservation[];

  eccSbeVolatile?: number;
  eccDbeVolatile?: number;
  eccSbeAggregate?: number;
  eccDbeAggregate?: number;
  retiredPagesSbe?: number;
  retiredPagesDbe?: number;
  retiredPagesPending?: number;
  rowRemapFailure?: number;
  rowRemapPending?: number;
  uncorrectableRemappedRows?: number;
  correctableRemappedRows?: number;

  nvlinkCrcFlitErrors?: number;
  nvlinkCrcDataErrors?: number;
  nvlinkReplayErrors?: number;
  nvlinkRecoveryErrors?: number;

  temperatureC?: number;
  memoryTemperatureC?: number;
  powerW?: number;
  utilizationPct?: number;

  health?: HealthState;
  healthIncidents?: HealthIncident[];
}

export interface NodeCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
}

export const SnapshotSources = ['exporter', 'dcgm-server', 'prometheus', 'conditions', 'file'] as const;
export type SnapshotSource = (typeof SnapshotSources)[number];

/** Why a node could not be read. A collection failure is a finding of its own: exporter down ≠ healthy. */
export interface CollectionError {
  kind: 'no-exporter' | 'unreachable' | 'timeout' | 'http' | 'parse' | 'exec';
  message: string;
}

/**
 * Signal families a scrape can carry. A family a snapshot did not carry was not read: it is a coverage gap,
 * never "no errors" (the stock dcgm-exporter leaves ecc, retired_pages and nvlink out).
 */
export const SignalFamilies = [
  'xid',
  'xid_count',
  'ecc',
  'retired_pages',
  'row_remap',
  'nvlink',
  'health',
  'thermal',
  'kernel_log',
] as const;
export type SignalFamily = (typeof SignalFamilies)[number];

/** A part of a source that could not be read on this node (no shell, no dmesg, a dcgmi error); the rest stands. */
export interface MissingPart {
  /** `kernel_log`, `dcgmi_health`, `dcgmi_dmon` … */
  part: string;
  reason: string;
}

export interface NodeSnapshot {
  node: string;
  takenAt: number;
  source: SnapshotSource;
  /** GPUs reported by DCGM. */
  gpus: GpuSample[];
  /** Physical GPUs the node should have (GpuNode.expectedGpus); undefined: no GPU-count check. */
  expectedGpus?: number;
  /**
   * Physical GPUs the device plugin offers (GpuNode.allocatableGpus): drops when it loses a GPU. Undefined under
   * MIG, where its devices are slices, not GPUs.
   */
  allocatableGpus?: number;
  conditions?: NodeCondition[];
  bootId?: string;
  /** Kernel log lines (NVRM: Xid …) where the source gives them. */
  logLines?: string[];
  /** Free text the rules could not read (unknown dcgmi output, unrecognized log lines). */
  unparsed?: string[];
  /** Signal families this snapshot carried; undefined when the source does not say (a file, conditions only). */
  signals?: readonly SignalFamily[];
  /** Parts of the source that failed while the rest was read. */
  missingParts?: MissingPart[];
  error?: CollectionError;
  /**
   * Set by a source that knows cheaply when nothing changed: two snapshots of the same GpuNode object with the
   * same readKey are equal apart from `takenAt`, so everything decided from the first holds for the second
   * (the Monitor then skips the node's rules and triage). Undefined: no such promise.
   */
  readKey?: string;
}

/**
 * Who a GPU is, as the last scan before a repair read it: what an AWS support case (RMA) names. `serial` is
 * the board serial where a source reports it (none of today's DCGM sources do by default).
 */
export interface GpuIdentity {
  index: number;
  uuid?: string;
  pciBusId?: string;
  serial?: string;
  /** XIDs the scan saw on this GPU (the last XID and any listed occurrences), distinct, ascending. */
  xids?: number[];
}

/** The identity of each GPU of a snapshot, one per DCGM index (MIG instances repeat their GPU's index). */
export function gpuIdentities(gpus: readonly GpuSample[]): GpuIdentity[] {
  const byIndex = new Map<number, GpuIdentity>();
  for (const g of gpus) {
    const id = byIndex.get(g.index) ?? { index: g.index };
    if (g.uuid && !id.uuid) id.uuid = g.uuid;
    if (g.pciBusId && !id.pciBusId) id.pciBusId = g.pciBusId;
    const xids = new Set(id.xids ?? []);
    if (g.xidLast) xids.add(g.xidLast);
    for (const x of g.xids ?? []) if (x.xid) xids.add(x.xid);
    if (xids.size > 0) id.xids = [...xids].sort((a, b) => a - b);
    byIndex.set(g.index, id);
  }
  return [...byIndex.values()].sort((a, b) => a.index - b.index);
}
