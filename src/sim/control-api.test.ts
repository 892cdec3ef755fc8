import { EC2Client, RebootInstancesCommand } from '@aws-sdk/client-ec2';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { awsClientConfig } from '../../test/support/aws.js';
import {
  applyFault,
  ControlError,
  CountingRequestLog,
  type RequestsPage,
  requestsPage,
  type SimNodeState,
  type SimState,
} from './control-api.js';
import { type Simulator, startSimulator } from './index.js';
import type { RecordedRequest } from './recorder.js';
import { SERVING_NAMESPACE, SERVING_PDB } from './workloads.js';

let sim: Simulator;
let url: string;
let core: CoreV1Api;
let nodes: string[];

beforeAll(async () => {
  sim = await startSimulator({ nodes: 3, slack: false });
  url = sim.control?.url ?? '';
  const kc = new KubeConfig();
  kc.loadFromFile(sim.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  nodes = sim.cluster
    .listNodes()
    .filter((n) => n.status.capacity['nvidia.com/gpu'])
    .map((n) => n.metadata.name);
});

afterAll(async () => {
  await sim.close();
});

beforeEach(() => {
  for (const n of nodes) sim.cluster.clearFaults(n);
});

async function post(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  expect(res.headers.get('content-type')).toBe('application/json');
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function get<T>(path: string): Promise<T> {
  const res = await fetch(`${url}${path}`);
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

const node0 = (): string => nodes[0] ?? '';

describe('POST /faults', () => {
  it('injects an XID that the exporter scrape through the pod proxy then shows', async () => {
    const { status, json } = await post('/faults', { node: node0(), gpu: 2, kind: 'xid', xid: 79 });
    expect(status).toBe(200);
    expect(json).toEqual({ ok: true, node: node0(), kind: 'xid' });

    const pod = sim.cluster.exporterPod(node0())?.metadata.name ?? '';
    const text = await core.connectGetNamespacedPodProxyWithPath({
      namespace: 'gpu-operator',
      name: `${pod}:9400`,
      path: 'metrics',
    });
    expect(text).toMatch(/DCGM_FI_DEV_XID_ERRORS\{gpu="2",[^}]*\} 79\n/);
    expect(text).toMatch(/DCGM_FI_DEV_XID_ERRORS\{gpu="1",[^}]*\} 0\n/);
  });

  it.each<[string, Record<string, unknown>, (s: SimNodeState) => unknown, unknown]>([
    ['ecc', { kind: 'ecc', gpu: 1, dbe: 2 }, (s) => s.faults, [{ gpu: 1, eccDbe: 2 }]],
    ['row-remap', { kind: 'row-remap', gpu: 3 }, (s) => s.faults, [{ gpu: 3, rowRemapFailure: true }]],
    ['nvlink', { kind: 'nvlink', gpu: 0, count: 12 }, (s) => s.faults, [{ gpu: 0, nvlinkErrors: 12 }]],
    [
      'thermal',
      { kind: 'thermal', gpu: 4, temperature: 95 },
      (s) => s.faults,
      [{ gpu: 4, temperatureC: 95 }],
    ],
    [
      'drop-gpu',
      { kind: 'drop-gpu', gpu: 5 },
      (s) => [s.gpusPresent, s.faults],
      [7, [{ gpu: 5, missing: true }]],
    ],
    ['health', { kind: 'health', gpu: 6, state: 'fail' }, (s) => s.faults, [{ gpu: 6, health: 'fail' }]],
    ['exporter', { kind: 'exporter', mode: 'hang' }, (s) => s.exporterMode, 'hang'],
  ])('applies %s and /state shows it', async (_kind, fault, pick, expected) => {
    const { status } = await post('/faults', { node: node0(), ...fault });
    expect(status).toBe(200);
    const state = await get<SimNodeState>(`/state?node=${encodeURIComponent(node0())}`);
    expect(pick(state)).toEqual(expected);
  });

  it('sets a node condition', async () => {
    const { status } = await post('/faults', {
      node: node0(),
      kind: 'condition',
      type: 'AcceleratedHardwareReady',
      status: 'False',
      reason: 'NvidiaXID79Error',
    });
    expect(status).toBe(200);
    const cond = sim.cluster
      .getNode(node0())
      ?.status.conditions.find((c) => c.type === 'AcceleratedHardwareReady');
    expect(cond).toMatchObject({ status: 'False', reason: 'NvidiaXID79Error' });
  });

  it.each<[string, unknown, RegExp]>([
    ['no kind', { node: 'n', gpu: 0 }, /kind/],
    ['an unknown kind', { node: 'n', gpu: 0, kind: 'meltdown' }, /kind/],
    ['an XID as a string', { node: 'n', gpu: 0, kind: 'xid', xid: '79' }, /xid/],
    ['a negative GPU', { node: 'n', gpu: -1, kind: 'xid', xid: 79 }, /gpu/],
    ['no XID', { node: 'n', gpu: 0, kind: 'xid' }, /xid/],
    ['a bad health state', { node: 'n', gpu: 0, kind: 'health', state: 'sick' }, /state/],
    ['an array', [1, 2], /expected object/i],
    ['not JSON', '{"node":', /not JSON/],
    ['an empty body', '', /JSON body/],
  ])('answers 400 with a message for %s', async (_what, body, message) => {
    const before = JSON.stringify(await get<SimState>('/state'));
    const { status, json } = await post('/faults', body);
    expect(status).toBe(400);
    expect(String(json.error)).toMatch(message);
    expect(JSON.stringify(await get<SimState>('/state'))).toBe(before);
  });

  it('answers 400 for a GPU the node does not have', async () => {
    const { status, json } = await post('/faults', { node: node0(), gpu: 8, kind: 'xid', xid: 79 });
    expect(status).toBe(400);
    expect(json.error).toBe(`node ${node0()} has 8 GPU(s): no GPU 8`);
  });

  it('answers 404 for an unknown node', async () => {
    const { status, json } = await post('/faults', {
      node: 'ip-10-9-9-9.ec2.internal',
      gpu: 0,
      kind: 'xid',
      xid: 79,
    });
    expect(status).toBe(404);
    expect(json.error).toBe('unknown node ip-10-9-9-9.ec2.internal');
  });
});

describe('state and controls', () => {
  it('GET /state lists every node with its instance, readiness, boot id and pods', async () => {
    const state = await get<SimState>('/state');
    expect(state.clusterName).toBe(sim.cluster.clusterName);
    expect(state.nodes.map((n) => n.name).sort()).toEqual(
      sim.cluster
        .listNodes()
        .map((n) => n.metadata.name)
        .sort(),
    );
    const s = state.nodes.find((n) => n.name === node0());
    const kube = sim.cluster.getNode(node0());
    expect(s).toMatchObject({
      instanceId: sim.cluster.nodeInfo(node0())?.instanceId,
      gpuNode: true,
      ready: true,
      unschedulable: false,
      bootId: kube?.status.nodeInfo.bootID,
      gpus: 8,
      gpusPresent: 8,
      faults: [],
      pods: sim.cluster.listPods({ nodeName: node0() }).length,
    });
    expect(s?.pods).toBeGreaterThan(0);
  });

  it('GET /state?node= answers 404 for an unknown node', async () => {
    const res = await fetch(`${url}/state?node=nope`);
    expect(res.status).toBe(404);
  });

  it('POST /clear brings a node back to healthy', async () => {
    await post('/faults', { node: node0(), gpu: 0, kind: 'xid', xid: 48 });
    await post('/faults', { node: node0(), gpu: 1, kind: 'drop-gpu' });
    const { status } = await post('/clear', { node: node0() });
    expect(status).toBe(200);
    const s = await get<SimNodeState>(`/state?node=${encodeURIComponent(node0())}`);
    expect(s.faults).toEqual([]);
    expect(s.gpusPresent).toBe(8);
    expect((await post('/clear', { node: 'nope' })).status).toBe(404);
    expect((await post('/clear', {})).status).toBe(400);
  });

  it('POST /counters switches one exporter, or the cluster default, between stock and full counters', async () => {
    const scrape = (n: string) => {
      const r = sim.cluster.exporterScrape(n);
      return r.kind === 'ok' ? r.body : '';
    };
    const [n0, n1] = [node0(), nodes[1] ?? ''];
    // Stock by default: a DBE is in the GPU but not in the scrape.
    sim.cluster.injectEcc(n0, 1, { dbe: 2 });
    expect(scrape(n0)).not.toContain('DCGM_FI_DEV_ECC_DBE_VOL_TOTAL');
    expect((await get<SimNodeState>(`/state?node=${encodeURIComponent(n0)}`)).counters).toBe('stock');

    expect((await post('/counters', { node: n0, counters: 'full' })).status).toBe(200);
    expect(scrape(n0)).toMatch(/DCGM_FI_DEV_ECC_DBE_VOL_TOTAL\{gpu="1",[^}]*\} 2\n/);
    expect(scrape(n1)).not.toContain('DCGM_FI_DEV_ECC_DBE_VOL_TOTAL');

    expect((await post('/counters', { counters: 'full' })).status).toBe(200);
    expect(scrape(n1)).toContain('DCGM_FI_DEV_ECC_DBE_VOL_TOTAL');
    expect((await post('/counters', { counters: 'stock' })).status).toBe(200);
    expect(scrape(n1)).not.toContain('DCGM_FI_DEV_ECC_DBE_VOL_TOTAL');
    // The per-node setting outlives a change of the default, until it is reset with null.
    expect(scrape(n0)).toContain('DCGM_FI_DEV_ECC_DBE_VOL_TOTAL');
    expect((await post('/counters', { node: n0, counters: null })).status).toBe(200);
    expect(scrape(n0)).not.toContain('DCGM_FI_DEV_ECC_DBE_VOL_TOTAL');

    expect((await post('/counters', { counters: 'everything' })).status).toBe(400);
    expect((await post('/counters', { node: 'nope', counters: 'full' })).status).toBe(404);
  });

  it('POST /pdb pins disruptionsAllowed, 404 for an unknown PDB', async () => {
    const ok = await post('/pdb', { namespace: SERVING_NAMESPACE, name: SERVING_PDB, disruptionsAllowed: 0 });
    expect(ok.status).toBe(200);
    expect(sim.cluster.getPdb(SERVING_NAMESPACE, SERVING_PDB)?.status.disruptionsAllowed).toBe(0);
    const missing = await post('/pdb', { namespace: SERVING_NAMESPACE, name: 'nope', disruptionsAllowed: 1 });
    expect(missing.status).toBe(404);
    const bad = await post('/pdb', {
      namespace: SERVING_NAMESPACE,
      name: SERVING_PDB,
      disruptionsAllowed: -1,
    });
    expect(bad.status).toBe(400);
    expect(String(bad.json.error)).toMatch(/disruptionsAllowed/);
  });

  it('GET /requests pages the shared log by service and sequence number', async () => {
    const start = await get<{ total: number }>('/requests/count');
    await core.listNode();
    await core.readNode({ name: node0() });
    const page = await get<RequestsPage>(`/requests?service=k8s&since=${start.total}`);
    expect(page.requests.map((r) => r.operation)).toEqual(['listNodes', 'getNode']);
    expect(page.requests[0]).not.toHaveProperty('headers');
    expect(page.requests.map((r) => r.seq)).toEqual([start.total, start.total + 1]);
    const after = await get<RequestsPage>(`/requests?since=${page.next}`);
    expect(after.requests).toEqual([]);
    const counts = await get<{ total: number; byService: Record<string, number> }>('/requests/count');
    expect(counts.total).toBe(start.total + 2);
    expect(counts.byService.k8s).toBe(counts.total);
    const bad = await fetch(`${url}/requests?since=abc`);
    expect(bad.status).toBe(400);
  });

  it('GET /process reports the serving process', async () => {
    const p = await get<{ pid: number; cpu: { user: number; system: number }; rss: number }>('/process');
    expect(p.pid).toBe(process.pid);
    expect(p.cpu.user).toBeGreaterThan(0);
    expect(p.rss).toBeGreaterThan(0);
  });

  it('answers 404 for an unknown endpoint', async () => {
    const res = await fetch(`${url}/nope`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: string }).error).toBe('no such control endpoint: GET /nope');
  });
});

