/**
 * The simulator learns GPU sharing as real clusters do it: each node shape carries
 * the resources the NVIDIA device plugin advertises and the labels GPU Feature Discovery sets, and the
 * exporter renders MIG instances as one series each.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { gpusFromExporter } from '../collect/parse/exporter.js';
import { parseKernelXids } from '../collect/parse/kernel-log.js';
import { parsePrometheus } from '../collect/parse/prometheus.js';
import { toGpuNode } from '../k8s/node-mapper.js';
import { SimCluster, type SimClusterOptions } from './cluster.js';
import { applyFault, nodeState } from './control-api.js';
import { type GpuShape, migLayout } from './gpu-shapes.js';
import type { KubeNode } from './k8s-objects.js';
import { ManualClock } from './sim-clock.js';

const clusters: SimCluster[] = [];
const clocks = new WeakMap<SimCluster, ManualClock>();
function make(opts: SimClusterOptions = {}): SimCluster {
  const clock = new ManualClock();
  const cluster = new SimCluster({ clock, workloads: false, ...opts });
  clusters.push(cluster);
  clocks.set(cluster, clock);
  return cluster;
}

afterEach(() => {
  for (const c of clusters.splice(0)) c.close();
});

const nvidia = (list: Record<string, string>) =>
  Object.fromEntries(Object.entries(list).filter(([k]) => k.startsWith('nvidia.com/')));
const gfd = (n: KubeNode) =>
  Object.fromEntries(Object.entries(n.metadata.labels ?? {}).filter(([k]) => k.startsWith('nvidia.com/')));

function nodeOfShape(c: SimCluster, shape: GpuShape): KubeNode {
  const n = c
    .listNodes()
    .find((k) => c.nodeInfo(k.metadata.name)?.gpuNode && c.nodeInfo(k.metadata.name)?.shape === shape);
  if (!n) throw new Error(`no ${shape} node`);
  return n;
}

function scrape(c: SimCluster, node: string): string {
  const r = c.exporterScrape(node);
  if (r.kind !== 'ok') throw new Error(`scrape ${r.kind}`);
  return r.body;
}

const mixed: GpuShape[] = ['plain', 'time-sliced', 'mig-single', 'mig-mixed'];

describe('GPU node shapes (device plugin + GFD)', () => {
  it('a fleet mixes the shapes in the order given, one per GPU node; the system node stays plain', () => {
    const c = make({ nodes: 8, gpuShapes: mixed });
    const shapes = c
      .listNodes()
      .map((n) => c.nodeInfo(n.metadata.name))
      .filter((i) => i?.gpuNode)
      .map((i) => i?.shape);
    expect(shapes.sort()).toEqual([...mixed, ...mixed].sort());
    expect(c.listNodes().filter((n) => !c.nodeInfo(n.metadata.name)?.gpuNode)).toHaveLength(1);
  });

  it('plain: nvidia.com/gpu = 8, and GFD defaults that do not mean sharing (mig.strategy=single, replicas=1)', () => {
    const n = nodeOfShape(make({ gpuShapes: mixed }), 'plain');
    expect(nvidia(n.status.capacity)).toEqual({ 'nvidia.com/gpu': '8' });
    expect(nvidia(n.status.allocatable)).toEqual({ 'nvidia.com/gpu': '8' });
    expect(gfd(n)).toEqual({
      'nvidia.com/gpu.present': 'true',
      'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3',
      'nvidia.com/gpu.count': '8',
      'nvidia.com/gpu.replicas': '1',
      'nvidia.com/gpu.sharing-strategy': 'none',
      'nvidia.com/mig.capable': 'true',
      'nvidia.com/mig.strategy': 'single',
    });
  });

  it('time-sliced: capacity is GPUs × replicas, gpu.count stays physical, product gains -SHARED', () => {
    const n = nodeOfShape(make({ gpuShapes: mixed, timeSlicingReplicas: 4 }), 'time-sliced');
    expect(nvidia(n.status.capacity)).toEqual({ 'nvidia.com/gpu': '32' });
    expect(gfd(n)).toMatchObject({
      'nvidia.com/gpu.count': '8',
      'nvidia.com/gpu.replicas': '4',
      'nvidia.com/gpu.sharing-strategy': 'time-slicing',
      'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3-SHARED',
    });
  });

  it('time-sliced with renameByDefault: nvidia.com/gpu.shared instead of nvidia.com/gpu, product unchanged', () => {
    const c = make({ gpuShapes: mixed, timeSlicingRename: true });
    const n = nodeOfShape(c, 'time-sliced');
    expect(nvidia(n.status.capacity)).toEqual({ 'nvidia.com/gpu.shared': '32' });
    expect(gfd(n)['nvidia.com/gpu.product']).toBe('NVIDIA-H100-80GB-HBM3');
    c.dropGpu(n.metadata.name, 1);
    expect(nvidia(c.getNode(n.metadata.name)?.status.allocatable ?? {})).toEqual({
      'nvidia.com/gpu.shared': '28',
    });
    const mapped = toGpuNode(c.getNode(n.metadata.name) as unknown as Parameters<typeof toGpuNode>[0]);
    expect(mapped).toMatchObject({ expectedGpus: 8, gpuSharing: 'time-slicing', allocatableGpus: 7 });
  });

  it('MIG single: nvidia.com/gpu and gpu.count count MIG devices (7 per GPU), product ends in -MIG-<profile>', () => {
    const n = nodeOfShape(make({ gpuShapes: mixed }), 'mig-single');
    expect(nvidia(n.status.capacity)).toEqual({ 'nvidia.com/gpu': '56' });
    expect(gfd(n)).toMatchObject({
      'nvidia.com/gpu.count': '56',
      'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3-MIG-1g.10gb',
      'nvidia.com/mig.strategy': 'single',
      'nvidia.com/gpu.slices.gi': '1',
    });
  });

  it('MIG mixed: no nvidia.com/gpu at all, nvidia.com/mig-<profile> resources, gpu.count physical', () => {
    const n = nodeOfShape(make({ gpuShapes: mixed }), 'mig-mixed');
    expect(nvidia(n.status.capacity)).toEqual({
      'nvidia.com/mig-1g.10gb': '28',
      'nvidia.com/mig-3g.40gb': '8',
    });
    expect(n.status.capacity['nvidia.com/gpu']).toBeUndefined();
    expect(gfd(n)).toMatchObject({
      'nvidia.com/gpu.count': '8',
      'nvidia.com/gpu.product': 'NVIDIA-H100-80GB-HBM3',
      'nvidia.com/mig.strategy': 'mixed',
      'nvidia.com/mig-1g.10gb.count': '28',
      'nvidia.com/mig-3g.40gb.count': '8',
    });
  });

  it('MIG profiles follow the GPU model; a GPU without MIG refuses a MIG shape', () => {
    expect(migLayout('mig-single', 'NVIDIA A100-SXM4-40GB', 0, 8)?.[0]?.profile).toBe('1g.5gb');
    expect(migLayout('mig-single', 'NVIDIA H200', 0, 8)?.[0]?.profile).toBe('1g.18gb');
    expect(() => migLayout('mig-single', 'NVIDIA A10G', 0, 8)).toThrow(/MIG-capable/);
    expect(migLayout('time-sliced', 'NVIDIA A10G', 0, 8)).toBeUndefined();
  });

  it.each([
    ['plain', { 'nvidia.com/gpu': '7' }],
    ['time-sliced', { 'nvidia.com/gpu': '28' }],
    ['mig-single', { 'nvidia.com/gpu': '49' }],
    ['mig-mixed', { 'nvidia.com/mig-1g.10gb': '21', 'nvidia.com/mig-3g.40gb': '8' }],
  ] as const)('a GPU off the bus on a %s node takes its devices out of allocatable', (shape, want) => {
    const c = make({ gpuShapes: mixed });
    const name = nodeOfShape(c, shape).metadata.name;
    c.dropGpu(name, 0);
    expect(nvidia(c.getNode(name)?.status.allocatable ?? {})).toEqual(want);
  });
});

describe('a GPU that does not come back after a reboot', () => {
  it.each([
    ['plain', { 'nvidia.com/gpu': '7' }, '7'],
    ['time-sliced', { 'nvidia.com/gpu': '28' }, '7'],
    ['mig-single', { 'nvidia.com/gpu': '49' }, '49'],
  ] as const)('lowers %s capacity and GFD gpu.count; the product still expects the 8 of a p5', (shape, capacity, count) => {
    const c = make({ gpuShapes: mixed, rebootDelayMs: 1000, devicePluginDelayMs: 500 });
    const name = nodeOfShape(c, shape).metadata.name;
    const bootBefore = c.getNode(name)?.status.nodeInfo.bootID;
    c.dropGpu(name, 3, { persistent: true });
    expect(c.rebootInstance(c.nodeInfo(name)?.instanceId ?? '')).toBe(true);
    clocks.get(c)?.advance(1000);
    // Ready on the new boot, but the device plugin has not registered yet: every NVIDIA resource reads 0.
    expect(Object.values(nvidia(c.getNode(name)?.status.capacity ?? {}))).toEqual(
      Object.keys(capacity).map(() => '0'),
    );
    clocks.get(c)?.advance(500);
    const node = c.getNode(name);
    expect(node?.status.nodeInfo.bootID).not.toBe(bootBefore);
    expect(nvidia(node?.status.capacity ?? {})).toEqual(capacity);
    expect(node?.metadata.labels?.['nvidia.com/gpu.count']).toBe(count);
    const mapped = toGpuNode(node as unknown as Parameters<typeof toGpuNode>[0]);
    expect(mapped).toMatchObject({ expectedGpus: 8, gpuCountSource: 'instance-type' });
  });
});

describe('dcgm-exporter on MIG nodes', () => {
  it('renders one series per MIG instance with GPU_I_ID and GPU_I_PROFILE after modelName', () => {
    const c = make({ gpuShapes: mixed, extraCounters: false });
    const body = scrape(c, nodeOfShape(c, 'mig-mixed').metadata.name);
    const temps = body.split('\n').filter((l) => l.startsWith('DCGM_FI_DEV_GPU_TEMP{'));
    expect(temps).toHaveLength(4 * 7 + 4 * 2);
    expect(temps[0]).toMatch(
      /modelName="NVIDIA H100 80GB HBM3",GPU_I_PROFILE="1g\.10gb",GPU_I_ID="7",Hostname=/,
    );
    expect(temps.at(-1)).toMatch(/gpu="7",.*GPU_I_PROFILE="3g\.40gb",GPU_I_ID="2",/);
    // NVML has no remapped rows for a GPU in MIG mode: the exporter leaves those families out for it.
    expect(body).not.toMatch(/DCGM_FI_DEV_ROW_REMAP_FAILURE\{/);
  });

  it('plain and time-sliced nodes have no MIG labels; their exposition is one series per GPU', () => {
    const c = make({ gpuShapes: mixed, extraCounters: false });
    for (const shape of ['plain', 'time-sliced'] as const) {
      const body = scrape(c, nodeOfShape(c, shape).metadata.name);
      expect(body).not.toContain('GPU_I_ID');
      expect(body.split('\n').filter((l) => l.startsWith('DCGM_FI_DEV_GPU_TEMP{'))).toHaveLength(8);
    }
  });

  it('an XID on a MIG GPU shows on every one of its instances, and parses as one physical GPU', () => {
    const c = make({ gpuShapes: mixed });
    const name = nodeOfShape(c, 'mig-single').metadata.name;
    c.injectXid(name, 2, 79);
    const body = scrape(c, name);
    const xid = body.split('\n').filter((l) => l.startsWith('DCGM_FI_DEV_XID_ERRORS{gpu="2",'));
    expect(xid).toHaveLength(7);
    expect(xid.every((l) => l.endsWith(' 79'))).toBe(true);
    const parsed = gpusFromExporter(parsePrometheus(body));
    expect(parsed.gpus).toHaveLength(8);
    expect(parsed.gpus[2]).toMatchObject({ xidLast: 79 });
    expect(parsed.gpus[2]?.migInstances).toHaveLength(7);
  });
});

describe('kernel XID lines on MIG GPUs', () => {
  it('name the GPU instance; the product reads them as XIDs of the physical GPU', () => {
    const c = make({ gpuShapes: mixed });
    const name = nodeOfShape(c, 'mig-single').metadata.name;
    c.injectXid(name, 1, 13, undefined, { gpuInstance: 9 });
    const [line = ''] = c.kernelLog(name);
    expect(line).toMatch(/^NVRM: Xid \(PCI:0000:64:00 GPU-I:09\): 13, /);
    expect(parseKernelXids(line).xids[0]).toMatchObject({ xid: 13, gpuInstance: 9, pciBusId: '0000:64:00' });
    expect(c.gpuState(name)[1]?.pciBusId.toLowerCase()).toBe('00000000:64:00.0');
    // The same through the control API.
    applyFault(c, { kind: 'xid', node: name, gpu: 2, xid: 31, gpuInstance: 12 });
    expect(c.kernelLog(name)[1]).toMatch(/^NVRM: Xid \(PCI:0000:75:00 GPU-I:12\): 31, /);
  });
});

describe('shapes through the control surfaces', () => {
  it("GET /state says each node's shape", () => {
    const c = make({ gpuShapes: mixed });
    const name = nodeOfShape(c, 'mig-mixed').metadata.name;
    expect(nodeState(c, name)?.gpuShape).toBe('mig-mixed');
  });
});
