/**
 * How many physical GPUs a node should have, and how its GPUs are shared.
 *
 * What the node itself reports cannot be the whole expectation:
 * - `nvidia.com/gpu` capacity counts time-slicing replicas (GPUs × replicas), MPS replicas and MIG-single
 *   devices (7 per A100/H100 with 1g profiles), and is absent under MIG mixed (`nvidia.com/mig-<profile>`);
 * - GFD's `nvidia.com/gpu.count` is the physical count with time-slicing, MPS and MIG mixed, but counts MIG
 *   devices under MIG single (the product label then ends in `-MIG-<profile>`);
 * - both, and the exporter's GPU list, drop when a GPU falls off the bus or does not come back after a
 *   reboot: they count what NVML sees.
 *
 * The rule, in order:
 * 1. the instance type is in the EC2 table → the table's count (the hardware), or GFD's physical count if
 *    that is larger (a table can lag a new size; a label can only under-count);
 * 2. the type is unknown → GFD's `nvidia.com/gpu.count` when it is a physical count (not MIG single);
 * 3. no usable label → `nvidia.com/gpu` capacity when the GPUs are not shared;
 * 4. otherwise unknown: no GPU-count check for the node (the monitor says so once per instance type).
 *
 * Careful with GFD's labels: it sets `nvidia.com/mig.strategy=single`, `nvidia.com/gpu.replicas=1` and
 * `nvidia.com/gpu.sharing-strategy=none` on every node it labels, MIG-capable or not, so those labels alone
 * never mean "shared". MIG single is active when the product carries `-MIG-` (or GFD's `gpu.slices.*` labels
 * are present); MIG mixed when the node advertises `nvidia.com/mig-<profile>` resources.
 */
import { instanceTypeGpus } from './instance-gpus.js';

export const GpuSharings = ['none', 'time-slicing', 'mps', 'mig-single', 'mig-mixed'] as const;
export type GpuSharing = (typeof GpuSharings)[number];

export const GpuCountSources = ['instance-type', 'gfd-label', 'capacity', 'unknown'] as const;
export type GpuCountSource = (typeof GpuCountSources)[number];

/** Node labels set by NVIDIA GPU Feature Discovery (GFD) and the device plugin's sharing config. */
export const GfdLabels = {
  present: 'nvidia.com/gpu.present',
  count: 'nvidia.com/gpu.count',
  product: 'nvidia.com/gpu.product',
  replicas: 'nvidia.com/gpu.replicas',
  sharingStrategy: 'nvidia.com/gpu.sharing-strategy',
  migStrategy: 'nvidia.com/mig.strategy',
  migCapable: 'nvidia.com/mig.capable',
  slicesGi: 'nvidia.com/gpu.slices.gi',
} as const;

export const GPU_RESOURCE = 'nvidia.com/gpu';
/** The time-sliced / MPS resource name with the device plugin's `renameByDefault: true`. */
export const SHARED_GPU_RESOURCE = 'nvidia.com/gpu.shared';
export const MIG_RESOURCE_PREFIX = 'nvidia.com/mig-';
const MIG_COUNT_LABEL = /^nvidia\.com\/mig-\d+g\.[^/]*\.count$/;

/** Is this an NVIDIA GPU resource name (whole, shared or MIG)? */
export function isNvidiaGpuResource(name: string): boolean {
  return name === GPU_RESOURCE || name === SHARED_GPU_RESOURCE || name.startsWith(MIG_RESOURCE_PREFIX);
}

export interface GpuCountInput {
  instanceType?: string;
  labels: Readonly<Record<string, string>>;
  /** NVIDIA resources from the node's capacity (see isNvidiaGpuResource); zero entries kept. */
  capacity: Readonly<Record<string, number>>;
}

export interface GpuCountExpectation {
  /** Physical GPUs the node should have; undefined when nothing says (no GPU-count check). */
  expected?: number;
  source: GpuCountSource;
  sharing: GpuSharing;
}

function positiveInt(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined;
  const n = Number(value.trim());
  return n > 0 ? n : undefined;
}

/** How the node's GPUs are shared, from what GFD and the device plugin set. */
export function gpuSharing(
  labels: Readonly<Record<string, string>>,
  resources: Readonly<Record<string, number>>,
): GpuSharing {
  const resourceNames = Object.keys(resources);
  // MIG mixed: `nvidia.com/mig-<profile>` resources. The `mixed` strategy label alone is not enough: with MIG
  // disabled on every GPU the node advertises whole GPUs as nvidia.com/gpu.
  if (resourceNames.some((r) => r.startsWith(MIG_RESOURCE_PREFIX))) return 'mig-mixed';
  // MIG single: GFD relabels the product `<model>-MIG-<profile>` and adds the slice labels.
  const product = labels[GfdLabels.product] ?? '';
  if (/-MIG-/i.test(product) || labels[GfdLabels.slicesGi] !== undefined) return 'mig-single';
  // GFD's `nvidia.com/mig-<profile>.count` labels under mixed stay while the kubelet holds the resources at 0.
  if (Object.keys(labels).some((l) => MIG_COUNT_LABEL.test(l))) return 'mig-mixed';
  const strategy = labels[GfdLabels.sharingStrategy];
  if (strategy === 'mps') return 'mps';
  if (strategy === 'time-slicing') return 'time-slicing';
  if ((positiveInt(labels[GfdLabels.replicas]) ?? 1) > 1) return 'time-slicing';
  if (resourceNames.includes(SHARED_GPU_RESOURCE)) return 'time-slicing';
  return 'none';
}

