/**
 * dcgm-exporter samples → per-GPU `GpuSample`s.
 *
 * - `DCGM_FI_DEV_XID_ERRORS` is the LAST XID code (sticky until restart), never a count → `xidLast`; its
 *   `err_code`/`err_msg` labels (exporter ≥ 3.3.6) add the driver's text to `xids`.
 * - `DCGM_EXP_XID_ERRORS_COUNT{xid="…"}` is a count per code → `xids[].count`, summed into `xidCount`.
 * - MIG: device-level families repeat once per GPU instance (`GPU_I_ID`, `GPU_I_PROFILE`); the instances fold
 *   into their physical GPU (the `gpu` index): the value is taken once per GPU (a non-zero last XID from any
 *   instance wins) and the instances are listed in `migInstances`. The GPU count is physical.
 * - A family absent from the scrape leaves its field undefined — absent is "not reported", never 0 — and
 *   `signals` lists the signal families the scrape did carry (a stock exporter: no ecc, retired_pages, nvlink).
 * - `DCGM_EXP_GPU_HEALTH_STATUS{health_watch,health_error_code}` (dcgm-exporter's GPU health collector, one
 *   series per GPU and watch, value = DCGM's health result 0 pass / 10 warn / 20 fail) → `health` (the worst
 *   watch) and one `healthIncidents` entry per warning or failing watch.
 */
import {
  type GpuSample,
  type HealthIncident,
  SignalFamilies,
  type SignalFamily,
  type XidObservation,
} from '../../domain/gpu.js';
import type { ParsedExposition, ParseIssue, Sample } from './prometheus.js';

type NumericField =
  | 'xidLast'
  | 'eccSbeVolatile'
  | 'eccDbeVolatile'
  | 'eccSbeAggregate'
  | 'eccDbeAggregate'
  | 'retiredPagesSbe'
  | 'retiredPagesDbe'
  | 'retiredPagesPending'
  | 'rowRemapFailure'
  | 'rowRemapPending'
  | 'uncorrectableRemappedRows'
  | 'correctableRemappedRows'
  | 'nvlinkCrcFlitErrors'
  | 'nvlinkCrcDataErrors'
  | 'nvlinkReplayErrors'
  | 'nvlinkRecoveryErrors'
  | 'temperatureC'
  | 'memoryTemperatureC'
  | 'powerW'
  | 'utilizationPct';

/** DCGM field name → GpuSample field. Exported so the dcgmi parsers and tests share one vocabulary. */
export const EXPORTER_FIELDS: Readonly<Record<string, NumericField>> = {
  DCGM_FI_DEV_XID_ERRORS: 'xidLast',
  DCGM_FI_DEV_ECC_SBE_VOL_TOTAL: 'eccSbeVolatile',
  DCGM_FI_DEV_ECC_DBE_VOL_TOTAL: 'eccDbeVolatile',
  DCGM_FI_DEV_ECC_SBE_AGG_TOTAL: 'eccSbeAggregate',
  DCGM_FI_DEV_ECC_DBE_AGG_TOTAL: 'eccDbeAggregate',
  DCGM_FI_DEV_RETIRED_SBE: 'retiredPagesSbe',
  DCGM_FI_DEV_RETIRED_DBE: 'retiredPagesDbe',
  DCGM_FI_DEV_RETIRED_PENDING: 'retiredPagesPending',
  DCGM_FI_DEV_ROW_REMAP_FAILURE: 'rowRemapFailure',
  DCGM_FI_DEV_ROW_REMAP_PENDING: 'rowRemapPending',
  DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS: 'uncorrectableRemappedRows',
  DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS: 'correctableRemappedRows',
  DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL: 'nvlinkCrcFlitErrors',
  DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL: 'nvlinkCrcDataErrors',
  DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL: 'nvlinkReplayErrors',
  DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL: 'nvlinkRecoveryErrors',
  DCGM_FI_DEV_GPU_TEMP: 'temperatureC',
  DCGM_FI_DEV_MEMORY_TEMP: 'memoryTemperatureC',
  DCGM_FI_DEV_POWER_USAGE: 'powerW',
  DCGM_FI_DEV_GPU_UTIL: 'utilizationPct',
};

const FIELD_BY_NAME: ReadonlyMap<string, NumericField> = new Map(Object.entries(EXPORTER_FIELDS));

