import { describe, expect, it } from 'vitest';
import {
  allocatablePhysicalGpus,
  expectedGpusAfterRepair,
  expectedPhysicalGpus,
  gpuSharing,
  gpusAllocatable,
  hasGpus,
} from './gpu-count.js';
import { EC2_INSTANCE_GPUS, instanceTypeGpus } from './instance-gpus.js';

/** What GFD puts on every node it labels, shared or not (GPU Operator defaults). */
const gfd = (count: number, product = 'NVIDIA-H100-80GB-HBM3'): Record<string, string> => ({
  'nvidia.com/gpu.present': 'true',
  'nvidia.com/gpu.count': String(count),
  'nvidia.com/gpu.product': product,
  'nvidia.com/gpu.replicas': '1',
  'nvidia.com/gpu.sharing-strategy': 'none',
  'nvidia.com/mig.capable': 'true',
  'nvidia.com/mig.strategy': 'single',
});

describe('EC2 instance-type GPU table', () => {
  it.each([
    ['p3.2xlarge', 1],
    ['p3.8xlarge', 4],
    ['p3.16xlarge', 8],
    ['p3dn.24xlarge', 8],
    ['p4d.24xlarge', 8],
    ['p4de.24xlarge', 8],
    ['p5.4xlarge', 1],
    ['p5.48xlarge', 8],
    ['p5e.48xlarge', 8],
    ['p5en.48xlarge', 8],
    ['p6-b200.48xlarge', 8],
    ['p6-b300.48xlarge', 8],
    ['p6e-gb200.36xlarge', 4],
    ['g4dn.xlarge', 1],
    ['g4dn.12xlarge', 4],
    ['g4dn.metal', 8],
    ['g5.xlarge', 1],
    ['g5.12xlarge', 4],
    ['g5.24xlarge', 4],
    ['g5.48xlarge', 8],
    ['g5g.xlarge', 1],
    ['g5g.16xlarge', 2],
    ['g5g.metal', 2],
    ['g6.2xlarge', 1],
    ['g6.12xlarge', 4],
    ['g6.48xlarge', 8],
    ['gr6.4xlarge', 1],
    ['gr6.8xlarge', 1],
    ['g6e.xlarge', 1],
    ['g6e.24xlarge', 4],
    ['g6e.48xlarge', 8],
    ['g6f.large', 1],
    ['gr6f.4xlarge', 1],
    ['g7e.12xlarge', 2],
    ['g7e.48xlarge', 8],
  ])('%s has %i GPU(s)', (type, gpus) => {
    expect(instanceTypeGpus(type)).toBe(gpus);
  });

  it.each([
    'm5.xlarge',
    'g4ad.xlarge',
    'inf2.48xlarge',
    'trn1.32xlarge',
    'p9.96xlarge',
    '',
    'toString',
  ])('%j is not a known NVIDIA GPU type', (type) => {
    expect(instanceTypeGpus(type)).toBeUndefined();
  });

  it('has only positive whole counts', () => {
    for (const n of Object.values(EC2_INSTANCE_GPUS)) expect(Number.isInteger(n) && n > 0).toBe(true);
  });
});

describe('gpuSharing', () => {
  it('reads GFD defaults (mig.strategy=single, replicas=1, sharing-strategy=none) as not shared', () => {
    expect(gpuSharing(gfd(8), { 'nvidia.com/gpu': 8 })).toBe('none');
  });

  it('time-slicing: the sharing-strategy label, replicas > 1, or the renamed resource', () => {
    const labels = {
      ...gfd(8),
      'nvidia.com/gpu.replicas': '4',
      'nvidia.com/gpu.sharing-strategy': 'time-slicing',
    };
    expect(gpuSharing(labels, { 'nvidia.com/gpu': 32 })).toBe('time-slicing');
    expect(gpuSharing({ 'nvidia.com/gpu.replicas': '4' }, { 'nvidia.com/gpu': 32 })).toBe('time-slicing');
    expect(gpuSharing({}, { 'nvidia.com/gpu.shared': 32 })).toBe('time-slicing');
  });

  it('MPS', () => {
    const labels = { ...gfd(8), 'nvidia.com/gpu.replicas': '2', 'nvidia.com/gpu.sharing-strategy': 'mps' };
    expect(gpuSharing(labels, { 'nvidia.com/gpu': 16 })).toBe('mps');
  });

  it('MIG single: the product label ends in -MIG-<profile>', () => {
    const labels = { ...gfd(56, 'NVIDIA-H100-80GB-HBM3-MIG-1g.10gb'), 'nvidia.com/gpu.slices.gi': '1' };
    expect(gpuSharing(labels, { 'nvidia.com/gpu': 56 })).toBe('mig-single');
  });

  it('MIG mixed: nvidia.com/mig-<profile> resources and no nvidia.com/gpu', () => {
    const labels = { ...gfd(8), 'nvidia.com/mig.strategy': 'mixed', 'nvidia.com/mig-1g.10gb.count': '28' };
    expect(gpuSharing(labels, { 'nvidia.com/mig-1g.10gb': 28, 'nvidia.com/mig-3g.40gb': 8 })).toBe(
      'mig-mixed',
    );
    // After a reboot the kubelet keeps the resources at 0 until the plugin registers: the labels still say so.
    expect(gpuSharing(labels, {})).toBe('mig-mixed');
  });

  it('the mixed strategy with MIG disabled everywhere is whole GPUs', () => {
    expect(gpuSharing({ ...gfd(8), 'nvidia.com/mig.strategy': 'mixed' }, { 'nvidia.com/gpu': 8 })).toBe(
      'none',
    );
  });
});

