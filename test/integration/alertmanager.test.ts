/**
 * Issue 15, the Alertmanager receiver against the simulated cluster: a push naming a node with an XID 79
 * opens exactly one incident without waiting for the scan interval; a push naming a healthy node opens none
 * (the scan decides, not the alert); a standby answers 503.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSensing, initialPlan, type Sensing } from '../../src/app/sensing.js';
import { type Config, loadConfig } from '../../src/config/config.js';
import { ALERTMANAGER_PATH, alertmanagerRoute } from '../../src/http/alertmanager.js';
import { startOpsServer } from '../../src/http/ops-server.js';
import { silentLogger } from '../../src/log/logger.js';
import { Monitor } from '../../src/monitor/monitor.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { openStore, type Store } from '../../src/store/index.js';

const TOKEN = 'integration-alertmanager-token';

let sim: Simulator;
let dir: string;
let config: Config;
let store: Store;
let sensing: Sensing;
let monitor: Monitor;
let server: http.Server;
let url: string;

beforeAll(async () => {
  sim = await startSimulator({ nodes: 12, slack: false });
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-alertmanager-'));
  config = loadConfig({
    ...sim.env,
    DB_PATH: join(dir, 'gpu-medic.db'),
    CLASSIFIER: 'rules',
    SCAN_TIMEOUT: '5',
    LOG_LEVEL: 'silent',
    ALERTMANAGER_TOKEN: TOKEN,
  });
  store = openStore(config.store.dbPath);
  sensing = createSensing(config, { logger: silentLogger() });
  await sensing.start();
  monitor = new Monitor({
    listNodes: () => sensing.watcher.list(),
    collector: sensing.collector,
    classifier: sensing.classifier,
    store,
    plan: initialPlan(config),
    // An hour: any incident in this test comes from a push, never from the periodic scan.
    intervalMs: 3_600_000,
    concurrency: config.monitor.scanConcurrency,
    nodeTimeoutMs: config.monitor.scanTimeoutSeconds * 1000,
  });
  const alertmanager = alertmanagerRoute({
    token: config.alertmanager.token,
    monitor,
    listNodes: () => sensing.watcher.list(),
  });
  server = await startOpsServer(
    {
      healthy: () => true,
      ready: () => true,
      metrics: async () => ({ contentType: 'text/plain', body: '' }),
      ...(alertmanager ? { alertmanager } : {}),
    },
    0,
  );
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${ALERTMANAGER_PATH}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await monitor?.stop();
  await sensing?.stop();
  store?.close();
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

function gpuNodes(): string[] {
  return sim.cluster
    .listNodes()
    .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
    .map((n) => n.metadata?.name ?? '')
    .sort();
}

/** The body Alertmanager POSTs for one group of firing alerts (webhook format version 4). */
function push(alerts: Record<string, string>[]) {
  return fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({
      version: '4',
      groupKey: '{}/{severity="critical"}:{alertname="DcgmXidCritical"}',
      truncatedAlerts: 0,
      status: 'firing',
      receiver: 'gpu-medic',
      groupLabels: { alertname: 'DcgmXidCritical' },
      commonLabels: { alertname: 'DcgmXidCritical', severity: 'critical' },
      commonAnnotations: {},
      externalURL: 'http://alertmanager.monitoring:9093',
      alerts: alerts.map((labels, i) => ({
        status: 'firing',
        labels: { alertname: 'DcgmXidCritical', severity: 'critical', ...labels },
        annotations: { summary: 'XID on a GPU' },
        startsAt: new Date().toISOString(),
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus.monitoring:9090/graph',
        fingerprint: `fp${i}`,
      })),
    }),
  });
}

async function waitForFirstScan(): Promise<void> {
  while (monitor.scanCount < 1) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe('Alertmanager push → targeted scan', () => {
  it('answers 503 while the monitor is not running (a standby replica)', async () => {
    const res = await push([{ Hostname: gpuNodes()[0]! }]);
    expect(res.status).toBe(503);
    expect(store.incidents.listOpen()).toHaveLength(0);
  });

  it('opens exactly one incident for an injected XID 79 at once; a healthy node gets none', async () => {
    monitor.start();
    await waitForFirstScan();
    expect(store.incidents.listOpen()).toHaveLength(0);

    const [healthy, faulty] = [gpuNodes()[2]!, gpuNodes()[7]!];
    sim.cluster.injectXid(faulty, 4, 79);

    const res = await push([{ Hostname: faulty, gpu: '4', DCGM_FI_DEV_XID_ERRORS: '79' }]);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { scanned: { node: string; category: string; opened: string[] }[] };
    expect(body.scanned).toHaveLength(1);
    expect(body.scanned[0]).toMatchObject({ node: faulty, category: 'XID_CRITICAL_79' });
    expect(body.scanned[0]!.opened).toHaveLength(1);
    const open = store.incidents.listOpen();
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ id: body.scanned[0]!.opened[0], node: faulty, xid: 79, gpu: 4 });
    // The periodic scan did not run again: the push's own scan found it.
    expect(monitor.scanCount).toBe(1);

    // Alertmanager repeats the notification: the same fault is touched, not opened again.
    const again = (await (await push([{ hostname: faulty }])).json()) as { scanned: { opened: string[] }[] };
    expect(again.scanned[0]!.opened).toEqual([]);
    expect(store.incidents.listOpen()).toHaveLength(1);

    // An alert about a healthy node: the scan finds nothing, so nothing opens. Unknown nodes are reported.
    const quiet = await push([{ node: healthy }, { Hostname: 'ip-10-99-99-99.ec2.internal' }]);
    expect(quiet.status).toBe(200);
    const q = (await quiet.json()) as {
      scanned: { node: string; severity: string; opened: string[] }[];
      unknown: { value: string }[];
    };
    expect(q.scanned).toEqual([expect.objectContaining({ node: healthy, severity: 'healthy', opened: [] })]);
    expect(q.unknown).toEqual([expect.objectContaining({ value: 'ip-10-99-99-99.ec2.internal' })]);
    expect(store.incidents.listOpen()).toHaveLength(1);
    expect(monitor.scanCount).toBe(1);
  });
});
