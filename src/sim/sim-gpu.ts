import type { HealthState } from '../domain/gpu.js';
import type { SeededRandom } from './seeded-random.js';

/** The workload a GPU is allocated to; dcgm-exporter's pod mapping turns it into labels. */
export interface GpuPodMapping {
  namespace: string;
  pod: string;
  container: string;
}

/** One simulated GPU: what the driver/DCGM would report for it. */
export interface SimGpu {
  index: number;
  uuid: string;
  model: string;
  /** DCGM style: `00000000:53:00.0`. */
  pciBusId: string;
  temperatureC: number;
  memoryTemperatureC: number;
  powerW: number;
  utilizationPct: number;
  smClockMhz: number;
  memClockMhz: number;
  /** Counter since boot, in mJ. */
  energyMj: number;
  fbTotalMiB: number;
  fbUsedMiB: number;
  /** Sticky last XID (DCGM_FI_DEV_XID_ERRORS), 0 = none. */
  xidLast: number;
  /** Occurrences per XID code since the exporter started (DCGM_EXP_XID_ERRORS_COUNT). */
  xidCounts: Record<number, number>;
  eccSbeVolatile: number;
  eccDbeVolatile: number;
  eccSbeAggregate: number;
  eccDbeAggregate: number;
  retiredSbe: number;
  retiredDbe: number;
  retiredPending: number;
  /** 0 or 1, as DCGM_FI_DEV_ROW_REMAP_FAILURE. */
  rowRemapFailure: number;
  rowRemapPending: number;
  uncorrectableRemappedRows: number;
  correctableRemappedRows: number;
  pcieReplayCounter: number;
  nvlinkCrcFlitErrors: number;
  nvlinkCrcDataErrors: number;
  nvlinkReplayErrors: number;
  nvlinkRecoveryErrors: number;
  nvlinkBandwidthTotal: number;
  health: HealthState;
  healthMessage?: string;
  /** False once the GPU has fallen off the bus: gone from DCGM and from allocatable. */
  present: boolean;
  /** MIG instances when the GPU is in MIG mode (gpu-shapes.ts): the exporter renders one series per instance. */
  migInstances?: { id: number; profile: string }[];
  pod?: GpuPodMapping;
}

export const H100_MODEL = 'NVIDIA H100 80GB HBM3';

/** PCI bus numbers of the eight GPUs of a p5.48xlarge, as seen on real nodes. */
const p5BusIds = ['53', '64', '75', '86', '97', 'A8', 'B9', 'CA'];

export function makeGpu(index: number, rng: SeededRandom, model = H100_MODEL): SimGpu {
  const bus = p5BusIds[index] ?? (0x10 + index * 0x11).toString(16).toUpperCase().padStart(2, '0');
  const h = rng.hex(32);
  return {
    index,
    uuid: `GPU-${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`,
    model,
    pciBusId: `00000000:${bus}:00.0`,
    temperatureC: rng.int(26, 34),
    memoryTemperatureC: rng.int(28, 38),
    powerW: Math.round((66 + rng.next() * 4) * 1000) / 1000,
    utilizationPct: 0,
    smClockMhz: 1980,
    memClockMhz: 2619,
    energyMj: rng.int(1_000_000_000, 9_000_000_000),
    fbTotalMiB: 81559,
    fbUsedMiB: 0,
    xidLast: 0,
    xidCounts: {},
    eccSbeVolatile: 0,
    eccDbeVolatile: 0,
    eccSbeAggregate: 0,
    eccDbeAggregate: 0,
    retiredSbe: 0,
    retiredDbe: 0,
    retiredPending: 0,
    rowRemapFailure: 0,
    rowRemapPending: 0,
    uncorrectableRemappedRows: 0,
    correctableRemappedRows: 0,
    pcieReplayCounter: 0,
    nvlinkCrcFlitErrors: 0,
    nvlinkCrcDataErrors: 0,
    nvlinkReplayErrors: 0,
    nvlinkRecoveryErrors: 0,
    nvlinkBandwidthTotal: 0,
    health: 'pass',
    present: true,
  };
}

/**
 * What a reboot (driver reload) clears: the sticky XID, volatile ECC, NVLink counters, pending
 * retirements, health, a GPU that fell off the bus. Lifetime counters (aggregate ECC, retired pages,
 * remapped rows) survive, as on real hardware.
 */
export function resetAfterReboot(gpu: SimGpu): void {
  gpu.xidLast = 0;
  gpu.xidCounts = {};
  gpu.eccSbeVolatile = 0;
  gpu.eccDbeVolatile = 0;
  gpu.retiredPending = 0;
  gpu.rowRemapFailure = 0;
  gpu.rowRemapPending = 0;
  gpu.nvlinkCrcFlitErrors = 0;
  gpu.nvlinkCrcDataErrors = 0;
  gpu.nvlinkReplayErrors = 0;
  gpu.nvlinkRecoveryErrors = 0;
  gpu.pcieReplayCounter = 0;
  gpu.health = 'pass';
  gpu.healthMessage = undefined;
  gpu.present = true;
  gpu.utilizationPct = 0;
  gpu.fbUsedMiB = 0;
}

/** PCI address in the kernel's short form (`0000:53:00`) used in `NVRM: Xid (PCI:…)` lines. */
export function kernelPciAddress(gpu: SimGpu): string {
  const m = /^0*([0-9A-Fa-f]{1,4}):([0-9A-Fa-f]{2}):([0-9A-Fa-f]{2})/.exec(gpu.pciBusId);
  if (!m) return gpu.pciBusId.toLowerCase();
  return `${(m[1] ?? '0').padStart(4, '0')}:${m[2]}:${m[3]}`.toLowerCase();
}

/** What a GPU reads with a workload on it (busy) or without one. */
export function applyLoad(g: SimGpu, busy: boolean): void {
  g.utilizationPct = busy ? 97 : 0;
  g.fbUsedMiB = busy ? 71_234 : 0;
  g.powerW = busy ? 612.5 : 68.2;
  g.temperatureC = busy ? 58 : 30;
  g.memoryTemperatureC = busy ? 64 : 34;
}
