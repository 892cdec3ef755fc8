import type { V1Node } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { SimCluster } from '../sim/cluster.js';
import type { GpuShape } from '../sim/gpu-shapes.js';
import { ManualClock } from '../sim/sim-clock.js';
import { isWatchedNode, toGpuNode } from './node-mapper.js';

const clusters: SimCluster[] = [];
afterEach(() => {
  for (const c of clusters.splice(0)) c.close();
});

/** Nodes as the simulator's device plugin and GFD label them, one of each shape. */
function nodesByShape(instanceType = 'p5.48xlarge'): Map<GpuShape | 'cpu', V1Node> {
  const c = new SimCluster({
    clock: new ManualClock(),
    workloads: false,
    nodes: 4,
    instanceType,
    gpuShapes: ['plain', 'time-sliced', 'mig-single', 'mig-mixed'],
  });
  clusters.push(c);
  const out = new Map<GpuShape | 'cpu', V1Node>();
  for (const n of c.listNodes()) {
    const info = c.nodeInfo(n.metadata.name);
    // The wire JSON the client would decode: timestamps stay strings, which toGpuNode never reads.
    out.set(info?.gpuNode ? info.shape : 'cpu', n as unknown as V1Node);
  }
  return out;
}

describe('toGpuNode: the physical GPU count whatever the sharing', () => {
  it.each([
    ['plain', 'none', 8],
    ['time-sliced', 'time-slicing', 8],
    ['mig-single', 'mig-single', undefined],
    ['mig-mixed', 'mig-mixed', undefined],
  ] as const)('%s p5 node → 8 expected (%s), %s allocatable', (shape, sharing, allocatable) => {
    const node = toGpuNode(nodesByShape().get(shape) as V1Node);
    expect(node).toMatchObject({ expectedGpus: 8, gpuCountSource: 'instance-type', gpuSharing: sharing });
    expect(node?.allocatableGpus).toBe(allocatable);
    expect(node && isWatchedNode(node, false)).toBe(true);
  });

  it('a MIG-mixed node, with no nvidia.com/gpu, is a GPU node and lists its MIG resources', () => {
    const node = toGpuNode(nodesByShape().get('mig-mixed') as V1Node);
    expect(node?.gpuResources).toEqual({ 'nvidia.com/mig-1g.10gb': 28, 'nvidia.com/mig-3g.40gb': 8 });
  });

  it('an instance type the table does not know: GFD count, but never a MIG-single device count', () => {
    const nodes = nodesByShape('p4de.24xlarge');
    for (const n of nodes.values()) {
      // Same nodes as a type the table does not know.
      const labels = n.metadata?.labels ?? {};
      labels['node.kubernetes.io/instance-type'] = 'p9.96xlarge';
      labels['beta.kubernetes.io/instance-type'] = 'p9.96xlarge';
    }
    const get = (shape: GpuShape) => toGpuNode(nodes.get(shape) as V1Node);
    expect(get('plain')).toMatchObject({ expectedGpus: 8, gpuCountSource: 'gfd-label' });
    expect(get('time-sliced')).toMatchObject({ expectedGpus: 8, gpuCountSource: 'gfd-label' });
    expect(get('mig-mixed')).toMatchObject({ expectedGpus: 8, gpuCountSource: 'gfd-label' });
    const single = get('mig-single');
    expect(single?.gpuCountSource).toBe('unknown');
    expect(single?.expectedGpus).toBeUndefined();
  });

  it('the system node is not a GPU node', () => {
    const node = toGpuNode(nodesByShape().get('cpu') as V1Node);
    expect(node && isWatchedNode(node, false)).toBe(false);
    expect(node?.expectedGpus).toBeUndefined();
  });
});