/** The physical GPU count a node should have, where it comes from, and how its GPUs are shared. */
export function expectedPhysicalGpus(input: GpuCountInput): GpuCountExpectation {
  const sharing = gpuSharing(input.labels, input.capacity);
  // Under MIG single GFD counts MIG devices, not GPUs.
  const label = sharing === 'mig-single' ? undefined : positiveInt(input.labels[GfdLabels.count]);
  const table = instanceTypeGpus(input.instanceType);
  if (table !== undefined && table > 0) {
    return label !== undefined && label > table
      ? { expected: label, source: 'gfd-label', sharing }
      : { expected: table, source: 'instance-type', sharing };
  }
  if (label !== undefined) return { expected: label, source: 'gfd-label', sharing };
  const capacity = input.capacity[GPU_RESOURCE];
  if (sharing === 'none' && capacity !== undefined && capacity > 0) {
    return { expected: capacity, source: 'capacity', sharing };
  }
  return { source: 'unknown', sharing };
}

/**
 * Physical GPUs the device plugin offers as allocatable: `nvidia.com/gpu` as is without sharing, divided by
 * `nvidia.com/gpu.replicas` under time-slicing or MPS (a lost GPU takes all its replicas with it).
 * Undefined under MIG (a device is a slice, and a GPU's slices vary) or when the replica count is not
 * labelled: then only DCGM's GPU list can show a missing GPU.
 */
export function allocatablePhysicalGpus(
  sharing: GpuSharing,
  labels: Readonly<Record<string, string>>,
  allocatable: Readonly<Record<string, number>>,
): number | undefined {
  if (sharing === 'none') return allocatable[GPU_RESOURCE] ?? 0;
  if (sharing === 'time-slicing' || sharing === 'mps') {
    const replicas = positiveInt(labels[GfdLabels.replicas]);
    const devices = allocatable[GPU_RESOURCE] ?? allocatable[SHARED_GPU_RESOURCE];
    if (replicas === undefined || devices === undefined) return undefined;
    return Math.floor(devices / replicas);
  }
  return undefined;
}

/**
 * Is this a GPU node? It advertises an NVIDIA GPU resource (a zero counts: the kubelet keeps the resource at 0
 * until the device plugin re-registers after a reboot), or GFD found a GPU, or its instance type has GPUs.
 * One definition for the node watch, the cluster port and the remediation services.
 */
export function hasGpus(node: {
  instanceType?: string;
  labels: Readonly<Record<string, string>>;
  gpuResources: Readonly<Record<string, number>>;
  expectedGpus?: number;
}): boolean {
  if ((node.expectedGpus ?? 0) > 0) return true;
  if (Object.keys(node.gpuResources).some(isNvidiaGpuResource)) return true;
  if (node.labels[GfdLabels.present] === 'true') return true;
  return (instanceTypeGpus(node.instanceType) ?? 0) > 0;
}

/**
 * The GPUs a node must show after a repair before it is trusted again: what it should have (the instance
 * type's count, see expectedPhysicalGpus) or what it had before the repair, whichever is larger, because
 * a GPU that did not come back lowers the node's own labels and capacity with it. Undefined when neither
 * is known.
 */
export function expectedGpusAfterRepair(
  node: { expectedGpus?: number },
  beforeRepair?: number,
): number | undefined {
  const now = node.expectedGpus;
  if (now === undefined) return beforeRepair !== undefined && beforeRepair > 0 ? beforeRepair : undefined;
  return Math.max(now, beforeRepair ?? 0);
}

/**
 * Has the device plugin offered the node's GPUs again (after a reboot the kubelet holds them at 0 until it
 * re-registers)? Where allocatable GPUs are physical (whole or time-sliced), at least `expected` of them; under
 * MIG, where devices are slices, every NVIDIA resource the node advertises is above 0. With nothing to compare
 * (no expectation, no count), any NVIDIA resource above 0.
 */
export function gpusAllocatable(
  node: { allocatableGpus?: number; gpuResources: Readonly<Record<string, number>> },
  expected: number | undefined,
): boolean {
  const values = Object.entries(node.gpuResources)
    .filter(([name]) => isNvidiaGpuResource(name))
    .map(([, n]) => n);
  if (values.length === 0) return false;
  if (node.allocatableGpus !== undefined) {
    return expected !== undefined ? node.allocatableGpus >= expected : node.allocatableGpus > 0;
  }
  return values.every((n) => n > 0);
}

/**
 * How long after a node turns Ready its NVIDIA device plugin may take to register (until then the kubelet
 * reports every NVIDIA resource at 0). The GPU Operator's validators and the plugin's start take minutes on
 * a real boot; the same span as GPU_SETTLE_TIMEOUT's default.
 */
export const DEVICE_PLUGIN_STARTUP_GRACE_MS = 15 * 60_000;

/**
 * The node is Ready on a boot that began less than the grace ago and its device plugin has not registered
 * yet: an allocatable count of 0 means "not yet", not "GPUs lost". Past the grace it is read as usual.
 */
export function devicePluginStarting(
  node: { gpuResources: Readonly<Record<string, number>>; readySince?: number; ready: boolean },
  now: number,
): boolean {
  if (!node.ready || node.readySince === undefined) return false;
  if (now - node.readySince >= DEVICE_PLUGIN_STARTUP_GRACE_MS) return false;
  return Object.values(node.gpuResources).every((n) => n === 0);
}
