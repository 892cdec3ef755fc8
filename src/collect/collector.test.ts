import { describe, expect, it } from 'vitest';
import { DEVICE_PLUGIN_STARTUP_GRACE_MS, devicePluginStarting } from '../domain/gpu-count.js';
import type { GpuNode } from '../domain/node.js';
import { baseSnapshot } from './collector.js';

const NOW = Date.parse('2026-12-03T10:00:00Z');

function node(over: Partial<GpuNode> = {}): GpuNode {
  return {
    name: 'gpu-0',
    instanceType: 'p5.48xlarge',
    expectedGpus: 8,
    allocatableGpus: 0,
    gpuResources: { 'nvidia.com/gpu': 0 },
    unschedulable: false,
    ready: true,
    readySince: NOW - 40_000,
    labels: {},
    conditions: [],
    ...over,
  };
}

// After a boot (a reboot, a new node) the kubelet is Ready before the NVIDIA device plugin registers: every
// NVIDIA resource reads 0 for minutes on a real node. That is "not yet", not "8 GPUs lost".
describe('a node whose device plugin has not registered yet', () => {
  it('is starting within the grace after Ready, with every NVIDIA resource at 0', () => {
    expect(devicePluginStarting(node(), NOW)).toBe(true);
    expect(devicePluginStarting(node({ gpuResources: { 'nvidia.com/mig-1g.10gb': 0 } }), NOW)).toBe(true);
  });

  it.each([
    ['past the grace', node({ readySince: NOW - DEVICE_PLUGIN_STARTUP_GRACE_MS })],
    ['the plugin registered some GPUs', node({ allocatableGpus: 7, gpuResources: { 'nvidia.com/gpu': 7 } })],
    ['not Ready', node({ ready: false })],
    ['Ready since unknown', node({ readySince: undefined })],
  ])('is read as usual when %s', (_, n) => {
    expect(devicePluginStarting(n, NOW)).toBe(false);
  });

  it('has no allocatable count in its snapshot, and says which part is missing', () => {
    const s = baseSnapshot(node(), 'exporter', NOW);
    expect(s.allocatableGpus).toBeUndefined();
    expect(s.expectedGpus).toBe(8);
    expect(s.missingParts).toEqual([
      {
        part: 'device_plugin',
        reason: expect.stringContaining('has not registered since gpu-0 turned Ready 40 s ago'),
      },
    ]);
  });

  it('past the grace, 0 allocatable is compared again (a device plugin that never comes back is a fault)', () => {
    const s = baseSnapshot(node({ readySince: NOW - DEVICE_PLUGIN_STARTUP_GRACE_MS - 1 }), 'exporter', NOW);
    expect(s.allocatableGpus).toBe(0);
    expect(s.missingParts).toBeUndefined();
  });
});
