import { afterEach, describe, expect, it } from 'vitest';
import { parseProviderId } from '../domain/node.js';
import { SimCluster, type SimClusterOptions } from './cluster.js';
import type { WatchEvent } from './k8s-objects.js';
import { ManualClock } from './sim-clock.js';
import { SERVING_NAMESPACE, SERVING_PDB, TRAINING_JOB_NAME, TRAINING_NAMESPACE } from './workloads.js';

const clusters: SimCluster[] = [];
function make(opts: SimClusterOptions = {}): { cluster: SimCluster; clock: ManualClock } {
  const clock = new ManualClock();
  const cluster = new SimCluster({ clock, ...opts });
  clusters.push(cluster);
  return { cluster, clock };
}

afterEach(() => {
  for (const c of clusters.splice(0)) c.close();
});

const gpuNodes = (c: SimCluster) => c.listNodes().filter((n) => n.status.capacity['nvidia.com/gpu']);
const ready = (c: SimCluster, name: string) =>
  c.getNode(name)?.status.conditions.find((x) => x.type === 'Ready')?.status;

describe('SimCluster shape', () => {
  it('builds 8 EKS-shaped GPU nodes plus one system node by default', () => {
    const { cluster } = make();
    const nodes = cluster.listNodes();
    expect(nodes).toHaveLength(9);
    for (const n of nodes) {
      expect(n.metadata.name).toMatch(/^ip-10-0-\d{1,3}-\d{1,3}\.ec2\.internal$/);
      expect(n.metadata.labels?.['kubernetes.io/hostname']).toBe(n.metadata.name);
      expect(n.spec.providerID).toMatch(/^aws:\/\/\/us-east-1[abc]\/i-0[0-9a-f]{16}$/);
      const parsed = parseProviderId(n.spec.providerID);
      expect(parsed?.az).toBe(n.metadata.labels?.['topology.kubernetes.io/zone']);
      expect(n.status.addresses.find((a) => a.type === 'InternalIP')?.address).toBe(
        n.metadata.name.replace(/^ip-/, '').replace('.ec2.internal', '').replaceAll('-', '.'),
      );
    }
    const gpu = gpuNodes(cluster);
    expect(gpu).toHaveLength(8);
    for (const n of gpu) {
      expect(n.status.capacity['nvidia.com/gpu']).toBe('8');
      expect(n.status.allocatable['nvidia.com/gpu']).toBe('8');
      expect(n.metadata.labels?.['node.kubernetes.io/instance-type']).toBe('p5.48xlarge');
    }
    const managed = gpu.filter((n) => n.metadata.labels?.['eks.amazonaws.com/nodegroup'] === 'gpu-ng-1');
    const karpenter = gpu.filter((n) => n.metadata.labels?.['karpenter.sh/nodepool'] === 'gpu');
    expect(managed).toHaveLength(6);
    expect(karpenter).toHaveLength(2);
    const instances = cluster.describeInstances();
    const asgOf = (name: string) =>
      instances.find(
        (i) => i.instanceId === parseProviderId(cluster.getNode(name)?.spec.providerID)?.instanceId,
      )?.autoScalingGroup;
    expect(asgOf(managed[0]?.metadata.name ?? '')).toMatch(/^eks-gpu-ng-1-/);
    expect(asgOf(karpenter[0]?.metadata.name ?? '')).toBeUndefined();
    const system = nodes.find((n) => !n.status.capacity['nvidia.com/gpu']);
    expect(system?.metadata.labels?.['eks.amazonaws.com/nodegroup']).toBe('system-ng');
  });

  it('is deterministic for a seed and different across seeds', () => {
    const names = (seed: number) =>
      make({ seed })
        .cluster.listNodes()
        .map((n) => `${n.metadata.name} ${n.spec.providerID} ${n.status.nodeInfo.bootID}`);
    expect(names(7)).toEqual(names(7));
    expect(names(7)).not.toEqual(names(8));
  });

  it('runs exporter and system DaemonSet pods, a PyTorchJob, a PDB-protected app and a mirror pod', () => {
    const { cluster } = make();
    const exporters = cluster.listPods({ namespace: 'gpu-operator' });
    expect(exporters).toHaveLength(8);
    expect(exporters.every((p) => p.metadata.labels?.app === 'nvidia-dcgm-exporter')).toBe(true);
    expect(exporters[0]?.spec.containers[0]?.ports?.[0]?.containerPort).toBe(9400);
    const system = cluster.listPods({ namespace: 'kube-system' });
    expect(system.filter((p) => p.metadata.name.startsWith('aws-node-'))).toHaveLength(9);
    expect(system.filter((p) => p.metadata.name.startsWith('kube-proxy-'))).toHaveLength(9);
    expect(system.filter((p) => p.metadata.annotations?.['kubernetes.io/config.mirror'])).toHaveLength(1);
    expect(system.some((p) => p.metadata.labels?.['k8s-app'] === 'dcgm-server')).toBe(false);

    const job = cluster.trainingJobs()[0];
    expect(job?.status.conditions.find((c) => c.type === 'Running')?.status).toBe('True');
    const jobPods = cluster.listPods({ namespace: TRAINING_NAMESPACE });
    expect(jobPods).toHaveLength(3);
    expect(jobPods[0]?.metadata.ownerReferences?.[0]).toMatchObject({
      kind: 'PyTorchJob',
      apiVersion: 'kubeflow.org/v1',
      controller: true,
      name: TRAINING_JOB_NAME,
    });
    const serving = cluster.listPods({ namespace: SERVING_NAMESPACE });
    expect(new Set(serving.map((p) => p.spec.nodeName)).size).toBe(2);
    expect(cluster.getPdb(SERVING_NAMESPACE, SERVING_PDB)?.status.disruptionsAllowed).toBe(1);
  });

  it('adds dcgm-server pods when asked', () => {
    const { cluster } = make({ nodes: 2, dcgmServer: true });
    const pods = cluster
      .listPods({ namespace: 'kube-system' })
      .filter((p) => p.metadata.labels?.['k8s-app'] === 'dcgm-server');
    expect(pods).toHaveLength(2);
    expect(pods[0]?.metadata.ownerReferences?.[0]?.kind).toBe('DaemonSet');
  });
});

