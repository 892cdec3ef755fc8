import { simHealthIncidents } from './dcgmi-render.js';
import type { SimGpu } from './sim-gpu.js';
import { xidName } from './xid-text.js';

/**
 * Renders what dcgm-exporter serves on :9400/metrics for one node, from the simulated GPU state.
 *
 * Families follow dcgm-exporter's default counters file (etc/default-counters.csv) in its order, with its
 * help texts. That file ships ECC, retired pages, NVLink error counters and the exporter's own
 * `DCGM_EXP_*` collectors commented out, so `stock` (the default) is blind to them, as real clusters are.
 * `full` is gpu-medic's counters file (manifests/dcgm-exporter/): the stock lines plus those families,
 * with `DCGM_EXP_XID_ERRORS_COUNT` and `DCGM_EXP_GPU_HEALTH_STATUS` rendered the way their collectors do.
 * A GPU that fell off the bus is absent from the output, as DCGM no longer sees it. A GPU in MIG mode is
 * rendered once per MIG instance (labels GPU_I_ID, GPU_I_PROFILE), its device-level values repeated.
 */
export const CounterSets = ['stock', 'full'] as const;
export type CounterSet = (typeof CounterSets)[number];

export interface ExporterRenderOptions {
  /** `stock` (default-counters.csv as shipped, the default) or `full` (gpu-medic's counters CSV). */
  counters?: CounterSet;
  driverVersion?: string;
  /** `Hostname` (GPU Operator, default) or `hostname` (some Helm deployments). */
  hostnameLabel?: 'Hostname' | 'hostname';
}

export const DEFAULT_DRIVER_VERSION = '570.133.20';

type Family = {
  name: string;
  type: 'gauge' | 'counter';
  help: string;
  value: (g: SimGpu) => string;
};

const int = (n: number): string => String(Math.trunc(n));
const float = (n: number): string => n.toFixed(6);

