import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PodRef, TrainingJobStatus } from '../remediate/ports.js';
import { SimCluster } from '../sim/cluster.js';
import type { K8sRecordedRequest, SimK8sServer } from '../sim/k8s-server.js';
import { startSimK8s } from '../sim/k8s-server.js';
import { kubeconfigFor, SIM_K8S_TOKEN } from '../sim/kubeconfig.js';
import { ManualClock } from '../sim/sim-clock.js';
import { SERVING_NAMESPACE, SERVING_PDB, TRAINING_JOB_NAME, TRAINING_NAMESPACE } from '../sim/workloads.js';
import { createClusterPort, K8sApiError, trainingJobStatusFrom, trainingJobsOf } from './cluster-port.js';

function kubeConfig(url: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(url));
  return kc;
}

describe('ClusterPort against the simulated API server', () => {
  let clock: ManualClock;
  let cluster: SimCluster;
  let sim: SimK8sServer;
  let port: ReturnType<typeof createClusterPort>;

  beforeEach(async () => {
    clock = new ManualClock();
    cluster = new SimCluster({ nodes: 6, clock, terminateDelayMs: 1000, replaceDelayMs: 5000 });
    sim = await startSimK8s(cluster);
    port = createClusterPort(kubeConfig(sim.url), { retryDelayMs: 10 });
  });

  afterEach(async () => {
    await sim.close();
    cluster.close();
    sim.log.assertNoUnexpected();
  });

  const nodeOfPod = (ns: string, name: string): string => {
    const node = cluster.getPod(ns, name)?.spec.nodeName;
    if (!node) throw new Error(`pod ${ns}/${name} is not scheduled`);
    return node;
  };
  const servingPods = () => cluster.listPods({ namespace: SERVING_NAMESPACE });

  it('lists only GPU nodes and reads one node; an unknown node is undefined', async () => {
    const nodes = await port.listNodes();
    const gpuNames = cluster
      .listNodes()
      .filter((n) => Number(n.status.capacity['nvidia.com/gpu'] ?? 0) > 0)
      .map((n) => n.metadata.name);
    expect(nodes.map((n) => n.name).sort()).toEqual([...gpuNames].sort());
    expect(cluster.listNodes()).toHaveLength(7);
    const first = nodes[0];
    if (!first) throw new Error('no nodes');
    const node = await port.getNode(first.name);
    expect(node).toMatchObject({ name: first.name, expectedGpus: 8, ready: true, unschedulable: false });
    expect(node?.instanceId).toMatch(/^i-/);
    expect(node?.bootId).toBeTruthy();
    expect(await port.getNode('ip-10-9-9-9.ec2.internal')).toBeUndefined();
  });

  it('lists the GPU agent pods of a node: after a reboot the same pod, restarted, not Ready until its probe passes', async () => {
    const [node] = await port.listNodes();
    if (!node) throw new Error('no nodes');
    const before = await port.listGpuAgentPods(node.name);
    expect(before).toEqual([
      expect.objectContaining({
        namespace: 'gpu-operator',
        ready: true,
        restarts: 0,
        uid: expect.any(String),
      }),
    ]);
    expect(before[0]?.name).toMatch(/^nvidia-dcgm-exporter-/);
    const devicePluginDelayMs = 60_000;
    cluster.rebootInstance(node.instanceId ?? '');
    clock.advance(3000);
    const back = await port.getNode(node.name);
    expect(back).toMatchObject({ ready: true, allocatableGpus: 0, gpuResources: { 'nvidia.com/gpu': 0 } });
    const restarting = await port.listGpuAgentPods(node.name);
    expect(restarting).toEqual([expect.objectContaining({ uid: before[0]?.uid, ready: false, restarts: 1 })]);
    clock.advance(45_000);
    const ready = await port.listGpuAgentPods(node.name);
    expect(ready).toEqual([expect.objectContaining({ uid: before[0]?.uid, ready: true, restarts: 1 })]);
    // The Ready condition's transition is on the new boot (the manual clock's time, to the second).
    expect(ready[0]?.readySince).toBe(Math.floor(clock.now() / 1000) * 1000);
    clock.advance(devicePluginDelayMs - 45_000);
    expect(await port.getNode(node.name)).toMatchObject({ allocatableGpus: 8, expectedGpus: 8 });
  });

  it('finds agent pods only through the configured selectors and namespace', async () => {
    const [node] = await port.listNodes();
    if (!node) throw new Error('no nodes');
    const kc = kubeConfig(sim.url);
    const wrongNs = createClusterPort(kc, {
      gpuAgentSelectors: [{ namespace: 'kube-system', selector: 'app=nvidia-dcgm-exporter' }],
    });
    expect(await wrongNs.listGpuAgentPods(node.name)).toEqual([]);
    const right = createClusterPort(kc, {
      gpuAgentSelectors: [{ namespace: 'gpu-operator', selector: 'app=nvidia-dcgm-exporter' }],
    });
    expect(await right.listGpuAgentPods(node.name)).toHaveLength(1);
  });

  it('cordons with a merge patch (and the node is unschedulable), then uncordons', async () => {
    const [node] = await port.listNodes();
    if (!node) throw new Error('no nodes');
    await port.cordon(node.name);
    const patch = sim.log.find('patchNode').at(-1) as K8sRecordedRequest | undefined;
    expect(patch?.method).toBe('PATCH');
    expect(patch?.headers['content-type']).toMatch(/^application\/merge-patch\+json/);
    expect(JSON.parse(patch?.body ?? '{}')).toEqual({ spec: { unschedulable: true } });
    expect(patch?.status).toBe(200);
    expect(cluster.getNode(node.name)?.spec.unschedulable).toBe(true);
    expect((await port.getNode(node.name))?.unschedulable).toBe(true);

    await port.uncordon(node.name);
    expect(cluster.getNode(node.name)?.spec.unschedulable).not.toBe(true);
    expect((await port.getNode(node.name))?.unschedulable).toBe(false);
  });

  it('cordoning a node that does not exist fails with the API server message', async () => {
    const err = await port.cordon('ip-10-9-9-9.ec2.internal').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(K8sApiError);
    expect(err).toMatchObject({ status: 404, reason: 'NotFound' });
    expect((err as Error).message).toContain('cordon node ip-10-9-9-9.ec2.internal');
    expect((err as Error).message).toContain('not found');
  });

  it('lists the pods of one node across namespaces, flagging DaemonSet and mirror pods', async () => {
    const mirror = cluster.listPods().find((p) => p.metadata.annotations?.['kubernetes.io/config.mirror']);
    if (!mirror) throw new Error('the simulator has no mirror pod');
    const nodeName = mirror.spec.nodeName ?? '';
    const pods = await port.listPodsOnNode(nodeName);
    const request = sim.log.find('listPods').at(-1);
    expect(request?.query.fieldSelector).toBe(`spec.nodeName=${nodeName}`);
    expect(pods.map((p) => `${p.namespace}/${p.name}`).sort()).toEqual(
      cluster
        .listPods({ nodeName })
        .map((p) => `${p.metadata.namespace}/${p.metadata.name}`)
        .sort(),
    );
    const mirrorRef = pods.find((p) => p.name === mirror.metadata.name);
    expect(mirrorRef).toMatchObject({
      isMirror: true,
      isDaemonSet: false,
      ownerKind: 'Node',
      deleting: false,
    });
    const exporter = pods.find((p) => p.labels.app === 'nvidia-dcgm-exporter');
    expect(exporter).toMatchObject({ isDaemonSet: true, isMirror: false, ownerKind: 'DaemonSet' });
    expect(pods.filter((p) => p.isDaemonSet).length).toBeGreaterThanOrEqual(3);
    expect(await port.listPodsOnNode('ip-10-9-9-9.ec2.internal')).toEqual([]);
  });

  it('evicts a PDB-protected pod only once the PDB allows it; a gone pod is gone', async () => {
    const pod = servingPods()[0];
    if (!pod) throw new Error('no serving pod');
    const name = pod.metadata.name;
    cluster.setPdbDisruptionsAllowed(SERVING_NAMESPACE, SERVING_PDB, 0);

    expect(await port.evictPod(SERVING_NAMESPACE, name)).toBe('blocked');
    const eviction = sim.log.requests.filter((r) => (r as K8sRecordedRequest).subresource === 'eviction');
    expect(eviction.map((r) => r.status)).toEqual([429]);
    expect(JSON.parse(eviction[0]?.body ?? '{}')).toMatchObject({
      apiVersion: 'policy/v1',
      kind: 'Eviction',
      metadata: { name, namespace: SERVING_NAMESPACE },
    });
    expect(cluster.getPod(SERVING_NAMESPACE, name)).toBeDefined();

    cluster.setPdbDisruptionsAllowed(SERVING_NAMESPACE, SERVING_PDB, 1);
    expect(await port.evictPod(SERVING_NAMESPACE, name)).toBe('evicted');
    expect(cluster.getPod(SERVING_NAMESPACE, name)).toBeUndefined();
    expect(await port.evictPod(SERVING_NAMESPACE, name)).toBe('gone');
  });

  it('deletes a pod, and reports a missing one as gone', async () => {
    const pod = servingPods()[0];
    if (!pod) throw new Error('no serving pod');
    expect(await port.deletePod(SERVING_NAMESPACE, pod.metadata.name)).toBe('deleted');
    expect(cluster.getPod(SERVING_NAMESPACE, pod.metadata.name)).toBeUndefined();
    expect(await port.deletePod(SERVING_NAMESPACE, pod.metadata.name)).toBe('gone');
  });

  it('finds the PyTorchJob from a worker pod on a node and follows its status', async () => {
    const worker = cluster
      .listPods({ namespace: TRAINING_NAMESPACE })
      .find((p) => p.metadata.labels?.['training.kubeflow.org/replica-type'] === 'worker');
    if (!worker) throw new Error('no worker pod');
    const pods = await port.listPodsOnNode(nodeOfPod(TRAINING_NAMESPACE, worker.metadata.name));
    const jobs = await port.listTrainingJobsForPods(pods);
    const job = {
      kind: 'PyTorchJob',
      apiVersion: 'kubeflow.org/v1',
      namespace: TRAINING_NAMESPACE,
      name: TRAINING_JOB_NAME,
    };
    expect(jobs).toEqual([job]);
    expect(await port.getTrainingJobStatus(job)).toBe('running');
    expect(sim.log.find('getPyTorchJob').at(-1)?.path).toBe(
      `/apis/kubeflow.org/v1/namespaces/${TRAINING_NAMESPACE}/pytorchjobs/${TRAINING_JOB_NAME}`,
    );

    expect(await port.evictPod(TRAINING_NAMESPACE, worker.metadata.name)).toBe('evicted');
    expect(await port.getTrainingJobStatus(job)).toBe('restarting');
    expect(await port.getTrainingJobStatus({ ...job, name: 'no-such-job' })).toBe('unknown');
  });

  it('deletes a Karpenter node (Karpenter terminates it) and reports it gone afterwards', async () => {
    const karpenter = (await port.listNodes()).find((n) => n.karpenterNodePool);
    if (!karpenter) throw new Error('no Karpenter node');
    expect(await port.deleteNode(karpenter.name)).toBe('deleted');
    const deletes = sim.log.find('deleteNode');
    expect(deletes.map((r) => [r.method, r.path, r.status])).toEqual([
      ['DELETE', `/api/v1/nodes/${karpenter.name}`, 200],
    ]);
    clock.advance(1000);
    expect(cluster.getNode(karpenter.name)).toBeUndefined();
    expect(await port.deleteNode(karpenter.name)).toBe('gone');
  });
});