export const XID_COUNT_METRIC = 'DCGM_EXP_XID_ERRORS_COUNT';
export const HEALTH_STATUS_METRIC = 'DCGM_EXP_GPU_HEALTH_STATUS';

/**
 * Which signal family each metric gpu-medic reads belongs to. A scrape carries a family when at least one
 * sample of it maps to a GPU. NVLink bandwidth is not an error counter and proves nothing about NVLink errors.
 */
export const SIGNAL_OF_METRIC: Readonly<Record<string, SignalFamily>> = {
  DCGM_FI_DEV_XID_ERRORS: 'xid',
  [XID_COUNT_METRIC]: 'xid_count',
  DCGM_FI_DEV_ECC_SBE_VOL_TOTAL: 'ecc',
  DCGM_FI_DEV_ECC_DBE_VOL_TOTAL: 'ecc',
  DCGM_FI_DEV_ECC_SBE_AGG_TOTAL: 'ecc',
  DCGM_FI_DEV_ECC_DBE_AGG_TOTAL: 'ecc',
  DCGM_FI_DEV_RETIRED_SBE: 'retired_pages',
  DCGM_FI_DEV_RETIRED_DBE: 'retired_pages',
  DCGM_FI_DEV_RETIRED_PENDING: 'retired_pages',
  DCGM_FI_DEV_ROW_REMAP_FAILURE: 'row_remap',
  DCGM_FI_DEV_ROW_REMAP_PENDING: 'row_remap',
  DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS: 'row_remap',
  DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS: 'row_remap',
  DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL: 'nvlink',
  DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL: 'nvlink',
  DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL: 'nvlink',
  DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL: 'nvlink',
  [HEALTH_STATUS_METRIC]: 'health',
  DCGM_FI_DEV_GPU_TEMP: 'thermal',
  DCGM_FI_DEV_MEMORY_TEMP: 'thermal',
};

/** Every metric name the parser reads into a GpuSample (the counters CSV must enable each one). */
export const EXPORTER_METRICS_READ: readonly string[] = [
  ...Object.keys(EXPORTER_FIELDS),
  XID_COUNT_METRIC,
  HEALTH_STATUS_METRIC,
];

/** DCGM's health results (dcgmHealthWatchResults_t) as the exporter prints them. */
const HEALTH_RESULT: ReadonlyMap<number, 'pass' | 'warn' | 'fail'> = new Map([
  [0, 'pass'],
  [10, 'warn'],
  [20, 'fail'],
]);
const HEALTH_RANK = { pass: 0, warn: 1, fail: 2 } as const;

/** Fields whose value must be a non-negative integer (codes and counters); the rest are measurements. */
const INTEGER_FIELDS: ReadonlySet<NumericField> = new Set<NumericField>([
  'xidLast',
  'eccSbeVolatile',
  'eccDbeVolatile',
  'eccSbeAggregate',
  'eccDbeAggregate',
  'retiredPagesSbe',
  'retiredPagesDbe',
  'retiredPagesPending',
  'rowRemapFailure',
  'rowRemapPending',
  'uncorrectableRemappedRows',
  'correctableRemappedRows',
  'nvlinkCrcFlitErrors',
  'nvlinkCrcDataErrors',
  'nvlinkReplayErrors',
  'nvlinkRecoveryErrors',
]);

export interface ExporterGpus {
  gpus: GpuSample[];
  hostname?: string;
  driverVersion?: string;
  /** Samples that could not be mapped (wrong types, bad `gpu` label), with their line numbers. */
  errors: ParseIssue[];
  /** Signal families the scrape carried for at least one GPU, in `SignalFamilies` order. */
  signals: SignalFamily[];
}

export interface GpusFromExporterOptions {
  /** Only samples whose Hostname/hostname label equals this (a scrape of a shared endpoint). */
  hostname?: string;
}

const INT_RE = /^(0|[1-9]\d*)$/;

function isNonNegativeInteger(v: number): boolean {
  return Number.isInteger(v) && v >= 0;
}

function hostnameOf(labels: Record<string, string>): string | undefined {
  return labels.Hostname ?? labels.hostname;
}

interface GpuAcc {
  sample: GpuSample;
  /** Fields already set, so a MIG repeat of a device-level value is not applied twice. */
  seen: Set<string>;
  mig: Set<string>;
  xids: Map<number, XidObservation>;
  /** Warning or failing health watches by name (DCGM_EXP_GPU_HEALTH_STATUS). */
  health?: Map<string, HealthIncident>;
}

