/**
 * The simulated Kubernetes API server through the real client: pods, eviction under a PodDisruptionBudget,
 * Kubeflow jobs, and the pod proxy to dcgm-exporter.
 */
import {
  type CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  apiError,
  gpuNodeNamesOf,
  startSimK8sFixture,
  stopSimK8sFixture,
} from '../../test/support/sim-k8s.js';
import type { SimCluster } from './cluster.js';
import type { K8sRecordedRequest, SimK8sServer } from './k8s-server.js';
import type { ManualClock } from './sim-clock.js';
import { SERVING_NAMESPACE, SERVING_PDB, TRAINING_JOB_NAME, TRAINING_NAMESPACE } from './workloads.js';

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
