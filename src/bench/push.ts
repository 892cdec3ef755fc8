/**
 * Fault → incident through an Alertmanager push: XID 79 is injected, then Alertmanager's webhook is
 * POSTed to the real route (http/alertmanager.ts on the ops server) naming the node, and the time from
 * the POST to the incident is measured. The periodic scan plays no part (the target is ≤ 1 s).
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Incident } from '../domain/incident.js';
import { ALERTMANAGER_PATH, alertmanagerRoute } from '../http/alertmanager.js';
import { startOpsServer } from '../http/ops-server.js';
import { Monitor } from '../monitor/monitor.js';
import type { SimulatorProcess } from '../sim/process.js';

export interface PushTrial {
  node: string;
  gpu: number;
  /** POST sent → the monitor's onIncident; undefined when no incident came. */
  postToIncidentMs?: number;
  /** POST sent → response received (the push answers once its scan is recorded). */
  postToResponseMs: number;
  status: number;
}

const TOKEN = 'bench-alertmanager-token-0123456789';

function payload(node: string, gpu: number): string {
  return JSON.stringify({
    version: '4',
    status: 'firing',
    receiver: 'gpu-medic',
    groupKey: '{}:{alertname="DcgmXidError"}',
    truncatedAlerts: 0,
    groupLabels: { alertname: 'DcgmXidError' },
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    alerts: [
      {
        status: 'firing',
        labels: { alertname: 'DcgmXidError', Hostname: node, gpu: String(gpu), gpu_medic: 'scan' },
        annotations: {},
        startsAt: new Date().toISOString(),
        endsAt: '0001-01-01T00:00:00Z',
        generatorURL: '',
        fingerprint: `${node}-${gpu}`,
      },
    ],
  });
}

/** Runs `trials` pushes, each for a fresh XID 79 on another node (nodes not used by earlier trials). */
export async function pushTrials(
  base: Omit<ConstructorParameters<typeof Monitor>[0], 'onIncident'>,
  sim: SimulatorProcess,
  nodeNames: string[],
  opts: { trials: number; gpus: number; random: () => number; progress: (l: string) => void },
): Promise<PushTrial[]> {
  let waiting: { node: string; resolve: (i: Incident) => void } | undefined;
  const monitor = new Monitor({
    ...base,
    onIncident: (incident) => {
      if (waiting && incident.node === waiting.node && incident.category === 'XID_CRITICAL_79') {
        waiting.resolve(incident);
      }
    },
  });
  // The route scans on the leader only; this monitor never runs its loop, so it is "running" for the route.
  const route = alertmanagerRoute({
    token: TOKEN,
    monitor: { isRunning: true, scanNodes: (names) => monitor.scanNodes(names) },
    listNodes: base.listNodes,
  });
  const server: http.Server = await startOpsServer(
    {
      healthy: () => true,
      ready: () => true,
      metrics: async () => ({ contentType: 'text/plain', body: '' }),
      ...(route ? { alertmanager: route } : {}),
    },
    0,
  );
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${ALERTMANAGER_PATH}`;
  const trials: PushTrial[] = [];
  try {
    const used = new Set<number>();
    while (trials.length < Math.min(opts.trials, nodeNames.length)) {
      const i = Math.floor(opts.random() * nodeNames.length);
      if (used.has(i)) continue;
      used.add(i);
      const node = nodeNames[i] as string;
      const gpu = Math.floor(opts.random() * opts.gpus);
      await sim.inject({ kind: 'xid', node, gpu, xid: 79 });
      let incidentAt: number | undefined;
      const arrived = new Promise<void>((resolve) => {
        waiting = {
          node,
          resolve: () => {
            incidentAt = performance.now();
            resolve();
          },
        };
      });
      const t0 = performance.now();
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
        body: payload(node, gpu),
      });
      await res.arrayBuffer();
      const postToResponseMs = performance.now() - t0;
      // onIncident runs before the push answers (the scan is recorded first), so it has run by now.
      void arrived;
      waiting = undefined;
      const trial: PushTrial = {
        node,
        gpu,
        postToResponseMs,
        status: res.status,
        ...(incidentAt !== undefined ? { postToIncidentMs: incidentAt - t0 } : {}),
      };
      trials.push(trial);
      opts.progress(
        `  push ${trials.length}: XID 79 on ${node} GPU ${gpu} → ${
          trial.postToIncidentMs === undefined
            ? `no incident (HTTP ${res.status})`
            : `incident ${Math.round(trial.postToIncidentMs)} ms after the POST`
        }`,
      );
    }
  } finally {
    await new Promise((resolve) => server.close(resolve));
    await monitor.stop();
  }
  return trials;
}