/**
 * The same sample as a compact object. Fields set through a variable key (`sample[field] = …`) put
 * V8 objects with this many properties in dictionary mode, ~1.4 KB per GPU, and snapshots live for a
 * whole scan (and in `/gpu status`): named stores in one fixed order give every GPU one small shape.
 */
function compact(t: GpuSample): GpuSample {
  const g: GpuSample = { index: t.index };
  if (t.uuid !== undefined) g.uuid = t.uuid;
  if (t.model !== undefined) g.model = t.model;
  if (t.pciBusId !== undefined) g.pciBusId = t.pciBusId;
  if (t.migInstances !== undefined) g.migInstances = t.migInstances;
  if (t.xidLast !== undefined) g.xidLast = t.xidLast;
  if (t.xidCount !== undefined) g.xidCount = t.xidCount;
  if (t.xids !== undefined) g.xids = t.xids;
  if (t.eccSbeVolatile !== undefined) g.eccSbeVolatile = t.eccSbeVolatile;
  if (t.eccDbeVolatile !== undefined) g.eccDbeVolatile = t.eccDbeVolatile;
  if (t.eccSbeAggregate !== undefined) g.eccSbeAggregate = t.eccSbeAggregate;
  if (t.eccDbeAggregate !== undefined) g.eccDbeAggregate = t.eccDbeAggregate;
  if (t.retiredPagesSbe !== undefined) g.retiredPagesSbe = t.retiredPagesSbe;
  if (t.retiredPagesDbe !== undefined) g.retiredPagesDbe = t.retiredPagesDbe;
  if (t.retiredPagesPending !== undefined) g.retiredPagesPending = t.retiredPagesPending;
  if (t.rowRemapFailure !== undefined) g.rowRemapFailure = t.rowRemapFailure;
  if (t.rowRemapPending !== undefined) g.rowRemapPending = t.rowRemapPending;
  if (t.uncorrectableRemappedRows !== undefined) g.uncorrectableRemappedRows = t.uncorrectableRemappedRows;
  if (t.correctableRemappedRows !== undefined) g.correctableRemappedRows = t.correctableRemappedRows;
  if (t.nvlinkCrcFlitErrors !== undefined) g.nvlinkCrcFlitErrors = t.nvlinkCrcFlitErrors;
  if (t.nvlinkCrcDataErrors !== undefined) g.nvlinkCrcDataErrors = t.nvlinkCrcDataErrors;
  if (t.nvlinkReplayErrors !== undefined) g.nvlinkReplayErrors = t.nvlinkReplayErrors;
  if (t.nvlinkRecoveryErrors !== undefined) g.nvlinkRecoveryErrors = t.nvlinkRecoveryErrors;
  if (t.temperatureC !== undefined) g.temperatureC = t.temperatureC;
  if (t.memoryTemperatureC !== undefined) g.memoryTemperatureC = t.memoryTemperatureC;
  if (t.powerW !== undefined) g.powerW = t.powerW;
  if (t.utilizationPct !== undefined) g.utilizationPct = t.utilizationPct;
  if (t.health !== undefined) g.health = t.health;
  if (t.healthIncidents !== undefined) g.healthIncidents = t.healthIncidents;
  return g;
}
/** Fails to compile when GpuSample gains a field that compact() does not copy. */
type Uncopied = Exclude<
  keyof GpuSample,
  | 'index'
  | 'uuid'
  | 'model'
  | 'pciBusId'
  | 'migInstances'
  | 'xidLast'
  | 'xidCount'
  | 'xids'
  | 'eccSbeVolatile'
  | 'eccDbeVolatile'
  | 'eccSbeAggregate'
  | 'eccDbeAggregate'
  | 'retiredPagesSbe'
  | 'retiredPagesDbe'
  | 'retiredPagesPending'
  | 'rowRemapFailure'
  | 'rowRemapPending'
  | 'uncorrectableRemappedRows'
  | 'correctableRemappedRows'
  | 'nvlinkCrcFlitErrors'
  | 'nvlinkCrcDataErrors'
  | 'nvlinkReplayErrors'
  | 'nvlinkRecoveryErrors'
  | 'temperatureC'
  | 'memoryTemperatureC'
  | 'powerW'
  | 'utilizationPct'
  | 'health'
  | 'healthIncidents'
>;
const compactCopiesEveryField: [Uncopied] extends [never] ? true : Uncopied = true;
void compactCopiesEveryField;