describe('ClusterPort on a flaky API server', () => {
  let server: Server;
  let url: string;
  let answers: Array<{ status: number; body: unknown }>;
  let seen: string[];
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'n1', labels: {} },
    spec: {},
    status: { capacity: { 'nvidia.com/gpu': '8' }, conditions: [{ type: 'Ready', status: 'True' }] },
  };
  const status = (code: number, reason: string, message: string) => ({
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    code,
    reason,
    message,
  });

  beforeEach(async () => {
    answers = [];
    seen = [];
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const next = answers.shift();
      if (!next) {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`unexpected request ${req.method} ${req.url}`);
        return;
      }
      res.writeHead(next.status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(next.body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    expect(answers).toEqual([]);
  });

  it('retries a 503 once and succeeds', async () => {
    answers.push({ status: 503, body: status(503, 'ServiceUnavailable', 'etcd leader changed') });
    answers.push({ status: 200, body: node });
    const port = createClusterPort(kubeConfig(url), { retryDelayMs: 5 });
    expect((await port.getNode('n1'))?.name).toBe('n1');
    expect(seen).toEqual(['GET /api/v1/nodes/n1', 'GET /api/v1/nodes/n1']);
  });

  it('gives up after a bounded number of attempts with the status message in the error', async () => {
    for (let i = 0; i < 3; i++)
      answers.push({ status: 503, body: status(503, 'ServiceUnavailable', 'etcd leader changed') });
    const port = createClusterPort(kubeConfig(url), { retryDelayMs: 5 });
    const err = await port.cordon('n1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(K8sApiError);
    expect((err as Error).message).toBe(
      'cordon node n1: HTTP 503 ServiceUnavailable: etcd leader changed (after 3 attempts)',
    );
    expect(err).toMatchObject({ retryable: true });
    expect(seen).toHaveLength(3);
  });

  it('does not retry a permanent error, and an unexpected eviction answer throws with its message', async () => {
    answers.push({
      status: 403,
      body: status(403, 'Forbidden', 'pods "p" is forbidden: cannot create pods/eviction'),
    });
    const port = createClusterPort(kubeConfig(url), { retryDelayMs: 5 });
    await expect(port.evictPod('ns', 'p')).rejects.toThrow(
      'evict pod ns/p: gpu-medic\'s RBAC does not allow it (HTTP 403 Forbidden): pods "p" is forbidden: cannot create pods/eviction',
    );
    expect(seen).toEqual(['POST /api/v1/namespaces/ns/pods/p/eviction']);
  });

  it('names the call when nothing answers at all', async () => {
    const closedUrl = url;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // A fresh listener only so afterEach has a server to close; the port under test stays closed.
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = createClusterPort(kubeConfig(closedUrl), { retryDelayMs: 5 });
    await expect(port.listNodes()).rejects.toThrow(/^list nodes: /);
  });
});