describe('in-process API', () => {
  it('applyFault validates like the HTTP API', () => {
    expect(() => applyFault(sim.cluster, { node: node0(), gpu: 0, kind: 'xid' })).toThrow(ControlError);
    expect(applyFault(sim.cluster, { node: node0(), gpu: 0, kind: 'xid', xid: 31 })).toBe('xid');
    expect(sim.cluster.gpuState(node0())[0]?.xidLast).toBe(31);
  });

  it('a diag fault: what `dcgmi diag` reports for a test and GPU; bad tests and GPUs refused', () => {
    expect(
      applyFault(sim.cluster, { node: node0(), kind: 'diag', test: 'memory', gpu: 1, status: 'fail' }),
    ).toBe('diag');
    expect(() =>
      applyFault(sim.cluster, { node: node0(), kind: 'diag', test: 'bogus', status: 'fail' }),
    ).toThrow(ControlError);
    expect(() =>
      applyFault(sim.cluster, { node: node0(), kind: 'diag', test: 'memory', gpu: 99, status: 'fail' }),
    ).toThrow(ControlError);
  });
});

describe('requestsPage on a bounded log', () => {
  const rec = (i: number): RecordedRequest => ({
    service: i % 2 ? 'ec2' : 'k8s',
    method: 'GET',
    path: `/${i}`,
    query: {},
    headers: {},
    body: '',
    status: 200,
    at: i,
  });

  it('numbers requests across the bound and skips what was dropped', () => {
    const log = new CountingRequestLog(3);
    for (let i = 0; i < 7; i++) log.record(rec(i));
    expect(log.total()).toBe(7);
    const page = requestsPage(log, { since: 0 });
    expect(page.from).toBe(4);
    expect(page.requests.map((r) => r.seq)).toEqual([4, 5, 6]);
    expect(page.next).toBe(7);
    expect(requestsPage(log, { since: 5, service: 'k8s' }).requests.map((r) => r.path)).toEqual(['/6']);
    expect(requestsPage(log, { since: 4, limit: 1 })).toMatchObject({ next: 5, requests: [{ seq: 4 }] });
  });
});

