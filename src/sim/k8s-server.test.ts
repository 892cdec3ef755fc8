/**
 * The simulated Kubernetes API server through the real client: nodes (lists, paging, patches, watches,
 * informers, reboots), leases and HTTPS with its own CA. Pods, eviction and the exporter proxy:
 * k8s-server-pods.test.ts; injected faults and unexpected requests: k8s-server-faults.test.ts.
 */
import {
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type V1Lease,
  type V1Node,
  Watch,
} from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  apiError,
  gpuNodeNamesOf,
  startSimK8sFixture,
  stopSimK8sFixture,
} from '../../test/support/sim-k8s.js';
import type { SimCluster } from './cluster.js';
import { type SimK8sServer, startSimK8s } from './k8s-server.js';
import { kubeconfigFor } from './kubeconfig.js';
import type { ManualClock } from './sim-clock.js';
import { SIM_TLS_CA, SIM_TLS_OTHER_CA, SIM_TLS_SERVER_CERT, SIM_TLS_SERVER_KEY } from './tls-fixture.js';

let cluster: SimCluster;
let sim: SimK8sServer;
let clock: ManualClock;
let kc: KubeConfig;
let core: CoreV1Api;

beforeEach(async () => {
  ({ cluster, sim, clock, kc, core } = await startSimK8sFixture());
});

afterEach(async () => {
  await stopSimK8sFixture({ cluster, sim });
});

const gpuNodeNames = (): string[] => gpuNodeNamesOf(cluster);