/** default-counters.csv, enabled lines, in file order. */
export const DEFAULT_FAMILIES: readonly Family[] = [
  {
    name: 'DCGM_FI_DEV_SM_CLOCK',
    type: 'gauge',
    help: 'SM clock frequency (in MHz).',
    value: (g) => int(g.smClockMhz),
  },
  {
    name: 'DCGM_FI_DEV_MEM_CLOCK',
    type: 'gauge',
    help: 'Memory clock frequency (in MHz).',
    value: (g) => int(g.memClockMhz),
  },
  {
    name: 'DCGM_FI_DEV_MEMORY_TEMP',
    type: 'gauge',
    help: 'Memory temperature (in C).',
    value: (g) => int(g.memoryTemperatureC),
  },
  {
    name: 'DCGM_FI_DEV_GPU_TEMP',
    type: 'gauge',
    help: 'GPU temperature (in C).',
    value: (g) => int(g.temperatureC),
  },
  {
    name: 'DCGM_FI_DEV_POWER_USAGE',
    type: 'gauge',
    help: 'Power draw (in W).',
    value: (g) => float(g.powerW),
  },
  {
    name: 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION',
    type: 'counter',
    help: 'Total energy consumption since boot (in mJ).',
    value: (g) => int(g.energyMj),
  },
  {
    name: 'DCGM_FI_DEV_PCIE_REPLAY_COUNTER',
    type: 'counter',
    help: 'Total number of PCIe retries.',
    value: (g) => int(g.pcieReplayCounter),
  },
  {
    name: 'DCGM_FI_DEV_GPU_UTIL',
    type: 'gauge',
    help: 'GPU utilization (in %).',
    value: (g) => int(g.utilizationPct),
  },
  {
    name: 'DCGM_FI_DEV_MEM_COPY_UTIL',
    type: 'gauge',
    help: 'Memory utilization (in %).',
    value: (g) => int(g.utilizationPct / 3),
  },
  { name: 'DCGM_FI_DEV_ENC_UTIL', type: 'gauge', help: 'Encoder utilization (in %).', value: () => '0' },
  { name: 'DCGM_FI_DEV_DEC_UTIL', type: 'gauge', help: 'Decoder utilization (in %).', value: () => '0' },
  {
    name: 'DCGM_FI_DEV_XID_ERRORS',
    type: 'gauge',
    help: 'Value of the last XID error encountered.',
    value: (g) => int(g.xidLast),
  },
  {
    name: 'DCGM_FI_DEV_FB_FREE',
    type: 'gauge',
    help: 'Framebuffer memory free (in MiB).',
    value: (g) => int(g.fbTotalMiB - g.fbUsedMiB - 520),
  },
  {
    name: 'DCGM_FI_DEV_FB_USED',
    type: 'gauge',
    help: 'Framebuffer memory used (in MiB).',
    value: (g) => int(g.fbUsedMiB),
  },
  {
    name: 'DCGM_FI_DEV_FB_RESERVED',
    type: 'gauge',
    help: 'Framebuffer memory reserved (in MiB).',
    value: () => '520',
  },
  {
    name: 'DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL',
    type: 'counter',
    help: 'Total number of NVLink bandwidth counters for all lanes',
    value: (g) => int(g.nvlinkBandwidthTotal),
  },
  { name: 'DCGM_FI_DEV_VGPU_LICENSE_STATUS', type: 'gauge', help: 'vGPU License status', value: () => '0' },
  {
    name: 'DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS',
    type: 'counter',
    help: 'Number of remapped rows for uncorrectable errors',
    value: (g) => int(g.uncorrectableRemappedRows),
  },
  {
    name: 'DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS',
    type: 'counter',
    help: 'Number of remapped rows for correctable errors',
    value: (g) => int(g.correctableRemappedRows),
  },
  {
    name: 'DCGM_FI_DEV_ROW_REMAP_FAILURE',
    type: 'gauge',
    help: 'Whether remapping of rows has failed',
    value: (g) => int(g.rowRemapFailure),
  },
  {
    name: 'DCGM_FI_PROF_GR_ENGINE_ACTIVE',
    type: 'gauge',
    help: 'Ratio of time the graphics engine is active.',
    value: (g) => float(g.utilizationPct / 100),
  },
  {
    name: 'DCGM_FI_PROF_PIPE_TENSOR_ACTIVE',
    type: 'gauge',
    help: 'Ratio of cycles the tensor (HMMA) pipe is active.',
    value: (g) => float(g.utilizationPct / 250),
  },
  {
    name: 'DCGM_FI_PROF_DRAM_ACTIVE',
    type: 'gauge',
    help: 'Ratio of cycles the device memory interface is active sending or receiving data.',
    value: (g) => float(g.utilizationPct / 400),
  },
  {
    name: 'DCGM_FI_PROF_PCIE_TX_BYTES',
    type: 'counter',
    help: 'The number of bytes of active pcie tx data including both header and payload.',
    value: (g) => int(120_000 + g.utilizationPct * 9_000),
  },
  {
    name: 'DCGM_FI_PROF_PCIE_RX_BYTES',
    type: 'counter',
    help: 'The number of bytes of active pcie rx data including both header and payload.',
    value: (g) => int(150_000 + g.utilizationPct * 11_000),
  },
];

/** The commented-out lines of default-counters.csv that gpu-medic's counters CSV enables for RAS data. */
export const EXTRA_FAMILIES: readonly Family[] = [
  {
    name: 'DCGM_FI_DEV_ECC_SBE_VOL_TOTAL',
    type: 'counter',
    help: 'Total number of single-bit volatile ECC errors.',
    value: (g) => int(g.eccSbeVolatile),
  },
  {
    name: 'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL',
    type: 'counter',
    help: 'Total number of double-bit volatile ECC errors.',
    value: (g) => int(g.eccDbeVolatile),
  },
  {
    name: 'DCGM_FI_DEV_ECC_SBE_AGG_TOTAL',
    type: 'counter',
    help: 'Total number of single-bit persistent ECC errors.',
    value: (g) => int(g.eccSbeAggregate),
  },
  {
    name: 'DCGM_FI_DEV_ECC_DBE_AGG_TOTAL',
    type: 'counter',
    help: 'Total number of double-bit persistent ECC errors.',
    value: (g) => int(g.eccDbeAggregate),
  },
  {
    name: 'DCGM_FI_DEV_RETIRED_SBE',
    type: 'counter',
    help: 'Total number of retired pages due to single-bit errors.',
    value: (g) => int(g.retiredSbe),
  },
  {
    name: 'DCGM_FI_DEV_RETIRED_DBE',
    type: 'counter',
    help: 'Total number of retired pages due to double-bit errors.',
    value: (g) => int(g.retiredDbe),
  },
  {
    name: 'DCGM_FI_DEV_RETIRED_PENDING',
    type: 'counter',
    help: 'Total number of pages pending retirement.',
    value: (g) => int(g.retiredPending),
  },
  {
    name: 'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL',
    type: 'counter',
    help: 'Total number of NVLink flow-control CRC errors.',
    value: (g) => int(g.nvlinkCrcFlitErrors),
  },
  {
    name: 'DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL',
    type: 'counter',
    help: 'Total number of NVLink data CRC errors.',
    value: (g) => int(g.nvlinkCrcDataErrors),
  },
  {
    name: 'DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL',
    type: 'counter',
    help: 'Total number of NVLink retries.',
    value: (g) => int(g.nvlinkReplayErrors),
  },
  {
    name: 'DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL',
    type: 'counter',
    help: 'Total number of NVLink recovery errors.',
    value: (g) => int(g.nvlinkRecoveryErrors),
  },
];