describe('expectedPhysicalGpus', () => {
  it('takes the instance type over a label and capacity that lost a GPU', () => {
    expect(
      expectedPhysicalGpus({
        instanceType: 'p5.48xlarge',
        labels: gfd(7),
        capacity: { 'nvidia.com/gpu': 7 },
      }),
    ).toEqual({ expected: 8, source: 'instance-type', sharing: 'none' });
  });

  it.each(Object.entries(EC2_INSTANCE_GPUS))('%s with no labels expects %i', (type, gpus) => {
    expect(expectedPhysicalGpus({ instanceType: type, labels: {}, capacity: {} }).expected).toBe(gpus);
  });

  it('uses the GFD count for a type the table does not know', () => {
    expect(
      expectedPhysicalGpus({
        instanceType: 'p9.96xlarge',
        labels: gfd(16),
        capacity: { 'nvidia.com/gpu': 16 },
      }),
    ).toEqual({ expected: 16, source: 'gfd-label', sharing: 'none' });
  });

  it('prefers a larger GFD count over a table that lags a new size', () => {
    expect(expectedPhysicalGpus({ instanceType: 'g6.xlarge', labels: gfd(2), capacity: {} })).toMatchObject({
      expected: 2,
      source: 'gfd-label',
    });
  });

  it('time-sliced: never the replicated capacity', () => {
    const labels: Record<string, string> = {
      ...gfd(4),
      'nvidia.com/gpu.replicas': '4',
      'nvidia.com/gpu.sharing-strategy': 'time-slicing',
    };
    const capacity = { 'nvidia.com/gpu': 16 };
    expect(expectedPhysicalGpus({ instanceType: 'g6.12xlarge', labels, capacity })).toEqual({
      expected: 4,
      source: 'instance-type',
      sharing: 'time-slicing',
    });
    expect(expectedPhysicalGpus({ instanceType: 'x9.large', labels, capacity })).toEqual({
      expected: 4,
      source: 'gfd-label',
      sharing: 'time-slicing',
    });
    const { 'nvidia.com/gpu.count': _, ...noCount } = labels;
    expect(expectedPhysicalGpus({ instanceType: 'x9.large', labels: noCount, capacity })).toEqual({
      source: 'unknown',
      sharing: 'time-slicing',
    });
  });

  it('MIG single: the table, never the label (it counts MIG devices) nor capacity', () => {
    const labels = { ...gfd(56, 'NVIDIA-A100-SXM4-80GB-MIG-1g.10gb'), 'nvidia.com/gpu.slices.gi': '1' };
    const capacity = { 'nvidia.com/gpu': 56 };
    expect(expectedPhysicalGpus({ instanceType: 'p4de.24xlarge', labels, capacity })).toEqual({
      expected: 8,
      source: 'instance-type',
      sharing: 'mig-single',
    });
    expect(expectedPhysicalGpus({ instanceType: 'x9.large', labels, capacity })).toEqual({
      source: 'unknown',
      sharing: 'mig-single',
    });
  });

  it('MIG mixed: GFD count is physical', () => {
    const labels = { ...gfd(8), 'nvidia.com/mig.strategy': 'mixed' };
    const capacity = { 'nvidia.com/mig-1g.10gb': 28, 'nvidia.com/mig-3g.40gb': 8 };
    expect(expectedPhysicalGpus({ instanceType: 'p5.48xlarge', labels, capacity })).toEqual({
      expected: 8,
      source: 'instance-type',
      sharing: 'mig-mixed',
    });
    expect(expectedPhysicalGpus({ instanceType: 'x9.large', labels, capacity })).toEqual({
      expected: 8,
      source: 'gfd-label',
      sharing: 'mig-mixed',
    });
  });

  it('falls back to unshared capacity without table or GFD, and to unknown without anything', () => {
    expect(expectedPhysicalGpus({ labels: {}, capacity: { 'nvidia.com/gpu': 4 } })).toEqual({
      expected: 4,
      source: 'capacity',
      sharing: 'none',
    });
    expect(expectedPhysicalGpus({ instanceType: 'x9.large', labels: {}, capacity: {} })).toEqual({
      source: 'unknown',
      sharing: 'none',
    });
  });

  it('ignores a malformed GFD count', () => {
    expect(
      expectedPhysicalGpus({
        instanceType: 'x9.large',
        labels: { 'nvidia.com/gpu.count': 'eight' },
        capacity: {},
      }),
    ).toEqual({ source: 'unknown', sharing: 'none' });
  });
});