describe('ClusterPort retry policy against injected API faults', () => {
  let cluster: SimCluster;
  let sim: SimK8sServer;
  let delays: number[];
  let port: ReturnType<typeof createClusterPort>;

  beforeEach(async () => {
    cluster = new SimCluster({ nodes: 3, clock: new ManualClock() });
    sim = await startSimK8s(cluster, { token: SIM_K8S_TOKEN });
    delays = [];
    port = createClusterPort(kubeConfig(sim.url), {
      retryDelayMs: 100,
      sleep: async (ms) => {
        delays.push(ms);
      },
    });
  });

  afterEach(async () => {
    await sim.close();
    cluster.close();
    sim.log.assertNoUnexpected();
  });

  const gpuNode = () => {
    const n = cluster.listNodes().find((x) => Number(x.status.capacity['nvidia.com/gpu'] ?? 0) > 0);
    if (!n) throw new Error('no GPU node');
    return n.metadata.name;
  };
  const served = (op: string) => sim.log.find(op).map((r) => r.status);

  it('a 429 with Retry-After is retried after exactly the time the API server asked for', async () => {
    const name = gpuNode();
    sim.faults.add({ operation: 'getNode', status: 429, retryAfterSeconds: 2 });
    expect((await port.getNode(name))?.name).toBe(name);
    expect(served('getNode')).toEqual([429, 200]);
    expect(delays).toEqual([2000]);
  });

  it('a 500 is retried with backoff a bounded number of times, then a clear, retryable error', async () => {
    const name = gpuNode();
    sim.faults.add({ operation: 'patchNode', status: 500, times: 10 });
    const err = await port.cordon(name).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(K8sApiError);
    expect(err).toMatchObject({ status: 500, retryable: true });
    expect((err as Error).message).toMatch(
      /^cordon node .*: HTTP 500 InternalError: .* \(after 3 attempts\)$/,
    );
    expect(served('patchNode')).toEqual([500, 500, 500]);
    expect(delays).toEqual([100, 200]);
    expect(cluster.getNode(name)?.spec.unschedulable).not.toBe(true);
  });

  it('a 500 that clears is retried and the call succeeds', async () => {
    const name = gpuNode();
    sim.faults.add({ operation: 'patchNode', status: 500, times: 1 });
    await port.cordon(name);
    expect(served('patchNode')).toEqual([500, 200]);
    expect(cluster.getNode(name)?.spec.unschedulable).toBe(true);
  });

  it.each([
    [401, /refused gpu-medic's credentials \(HTTP 401 Unauthorized\)/],
    [403, /gpu-medic's RBAC does not allow it \(HTTP 403 Forbidden\)/],
    [409, /HTTP 409 Conflict: Operation cannot be fulfilled/],
  ] as const)('a %i is not retried and says what it means', async (status, message) => {
    const name = gpuNode();
    sim.faults.add({ operation: 'patchNode', status });
    const err = await port.cordon(name).catch((e: unknown) => e);
    expect(err).toMatchObject({ status, retryable: false });
    expect((err as Error).message).toMatch(message);
    expect(served('patchNode')).toEqual([status]);
    expect(delays).toEqual([]);
  });

  it('a wrong token (kubeconfig and API server disagree) is one 401, not retried', async () => {
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfigFor(sim.url, { token: 'stale-token' }));
    const stale = createClusterPort(kc, { sleep: async (ms) => void delays.push(ms) });
    await expect(stale.listNodes()).rejects.toMatchObject({ status: 401, retryable: false });
    expect(served('listNodes')).toEqual([401]);
    expect(delays).toEqual([]);
  });

  it("eviction: a PDB's 429 is 'blocked' at once; a throttling 429 is retried after Retry-After", async () => {
    const [pod] = cluster.listPods({ namespace: SERVING_NAMESPACE });
    if (!pod) throw new Error('no serving pod');
    cluster.setPdbDisruptionsAllowed(SERVING_NAMESPACE, SERVING_PDB, 0);
    expect(await port.evictPod(SERVING_NAMESPACE, pod.metadata.name)).toBe('blocked');
    expect(served('evictPod')).toEqual([429]);
    expect(delays).toEqual([]);

    cluster.setPdbDisruptionsAllowed(SERVING_NAMESPACE, SERVING_PDB, 1);
    sim.faults.add({ operation: 'evictPod', status: 429, retryAfterSeconds: 1 });
    expect(await port.evictPod(SERVING_NAMESPACE, pod.metadata.name)).toBe('evicted');
    expect(served('evictPod')).toEqual([429, 429, 201]);
    expect(delays).toEqual([1000]);
  });
});

const pod = (over: Partial<PodRef>): PodRef => ({
  namespace: 'ml',
  name: 'p',
  isDaemonSet: false,
  isMirror: false,
  labels: {},
  ownerReferences: [],
  deleting: false,
  ...over,
});

describe('trainingJobsOf', () => {
  it('finds jobs by owner reference, by training-operator labels and by JobSet name, deduplicated', () => {
    const jobs = trainingJobsOf([
      pod({
        name: 'a',
        ownerReferences: [{ apiVersion: 'kubeflow.org/v1', kind: 'TFJob', name: 'tf', controller: true }],
      }),
      pod({
        name: 'b',
        ownerReferences: [{ apiVersion: 'kubeflow.org/v1', kind: 'TFJob', name: 'tf', controller: true }],
      }),
      pod({
        name: 'c',
        ownerReferences: [{ apiVersion: 'kubeflow.org/v2beta1', kind: 'MPIJob', name: 'mpi' }],
      }),
      pod({
        name: 'd',
        labels: {
          'training.kubeflow.org/job-name': 'xgb',
          'training.kubeflow.org/operator-name': 'xgboostjob-controller',
        },
      }),
      pod({ name: 'e', labels: { 'jobset.sigs.k8s.io/jobset-name': 'llm-sft' } }),
      pod({ name: 'f', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs' }] }),
      pod({ name: 'g', labels: { 'training.kubeflow.org/job-name': 'no-operator-label' } }),
    ]);
    expect(jobs).toEqual([
      { kind: 'TFJob', apiVersion: 'kubeflow.org/v1', namespace: 'ml', name: 'tf' },
      { kind: 'MPIJob', apiVersion: 'kubeflow.org/v2beta1', namespace: 'ml', name: 'mpi' },
      { kind: 'XGBoostJob', apiVersion: 'kubeflow.org/v1', namespace: 'ml', name: 'xgb' },
      { kind: 'TrainJob', apiVersion: 'trainer.kubeflow.org/v1alpha1', namespace: 'ml', name: 'llm-sft' },
    ]);
  });
});

describe('trainingJobStatusFrom', () => {
  const cond = (type: string, status: string, at: string) => ({ type, status, lastTransitionTime: at });
  const t1 = '2025-01-01T00:00:00Z';
  const t2 = '2025-01-01T00:05:00Z';
  it.each<[string, unknown, TrainingJobStatus]>([
    ['no status yet', {}, 'pending'],
    ['created only', { status: { conditions: [cond('Created', 'True', t1)] } }, 'pending'],
    [
      'running',
      { status: { conditions: [cond('Created', 'True', t1), cond('Running', 'True', t1)] } },
      'running',
    ],
    [
      'restarting after running',
      { status: { conditions: [cond('Running', 'False', t2), cond('Restarting', 'True', t2)] } },
      'restarting',
    ],
    [
      'newest True wins',
      { status: { conditions: [cond('Running', 'True', t2), cond('Restarting', 'True', t1)] } },
      'running',
    ],
    ['suspended', { status: { conditions: [cond('Suspended', 'True', t2)] } }, 'pending'],
    [
      'succeeded',
      { status: { conditions: [cond('Running', 'False', t2), cond('Succeeded', 'True', t2)] } },
      'succeeded',
    ],
    [
      'failed beats a stale Running',
      { status: { conditions: [cond('Running', 'True', t2), cond('Failed', 'True', t1)] } },
      'failed',
    ],
    ['TrainJob complete', { status: { conditions: [cond('Complete', 'True', t2)] } }, 'succeeded'],
    [
      'TrainJob with ready jobs',
      { status: { conditions: [], jobsStatus: [{ ready: 2, active: 2 }] } },
      'running',
    ],
    ['only False conditions', { status: { conditions: [cond('Running', 'False', t1)] } }, 'unknown'],
    ['malformed', { status: { conditions: 'yes' } }, 'unknown'],
    ['not an object', 'garbage', 'unknown'],
  ])('%s → %s', (_name, obj, expected) => {
    expect(trainingJobStatusFrom(obj)).toBe(expected);
  });
});
