import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type V1Lease,
  type V1Node,
  Watch,
} from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimCluster } from './cluster.js';
import { type K8sRecordedRequest, type SimK8sServer, startSimK8s } from './k8s-server.js';
import { kubeconfigFor } from './kubeconfig.js';
import { ManualClock } from './sim-clock.js';
import { SIM_TLS_CA, SIM_TLS_OTHER_CA, SIM_TLS_SERVER_CERT, SIM_TLS_SERVER_KEY } from './tls-fixture.js';
import { SERVING_NAMESPACE, SERVING_PDB, TRAINING_JOB_NAME, TRAINING_NAMESPACE } from './workloads.js';

let cluster: SimCluster;
let sim: SimK8sServer;
let clock: ManualClock;
let kc: KubeConfig;
let core: CoreV1Api;

beforeEach(async () => {
  clock = new ManualClock();
  cluster = new SimCluster({
    nodes: 6,
    clock,
    rebootDelayMs: 3000,
    replaceDelayMs: 5000,
    terminateDelayMs: 1000,
  });
  sim = await startSimK8s(cluster);
  kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(sim.url));
  core = kc.makeApiClient(CoreV1Api);
});

afterEach(async () => {
  await sim.close();
  cluster.close();
});

async function apiError(p: Promise<unknown>): Promise<ApiException<string>> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiException) return e as ApiException<string>;
    throw e;
  }
  throw new Error('expected the call to fail');
}

const gpuNodeNames = (): string[] =>
  cluster
    .listNodes()
    .filter((n) => n.status.capacity['nvidia.com/gpu'])
    .map((n) => n.metadata.name);

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