describe('fault injection', () => {
  it('keeps the last XID sticky, counts each code and writes the kernel log line', () => {
    const { cluster } = make({ nodes: 1 });
    const node = gpuNodes(cluster)[0]?.metadata.name ?? '';
    cluster.injectXid(node, 7, 79);
    cluster.injectXid(node, 7, 13);
    cluster.injectXid(node, 7, 79);
    const g = cluster.gpuState(node)[7];
    expect(g?.xidLast).toBe(79);
    expect(g?.xidCounts).toEqual({ 13: 1, 79: 2 });
    expect(cluster.kernelLog(node)[0]).toBe(
      "NVRM: Xid (PCI:0000:ca:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
    );
  });

  it('drops a GPU from allocatable and emits a MODIFIED node event', () => {
    const { cluster } = make({ nodes: 1 });
    const node = gpuNodes(cluster)[0]?.metadata.name ?? '';
    const events: WatchEvent[] = [];
    cluster.onChange((e) => events.push(e));
    cluster.dropGpu(node, 4);
    expect(cluster.getNode(node)?.status.allocatable['nvidia.com/gpu']).toBe('7');
    expect(cluster.getNode(node)?.status.capacity['nvidia.com/gpu']).toBe('8');
    expect(cluster.gpuState(node)[4]?.present).toBe(false);
    expect(events.map((e) => `${e.type} ${e.resource}`)).toEqual(['MODIFIED nodes']);
  });

  it('sets node conditions the way the EKS node monitoring agent does', () => {
    const { cluster } = make({ nodes: 1 });
    const node = gpuNodes(cluster)[0]?.metadata.name ?? '';
    cluster.setCondition(node, {
      type: 'AcceleratedHardwareReady',
      status: 'False',
      reason: 'NvidiaXID79Error',
      message: 'XID 79',
    });
    const c = cluster.getNode(node)?.status.conditions.filter((x) => x.type === 'AcceleratedHardwareReady');
    expect(c).toHaveLength(1);
    expect(c?.[0]).toMatchObject({ status: 'False', reason: 'NvidiaXID79Error' });
  });

  it('clears faults on reboot, gives a new bootID, and brings back persistent faults', () => {
    const { cluster, clock } = make({
      nodes: 2,
      rebootDelayMs: 3000,
      devicePluginDelayMs: 0,
      exporterReadyDelayMs: 0,
    });
    const [a = '', b = ''] = gpuNodes(cluster).map((n) => n.metadata.name);
    cluster.injectXid(a, 1, 48);
    cluster.injectEcc(a, 1, { sbe: 3, dbe: 1 });
    cluster.dropGpu(a, 2);
    cluster.setHealth(a, 3, 'fail', 'NVLink down');
    cluster.setCondition(a, {
      type: 'AcceleratedHardwareReady',
      status: 'False',
      reason: 'NvidiaXID48Error',
    });
    cluster.injectXid(b, 0, 79, undefined, { persistent: true });
    const bootA = cluster.getNode(a)?.status.nodeInfo.bootID;

    expect(cluster.rebootInstance(cluster.nodeInfo(a)?.instanceId ?? '')).toBe(true);
    expect(cluster.rebootInstance(cluster.nodeInfo(b)?.instanceId ?? '')).toBe(true);
    expect(ready(cluster, a)).toBe('Unknown');
    expect(cluster.exporterScrape(a).kind).toBe('error');
    clock.advance(2999);
    expect(ready(cluster, a)).toBe('Unknown');
    clock.advance(1);
    expect(ready(cluster, a)).toBe('True');
    expect(cluster.getNode(a)?.status.nodeInfo.bootID).not.toBe(bootA);
    clock.advance(0);
    const g = cluster.gpuState(a);
    expect(g[1]).toMatchObject({ xidLast: 0, eccDbeVolatile: 0, eccSbeVolatile: 0, eccDbeAggregate: 1 });
    expect(g[2]?.present).toBe(true);
    expect(g[3]?.health).toBe('pass');
    expect(cluster.getNode(a)?.status.allocatable['nvidia.com/gpu']).toBe('8');
    expect(
      cluster.getNode(a)?.status.conditions.find((c) => c.type === 'AcceleratedHardwareReady')?.status,
    ).toBe('True');
    expect(cluster.kernelLog(a)).toEqual([]);
    expect(cluster.exporterPod(a)?.status.containerStatuses?.[0]?.restartCount).toBe(1);

    expect(cluster.gpuState(b)[0]?.xidLast).toBe(79);
    expect(cluster.kernelLog(b)).toHaveLength(1);
  });

  // As on a real node after a reboot: Ready with a new bootID comes before the device plugin and
  // the exporter; a verification at that moment reads nothing.
  it('after a reboot: Ready with a new bootID first, then the device plugin, then a Ready exporter', () => {
    const { cluster, clock } = make({
      nodes: 1,
      rebootDelayMs: 3000,
      devicePluginDelayMs: 60_000,
      exporterReadyDelayMs: 45_000,
    });
    const node = gpuNodes(cluster)[0]?.metadata.name ?? '';
    const gpus = (field: 'capacity' | 'allocatable') =>
      cluster.getNode(node)?.status[field]['nvidia.com/gpu'];
    const exporter = () => cluster.exporterPod(node);
    const podReady = () => exporter()?.status.conditions?.find((c) => c.type === 'Ready')?.status;
    const podBefore = structuredClone(exporter());
    const bootBefore = cluster.getNode(node)?.status.nodeInfo.bootID;
    expect(podReady()).toBe('True');

    // Every state the node passes through on its new boot: never Ready with GPUs before the plugin registers.
    const seen: string[] = [];
    cluster.onChange((e) => {
      const n = cluster.getNode(node);
      if (e.resource !== 'nodes' || !n || n.status.nodeInfo.bootID === bootBefore) return;
      seen.push(`${ready(cluster, node)} ${n.status.allocatable['nvidia.com/gpu']}`);
    });
    cluster.rebootInstance(cluster.nodeInfo(node)?.instanceId ?? '');
    clock.advance(3000);
    expect(ready(cluster, node)).toBe('True');
    expect(cluster.getNode(node)?.status.nodeInfo.bootID).not.toBe(bootBefore);
    expect(new Set(seen)).toEqual(new Set(['True 0']));
    expect(gpus('capacity')).toBe('0');
    expect(gpus('allocatable')).toBe('0');
    expect(cluster.nodeInfo(node)).toMatchObject({ devicePluginRegistered: false, agentsStarting: true });
    // The same pod (the DaemonSet pod survives a reboot), its containers restarted and not Ready.
    expect(exporter()?.metadata.uid).toBe(podBefore?.metadata.uid);
    expect(exporter()?.status.containerStatuses?.[0]).toMatchObject({ ready: false, restartCount: 1 });
    expect(podReady()).toBe('False');
    expect(exporter()?.status.podIP).not.toBe(podBefore?.status.podIP);
    const refused = cluster.exporterScrape(node);
    expect(refused.kind).toBe('error');
    expect(refused.kind === 'error' ? refused.message : '').toMatch(/connection refused/);

    clock.advance(45_000);
    expect(podReady()).toBe('True');
    expect(cluster.exporterScrape(node).kind).toBe('ok');
    expect(gpus('allocatable')).toBe('0');
    clock.advance(15_000);
    expect(gpus('capacity')).toBe('8');
    expect(gpus('allocatable')).toBe('8');
    expect(cluster.nodeInfo(node)).toMatchObject({ devicePluginRegistered: true, agentsStarting: false });
  });

  it('a GPU that does not come back lowers capacity, allocatable and the GFD count after the reboot', () => {
    const { cluster, clock } = make({ nodes: 1, devicePluginDelayMs: 1000, exporterReadyDelayMs: 500 });
    const node = gpuNodes(cluster)[0]?.metadata.name ?? '';
    cluster.dropGpu(node, 6, { persistent: true });
    expect(cluster.getNode(node)?.status.allocatable['nvidia.com/gpu']).toBe('7');
    cluster.rebootInstance(cluster.nodeInfo(node)?.instanceId ?? '');
    clock.advance(3000);
    expect(cluster.getNode(node)?.status.allocatable['nvidia.com/gpu']).toBe('0');
    clock.advance(1000);
    const n = cluster.getNode(node);
    expect(n?.status.capacity['nvidia.com/gpu']).toBe('7');
    expect(n?.status.allocatable['nvidia.com/gpu']).toBe('7');
    expect(n?.metadata.labels?.['nvidia.com/gpu.count']).toBe('7');
  });

  it('a GPU that fails on reboot is there until the reboot and missing after it', () => {
    const { cluster, clock } = make({ nodes: 1, devicePluginDelayMs: 1000, exporterReadyDelayMs: 500 });
    const node = gpuNodes(cluster)[0]?.metadata.name ?? '';
    cluster.failGpuOnReboot(node, 3);
    expect(cluster.gpuState(node)[3]?.present).toBe(true);
    expect(cluster.getNode(node)?.status.allocatable['nvidia.com/gpu']).toBe('8');
    cluster.rebootInstance(cluster.nodeInfo(node)?.instanceId ?? '');
    clock.advance(4000);
    expect(cluster.gpuState(node)[3]?.present).toBe(false);
    expect(cluster.getNode(node)?.status.allocatable['nvidia.com/gpu']).toBe('7');
    const scrape = cluster.exporterScrape(node);
    expect(scrape.kind === 'ok' ? scrape.body : '').not.toMatch(/gpu="3"/);
  });

  it('a node whose reboots hang never turns Ready again', () => {
    const { cluster, clock } = make({ nodes: 1 });
    const node = gpuNodes(cluster)[0]?.metadata.name ?? '';
    const bootBefore = cluster.getNode(node)?.status.nodeInfo.bootID;
    cluster.hangReboots(node);
    expect(cluster.rebootInstance(cluster.nodeInfo(node)?.instanceId ?? '')).toBe(true);
    clock.advance(3_600_000);
    expect(ready(cluster, node)).toBe('Unknown');
    expect(cluster.getNode(node)?.status.nodeInfo.bootID).toBe(bootBefore);
    expect(cluster.exporterScrape(node).kind).toBe('error');
  });

  it('answers reboot of an unknown instance with false', () => {
    const { cluster } = make({ nodes: 1 });
    expect(cluster.rebootInstance('i-0000000000000dead')).toBe(false);
    expect(
      cluster.terminateInstance('i-0000000000000dead', { decrementDesiredCapacity: false }),
    ).toBeUndefined();
  });
});