const XID_COUNT_HELP =
  'Count of XID Errors within user-specified time window (see xid-count-window-size param).';
const HEALTH_HELP = 'DCGM reported health status';

/** dcgm-exporter's default --xid-count-window-size (5 minutes), printed as the `window_size_in_ms` label. */
export const XID_COUNT_WINDOW_MS = 300_000;

/**
 * The health watches dcgm-exporter's GPU health collector prints, one series each per GPU
 * (internal/pkg/collector/gpu_health_collector.go): `health_watch` names the watch, `health_error_code`
 * the DCGM_FR_* code, and the value is DCGM's health result (0 pass, 10 warn, 20 fail).
 */
export const HEALTH_WATCHES = [
  'PCIE',
  'NVLINK',
  'PMU',
  'MCU',
  'MEM',
  'SM',
  'INFOROM',
  'THERMAL',
  'POWER',
  'DRIVER',
  'ALL',
] as const;

const HEALTH_VALUE = { warn: 10, fail: 20 } as const;

/** `Memory system` (dcgmi's name of the subsystem) → `MEM` (the exporter's watch name). */
const WATCH_OF_SYSTEM: Readonly<Record<string, (typeof HEALTH_WATCHES)[number]>> = {
  'PCIe system': 'PCIE',
  'NVLink system': 'NVLINK',
  'PMU system': 'PMU',
  'MCU system': 'MCU',
  'Memory system': 'MEM',
  'SM system': 'SM',
  'InfoROM system': 'INFOROM',
  'Thermal system': 'THERMAL',
  'Power system': 'POWER',
  'Driver system': 'DRIVER',
};