describe('nodes', () => {
  it('lists nodes with list metadata and filters by label selectors', async () => {
    const all = await core.listNode();
    expect(all.kind).toBe('NodeList');
    expect(all.metadata?.resourceVersion).toMatch(/^\d+$/);
    expect(all.items).toHaveLength(7);

    const gpu = await core.listNode({ labelSelector: 'nvidia.com/gpu.present' });
    expect(gpu.items).toHaveLength(6);
    const managed = await core.listNode({ labelSelector: 'eks.amazonaws.com/nodegroup=gpu-ng-1' });
    const karpenter = await core.listNode({ labelSelector: 'karpenter.sh/nodepool=gpu' });
    expect(managed.items.length + karpenter.items.length).toBe(6);
    expect(karpenter.items.length).toBeGreaterThan(0);
    const nonGpu = await core.listNode({ labelSelector: '!nvidia.com/gpu.present' });
    expect(nonGpu.items.map((n) => n.metadata?.labels?.['eks.amazonaws.com/nodegroup'])).toEqual([
      'system-ng',
    ]);
    const notSystem = await core.listNode({ labelSelector: 'eks.amazonaws.com/nodegroup!=system-ng' });
    expect(notSystem.items).toHaveLength(6);
  });

  it('pages lists with limit and an opaque continue token, as a real API server does', async () => {
    const all = (await core.listNode()).items.map((n) => n.metadata?.name);
    const first = await core.listNode({ limit: 3 });
    expect(first.items.map((n) => n.metadata?.name)).toEqual(all.slice(0, 3));
    expect(first.metadata?.remainingItemCount).toBe(4);
    const token = first.metadata?._continue;
    expect(token).toEqual(expect.any(String));
    // A change between pages does not change the resourceVersion the later pages report.
    await core.patchNode(
      { name: all[6] ?? '', body: { metadata: { labels: { touched: 'yes' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const second = await core.listNode({ limit: 3, _continue: token });
    expect(second.items.map((n) => n.metadata?.name)).toEqual(all.slice(3, 6));
    expect(second.metadata?.resourceVersion).toBe(first.metadata?.resourceVersion);
    expect(second.metadata?.remainingItemCount).toBe(1);
    const last = await core.listNode({ limit: 3, _continue: second.metadata?._continue });
    expect(last.items.map((n) => n.metadata?.name)).toEqual(all.slice(6));
    expect(last.metadata?._continue).toBeUndefined();
    expect(last.metadata?.remainingItemCount).toBeUndefined();

    // Selectors apply before paging; a limit larger than the list returns it whole.
    const gpu = await core.listNode({ labelSelector: 'nvidia.com/gpu.present', limit: 4 });
    expect(gpu.items).toHaveLength(4);
    expect(gpu.metadata?.remainingItemCount).toBe(2);
    const whole = await core.listNode({ limit: 500 });
    expect(whole.items).toHaveLength(7);
    expect(whole.metadata?._continue).toBeUndefined();

    const bad = await apiError(core.listNode({ limit: 3, _continue: 'not-a-token' }));
    expect(bad.code).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({ kind: 'Status', reason: 'BadRequest' });
    const badLimit = await apiError(core.listNode({ limit: -1 }));
    expect(badLimit.code).toBe(400);
  });

  it('gets a node by name and by fieldSelector, with EKS-shaped fields', async () => {
    const [name] = gpuNodeNames();
    const byField = await core.listNode({ fieldSelector: `metadata.name=${name}` });
    expect(byField.items.map((n) => n.metadata?.name)).toEqual([name]);
    const node = await core.readNode({ name: name ?? '' });
    expect(node.spec?.providerID).toMatch(/^aws:\/\/\/us-east-1[abc]\/i-0[0-9a-f]{16}$/);
    expect(node.status?.allocatable?.['nvidia.com/gpu']).toBe('8');
    expect(node.status?.nodeInfo?.bootID).toMatch(/^[0-9a-f-]{36}$/);
    expect(node.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  });

  it('answers 404 with a Status for an unknown node', async () => {
    const e = await apiError(core.readNode({ name: 'ip-10-9-9-9.ec2.internal' }));
    expect(e.code).toBe(404);
    const status = JSON.parse(e.body);
    expect(status).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 });
  });

  it('applies a merge patch (cordon) and rejects an object sent as JSON Patch with 400', async () => {
    const [name = ''] = gpuNodeNames();
    const before = cluster.getNode(name)?.metadata.resourceVersion;
    const patched = await core.patchNode(
      { name, body: { spec: { unschedulable: true } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(patched.spec?.unschedulable).toBe(true);
    expect(Number(patched.metadata?.resourceVersion)).toBeGreaterThan(Number(before));
    expect(cluster.getNode(name)?.spec.unschedulable).toBe(true);

    const e = await apiError(core.patchNode({ name, body: { spec: { unschedulable: false } } }));
    expect(e.code).toBe(400);
    expect(JSON.parse(e.body).message).toContain('jsonpatch.Patch');
    expect(cluster.getNode(name)?.spec.unschedulable).toBe(true);
    const patch = sim.log.find('patchNode').map((r) => r.headers['content-type']);
    expect(patch).toEqual(['application/merge-patch+json', 'application/json-patch+json']);
  });

  it('applies a strategic merge patch and a JSON Patch array', async () => {
    const [name = ''] = gpuNodeNames();
    await core.patchNode(
      { name, body: { metadata: { labels: { 'gpu-medic/opt-out': 'true' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    const viaJsonPatch = await core.patchNode({
      name,
      body: [{ op: 'add', path: '/spec/unschedulable', value: true }],
    });
    expect(viaJsonPatch.metadata?.labels?.['gpu-medic/opt-out']).toBe('true');
    expect(viaJsonPatch.spec?.unschedulable).toBe(true);
  });

  it('streams MODIFIED after a patch and DELETED after a termination to a Watch', async () => {
    const [name = ''] = gpuNodeNames();
    const events: { type: string; name?: string; unschedulable?: boolean }[] = [];
    const watch = new Watch(kc);
    const list = await core.listNode();
    const controller = await watch.watch(
      '/api/v1/nodes',
      { resourceVersion: list.metadata?.resourceVersion },
      (type, obj: V1Node) =>
        events.push({ type, name: obj.metadata?.name, unschedulable: obj.spec?.unschedulable }),
      () => {},
    );
    await core.patchNode(
      { name, body: { spec: { unschedulable: true } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await expect.poll(() => events.some((e) => e.type === 'MODIFIED' && e.unschedulable === true)).toBe(true);

    const instanceId = cluster.nodeInfo(name)?.instanceId ?? '';
    cluster.terminateInstance(instanceId, { decrementDesiredCapacity: true });
    clock.advance(1000);
    await expect.poll(() => events.some((e) => e.type === 'DELETED' && e.name === name)).toBe(true);
    controller.abort();
  });

  it('keeps an informer in sync with the cluster', async () => {
    const informer = makeInformer(kc, '/api/v1/nodes', () => core.listNode());
    await informer.start();
    expect(informer.list()).toHaveLength(7);
    const [name = ''] = gpuNodeNames();
    const updated = new Promise<string | undefined>((resolve) => {
      informer.on('update', (n) => {
        if (n.metadata?.labels?.marked === 'yes') resolve(n.metadata.name);
      });
    });
    await core.patchNode(
      { name, body: { metadata: { labels: { marked: 'yes' } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(await updated).toBe(name);
    await informer.stop();
  });

  it('shows a reboot as NotReady, then Ready with a new bootID', async () => {
    const [name = ''] = gpuNodeNames();
    const bootBefore = (await core.readNode({ name })).status?.nodeInfo?.bootID;
    cluster.injectXid(name, 2, 79);
    expect(cluster.rebootInstance(cluster.nodeInfo(name)?.instanceId ?? '')).toBe(true);
    const during = await core.readNode({ name });
    expect(during.status?.conditions?.find((c) => c.type === 'Ready')?.status).not.toBe('True');
    clock.advance(3000);
    const after = await core.readNode({ name });
    expect(after.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(after.status?.nodeInfo?.bootID).not.toBe(bootBefore);
    expect(cluster.gpuState(name)[2]?.xidLast).toBe(0);
  });
});

describe('leases', () => {
  it('creates, reads and replaces a lease; a stale resourceVersion is a 409', async () => {
    const coord = kc.makeApiClient(CoordinationV1Api);
    const body: V1Lease = {
      metadata: { name: 'gpu-medic-leader', namespace: 'gpu-medic' },
      spec: { holderIdentity: 'pod-a', leaseDurationSeconds: 15, renewTime: new Date() },
    };
    const created = await coord.createNamespacedLease({ namespace: 'gpu-medic', body });
    expect(created.spec?.holderIdentity).toBe('pod-a');
    expect((await apiError(coord.createNamespacedLease({ namespace: 'gpu-medic', body }))).code).toBe(409);

    const read = await coord.readNamespacedLease({ name: 'gpu-medic-leader', namespace: 'gpu-medic' });
    const renewed = await coord.replaceNamespacedLease({
      name: 'gpu-medic-leader',
      namespace: 'gpu-medic',
      body: { ...read, spec: { ...read.spec, holderIdentity: 'pod-a', renewTime: new Date() } },
    });
    expect(Number(renewed.metadata?.resourceVersion)).toBeGreaterThan(Number(read.metadata?.resourceVersion));

    const stale = await apiError(
      coord.replaceNamespacedLease({
        name: 'gpu-medic-leader',
        namespace: 'gpu-medic',
        body: { ...read, spec: { ...read.spec, holderIdentity: 'pod-b' } },
      }),
    );
    expect(stale.code).toBe(409);
    expect(JSON.parse(stale.body).reason).toBe('Conflict');
    expect(cluster.getLease('gpu-medic', 'gpu-medic-leader')?.spec.holderIdentity).toBe('pod-a');
  });
});

describe('HTTPS with its own CA, as EKS serves the API', () => {
  let tlsSim: SimK8sServer;
  beforeEach(async () => {
    tlsSim = await startSimK8s(cluster, { tls: { cert: SIM_TLS_SERVER_CERT, key: SIM_TLS_SERVER_KEY } });
  });
  afterEach(async () => {
    await tlsSim.close();
  });
  const clientTrusting = (caPem: string | undefined) => {
    const k = new KubeConfig();
    k.loadFromString(kubeconfigFor(tlsSim.url, caPem ? { caPem } : {}));
    return k;
  };

  it('serves https:// and the kubeconfig carries the CA instead of skipping verification', async () => {
    expect(tlsSim.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const kc = clientTrusting(SIM_TLS_CA);
    expect(kc.getCurrentCluster()).toMatchObject({ skipTLSVerify: false });
    expect(Buffer.from(kc.getCurrentCluster()?.caData ?? '', 'base64').toString()).toBe(SIM_TLS_CA);
    const nodes = await kc.makeApiClient(CoreV1Api).listNode();
    expect(nodes.items.length).toBe(cluster.listNodes().length);
  });

  it('a client trusting another CA cannot verify the server and sends nothing the server answers', async () => {
    const err = await clientTrusting(SIM_TLS_OTHER_CA)
      .makeApiClient(CoreV1Api)
      .listNode()
      .catch((e: unknown) => e);
    expect(String((err as Error).message ?? err)).toMatch(/certificate|self.signed|verify/i);
    expect(tlsSim.log.find('listNodes')).toEqual([]);
  });
});
