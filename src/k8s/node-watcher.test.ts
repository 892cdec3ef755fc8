import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../log/logger.js';
import { SimCluster } from '../sim/cluster.js';
import { type SimK8sServer, startSimK8s } from '../sim/k8s-server.js';
import { kubeconfigFor } from '../sim/kubeconfig.js';
import type { NodeChange } from './node-watcher.js';
import { NodeWatcher } from './node-watcher.js';
import { PodIndex } from './pod-index.js';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

function kcFor(url: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(url));
  return kc;
}

async function simulated(nodes = 4): Promise<{ cluster: SimCluster; sim: SimK8sServer; kc: KubeConfig }> {
  const cluster = new SimCluster({ nodes });
  const sim = await startSimK8s(cluster);
  closers.push(
    () => cluster.close(),
    () => sim.close(),
  );
  return { cluster, sim, kc: kcFor(sim.url) };
}

describe('NodeWatcher against the simulated API server', () => {
  it('lists the GPU nodes, then follows DELETED events', async () => {
    const { cluster, kc } = await simulated(4);
    const watcher = new NodeWatcher(kc, { restartDelayMs: 20 });
    closers.push(() => watcher.stop());
    await watcher.start();
    expect(watcher.isSynced).toBe(true);
    const gpuNames = cluster
      .listNodes()
      .filter((n) => Number(n.status.capacity['nvidia.com/gpu'] ?? 0) > 0)
      .map((n) => n.metadata.name)
      .sort();
    expect(
      watcher
        .list()
        .map((n) => n.name)
        .sort(),
    ).toEqual(gpuNames);
    const changes: NodeChange[] = [];
    watcher.onChange((c) => changes.push(c));
    const victim = gpuNames[0] ?? '';
    cluster.deleteNodeFromApi(victim);
    await vi.waitFor(() => expect(watcher.get(victim)).toBeUndefined());
    expect(changes).toContainEqual(
      expect.objectContaining({ type: 'delete', node: expect.objectContaining({ name: victim }) }),
    );
    expect(watcher.list()).toHaveLength(gpuNames.length - 1);
  });

  it('keeps a GPU instance whose device plugin has not registered, drops a node that stops being a GPU node', async () => {
    const { cluster, kc } = await simulated(3);
    const watcher = new NodeWatcher(kc, { restartDelayMs: 20 });
    closers.push(() => watcher.stop());
    await watcher.start();
    const target = watcher.list()[0]?.name ?? '';
    const changes: NodeChange[] = [];
    watcher.onChange((c) => changes.push(c));
    const node = structuredClone(cluster.getNode(target));
    if (!node) throw new Error('no node');
    // No nvidia.com/gpu (a device plugin gone): still a p5 with GPUs, still watched.
    delete node.status.capacity['nvidia.com/gpu'];
    delete node.status.allocatable['nvidia.com/gpu'];
    cluster.updateNodeFromApi(target, node, 'status');
    await vi.waitFor(() => expect(changes).toHaveLength(1));
    expect(changes[0]).toMatchObject({ type: 'upsert' });
    expect(watcher.get(target)?.allocatableGpus).toBe(0);
    // Relabelled as a CPU instance without GFD's labels: no longer a GPU node.
    const labels = Object.fromEntries(
      Object.entries(node.metadata.labels ?? {}).filter(([k]) => !k.startsWith('nvidia.com/')),
    );
    labels['node.kubernetes.io/instance-type'] = 'm5.xlarge';
    labels['beta.kubernetes.io/instance-type'] = 'm5.xlarge';
    cluster.updateNodeFromApi(target, { ...node, metadata: { ...node.metadata, labels } }, undefined);
    await vi.waitFor(() => expect(watcher.get(target)).toBeUndefined());
    expect(changes[1]).toEqual({ type: 'delete', node: expect.objectContaining({ name: target }) });
  });

  it('a status heartbeat keeps the node object (a scan tells an unchanged node by identity); a change replaces it', async () => {
    const { cluster, kc } = await simulated(3);
    const watcher = new NodeWatcher(kc, { restartDelayMs: 20 });
    closers.push(() => watcher.stop());
    await watcher.start();
    const [first, second] = watcher.list().map((n) => n.name);
    if (!first || !second) throw new Error('two nodes expected');
    const before = watcher.get(first);
    const changes: NodeChange[] = [];
    watcher.onChange((c) => changes.push(c));
    const beat = structuredClone(cluster.getNode(first));
    if (!beat) throw new Error('no node');
    const later = new Date(Date.now() + 60_000).toISOString();
    for (const c of beat.status.conditions ?? []) c.lastHeartbeatTime = later;
    beat.metadata.annotations = { ...beat.metadata.annotations, 'node.alpha.kubernetes.io/ttl': '0' };
    cluster.updateNodeFromApi(first, beat, 'status');
    // Then a real change on the other node: watch events arrive in order, so the heartbeat was applied first.
    const cordoned = structuredClone(cluster.getNode(second));
    if (!cordoned) throw new Error('no node');
    cordoned.spec = { ...cordoned.spec, unschedulable: true };
    cluster.updateNodeFromApi(second, cordoned, undefined);
    await vi.waitFor(() => expect(watcher.get(second)?.unschedulable).toBe(true));
    expect(watcher.get(first)).toBe(before);
    expect(changes.map((c) => [c.type, c.node.name])).toEqual([['upsert', second]]);
  });

  it('indexes exporter pods by node and drops a deleted pod', async () => {
    const { cluster, kc } = await simulated(3);
    const pods = new PodIndex(kc, {
      selectors: ['app=nvidia-dcgm-exporter', 'app.kubernetes.io/name=dcgm-exporter'],
    });
    closers.push(() => pods.stop());
    await pods.start();
    const node = cluster.listNodes().find((n) => cluster.exporterPod(n.metadata.name))?.metadata.name ?? '';
    const pod = cluster.exporterPod(node);
    if (!pod) throw new Error('no exporter pod');
    expect(pods.forNode(node)).toEqual({
      namespace: pod.metadata.namespace,
      name: pod.metadata.name,
      node,
      podIP: pod.status?.podIP,
      ready: true,
    });
    const before = pods.size();
    cluster.deletePodFromApi(pod.metadata.namespace ?? '', pod.metadata.name);
    await vi.waitFor(() => expect(pods.size()).toBe(before - 1));
  });
});