/** Per watch, the worst incident DCGM's health check would return for this GPU (one per watch, as the collector keeps). */
function healthByWatch(g: SimGpu): Map<string, { value: number; code: string }> {
  const out = new Map<string, { value: number; code: string }>();
  for (const inc of simHealthIncidents(g)) {
    const watch = WATCH_OF_SYSTEM[inc.system] ?? 'ALL';
    const code = /double-bit/i.test(inc.message)
      ? 'DCGM_FR_VOLATILE_DBE_DETECTED'
      : /row remapping failed/i.test(inc.message)
        ? 'DCGM_FR_ROW_REMAP_FAILURE'
        : // An injected health state names no code: the exporter prints the code DCGM gives, unknown here.
          'DCGM_FR_UNKNOWN';
    const value = HEALTH_VALUE[inc.severity];
    const prev = out.get(watch);
    if (!prev || prev.value < value) out.set(watch, { value, code });
  }
  return out;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** GPU_I_PROFILE and GPU_I_ID sit after modelName, as in test/fixtures/dcgm-sample-a800-8gpu-mig.prom. */
function baseLabels(
  hostname: string,
  g: SimGpu,
  driver: string,
  hostLabel: string,
  mig?: { id: number; profile: string },
): string {
  const instance = mig ? `GPU_I_PROFILE="${mig.profile}",GPU_I_ID="${mig.id}",` : '';
  return (
    `gpu="${g.index}",UUID="${g.uuid}",pci_bus_id="${g.pciBusId}",device="nvidia${g.index}",` +
    `modelName="${escapeLabel(g.model)}",${instance}${hostLabel}="${escapeLabel(hostname)}",DCGM_FI_DRIVER_VERSION="${driver}"`
  );
}

/**
 * NVML cannot read remapped rows on a GPU in MIG mode with instances: the exporter leaves those families out
 * for it (the A800 MIG sample has none for its MIG GPU 0).
 */
const NOT_ON_MIG: ReadonlySet<string> = new Set([
  'DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS',
  'DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS',
  'DCGM_FI_DEV_ROW_REMAP_FAILURE',
]);

/** Labels after the fixed ones come sorted by name, as the exporter prints them. */
function tailLabels(extra: Record<string, string>, g: SimGpu): string {
  const all: Record<string, string> = { ...extra };
  if (g.pod) {
    all.container = g.pod.container;
    all.namespace = g.pod.namespace;
    all.pod = g.pod.pod;
  }
  const keys = Object.keys(all).sort();
  return keys.map((k) => `,${k}="${escapeLabel(all[k] ?? '')}"`).join('');
}

export function renderExporterMetrics(
  hostname: string,
  gpus: readonly SimGpu[],
  opts: ExporterRenderOptions = {},
): string {
  const driver = opts.driverVersion ?? DEFAULT_DRIVER_VERSION;
  const hostLabel = opts.hostnameLabel ?? 'Hostname';
  // One exporter entity per GPU, or per MIG instance on a GPU in MIG mode; device-level values repeat on each.
  const visible = gpus
    .filter((g) => g.present)
    .flatMap((g): { g: SimGpu; m?: { id: number; profile: string } }[] =>
      g.migInstances && g.migInstances.length > 0
        ? g.migInstances.map((m) => ({ g, m }))
        : [{ g, m: undefined }],
    );
  const bases = visible.map(({ g, m }) => baseLabels(hostname, g, driver, hostLabel, m));
  const plainTails = visible.map(({ g }) => tailLabels({}, g));
  const out: string[] = [];
  const full = opts.counters === 'full';
  const families = full ? [...DEFAULT_FAMILIES, ...EXTRA_FAMILIES] : DEFAULT_FAMILIES;
  for (const f of families) {
    out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    visible.forEach(({ g, m }, i) => {
      if (m && NOT_ON_MIG.has(f.name)) return;
      const tail =
        f.name === 'DCGM_FI_DEV_XID_ERRORS'
          ? tailLabels({ err_code: String(g.xidLast), err_msg: xidName(g.xidLast) }, g)
          : plainTails[i];
      out.push(`${f.name}{${bases[i]}${tail}} ${f.value(g)}`);
    });
  }
  if (full && visible.length > 0) {
    // The XID collector prints one series per XID seen in its window, or one 0 without `xid` when none was.
    out.push(`# HELP DCGM_EXP_XID_ERRORS_COUNT ${XID_COUNT_HELP}`, '# TYPE DCGM_EXP_XID_ERRORS_COUNT gauge');
    const window = String(XID_COUNT_WINDOW_MS);
    visible.forEach(({ g }, i) => {
      const counted = Object.entries(g.xidCounts).filter(([, n]) => n > 0);
      if (counted.length === 0) {
        out.push(`DCGM_EXP_XID_ERRORS_COUNT{${bases[i]}${tailLabels({ window_size_in_ms: window }, g)}} 0`);
        return;
      }
      for (const [xid, n] of counted) {
        const tail = tailLabels({ window_size_in_ms: window, xid }, g);
        out.push(`DCGM_EXP_XID_ERRORS_COUNT{${bases[i]}${tail}} ${n}`);
      }
    });
    out.push(`# HELP DCGM_EXP_GPU_HEALTH_STATUS ${HEALTH_HELP}`, '# TYPE DCGM_EXP_GPU_HEALTH_STATUS gauge');
    visible.forEach(({ g }, i) => {
      const byWatch = healthByWatch(g);
      for (const watch of HEALTH_WATCHES) {
        const h = byWatch.get(watch) ?? { value: 0, code: 'DCGM_FR_OK' };
        const tail = tailLabels({ health_error_code: h.code, health_watch: watch }, g);
        out.push(`DCGM_EXP_GPU_HEALTH_STATUS{${bases[i]}${tail}} ${h.value}`);
      }
    });
  }
  return `${out.join('\n')}\n`;
}
