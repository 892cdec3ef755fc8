/**
 * How a simulated node's GPUs are shared, and what the NVIDIA device plugin and GPU Feature Discovery (GFD)
 * then put on the Node of a real cluster:
 *
 * | shape       | device plugin resources                      | GFD labels (beyond present/product)                        |
 * |-------------|----------------------------------------------|------------------------------------------------------------|
 * | plain       | nvidia.com/gpu = GPUs                        | gpu.count = GPUs, replicas=1, sharing-strategy=none         |
 * | time-sliced | nvidia.com/gpu (or .shared) = GPUs × replicas | gpu.count = GPUs, replicas=N, sharing-strategy=time-slicing, product `…-SHARED` |
 * | mig-single  | nvidia.com/gpu = MIG devices (7 per GPU)     | gpu.count = MIG devices, product `…-MIG-1g.10gb`, gpu.slices.* |
 * | mig-mixed   | nvidia.com/mig-<profile> only, no nvidia.com/gpu | gpu.count = GPUs, mig.strategy=mixed, mig-<profile>.count |
 *
 * GFD labels `nvidia.com/mig.strategy=single`, `gpu.replicas=1` and `gpu.sharing-strategy=none` on every node
 * with the GPU Operator's defaults, MIG or not: the plain shape carries them too.
 */
import type { SimGpu } from './sim-gpu.js';

export const GpuShapes = ['plain', 'time-sliced', 'mig-single', 'mig-mixed'] as const;
export type GpuShape = (typeof GpuShapes)[number];

export interface MigInstance {
  /** GPU instance id (the exporter's GPU_I_ID). */
  id: number;
  /** GPU instance profile (GPU_I_PROFILE), e.g. `1g.10gb`. */
  profile: string;
}

export interface ShapeOptions {
  /** Time-slicing replicas per GPU. */
  replicas: number;
  /**
   * The device plugin's `renameByDefault: true`: time-sliced GPUs are offered as `nvidia.com/gpu.shared` (and the
   * product label keeps its name); false (the default) keeps `nvidia.com/gpu` and GFD appends `-SHARED`.
   */
  rename?: boolean;
}

export const DEFAULT_TIME_SLICING_REPLICAS = 4;

interface MigProfiles {
  small: string;
  large: string;
}

/** The 1g and 3g profile names of a MIG-capable model; undefined for a GPU without MIG. */
export function migProfiles(model: string): MigProfiles | undefined {
  if (/B200/i.test(model)) return { small: '1g.23gb', large: '3g.90gb' };
  if (/H200/i.test(model)) return { small: '1g.18gb', large: '3g.71gb' };
  if (/A100.*40GB/i.test(model)) return { small: '1g.5gb', large: '3g.20gb' };
  if (/(H100|H800|A100|A800)/i.test(model)) return { small: '1g.10gb', large: '3g.40gb' };
  return undefined;
}

/** 1g instances get GPU instance ids 7–13, the two 3g ones 1–2, as nvidia-smi mig creates them. */
const smallIds = [7, 8, 9, 10, 11, 12, 13];
const largeIds = [1, 2];

/**
 * The MIG instances of GPU `index` of `count` under a shape. mig-single: seven 1g instances on every GPU.
 * mig-mixed: seven 1g on the first half of the GPUs, two 3g on the rest (so two resource names).
 */
export function migLayout(
  shape: GpuShape,
  model: string,
  index: number,
  count: number,
): MigInstance[] | undefined {
  if (shape !== 'mig-single' && shape !== 'mig-mixed') return undefined;
  const profiles = migProfiles(model);
  if (!profiles)
    throw new Error(`a ${shape} node needs MIG-capable GPUs (A100, H100, H200, B200), not ${model}`);
  const small = shape === 'mig-single' || index < Math.ceil(count / 2);
  return small
    ? smallIds.map((id) => ({ id, profile: profiles.small }))
    : largeIds.map((id) => ({ id, profile: profiles.large }));
}