/** Folds exporter samples into GPUs one at a time (`add` in input order), so a streamed scrape needs no sample list. */
export interface ExporterReader {
  add(s: Sample): void;
  /** Samples seen so far. */
  readonly count: number;
  finish(): ExporterGpus;
}

export function exporterReader(opts: GpusFromExporterOptions = {}): ExporterReader {
  const errors: ParseIssue[] = [];
  // Keyed by gpu index and UUID: a dump that mixes two hosts can carry two GPU 0s.
  const byKey = new Map<string, GpuAcc>();
  const firstByIndex = new Map<number, GpuAcc>();
  let hostname: string | undefined;
  let driverVersion: string | undefined;
  const carried = new Set<SignalFamily>();

  // The parser shares one labels object between samples with the same label text, and the GPU a
  // sample belongs to depends only on its labels: resolve each labels object once.
  const accByLabels = new Map<Record<string, string>, GpuAcc>();
  const accFor = (s: Sample, index: number): GpuAcc => {
    let acc = accByLabels.get(s.labels);
    if (!acc) {
      acc = resolveAcc(s, index);
      accByLabels.set(s.labels, acc);
    }
    return acc;
  };
  const resolveAcc = (s: Sample, index: number): GpuAcc => {
    const uuid = s.labels.UUID ?? s.labels.uuid;
    if (uuid === undefined) {
      const first = firstByIndex.get(index);
      if (first) return first;
    }
    const key = `${index}\u0000${uuid ?? ''}`;
    let acc = byKey.get(key);
    if (!acc) {
      const sample: GpuSample = { index };
      if (uuid) sample.uuid = uuid;
      acc = { sample, seen: new Set(), mig: new Set(), xids: new Map() };
      byKey.set(key, acc);
      if (!firstByIndex.has(index)) firstByIndex.set(index, acc);
    }
    const g = acc.sample;
    if (!g.model && s.labels.modelName) g.model = s.labels.modelName;
    if (!g.pciBusId && s.labels.pci_bus_id) g.pciBusId = s.labels.pci_bus_id;
    const mig = s.labels.GPU_I_ID;
    if (mig !== undefined && mig !== '') {
      const profile = s.labels.GPU_I_PROFILE;
      acc.mig.add(profile ? `${mig}:${profile}` : mig);
    }
    return acc;
  };

  // Consecutive samples share a name (the parser reuses one string per name): look each up once per run.
  let lastName: string | undefined;
  let field: NumericField | undefined;
  let isXidCount = false;
  let isHealth = false;
  let isDcgm = false;
  let family: SignalFamily | undefined;
  let count = 0;
  const add = (s: Sample): void => {
    count++;
    if (s.name !== lastName) {
      lastName = s.name;
      field = FIELD_BY_NAME.get(s.name);
      isXidCount = s.name === XID_COUNT_METRIC;
      isHealth = s.name === HEALTH_STATUS_METRIC;
      isDcgm = s.name.startsWith('DCGM_');
      family = SIGNAL_OF_METRIC[s.name];
    }
    const host = hostnameOf(s.labels);
    if (opts.hostname !== undefined && host !== undefined && host !== opts.hostname) return;
    const gpuLabel = s.labels.gpu;
    if (!field && !isXidCount && !isHealth) {
      // Any other per-GPU DCGM family still proves the GPU is present (and names its model/UUID).
      if (isDcgm && gpuLabel !== undefined && INT_RE.test(gpuLabel)) {
        accFor(s, Number(gpuLabel));
        if (host !== undefined && hostname === undefined) hostname = host;
      }
      return;
    }
    if (gpuLabel === undefined || !INT_RE.test(gpuLabel)) {
      errors.push({
        line: s.line,
        message: `${s.name}: gpu label ${gpuLabel === undefined ? 'missing' : JSON.stringify(gpuLabel)} is not a GPU index`,
      });
      return;
    }
    if (Number.isNaN(s.value) || !Number.isFinite(s.value)) {
      errors.push({
        line: s.line,
        message: `${s.name}{gpu="${gpuLabel}"}: value ${s.value} is not a number`,
      });
      return;
    }
    if (host !== undefined && hostname === undefined) hostname = host;
    const driver = s.labels.DCGM_FI_DRIVER_VERSION;
    if (driver && driverVersion === undefined) driverVersion = driver;

    const acc = accFor(s, Number(gpuLabel));

    if (isHealth) {
      const state = HEALTH_RESULT.get(s.value);
      const watch = s.labels.health_watch;
      if (state === undefined || !watch) {
        errors.push({
          line: s.line,
          message: `${s.name}{gpu="${gpuLabel}"}: needs a health_watch label and a value of 0, 10 or 20`,
        });
        return;
      }
      if (family) carried.add(family);
      const seenKey = `health:${watch}`;
      if (acc.seen.has(seenKey)) return;
      acc.seen.add(seenKey);
      const g = acc.sample;
      if (g.health === undefined || HEALTH_RANK[state] > HEALTH_RANK[g.health]) g.health = state;
      if (state !== 'pass') {
        const code = s.labels.health_error_code;
        const named = code && code !== 'DCGM_FR_OK' ? code : undefined;
        const incident: HealthIncident = {
          severity: state,
          system: watch,
          // The exporter prints no text, only the code: the code is the message when there is one.
          message:
            named ?? `the ${watch} health watch reports ${state === 'fail' ? 'a failure' : 'a warning'}`,
        };
        if (named) incident.code = named;
        acc.health ??= new Map();
        acc.health.set(watch, incident);
      }
      return;
    }

    if (isXidCount) {
      const xidLabel = s.labels.xid ?? s.labels.err_code;
      // With no XID in its window the collector prints one 0 per GPU without an `xid` label: counted, none.
      if (xidLabel === undefined && s.value === 0) {
        if (family) carried.add(family);
        acc.sample.xidCount ??= 0;
        return;
      }
      if (xidLabel === undefined || !INT_RE.test(xidLabel) || !isNonNegativeInteger(s.value)) {
        errors.push({ line: s.line, message: `${s.name}: needs an integer xid label and an integer count` });
        return;
      }
      if (family) carried.add(family);
      const seenKey = `count:${xidLabel}`;
      if (acc.seen.has(seenKey)) return;
      acc.seen.add(seenKey);
      const xid = Number(xidLabel);
      acc.sample.xidCount = (acc.sample.xidCount ?? 0) + s.value;
      if (s.value > 0) {
        const obs = acc.xids.get(xid) ?? { xid };
        obs.count = s.value;
        acc.xids.set(xid, obs);
      }
      return;
    }

    if (!field) return;
    if (INTEGER_FIELDS.has(field) && !isNonNegativeInteger(s.value)) {
      errors.push({ line: s.line, message: `${s.name}{gpu="${gpuLabel}"}: value ${s.value} is not a count` });
      return;
    }
    if (family) carried.add(family);
    // Device-level values repeat per MIG instance: the first one counts — except the last XID, which counts
    // for the physical GPU whichever instance reports it (a 0 on one instance does not hide a 79 on another).
    if (acc.seen.has(field)) {
      if (field !== 'xidLast' || s.value === 0 || acc.sample.xidLast !== 0) return;
    }
    acc.seen.add(field);
    acc.sample[field] = s.value;
    // err_msg gives the last XID its text; without it, xidLast alone says it all.
    const msg = s.labels.err_msg;
    if (field === 'xidLast' && s.value !== 0 && msg && msg !== 'No Error') {
      const obs = acc.xids.get(s.value) ?? { xid: s.value };
      obs.message = msg;
      acc.xids.set(s.value, obs);
    }
  };

  const finish = (): ExporterGpus => {
    const gpus = [...byKey.values()]
      .map((acc) => {
        if (acc.mig.size > 0) acc.sample.migInstances = [...acc.mig].sort();
        if (acc.xids.size > 0) acc.sample.xids = [...acc.xids.values()].sort((a, b) => a.xid - b.xid);
        if (acc.health) acc.sample.healthIncidents = [...acc.health.values()];
        return compact(acc.sample);
      })
      .sort((a, b) => a.index - b.index);
    const signals = SignalFamilies.filter((f) => carried.has(f));
    const out: ExporterGpus = { gpus, errors, signals };
    if (hostname !== undefined) out.hostname = hostname;
    if (driverVersion !== undefined) out.driverVersion = driverVersion;
    return out;
  };
  return {
    add,
    get count() {
      return count;
    },
    finish,
  };
}

export function gpusFromExporter(parsed: ParsedExposition, opts: GpusFromExporterOptions = {}): ExporterGpus {
  const reader = exporterReader(opts);
  for (const s of parsed.samples) reader.add(s);
  return reader.finish();
}