describe('allocatablePhysicalGpus', () => {
  it('whole GPUs as advertised', () => {
    expect(allocatablePhysicalGpus('none', {}, { 'nvidia.com/gpu': 7 })).toBe(7);
    expect(allocatablePhysicalGpus('none', {}, {})).toBe(0);
  });

  it('time-sliced: replicas of a lost GPU go with it', () => {
    const labels = { 'nvidia.com/gpu.replicas': '4' };
    expect(allocatablePhysicalGpus('time-slicing', labels, { 'nvidia.com/gpu': 32 })).toBe(8);
    expect(allocatablePhysicalGpus('time-slicing', labels, { 'nvidia.com/gpu': 28 })).toBe(7);
    expect(allocatablePhysicalGpus('time-slicing', labels, { 'nvidia.com/gpu.shared': 32 })).toBe(8);
    expect(allocatablePhysicalGpus('time-slicing', {}, { 'nvidia.com/gpu': 32 })).toBeUndefined();
  });

  it('MIG devices are not GPUs', () => {
    expect(allocatablePhysicalGpus('mig-single', {}, { 'nvidia.com/gpu': 56 })).toBeUndefined();
    expect(allocatablePhysicalGpus('mig-mixed', {}, { 'nvidia.com/mig-1g.10gb': 56 })).toBeUndefined();
  });
});

describe('hasGpus', () => {
  const base = { labels: {}, gpuResources: {} };
  it.each([
    ['whole GPUs', { ...base, gpuResources: { 'nvidia.com/gpu': 8 } }, true],
    ['MIG mixed only', { ...base, gpuResources: { 'nvidia.com/mig-1g.10gb': 56 } }, true],
    ['resource at 0 after a reboot', { ...base, gpuResources: { 'nvidia.com/gpu': 0 } }, true],
    ['a GPU instance type before the device plugin', { ...base, instanceType: 'p5.48xlarge' }, true],
    ['GFD found a GPU', { ...base, labels: { 'nvidia.com/gpu.present': 'true' } }, true],
    ['a CPU node', { ...base, instanceType: 'm5.xlarge' }, false],
  ])('%s → %s', (_, node, want) => {
    expect(hasGpus(node)).toBe(want);
  });
});

describe('expectedGpusAfterRepair', () => {
  it('the larger of what the node should have and what it had before', () => {
    expect(expectedGpusAfterRepair({ expectedGpus: 8 }, 8)).toBe(8);
    expect(expectedGpusAfterRepair({ expectedGpus: 7 }, 8)).toBe(8);
    expect(expectedGpusAfterRepair({ expectedGpus: 8 })).toBe(8);
    expect(expectedGpusAfterRepair({}, 4)).toBe(4);
    expect(expectedGpusAfterRepair({})).toBeUndefined();
  });
});

describe('gpusAllocatable', () => {
  it.each([
    ['whole GPUs all back', { allocatableGpus: 8, gpuResources: { 'nvidia.com/gpu': 8 } }, 8, true],
    [
      'kubelet still at 0 after the reboot',
      { allocatableGpus: 0, gpuResources: { 'nvidia.com/gpu': 0 } },
      8,
      false,
    ],
    ['one GPU short', { allocatableGpus: 7, gpuResources: { 'nvidia.com/gpu': 7 } }, 8, false],
    [
      'time-sliced, all replicas back',
      { allocatableGpus: 8, gpuResources: { 'nvidia.com/gpu': 32 } },
      8,
      true,
    ],
    [
      'MIG mixed, every profile offered',
      { gpuResources: { 'nvidia.com/mig-1g.10gb': 28, 'nvidia.com/mig-3g.40gb': 8 } },
      8,
      true,
    ],
    [
      'MIG mixed, one profile still 0',
      { gpuResources: { 'nvidia.com/mig-1g.10gb': 28, 'nvidia.com/mig-3g.40gb': 0 } },
      8,
      false,
    ],
    ['no NVIDIA resource at all', { gpuResources: {} }, 8, false],
    [
      'no expectation, some GPUs',
      { allocatableGpus: 2, gpuResources: { 'nvidia.com/gpu': 2 } },
      undefined,
      true,
    ],
  ] as const)('%s → %s', (_, node, expected, want) => {
    expect(gpusAllocatable(node, expected)).toBe(want);
  });
});