describe('POST /bedrock/answer', () => {
  it('gives every Converse call a standing answer until cleared, and counts the calls', async () => {
    const { BedrockRuntimeClient, ConverseCommand } = await import('@aws-sdk/client-bedrock-runtime');
    const { awsClientConfig } = await import('../../test/support/aws.js');
    const answer = {
      toolUse: {
        name: 'classify_gpu_fault',
        input: { category: 'HEALTHY', severity: 'healthy', confidence: 0.9 },
      },
      usage: { inputTokens: 100, outputTokens: 20 },
    };
    expect((await post('/bedrock/answer', answer)).status).toBe(200);
    const client = new BedrockRuntimeClient(awsClientConfig(sim.aws.url));
    const out = await client.send(
      new ConverseCommand({
        modelId: 'us.anthropic.claude-sonnet-4-6',
        messages: [{ role: 'user', content: [{ text: 'classify' }] }],
        toolConfig: {
          tools: [{ toolSpec: { name: 'classify_gpu_fault', inputSchema: { json: { type: 'object' } } } }],
        },
      }),
    );
    expect(out.output?.message?.content?.[0]?.toolUse?.input).toEqual(answer.toolUse.input);
    expect(await get<{ calls: number }>('/bedrock/calls')).toEqual({ calls: 1 });

    expect((await post('/bedrock/answer', { toolUse: { name: '' } })).status).toBe(400);
    expect((await post('/bedrock/answer', { action: 'replace' })).status).toBe(400);
    const cleared = await fetch(`${url}/bedrock/answer`, { method: 'DELETE' });
    expect(cleared.status).toBe(200);
    sim.aws.bedrock.reset();
  });
});