describe('termination and replacement', () => {
  it('replaces a terminated node-group instance with a new node in the same group', () => {
    const { cluster, clock } = make({ nodes: 4, terminateDelayMs: 1000, replaceDelayMs: 5000 });
    const victim = gpuNodes(cluster).find(
      (n) => n.metadata.labels?.['eks.amazonaws.com/nodegroup'] === 'gpu-ng-1',
    );
    const name = victim?.metadata.name ?? '';
    const id = cluster.nodeInfo(name)?.instanceId ?? '';
    const before = new Set(gpuNodes(cluster).map((n) => n.metadata.name));
    const events: string[] = [];
    cluster.onChange((e) => {
      if (e.resource === 'nodes') events.push(`${e.type} ${e.object.metadata.name}`);
    });
    expect(cluster.terminateInstance(id, { decrementDesiredCapacity: false })).toBe('running');
    expect(cluster.describeInstances([id])[0]?.state).toBe('shutting-down');
    clock.advance(1000);
    expect(cluster.describeInstances([id])[0]?.state).toBe('terminated');
    expect(cluster.getNode(name)).toBeUndefined();
    expect(cluster.listPods({ nodeName: name })).toEqual([]);
    expect(events).toContain(`DELETED ${name}`);
    clock.advance(4000);
    const after = gpuNodes(cluster);
    expect(after).toHaveLength(4);
    const fresh = after.find((n) => !before.has(n.metadata.name));
    expect(fresh?.metadata.labels?.['eks.amazonaws.com/nodegroup']).toBe('gpu-ng-1');
    expect(fresh?.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(cluster.exporterPod(fresh?.metadata.name ?? '')).toBeDefined();
    expect(events.filter((e) => e.startsWith('ADDED'))).toHaveLength(1);
  });

  it('a node joining as a replacement advertises its GPUs only once its device plugin registers', () => {
    const { cluster, clock } = make({
      nodes: 2,
      karpenterNodes: 0,
      terminateDelayMs: 100,
      replaceDelayMs: 1000,
      devicePluginDelayMs: 2000,
      exporterReadyDelayMs: 1500,
    });
    const before = new Set(cluster.listNodes().map((n) => n.metadata.name));
    const victim = gpuNodes(cluster)[0]?.metadata.name ?? '';
    cluster.terminateInstance(cluster.nodeInfo(victim)?.instanceId ?? '', {
      decrementDesiredCapacity: false,
    });
    clock.advance(1000);
    const fresh = cluster.listNodes().find((n) => !before.has(n.metadata.name));
    const name = fresh?.metadata.name ?? '';
    expect(fresh?.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(fresh?.status.allocatable['nvidia.com/gpu']).toBe('0');
    expect(cluster.exporterPod(name)?.status.containerStatuses?.[0]).toMatchObject({ ready: false });
    clock.advance(1500);
    expect(cluster.exporterPod(name)?.status.containerStatuses?.[0]).toMatchObject({ ready: true });
    expect(cluster.getNode(name)?.status.allocatable['nvidia.com/gpu']).toBe('0');
    clock.advance(500);
    expect(cluster.getNode(name)?.status.allocatable['nvidia.com/gpu']).toBe('8');
  });

  it('with no instance capacity, a terminated instance gets its replacement only once capacity returns', () => {
    const { cluster, clock } = make({
      nodes: 2,
      karpenterNodes: 0,
      terminateDelayMs: 100,
      replaceDelayMs: 1000,
    });
    const victim = gpuNodes(cluster)[0]?.metadata.name ?? '';
    cluster.setInsufficientCapacity(true);
    cluster.terminateInstance(cluster.nodeInfo(victim)?.instanceId ?? '', {
      decrementDesiredCapacity: false,
    });
    clock.advance(600_000);
    expect(gpuNodes(cluster)).toHaveLength(1);
    cluster.setInsufficientCapacity(false);
    clock.advance(1000);
    expect(gpuNodes(cluster)).toHaveLength(2);
  });

  it('does not replace when the desired capacity is decremented', () => {
    // No Karpenter pool: nothing else starts a node for the job pod the termination left pending.
    const { cluster, clock } = make({ nodes: 4, karpenterNodes: 0 });
    const name = gpuNodes(cluster)[0]?.metadata.name ?? '';
    cluster.terminateInstance(cluster.nodeInfo(name)?.instanceId ?? '', { decrementDesiredCapacity: true });
    clock.advance(60_000);
    expect(gpuNodes(cluster)).toHaveLength(3);
  });

  it('terminates a Karpenter node deleted through the API; with no pod pending, Karpenter starts none', () => {
    const { cluster, clock } = make({
      nodes: 4,
      terminateDelayMs: 1000,
      replaceDelayMs: 5000,
      workloads: false,
    });
    const k = gpuNodes(cluster).find((n) => n.metadata.labels?.['karpenter.sh/nodepool']);
    const name = k?.metadata.name ?? '';
    const id = cluster.nodeInfo(name)?.instanceId ?? '';
    expect(k?.metadata.finalizers).toEqual(['karpenter.sh/termination']);
    const deleting = cluster.deleteNodeFromApi(name);
    expect(deleting.metadata.deletionTimestamp).toBeDefined();
    expect(cluster.describeInstances([id])[0]?.state).toBe('shutting-down');
    clock.advance(1000);
    expect(cluster.getNode(name)).toBeUndefined();
    clock.advance(60_000);
    // Karpenter provisions for pending pods only (karpenter.sh docs): a drained pool gets no successor.
    expect(gpuNodes(cluster).filter((n) => n.metadata.labels?.['karpenter.sh/nodepool'])).toHaveLength(0);
    expect(cluster.disruptions).toEqual([]);
  });

  it('Karpenter starts a node for a GPU pod no node can take, and the pod runs there', () => {
    const { cluster, clock } = make({
      nodes: 4,
      terminateDelayMs: 1000,
      replaceDelayMs: 5000,
      rescheduleDelayMs: 500,
      // The pod binds only once the new node's device plugin has registered.
      devicePluginDelayMs: 500,
    });
    // Every GPU node of the managed group is busy or cordoned: the job pod of a lost node has nowhere to go.
    const master = `${TRAINING_JOB_NAME}-master-0`;
    const host = cluster.getPod(TRAINING_NAMESPACE, master)?.spec.nodeName ?? '';
    for (const n of gpuNodes(cluster)) {
      if (n.metadata.name !== host)
        cluster.updateNodeFromApi(
          n.metadata.name,
          { ...n, spec: { ...n.spec, unschedulable: true } },
          undefined,
        );
    }
    const before = new Set(gpuNodes(cluster).map((n) => n.metadata.name));
    cluster.terminateInstance(cluster.nodeInfo(host)?.instanceId ?? '', { decrementDesiredCapacity: true });
    clock.advance(2000);
    expect(cluster.getPod(TRAINING_NAMESPACE, master)?.status.phase).toBe('Pending');
    clock.advance(5000);
    const fresh = gpuNodes(cluster).filter((n) => !before.has(n.metadata.name));
    expect(fresh).toHaveLength(1);
    expect(fresh[0]?.metadata.labels?.['karpenter.sh/nodepool']).toBe('gpu');
    expect(cluster.disruptions).toEqual([
      { kind: 'provisioned', node: fresh[0]?.metadata.name, pool: 'gpu' },
    ]);
    clock.advance(1000);
    expect(cluster.getPod(TRAINING_NAMESPACE, master)?.spec.nodeName).toBe(fresh[0]?.metadata.name);
  });

  it('consolidates an empty Karpenter node, unless it carries karpenter.sh/do-not-disrupt', () => {
    const { cluster, clock } = make({
      nodes: 4,
      workloads: false,
      consolidateAfterMs: 30_000,
      terminateDelayMs: 1000,
    });
    const pool = gpuNodes(cluster).filter((n) => n.metadata.labels?.['karpenter.sh/nodepool']);
    expect(pool).toHaveLength(1);
    const name = pool[0]?.metadata.name ?? '';
    const guarded = cluster.getNode(name);
    if (!guarded) throw new Error('no node');
    guarded.metadata.annotations = { ...guarded.metadata.annotations, 'karpenter.sh/do-not-disrupt': 'true' };
    cluster.updateNodeFromApi(name, guarded, undefined);
    clock.advance(120_000);
    expect(cluster.getNode(name)).toBeDefined();
    expect(cluster.disruptions).toEqual([]);
    // The annotation goes: the empty node is consolidated after consolidateAfter.
    const { 'karpenter.sh/do-not-disrupt': _, ...rest } = cluster.getNode(name)?.metadata.annotations ?? {};
    const bare = cluster.getNode(name);
    if (!bare) throw new Error('no node');
    cluster.updateNodeFromApi(
      name,
      { ...bare, metadata: { ...bare.metadata, annotations: rest } },
      undefined,
    );
    clock.advance(31_000);
    expect(cluster.disruptions).toEqual([{ kind: 'consolidated', node: name, pool: 'gpu' }]);
    expect(cluster.getNode(name)).toBeUndefined();
  });

  it('EKS Auto Mode nodes: compute-type label, an EKS-operated instance, a NodePool, no Auto Scaling group', () => {
    const { cluster } = make({ nodes: 4, karpenterNodes: 0, autoModeNodes: 1 });
    const auto = gpuNodes(cluster).filter(
      (n) => n.metadata.labels?.['eks.amazonaws.com/compute-type'] === 'auto',
    );
    expect(auto).toHaveLength(1);
    const name = auto[0]?.metadata.name ?? '';
    expect(auto[0]?.metadata.labels?.['karpenter.sh/nodepool']).toBe('gpu-auto');
    expect(auto[0]?.metadata.labels?.['eks.amazonaws.com/nodegroup']).toBeUndefined();
    const info = cluster.nodeInfo(name);
    expect(info).toMatchObject({ autoMode: true, karpenterNodePool: 'gpu-auto' });
    expect(info?.autoScalingGroup).toBeUndefined();
    expect(cluster.describeInstances([info?.instanceId ?? ''])[0]?.operator).toBe('eks.amazonaws.com');
  });

  it('EKS node auto repair reboots a node of an enabled group after the condition stayed bad for its wait', () => {
    const { cluster, clock } = make({ nodes: 4, karpenterNodes: 0, rebootDelayMs: 3000 });
    const name = gpuNodes(cluster)[0]?.metadata.name ?? '';
    const other = gpuNodes(cluster)[1]?.metadata.name ?? '';
    const bootBefore = cluster.getNode(name)?.status.nodeInfo.bootID;
    expect(cluster.describeNodegroup('sim-cluster', 'gpu-ng-1')?.nodeRepairConfig).toBeUndefined();
    cluster.setNodeRepair('gpu-ng-1', { enabled: true });
    expect(cluster.describeNodegroup('sim-cluster', 'gpu-ng-1')?.nodeRepairConfig).toEqual({ enabled: true });
    const bad = { type: 'AcceleratedHardwareReady', status: 'False' as const, reason: 'NvidiaXID79Error' };
    cluster.setCondition(name, bad);
    cluster.setCondition(name, bad);
    clock.advance(9 * 60_000);
    expect(cluster.autoRepairs).toEqual([]);
    clock.advance(60_000);
    expect(cluster.autoRepairs).toEqual([
      { node: name, action: 'reboot', condition: 'AcceleratedHardwareReady' },
    ]);
    clock.advance(3000);
    expect(cluster.getNode(name)?.status.nodeInfo.bootID).not.toBe(bootBefore);
    // A group without auto repair: the condition stays, nothing acts.
    cluster.setNodeRepair('gpu-ng-1', { enabled: false });
    cluster.setCondition(other, bad);
    clock.advance(60 * 60_000);
    expect(cluster.autoRepairs).toHaveLength(1);
    expect(cluster.describeNodegroup('sim-cluster', 'nope')).toBeUndefined();
  });

  it('restarts job pods lost with a node on another schedulable node', () => {
    const { cluster, clock } = make({ nodes: 6, rescheduleDelayMs: 500 });
    const master = `${TRAINING_JOB_NAME}-master-0`;
    const host = cluster.getPod(TRAINING_NAMESPACE, master)?.spec.nodeName ?? '';
    cluster.terminateInstance(cluster.nodeInfo(host)?.instanceId ?? '', { decrementDesiredCapacity: true });
    clock.advance(1000);
    const job = () => cluster.trainingJobs()[0]?.status.conditions;
    expect(job()?.find((c) => c.type === 'Restarting')?.status).toBe('True');
    clock.advance(500);
    const moved = cluster.getPod(TRAINING_NAMESPACE, master);
    expect(moved?.status.phase).toBe('Running');
    expect(moved?.spec.nodeName).not.toBe(host);
    expect(job()?.find((c) => c.type === 'Running')?.status).toBe('True');
  });

  it('deletes an evicted pod only after podTerminationMs', () => {
    const { cluster, clock } = make({ nodes: 4, podTerminationMs: 2000 });
    const pod = cluster.listPods({ namespace: SERVING_NAMESPACE })[0];
    const name = pod?.metadata.name ?? '';
    cluster.evictPod(SERVING_NAMESPACE, name);
    expect(cluster.getPod(SERVING_NAMESPACE, name)?.metadata.deletionTimestamp).toBeDefined();
    clock.advance(2000);
    expect(cluster.getPod(SERVING_NAMESPACE, name)).toBeUndefined();
  });
});
