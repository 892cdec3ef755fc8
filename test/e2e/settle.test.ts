/**
 * Issue 11, "Done when" (end to end): `gpu-medic run` as a child process in Slack HTTP mode against the
 * simulator. After a reboot the simulated node is Ready with a new boot ID long before its device plugin
 * re-registers (60 s on a real node, scaled here to 3 s) and its dcgm-exporter is Ready again:
 *   - an ECC DBE → automatic reboot → gpu-medic uncordons only after the GPUs are allocatable and read, never
 *     before, and the thread tells the wait;
 *   - a node that never comes back is never uncordoned: escalated, cordoned, and the thread says so.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import type { K8sRecordedRequest } from '../../src/sim/k8s-server.js';
import { waitFor } from '../support/wait.js';
import {
  alertChannel,
  type ChildGpuMedic,
  gpuNodeNames,
  openDbReadOnly,
  startRun,
  waitForScans,
} from './helpers.js';

/** A real node: the device plugin is back about a minute after Ready. Here: 3 s (1:20). */
const DEVICE_PLUGIN_MS = 3000;

let sim: Simulator;
let dir: string;
let bot: ChildGpuMedic & { base: string };
let db: Database.Database;
let nodes: string[];

const diag = () => `--- gpu-medic output (tail) ---\n${bot?.tail(80) ?? ''}`;

beforeAll(async () => {
  sim = await startSimulator({
    nodes: 4,
    rebootDelayMs: 1500,
    replaceDelayMs: 2000,
    devicePluginDelayMs: DEVICE_PLUGIN_MS,
    exporterReadyDelayMs: 2000,
    // The DBE is read from the ECC counter: gpu-medic's counters file, not the stock one.
    counters: 'full',
  });
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-e2e-settle-'));
  const dbPath = join(dir, 'gpu-medic.db');
  bot = await startRun(sim, dbPath, {
    MAX_UNHEALTHY_PERCENT: '80',
    REMEDIATION_POLL: '0.25',
    // Long enough for the scaled device plugin; short enough that a node that never comes back ends the test.
    REBOOT_TIMEOUT: '8',
    GPU_SETTLE_TIMEOUT: '30',
  });
  db = openDbReadOnly(dbPath);
  nodes = gpuNodeNames(sim).filter((n) => sim.cluster.nodeInfo(n)?.autoScalingGroup !== undefined);
  await waitForScans(bot.base, 1, diag);
}, 60_000);