describe('API fault injection over HTTP', () => {
  const post = (path: string, body: unknown) =>
    fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('POST /k8s/faults queues a Kubernetes API fault the next matching request gets', async () => {
    const res = await post('/k8s/faults', { operation: 'listNodes', status: 429, retryAfterSeconds: 3 });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, pending: 1 });
    const err = await core.listNode().catch((e: { code?: number; headers?: Record<string, string> }) => e);
    expect(err).toMatchObject({ code: 429, headers: { 'retry-after': '3' } });
    await expect(core.listNode()).resolves.toBeDefined();
  });

  it('refuses a malformed Kubernetes fault with 400 naming the problem', async () => {
    const res = await post('/k8s/faults', { operation: 'listNodes', status: 'soon' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/status/);
    expect((await post('/k8s/faults', { operation: 'listNodes' })).status).toBe(400);
  });

  it('POST /k8s/watches/drop answers how many watch streams it cut', async () => {
    const res = await post('/k8s/watches/drop', {});
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ ok: true, dropped: expect.any(Number) });
  });

  it('POST /aws/faults queues an EC2 error for one operation', async () => {
    expect(
      (await post('/aws/faults', { service: 'ec2', status: 403, operation: 'RebootInstances', times: 1 }))
        .status,
    ).toBe(200);
    const ec2 = new EC2Client(awsClientConfig(sim.aws.url, { region: sim.cluster.region }));
    const instanceId = sim.cluster.nodeInfo(nodes[0] ?? '')?.instanceId ?? '';
    const err = await ec2
      .send(new RebootInstancesCommand({ InstanceIds: [instanceId] }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'UnauthorizedOperation', $metadata: { httpStatusCode: 403 } });
    expect((await post('/aws/faults', { service: 'nope', status: 500 })).status).toBe(400);
    expect((await post('/aws/faults', { service: 'ec2' })).status).toBe(400);
    expect((await fetch(`${url}/aws/faults`, { method: 'DELETE' })).status).toBe(200);
  });
});