/** What the device plugin advertises for these GPUs (all of them for capacity, the present ones for allocatable). */
export function devicePluginResources(
  shape: GpuShape,
  gpus: readonly Pick<SimGpu, 'present' | 'migInstances'>[],
  opts: ShapeOptions,
  presentOnly: boolean,
): Record<string, string> {
  const counted = presentOnly ? gpus.filter((g) => g.present) : gpus;
  switch (shape) {
    case 'plain':
      return { 'nvidia.com/gpu': String(counted.length) };
    case 'time-sliced':
      return {
        [opts.rename ? 'nvidia.com/gpu.shared' : 'nvidia.com/gpu']: String(counted.length * opts.replicas),
      };
    case 'mig-single':
      return { 'nvidia.com/gpu': String(counted.reduce((n, g) => n + (g.migInstances?.length ?? 0), 0)) };
    case 'mig-mixed': {
      const out: Record<string, string> = {};
      // Every profile the node has keeps its resource name, at 0 when its GPUs are gone.
      for (const g of gpus) for (const m of g.migInstances ?? []) out[`nvidia.com/mig-${m.profile}`] = '0';
      for (const g of counted) {
        for (const m of g.migInstances ?? []) {
          const key = `nvidia.com/mig-${m.profile}`;
          out[key] = String(Number(out[key] ?? 0) + 1);
        }
      }
      return out;
    }
  }
}

/** The labels GFD sets for this shape (with the GPU Operator's defaults). */
export function gfdLabels(
  shape: GpuShape,
  model: string,
  gpus: readonly Pick<SimGpu, 'migInstances'>[],
  opts: ShapeOptions,
): Record<string, string> {
  const product = model.replaceAll(' ', '-');
  const labels: Record<string, string> = {
    'nvidia.com/gpu.present': 'true',
    'nvidia.com/gpu.product': product,
    'nvidia.com/gpu.count': String(gpus.length),
    'nvidia.com/gpu.replicas': '1',
    'nvidia.com/gpu.sharing-strategy': 'none',
    'nvidia.com/mig.capable': migProfiles(model) ? 'true' : 'false',
    'nvidia.com/mig.strategy': 'single',
  };
  switch (shape) {
    case 'plain':
      break;
    case 'time-sliced':
      if (!opts.rename) labels['nvidia.com/gpu.product'] = `${product}-SHARED`;
      labels['nvidia.com/gpu.replicas'] = String(opts.replicas);
      labels['nvidia.com/gpu.sharing-strategy'] = 'time-slicing';
      break;
    case 'mig-single': {
      const devices = gpus.reduce((n, g) => n + (g.migInstances?.length ?? 0), 0);
      const profile = gpus[0]?.migInstances?.[0]?.profile ?? '';
      labels['nvidia.com/gpu.product'] = `${product}-MIG-${profile}`;
      labels['nvidia.com/gpu.count'] = String(devices);
      labels['nvidia.com/gpu.slices.gi'] = profile.split('g.')[0] ?? '1';
      labels['nvidia.com/gpu.slices.ci'] = profile.split('g.')[0] ?? '1';
      labels['nvidia.com/mig.config'] = `all-${profile}`;
      labels['nvidia.com/mig.config.state'] = 'success';
      break;
    }
    case 'mig-mixed': {
      labels['nvidia.com/mig.strategy'] = 'mixed';
      labels['nvidia.com/mig.config'] = 'custom-mixed';
      labels['nvidia.com/mig.config.state'] = 'success';
      const counts = new Map<string, number>();
      for (const g of gpus)
        for (const m of g.migInstances ?? []) counts.set(m.profile, (counts.get(m.profile) ?? 0) + 1);
      for (const [profile, n] of counts) {
        labels[`nvidia.com/mig-${profile}.count`] = String(n);
        labels[`nvidia.com/mig-${profile}.slices.gi`] = profile.split('g.')[0] ?? '1';
      }
      break;
    }
  }
  return labels;
}