/** A tiny API server whose watch first answers 410 Gone, so the watcher must re-list. */
async function expiringApi(): Promise<{ url: string; requests: string[]; listed: { count: number } }> {
  const node = (name: string, rv: string) => ({
    metadata: { name, resourceVersion: rv, labels: {} },
    spec: { providerID: `aws:///us-east-1a/i-${name}` },
    status: { capacity: { 'nvidia.com/gpu': '8' }, conditions: [{ type: 'Ready', status: 'True' }] },
  });
  const requests: string[] = [];
  const listed = { count: 0 };
  const open = new Set<ServerResponse>();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requests.push(`${url.pathname}${url.searchParams.get('watch') ? '?watch' : ''}`);
    if (url.pathname !== '/api/v1/nodes') {
      res.writeHead(404).end();
      return;
    }
    res.setHeader('Content-Type', 'application/json');
    if (url.searchParams.get('watch') === 'true') {
      res.writeHead(200);
      if (url.searchParams.get('resourceVersion') === '10') {
        res.end(
          `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Expired","code":410,"message":"too old resource version: 10 (30)"}}\n`,
        );
        return;
      }
      open.add(res);
      res.on('close', () => open.delete(res));
      res.write(`{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"31"}}}\n`);
      return;
    }
    listed.count += 1;
    // First list: a and b (rv 10). Re-list: b only (a was deleted while the watch was expired).
    const items = listed.count === 1 ? [node('a', '5'), node('b', '6')] : [node('b', '6')];
    res.end(
      JSON.stringify({
        kind: 'NodeList',
        apiVersion: 'v1',
        metadata: { resourceVersion: listed.count === 1 ? '10' : '30' },
        items,
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(
    () =>
      new Promise<void>((r) => {
        for (const s of open) s.destroy();
        server.close(() => r());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, listed };
}

describe('NodeWatcher re-listing', () => {
  it('re-lists after 410 Gone and forgets nodes deleted meanwhile', async () => {
    const api = await expiringApi();
    const watcher = new NodeWatcher(kcFor(api.url), { restartDelayMs: 10 });
    closers.push(() => watcher.stop());
    const changes: NodeChange[] = [];
    watcher.onChange((c) => changes.push(c));
    await watcher.start();
    await vi.waitFor(() => expect(watcher.get('a')).toBeUndefined());
    expect(api.listed.count).toBe(2);
    expect(watcher.list().map((n) => n.name)).toEqual(['b']);
    expect(changes).toContainEqual({ type: 'delete', node: expect.objectContaining({ name: 'a' }) });
    await vi.waitFor(() => expect(api.requests.filter((r) => r.endsWith('?watch')).length).toBe(2));
  });
});

describe('NodeWatcher through injected API faults (the simulator: dropped watch, 410 Gone, 500 on list)', () => {
  it('a watch cut mid-stream, an expired watch and a failed re-list: the watcher recovers and misses no deletion', async () => {
    const { cluster, sim, kc } = await simulated(4);
    const watcher = new NodeWatcher(kc, { restartDelayMs: 10 });
    closers.push(() => watcher.stop());
    await watcher.start();
    const gpu = watcher.list().map((n) => n.name);
    const [first = '', second = ''] = gpu;
    await vi.waitFor(() => expect(sim.log.find('watchNodes').length).toBeGreaterThan(0));

    // The next watch is answered 410 (its resourceVersion is too old), and the re-list after it fails once.
    sim.faults.add({ operation: 'watchNodes', status: 410 });
    sim.faults.add({ operation: 'listNodes', status: 500 });
    expect(sim.dropWatches()).toBe(1);
    cluster.deleteNodeFromApi(first);
    await vi.waitFor(() => expect(watcher.get(first)).toBeUndefined());
    // Both faults get served (the 410 by the first watch after the re-list, whenever that comes).
    await vi.waitFor(() => expect(sim.faults.pending).toBe(0), { timeout: 5_000 });
    expect(sim.faults.served.map((f) => `${f.operation} ${f.status}`).sort()).toEqual([
      'listNodes 500',
      'watchNodes 410',
    ]);
    // Listed again after the 500 (a cut or expired watch means a re-list: events may have been missed).
    const lists = sim.log.find('listNodes').map((r) => r.status);
    expect(lists).toContain(500);
    expect(lists.at(-1)).toBe(200);

    // And it is watching again afterwards.
    cluster.deleteNodeFromApi(second);
    await vi.waitFor(() => expect(watcher.get(second)).toBeUndefined());
    expect(watcher.list()).toHaveLength(gpu.length - 2);
  });
});

describe('NodeWatcher with a token the API server refuses (401)', () => {
  function captured() {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    });
    return { lines, logger: createLogger({ destination }) };
  }

  it('at start-up: fails with what to fix, not a bare HTTP code', async () => {
    const cluster = new SimCluster({ nodes: 1 });
    const sim = await startSimK8s(cluster, { token: 'current-token' });
    closers.push(
      () => cluster.close(),
      () => sim.close(),
    );
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfigFor(sim.url, { token: 'revoked-token' }));
    const watcher = new NodeWatcher(kc, { restartDelayMs: 10 });
    closers.push(() => watcher.stop());
    await expect(watcher.start()).rejects.toThrow(
      "listing /api/v1/nodes: the API server refused gpu-medic's credentials (401 Unauthorized): check the ServiceAccount token or the kubeconfig",
    );
    expect(sim.log.find('listNodes').map((r) => r.status)).toEqual([401]);
  });

  it('later (token revoked while running): keeps retrying and logs why it is blind', async () => {
    const { sim, kc } = await simulated(2);
    const { lines, logger } = captured();
    const watcher = new NodeWatcher(kc, { restartDelayMs: 10, logger });
    closers.push(() => watcher.stop());
    await watcher.start();
    await vi.waitFor(() => expect(sim.log.find('watchNodes').length).toBeGreaterThan(0));
    sim.faults.add({ verb: 'watch', status: 401, times: 100 });
    sim.faults.add({ verb: 'list', status: 401, times: 100 });
    sim.dropWatches();
    await vi.waitFor(() =>
      expect(lines.find((l) => l.msg === 'watch failed; re-listing' && l.hint)?.hint).toMatch(
        /refused gpu-medic's credentials \(401 Unauthorized\)/,
      ),
    );
    // Still the nodes it knew: blind, not empty.
    expect(watcher.list().length).toBeGreaterThan(0);
  });
});
