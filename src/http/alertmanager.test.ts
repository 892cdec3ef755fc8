import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { GpuNode } from '../domain/node.js';
import {
  ALERTMANAGER_PATH,
  type AlertmanagerPayload,
  alertTargets,
  createAlertmanagerHandler,
  type PushedScan,
  tokenMatches,
} from './alertmanager.js';
import { startOpsServer } from './ops-server.js';

const TOKEN = 'am-test-token-0123456789';

function node(name: string, extra: Partial<GpuNode> = {}): GpuNode {
  return {
    name,
    gpuResources: { 'nvidia.com/gpu': 8 },
    unschedulable: false,
    ready: true,
    labels: { 'kubernetes.io/hostname': name },
    conditions: [],
    ...extra,
  };
}

const NODES = [
  node('ip-10-0-1-5.ec2.internal', { internalIp: '10.0.1.5' }),
  node('gpu-b', { internalIp: '10.0.1.6', labels: { 'kubernetes.io/hostname': 'gpu-b-host' } }),
];

function payload(alerts: { status?: 'firing' | 'resolved'; labels: Record<string, string> }[]) {
  return {
    version: '4',
    groupKey: '{}:{alertname="GpuXid"}',
    truncatedAlerts: 0,
    status: 'firing',
    receiver: 'gpu-medic',
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    alerts: alerts.map((a, i) => ({
      status: a.status ?? 'firing',
      labels: a.labels,
      annotations: {},
      startsAt: '2026-12-03T10:00:00Z',
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus:9090/graph',
      fingerprint: `f${i}`,
    })),
  } satisfies AlertmanagerPayload;
}

describe('alertTargets', () => {
  it('maps node, kubernetes_node, Hostname, hostname and instance labels onto known nodes, once each', () => {
    const t = alertTargets(
      payload([
        { labels: { alertname: 'A', Hostname: 'ip-10-0-1-5.ec2.internal' } },
        { labels: { alertname: 'B', hostname: 'gpu-b' } },
        { labels: { alertname: 'C', node: 'gpu-b-host' } },
        { labels: { alertname: 'D', kubernetes_node: 'ip-10-0-1-5.ec2.internal' } },
        { labels: { alertname: 'E', instance: '10.0.1.6:9400' } },
      ]),
      NODES,
    );
    expect(t.nodes).toEqual(['ip-10-0-1-5.ec2.internal', 'gpu-b']);
    expect(t).toMatchObject({ unknown: [], resolved: 0, unlabelled: 0 });
  });

  it('prefers the first label that names a known node; an unknown value alone is reported', () => {
    const t = alertTargets(
      payload([
        // `instance` is the exporter pod's address here (not a node), Hostname names the node.
        { labels: { alertname: 'A', instance: '192.168.7.7:9400', Hostname: 'gpu-b' } },
        { labels: { alertname: 'B', node: 'gone-node' } },
        { labels: { alertname: 'C', instance: 'ip-10-0-1-5.ec2.internal:9400' } },
        { labels: { alertname: 'D', instance: '[fd00::1]:9400' } },
      ]),
      NODES,
    );
    expect(t.nodes).toEqual(['gpu-b', 'ip-10-0-1-5.ec2.internal']);
    expect(t.unknown).toEqual([
      { alertname: 'B', label: 'node', value: 'gone-node' },
      { alertname: 'D', label: 'instance', value: '[fd00::1]:9400' },
    ]);
  });

  it('ignores resolved alerts and counts alerts without a node label', () => {
    const t = alertTargets(
      payload([
        { status: 'resolved', labels: { alertname: 'A', Hostname: 'gpu-b' } },
        { labels: { alertname: 'Cluster', severity: 'critical' } },
      ]),
      NODES,
    );
    expect(t).toEqual({ nodes: [], unknown: [], resolved: 1, unlabelled: 1 });
  });
});