afterAll(async () => {
  try {
    db?.close();
    if (bot) expect(await bot.stop(), `gpu-medic run exit code\n${diag()}`).toBe(0);
    sim?.assertNoUnexpected();
  } finally {
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

interface IncidentRow {
  id: string;
  state: string;
  state_reason: string | null;
  planned_action: string;
}

function closedIncident(node: string): IncidentRow | undefined {
  const rows = db
    .prepare('SELECT * FROM incidents WHERE node = ? ORDER BY first_seen, id')
    .all(node) as IncidentRow[];
  return rows.find((r) => ['resolved', 'escalated', 'failed', 'cancelled'].includes(r.state));
}

function uncordonsOf(node: string): number[] {
  return sim.log.requests.flatMap((r, i) =>
    r.service === 'k8s' &&
    r.method === 'PATCH' &&
    (r as K8sRecordedRequest).name === node &&
    /"unschedulable":(null|false)/.test(r.body)
      ? [i]
      : [],
  );
}

/** The thread under the node's alert, once every reply matching `last` has arrived. */
async function threadOf(node: string, last: RegExp): Promise<string[]> {
  const slack = sim.slack;
  if (!slack) throw new Error('no Slack fake');
  return waitFor(
    `the thread of ${node} to reach ${last}`,
    () => {
      const root = slack.messages.channel(alertChannel).find((m) => m.text?.includes(node));
      if (!root) return undefined;
      const lines = slack.messages.thread(alertChannel, root.ts).map((m) => m.text ?? '');
      return lines.some((l) => last.test(l)) ? lines : undefined;
    },
    { timeoutMs: 30_000, context: diag },
  );
}

describe('gpu-medic run: the settle gate end to end', () => {
  it('ECC DBE → reboot → device plugin back 3 s after Ready → uncordoned only after the GPUs are read', async () => {
    const node = nodes[0] ?? '';
    const bootBefore = sim.cluster.getNode(node)?.status.nodeInfo.bootID;
    const marks: { ready?: number; gpus?: number } = {};
    // Anything that ever made the node schedulable while it had no GPUs on its new boot.
    const violations: string[] = [];
    sim.cluster.onChange((e) => {
      if (e.resource !== 'nodes' || e.object.metadata.name !== node) return;
      const n = sim.cluster.getNode(node);
      if (!n || n.status.nodeInfo.bootID === bootBefore) return;
      const ready = n.status.conditions.find((c) => c.type === 'Ready')?.status === 'True';
      if (ready) marks.ready ??= sim.log.requests.length;
      if (n.status.allocatable['nvidia.com/gpu'] === '8') marks.gpus ??= sim.log.requests.length;
      else if (n.spec.unschedulable !== true)
        violations.push(`schedulable with ${n.status.allocatable['nvidia.com/gpu']} GPUs`);
    });

    sim.cluster.injectEcc(node, 5, { dbe: 2 });
    const incident = await waitFor(`the incident on ${node} to close`, () => closedIncident(node), {
      timeoutMs: 60_000,
      context: diag,
    });
    expect(incident.state, incident.state_reason ?? '').toBe('resolved');
    expect(sim.cluster.getNode(node)?.spec?.unschedulable ?? false).toBe(false);
    expect(violations).toEqual([]);

    const uncordons = uncordonsOf(node);
    expect(uncordons).toHaveLength(1);
    const uncordon = uncordons[0] ?? -1;
    expect(marks.ready, 'the node turned Ready on a new boot').toBeDefined();
    expect(marks.gpus, 'the GPUs came back').toBeDefined();
    expect(marks.ready ?? Infinity).toBeLessThan(marks.gpus ?? -1);
    expect(marks.gpus ?? Infinity).toBeLessThan(uncordon);
    // A scrape of the node's exporter answered 200 after the GPUs were back and before the uncordon.
    const exporter = sim.cluster.exporterPod(node)?.metadata.name ?? '';
    const read = sim.log.requests.some(
      (r, i) =>
        i > (marks.gpus ?? Infinity) &&
        i < uncordon &&
        r.service === 'k8s' &&
        (r as K8sRecordedRequest).subresource === 'proxy' &&
        ((r as K8sRecordedRequest).name ?? '').startsWith(exporter) &&
        r.status === 200,
    );
    expect(read, 'a successful scrape between the GPUs coming back and the uncordon').toBe(true);

    const thread = await threadOf(node, /Resolved/);
    const at = (re: RegExp) => thread.findIndex((l) => re.test(l));
    expect(at(/Node back/), thread.join('\n')).toBeGreaterThanOrEqual(0);
    expect(at(/Not back yet .* the device plugin reports 0 of 8 GPUs/)).toBeGreaterThan(at(/Node back/));
    expect(at(/GPU scan healthy: 8\/8 GPUs read/)).toBeGreaterThan(at(/Not back yet/));
    expect(at(/Uncordoned/)).toBeGreaterThan(at(/GPU scan healthy/));
  }, 90_000);

  it('a node that never comes back after the reboot is never uncordoned: escalated, and the thread says so', async () => {
    const node = nodes[1] ?? '';
    sim.cluster.hangReboots(node);
    sim.cluster.injectEcc(node, 1, { dbe: 1 });
    const incident = await waitFor(`the incident on ${node} to close`, () => closedIncident(node), {
      timeoutMs: 60_000,
      context: diag,
    });
    expect(incident.state, incident.state_reason ?? '').toBe('escalated');
    expect(incident.state_reason).toMatch(/did not come back Ready with a new boot ID .*stays cordoned/);
    expect(sim.cluster.getNode(node)?.spec?.unschedulable).toBe(true);
    expect(uncordonsOf(node)).toEqual([]);
    const thread = await threadOf(node, /stays cordoned/);
    expect(thread.join('\n')).toMatch(/Waiting for .* to come back Ready with a new boot ID/);
    // Some more scans: still cordoned, still never uncordoned, nothing terminated it behind a human's back.
    await waitForScans(bot.base, 2, diag);
    expect(uncordonsOf(node)).toEqual([]);
    expect(sim.cluster.getNode(node)?.spec?.unschedulable).toBe(true);
    expect(sim.log.find('TerminateInstanceInAutoScalingGroup')).toHaveLength(0);
  }, 90_000);
});
