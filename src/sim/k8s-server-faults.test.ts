/**
 * The simulated Kubernetes API server under injected faults (500, 429 + Retry-After, 409, 410 Gone, dropped
 * watches, 401) and against requests it does not know.
 */
import { CoreV1Api, KubeConfig, Watch } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  apiError,
  gpuNodeNamesOf,
  startSimK8sFixture,
  stopSimK8sFixture,
} from '../../test/support/sim-k8s.js';
import type { SimCluster } from './cluster.js';
import { type K8sRecordedRequest, type SimK8sServer, startSimK8s } from './k8s-server.js';
import { kubeconfigFor } from './kubeconfig.js';
import { SERVING_NAMESPACE, TRAINING_NAMESPACE } from './workloads.js';

let cluster: SimCluster;
let sim: SimK8sServer;
let kc: KubeConfig;
let core: CoreV1Api;

beforeEach(async () => {
  ({ cluster, sim, kc, core } = await startSimK8sFixture());
});

afterEach(async () => {
  await stopSimK8sFixture({ cluster, sim });
});

const gpuNodeNames = (): string[] => gpuNodeNamesOf(cluster);

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