describe('tokenMatches', () => {
  it('accepts only the exact bearer token', () => {
    expect(tokenMatches(`Bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(tokenMatches(`bearer ${TOKEN}`, TOKEN)).toBe(true);
    expect(tokenMatches(undefined, TOKEN)).toBe(false);
    expect(tokenMatches('', TOKEN)).toBe(false);
    expect(tokenMatches(`Basic ${TOKEN}`, TOKEN)).toBe(false);
    expect(tokenMatches(`Bearer ${TOKEN}x`, TOKEN)).toBe(false);
    expect(tokenMatches(`Bearer ${TOKEN.slice(0, -1)}`, TOKEN)).toBe(false);
    expect(tokenMatches('Bearer ', TOKEN)).toBe(false);
  });
});

interface Harness {
  url: string;
  scans: string[][];
  /** Pushes that got as far as mapping their alerts (listNodes is read right before the scan starts). */
  mapped(): number;
  release(): void;
}

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A real HTTP server with the handler; scans are recorded and may be held until released. */
async function harness(opts: { acting?: boolean; hold?: boolean; maxBodyBytes?: number } = {}) {
  const scans: string[][] = [];
  let mapped = 0;
  let release = () => {};
  const gate = opts.hold ? new Promise<void>((r) => (release = r)) : Promise.resolve();
  const handler = createAlertmanagerHandler({
    token: TOKEN,
    listNodes: () => {
      mapped++;
      return NODES;
    },
    acting: () => opts.acting ?? true,
    ...(opts.maxBodyBytes ? { maxBodyBytes: opts.maxBodyBytes } : {}),
    async scan(names) {
      scans.push(names);
      await gate;
      return names.map(
        (n): PushedScan => ({
          node: n,
          severity: 'critical',
          category: 'XID_CRITICAL_79',
          opened: [`i-${n}`],
        }),
      );
    },
  });
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${ALERTMANAGER_PATH}`;
  return { url, scans, mapped: () => mapped, release: () => release() } satisfies Harness;
}

async function post(url: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    body,
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}`, ...headers },
  });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

describe('the Alertmanager handler', () => {
  it('scans the named nodes and reports what the scans found, unknown nodes and ignored alerts', async () => {
    const h = await harness();
    const body = payload([
      { labels: { alertname: 'GpuXid', Hostname: 'gpu-b' } },
      { labels: { alertname: 'GpuXid', Hostname: 'nowhere' } },
      { status: 'resolved', labels: { alertname: 'GpuXid', Hostname: 'ip-10-0-1-5.ec2.internal' } },
    ]);
    const r = await post(h.url, JSON.stringify(body));
    expect(r.status).toBe(200);
    expect(h.scans).toEqual([['gpu-b']]);
    expect(r.json).toEqual({
      scanned: [{ node: 'gpu-b', severity: 'critical', category: 'XID_CRITICAL_79', opened: ['i-gpu-b'] }],
      unknown: [{ alertname: 'GpuXid', label: 'Hostname', value: 'nowhere' }],
      ignored: { resolved: 1, unlabelled: 0 },
    });
  });

  it('refuses a missing or wrong token with 401 and scans nothing', async () => {
    const h = await harness();
    const body = JSON.stringify(payload([{ labels: { Hostname: 'gpu-b' } }]));
    for (const auth of ['', 'Bearer wrong-token-0123456789', `Basic ${TOKEN}`]) {
      const r = await post(h.url, body, { Authorization: auth });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(r.json.error).toMatch(/bearer token/);
    }
    expect(h.scans).toEqual([]);
  });

  it('refuses a body over the limit with 413, declared or streamed', async () => {
    const h = await harness({ maxBodyBytes: 2048 });
    const big = JSON.stringify(payload([{ labels: { Hostname: 'gpu-b', pad: 'x'.repeat(4096) } }]));
    const declared = await post(h.url, big);
    expect(declared.status).toBe(413);
    expect(declared.json.error).toMatch(/larger than 2048 bytes/);
    // Chunked, without Content-Length: counted as it arrives.
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(h.url, {
        method: 'POST',
        headers: { Authorization: `Bearer ${TOKEN}`, 'Transfer-Encoding': 'chunked' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write(big.slice(0, 1500));
      req.end(big.slice(1500));
    });
    expect(status).toBe(413);
    expect(h.scans).toEqual([]);
  });

  it('answers 400 with the reason for a body that is not a version-4 webhook', async () => {
    const h = await harness();
    const cases: [string, RegExp][] = [
      ['{not json', /not JSON/],
      [JSON.stringify({ ...payload([]), version: '3' }), /version: expected "4"/],
      [JSON.stringify({ version: '4', status: 'firing' }), /alerts/],
      [
        JSON.stringify(payload([{ labels: { Hostname: 'gpu-b' } }])).replace(
          '"firing","labels"',
          '"on","labels"',
        ),
        /alerts\.0\.status/,
      ],
      [
        JSON.stringify({ ...payload([]), alerts: [{ status: 'firing', labels: { gpu: 3 } }] }),
        /alerts\.0\.labels\.gpu/,
      ],
    ];
    for (const [body, reason] of cases) {
      const r = await post(h.url, body);
      expect(r.status, body).toBe(400);
      expect([r.json.error, ...((r.json.problems as string[]) ?? [])].join(' ')).toMatch(reason);
    }
    expect(h.scans).toEqual([]);
  });

  it('answers 405 to another method and 503 on a standby replica', async () => {
    const h = await harness({ acting: false });
    const get = await fetch(h.url, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    const r = await post(h.url, JSON.stringify(payload([{ labels: { Hostname: 'gpu-b' } }])));
    expect(r.status).toBe(503);
    expect(r.headers.get('retry-after')).toBe('5');
    expect(h.scans).toEqual([]);
  });

  it('lets concurrent pushes for a node share one scan', async () => {
    const h = await harness({ hold: true });
    const body = JSON.stringify(payload([{ labels: { Hostname: 'gpu-b' } }]));
    const first = post(h.url, body);
    const second = post(h.url, body);
    // Both pushes reached their scan (the first one's is held) before it is released.
    while (h.mapped() < 2) await new Promise((r) => setTimeout(r, 5));
    h.release();
    const [a, b] = await Promise.all([first, second]);
    expect(a.json.scanned).toEqual(b.json.scanned);
    expect(h.scans).toEqual([['gpu-b']]);
  });
});

describe('the ops server', () => {
  it('serves the route only when configured (404 otherwise)', async () => {
    const routes = {
      healthy: () => true,
      ready: () => true,
      metrics: async () => ({ contentType: 'text/plain', body: '' }),
    };
    const off = await startOpsServer(routes, 0);
    servers.push(off);
    const offUrl = `http://127.0.0.1:${(off.address() as AddressInfo).port}${ALERTMANAGER_PATH}`;
    expect((await fetch(offUrl, { method: 'POST', body: '{}' })).status).toBe(404);
    const handler = createAlertmanagerHandler({ token: TOKEN, listNodes: () => NODES, scan: async () => [] });
    const on = await startOpsServer({ ...routes, alertmanager: handler }, 0);
    servers.push(on);
    const onUrl = `http://127.0.0.1:${(on.address() as AddressInfo).port}${ALERTMANAGER_PATH}`;
    expect((await fetch(onUrl, { method: 'POST', body: '{}' })).status).toBe(401);
    const r = await post(onUrl, JSON.stringify(payload([])));
    expect(r).toMatchObject({ status: 200, json: { scanned: [], unknown: [] } });
  });
});