describe('pods and eviction', () => {
  it('lists pods on one node by field selector and by label', async () => {
    const [name = ''] = gpuNodeNames();
    const onNode = await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${name}` });
    expect(onNode.items.length).toBeGreaterThanOrEqual(3);
    expect(onNode.items.every((p) => p.spec?.nodeName === name)).toBe(true);
    const exporters = await core.listNamespacedPod({
      namespace: 'gpu-operator',
      labelSelector: 'app=nvidia-dcgm-exporter',
    });
    expect(exporters.items).toHaveLength(6);
    expect(exporters.items[0]?.metadata?.ownerReferences?.[0]?.kind).toBe('DaemonSet');
    expect(exporters.items[0]?.status?.podIP).toMatch(/^10\.0\./);
    const jobPods = await core.listNamespacedPod({
      namespace: TRAINING_NAMESPACE,
      labelSelector: `training.kubeflow.org/job-name=${TRAINING_JOB_NAME}`,
    });
    expect(
      jobPods.items.map((p) => p.metadata?.labels?.['training.kubeflow.org/replica-type']).sort(),
    ).toEqual(['master', 'worker', 'worker']);
  });

  it('evicts with 201, answers 429 while the PDB forbids it, then 201 once allowed', async () => {
    const pods = await core.listNamespacedPod({
      namespace: SERVING_NAMESPACE,
      labelSelector: 'app=inference',
    });
    const [first, second] = pods.items.map((p) => p.metadata?.name ?? '');
    const evict = (name: string) =>
      core.createNamespacedPodEviction({
        name,
        namespace: SERVING_NAMESPACE,
        body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: SERVING_NAMESPACE } },
      });

    cluster.setPdbDisruptionsAllowed(SERVING_NAMESPACE, SERVING_PDB, 0);
    const blocked = await apiError(evict(first ?? ''));
    expect(blocked.code).toBe(429);
    const status = JSON.parse(blocked.body);
    expect(status.reason).toBe('TooManyRequests');
    expect(status.message).toBe("Cannot evict pod as it would violate the pod's disruption budget.");
    expect(status.details.causes[0].reason).toBe('DisruptionBudget');
    expect(cluster.getPod(SERVING_NAMESPACE, first ?? '')).toBeDefined();

    cluster.setPdbDisruptionsAllowed(SERVING_NAMESPACE, SERVING_PDB, 1);
    await evict(first ?? '');
    expect(sim.log.find('evictPod').map((r) => r.status)).toEqual([429, 201]);
    expect(cluster.getPod(SERVING_NAMESPACE, first ?? '')).toBeUndefined();
    // The budget is spent: the next eviction is refused again.
    expect((await apiError(evict(second ?? ''))).code).toBe(429);
    expect((await apiError(evict('no-such-pod'))).code).toBe(404);
  });

  it('restarts a PyTorchJob whose pod was evicted', async () => {
    const customs = kc.makeApiClient(CustomObjectsApi);
    const master = `${TRAINING_JOB_NAME}-master-0`;
    const oldNode = cluster.getPod(TRAINING_NAMESPACE, master)?.spec.nodeName;
    await core.patchNode(
      { name: oldNode ?? '', body: { spec: { unschedulable: true } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await core.createNamespacedPodEviction({
      name: master,
      namespace: TRAINING_NAMESPACE,
      body: {
        apiVersion: 'policy/v1',
        kind: 'Eviction',
        metadata: { name: master, namespace: TRAINING_NAMESPACE },
      },
    });
    type Job = { status: { conditions: { type: string; status: string }[] } };
    const condition = async (type: string) => {
      const job = (await customs.getNamespacedCustomObject({
        group: 'kubeflow.org',
        version: 'v1',
        namespace: TRAINING_NAMESPACE,
        plural: 'pytorchjobs',
        name: TRAINING_JOB_NAME,
      })) as Job;
      return job.status.conditions.find((c) => c.type === type)?.status;
    };
    expect(await condition('Restarting')).toBe('True');
    clock.advance(1000);
    expect(await condition('Running')).toBe('True');
    const moved = cluster.getPod(TRAINING_NAMESPACE, master);
    expect(moved?.spec.nodeName).toBeDefined();
    expect(moved?.spec.nodeName).not.toBe(oldNode);
  });

  it('lists Kubeflow jobs, PDBs and empty TrainJobs', async () => {
    const customs = kc.makeApiClient(CustomObjectsApi);
    const jobs = (await customs.listClusterCustomObject({
      group: 'kubeflow.org',
      version: 'v1',
      plural: 'pytorchjobs',
    })) as {
      items: { metadata: { name: string } }[];
    };
    expect(jobs.items.map((j) => j.metadata.name)).toEqual([TRAINING_JOB_NAME]);
    const tf = (await customs.listNamespacedCustomObject({
      group: 'kubeflow.org',
      version: 'v1',
      namespace: TRAINING_NAMESPACE,
      plural: 'tfjobs',
    })) as { items: unknown[] };
    expect(tf.items).toEqual([]);
    const trainjobs = (await customs.listClusterCustomObject({
      group: 'trainer.kubeflow.org',
      version: 'v1alpha1',
      plural: 'trainjobs',
    })) as { items: unknown[] };
    expect(trainjobs.items).toEqual([]);
    const res = await fetch(`${sim.url}/apis/policy/v1/poddisruptionbudgets`);
    expect(res.headers.get('content-type')).toBe('application/json');
    const pdbs = (await res.json()) as {
      items: { spec: { minAvailable: number }; status: { disruptionsAllowed: number } }[];
    };
    expect(pdbs.items[0]?.spec.minAvailable).toBe(1);
    expect(pdbs.items[0]?.status.disruptionsAllowed).toBe(1);
  });

  it('gets a TrainJob by name, and 404s an unknown one', async () => {
    const customs = kc.makeApiClient(CustomObjectsApi);
    cluster.createObject('trainjobs', {
      apiVersion: 'trainer.kubeflow.org/v1alpha1',
      kind: 'TrainJob',
      metadata: {
        name: 'llm-pretrain',
        namespace: TRAINING_NAMESPACE,
        uid: 'b7c1f3a2-0000-4000-8000-000000000001',
        resourceVersion: '0',
        creationTimestamp: new Date(0).toISOString(),
      },
      status: { jobsStatus: [{ name: 'node', active: 2, ready: 2 }] },
    });
    const job = (await customs.getNamespacedCustomObject({
      group: 'trainer.kubeflow.org',
      version: 'v1alpha1',
      namespace: TRAINING_NAMESPACE,
      plural: 'trainjobs',
      name: 'llm-pretrain',
    })) as { kind: string; status: { jobsStatus: { active: number }[] } };
    expect(job.kind).toBe('TrainJob');
    expect(job.status.jobsStatus[0]?.active).toBe(2);
    await expect(
      customs.getNamespacedCustomObject({
        group: 'trainer.kubeflow.org',
        version: 'v1alpha1',
        namespace: TRAINING_NAMESPACE,
        plural: 'trainjobs',
        name: 'nope',
      }),
    ).rejects.toMatchObject({ code: 404 });
  });
});

describe('pod proxy to dcgm-exporter', () => {
  it('returns exposition with the injected XID through connectGetNamespacedPodProxyWithPath', async () => {
    const [name = ''] = gpuNodeNames();
    cluster.injectXid(name, 3, 79);
    const pod = cluster.exporterPod(name)?.metadata.name ?? '';
    const text = await core.connectGetNamespacedPodProxyWithPath({
      namespace: 'gpu-operator',
      name: `${pod}:9400`,
      path: 'metrics',
    });
    expect(text).toMatch(/DCGM_FI_DEV_XID_ERRORS\{gpu="3",[^}]*err_code="79"[^}]*\} 79\n/);
    expect(text).toContain('# TYPE DCGM_FI_DEV_XID_ERRORS gauge');
    const proxied = sim.log.find('proxyPod')[0] as K8sRecordedRequest | undefined;
    expect(proxied?.path).toBe(`/api/v1/namespaces/gpu-operator/pods/${pod}%3A9400/proxy/metrics`);
    expect(proxied).toMatchObject({ verb: 'get', resource: 'pods', subresource: 'proxy', apiGroup: '' });
  });

  it('honours exporter modes: error is 503, missing is 404, garbage is 200', async () => {
    const [a = '', b = '', c = ''] = gpuNodeNames();
    const scrape = async (node: string, podName?: string) => {
      const pod = podName ?? cluster.exporterPod(node)?.metadata.name ?? '';
      return fetch(`${sim.url}/api/v1/namespaces/gpu-operator/pods/${pod}%3A9400/proxy/metrics`);
    };
    cluster.setExporter(a, 'error');
    expect((await scrape(a)).status).toBe(503);
    const podB = cluster.exporterPod(b)?.metadata.name;
    cluster.setExporter(b, 'missing');
    const missing = await scrape(b, podB);
    expect(missing.status).toBe(404);
    expect(cluster.exporterPod(b)).toBeUndefined();
    cluster.setExporter(c, 'garbage');
    const garbage = await scrape(c);
    expect(garbage.status).toBe(200);
    expect(await garbage.text()).toContain('garbled');
  });

  it('hangs in hang mode until the client gives up', async () => {
    const [name = ''] = gpuNodeNames();
    cluster.setExporter(name, 'hang');
    const pod = cluster.exporterPod(name)?.metadata.name ?? '';
    const outcome = await fetch(
      `${sim.url}/api/v1/namespaces/gpu-operator/pods/${pod}%3A9400/proxy/metrics`,
      {
        signal: AbortSignal.timeout(200),
      },
    ).then(
      () => 'answered',
      (e: Error) => e.name,
    );
    expect(outcome).toBe('TimeoutError');
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

describe('injected API faults (reality: 500, 429 + Retry-After, 409, 410 Gone, dropped watches, 401)', () => {
  it.each([
    [500, 'InternalError', undefined],
    [429, 'TooManyRequests', 2],
    [409, 'Conflict', undefined],
    [503, 'ServiceUnavailable', 1],
  ] as const)('answers %i %s as a Status, then serves normally', async (status, reason, retryAfter) => {
    const [name = ''] = gpuNodeNames();
    sim.faults.add({
      operation: 'getNode',
      status,
      ...(retryAfter ? { retryAfterSeconds: retryAfter } : {}),
    });
    // Another operation is not touched by the fault.
    await expect(core.listNode()).resolves.toBeDefined();
    const err = await apiError(core.readNode({ name }));
    expect(err.code).toBe(status);
    const body = JSON.parse(err.body) as { kind: string; reason: string; code: number; details?: unknown };
    expect(body).toMatchObject({ kind: 'Status', reason, code: status });
    if (retryAfter !== undefined) {
      expect(err.headers['retry-after']).toBe(String(retryAfter));
      expect(body.details).toEqual({ retryAfterSeconds: retryAfter });
    } else expect(err.headers['retry-after']).toBeUndefined();
    await expect(core.readNode({ name })).resolves.toMatchObject({ metadata: { name } });
    expect(sim.faults.served.map((f) => `${f.operation} ${f.status}`)).toEqual([`getNode ${status}`]);
  });

  it('a fault matches by verb and path prefix and serves `times` requests', async () => {
    sim.faults.add({ verb: 'create', pathPrefix: '/api/v1/namespaces/serving/', status: 500, times: 2 });
    const [pod] = cluster.listPods({ namespace: SERVING_NAMESPACE });
    const other = cluster.listPods({ namespace: TRAINING_NAMESPACE })[0];
    if (!pod || !other) throw new Error('no pods');
    const evict = (ns: string, n: string) =>
      core.createNamespacedPodEviction({
        name: n,
        namespace: ns,
        body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: n, namespace: ns } },
      });
    await expect(evict(TRAINING_NAMESPACE, other.metadata.name)).resolves.toBeDefined();
    expect((await apiError(evict(SERVING_NAMESPACE, pod.metadata.name))).code).toBe(500);
    expect((await apiError(evict(SERVING_NAMESPACE, pod.metadata.name))).code).toBe(500);
    expect(sim.faults.pending).toBe(0);
  });

  it('a watch with an injected 410 gets the ERROR event with an Expired Status, as kube-apiserver streams it', async () => {
    sim.faults.add({ operation: 'watchNodes', status: 410 });
    const events: { type: string; code?: number; reason?: string }[] = [];
    const ended = new Promise<unknown>((resolve) => {
      void new Watch(kc).watch(
        '/api/v1/nodes',
        { resourceVersion: '1' },
        (type, obj: { code?: number; reason?: string }) =>
          events.push({ type, code: obj.code, reason: obj.reason }),
        (err) => resolve(err ?? 'done'),
      );
    });
    await ended;
    expect(events).toEqual([{ type: 'ERROR', code: 410, reason: 'Expired' }]);
    expect(sim.log.find('watchNodes').map((r) => r.status)).toEqual([200]);
  });

  it('a dropped watch sends the current objects, then the connection is cut and the client sees its end', async () => {
    sim.faults.add({ operation: 'watchNodes', drop: true });
    let added = 0;
    const ended = new Promise<unknown>((resolve) => {
      void new Watch(kc).watch(
        '/api/v1/nodes',
        {},
        (type) => {
          if (type === 'ADDED') added++;
        },
        (err) => resolve(err ?? 'done'),
      );
    });
    await ended;
    expect(added).toBe(cluster.listNodes().length);
  });

  it('dropWatches() cuts every open watch mid-stream', async () => {
    const ended = new Promise<unknown>((resolve) => {
      void new Watch(kc).watch(
        '/api/v1/nodes',
        {},
        () => {},
        (err) => resolve(err ?? 'done'),
      );
    });
    for (let i = 0; i < 50 && sim.log.find('watchNodes').length === 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(sim.dropWatches()).toBe(1);
    await ended;
    expect(sim.dropWatches()).toBe(0);
  });

  it('refuses a wrong or missing bearer token with 401 Unauthorized when it knows the token', async () => {
    const guarded = await startSimK8s(cluster, { token: 'right-token' });
    try {
      const client = (token: string) => {
        const k = new KubeConfig();
        k.loadFromString(kubeconfigFor(guarded.url, { token }));
        return k.makeApiClient(CoreV1Api);
      };
      await expect(client('right-token').listNode()).resolves.toBeDefined();
      expect((await apiError(client('wrong-token').listNode())).code).toBe(401);
      const missing = await fetch(`${guarded.url}/api/v1/nodes`);
      expect(missing.status).toBe(401);
      expect(await missing.json()).toMatchObject({ kind: 'Status', reason: 'Unauthorized', code: 401 });
      expect(guarded.log.find('listNodes').map((r) => r.status)).toEqual([200, 401, 401]);
    } finally {
      await guarded.close();
    }
  });

  it('refuses a malformed fault with the field named', () => {
    expect(() => sim.faults.add({ operation: 'getNode' })).toThrow(/status or drop/);
    expect(() => sim.faults.add({ status: 200 })).toThrow(/status/);
  });
});

describe('the unexpected', () => {
  it('answers an unknown path with a 404 Status and records it as unexpected', async () => {
    const res = await fetch(`${sim.url}/apis/apps/v1/namespaces/default/deployments`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(((await res.json()) as { kind: string }).kind).toBe('Status');
    expect(sim.log.unexpected.map((r) => r.path)).toEqual(['/apis/apps/v1/namespaces/default/deployments']);
    expect(() => sim.log.assertNoUnexpected()).toThrow(/unexpected/);
  });

  it('rejects a malformed selector and a malformed body with 400, without crashing', async () => {
    expect(
      (await fetch(`${sim.url}/api/v1/nodes?labelSelector=${encodeURIComponent('a in (')}`)).status,
    ).toBe(400);
    const [name = ''] = gpuNodeNames();
    const res = await fetch(`${sim.url}/api/v1/nodes/${name}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/merge-patch+json' },
      body: '{not json',
    });
    expect(res.status).toBe(400);
    expect((await core.readNode({ name })).metadata?.name).toBe(name);
  });

  it('records verb, resource and subresource for RBAC', async () => {
    const [name = ''] = gpuNodeNames();
    await core.listNode();
    await core.readNode({ name });
    const rbac = (sim.log.requests as K8sRecordedRequest[]).map((r) => [
      r.verb,
      r.resource,
      r.subresource ?? '',
    ]);
    expect(rbac).toEqual([
      ['list', 'nodes', ''],
      ['get', 'nodes', ''],
    ]);
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
