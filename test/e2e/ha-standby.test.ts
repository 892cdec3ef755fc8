/**
 * Issue 13, HA in one cluster, with real `gpu-medic run` children (Slack HTTP mode) over one shared SQLite
 * file: the Lease holder scans, repairs and posts; a click delivered to the standby is acknowledged there,
 * queued, executed once by the leader (one reboot) and answered in the alert's thread; `/gpu status` on the
 * standby answers from what the leader published. The same test over PostgreSQL, with two clusters, is
 * test/e2e/fleet.test.ts's to-do (see the report of the ha-fleet branch).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { waitFor } from '../support/wait.js';
import {
  adminUser,
  alertChannel,
  buttonClick,
  type ChildGpuMedic,
  gpuNodeNames,
  openDbReadOnly,
  postSlack,
  slashCommand,
  startRun,
  viewerUser,
} from './helpers.js';

type Medic = ChildGpuMedic & { base: string };
let sim: Simulator;
let dir: string;
let db: Database.Database;
const medics: Record<string, Medic> = {};
const leaseName = `gpu-medic-ha-${process.pid}`;

const diag = () =>
  Object.entries(medics)
    .map(([name, m]) => `--- ${name} (tail) ---\n${m.tail(60)}`)
    .join('\n');
const holder = () => sim.cluster.getLease('gpu-medic', leaseName)?.spec?.holderIdentity ?? '';
const slack = () => {
  if (!sim.slack) throw new Error('the simulator runs without its Slack fake');
  return sim.slack;
};
const ephemeralsTo = (user: string) => slack().messages.ephemeral.filter((e) => e.user === user);

beforeAll(async () => {
  sim = await startSimulator({
    nodes: 4,
    rebootDelayMs: 1500,
    devicePluginDelayMs: 600,
    exporterReadyDelayMs: 400,
  });
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-e2e-ha-'));
  const dbPath = join(dir, 'gpu-medic.db');
  const env = {
    LEASE_NAME: leaseName,
    LEASE_DURATION: '5',
    LEASE_RENEW: '1',
    FLEET_REQUEST_POLL: '0.2',
    CLUSTER_NAME: 'prod',
    MAX_UNHEALTHY_PERCENT: '80',
  };
  medics.a = await startRun(sim, dbPath, { ...env, POD_NAME: 'medic-a' });
  await waitFor('a leader', () => holder() !== '', { timeoutMs: 30_000, context: diag });
  medics.b = await startRun(sim, dbPath, { ...env, POD_NAME: 'medic-b' });
  db = openDbReadOnly(dbPath);
  await waitFor('the leader to publish its cluster', () => db.prepare('SELECT * FROM fleet_clusters').get(), {
    timeoutMs: 30_000,
    context: diag,
  });
}, 90_000);

afterAll(async () => {
  try {
    db?.close();
    for (const m of Object.values(medics)) expect(await m.stop(), `exit code\n${diag()}`).toBe(0);
    sim?.assertNoUnexpected();
  } finally {
    await sim?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

describe('two replicas over one database', () => {
  it("a click on the standby is queued, executed once by the leader and answered in the alert's thread", async () => {
    const leaderName = holder().startsWith('medic-a') ? 'a' : 'b';
    const standby = medics[leaderName === 'a' ? 'b' : 'a'] as Medic;
    const node = gpuNodeNames(sim)[1] ?? '';
    sim.cluster.injectXid(node, 0, 13);
    const channelId = slack().channelId(alertChannel) ?? '';
    const root = await waitFor(
      `the alert about ${node}`,
      () =>
        slack()
          .messages.channel(alertChannel)
          .find((m) => m.text?.includes(node)),
      { timeoutMs: 30_000, context: diag },
    );
    // One alert: only the leader delivers the outbox.
    expect(
      slack()
        .messages.channel(alertChannel)
        .filter((m) => m.text?.includes(node)),
    ).toHaveLength(1);
    const call = slack().calls.find(
      (c) => c.method === 'chat.postMessage' && String(c.args.text).includes(node),
    );
    const blocks = (call?.args.blocks ?? []) as Array<{
      type: string;
      block_id?: string;
      elements?: { action_id: string; value: string }[];
    }>;
    const actions = blocks.find((b) => b.type === 'actions');
    const reboot = actions?.elements?.find((e) => e.action_id === 'gpu_reboot');
    if (!reboot || !actions) throw new Error('no Reboot button');
    expect(JSON.parse(reboot.value)).toMatchObject({ c: 'prod' });

    const click = buttonClick(
      { actionId: reboot.action_id, value: reboot.value, blockId: actions.block_id ?? '' },
      adminUser,
      {
        channelId,
        ts: root.ts,
        text: root.text ?? '',
      },
    );
    expect((await postSlack(standby.base, click)).status).toBe(200);
    const answer = await waitFor(
      "the leader's answer in the thread",
      () => ephemeralsTo(adminUser).find((e) => e.thread_ts === root.ts),
      { timeoutMs: 30_000, context: diag },
    );
    expect(ephemeralsTo(adminUser)[0]?.text).toContain("Queued for `prod`'s leader");
    expect(answer.text).toMatch(/reboot|approved|started/i);
    const request = db.prepare('SELECT * FROM fleet_requests ORDER BY id DESC LIMIT 1').get() as {
      status: string;
      claimed_by: string;
    };
    expect(request.status).toBe('done');
    expect(request.claimed_by).toBe(holder());
    await waitFor('the reboot', () => sim.log.find('RebootInstances').length === 1, {
      timeoutMs: 30_000,
      context: diag,
    });
    const audit = db
      .prepare('SELECT actor FROM audit_log WHERE node = ? AND actor = ?')
      .all(node, `slack:${adminUser}`);
    expect(audit.length).toBeGreaterThan(0);
  }, 90_000);

  it('answers /gpu status on the standby from what the leader published', async () => {
    const standby = medics[holder().startsWith('medic-a') ? 'b' : 'a'] as Medic;
    const channelId = slack().channelId(alertChannel) ?? '';
    const before = ephemeralsTo(viewerUser).length;
    expect((await postSlack(standby.base, slashCommand('status', viewerUser, channelId))).status).toBe(200);
    const answer = await waitFor('the status', () => ephemeralsTo(viewerUser)[before], {
      timeoutMs: 20_000,
      context: diag,
    });
    expect(answer.text).toContain(`prod: ${gpuNodeNames(sim).length} GPU nodes`);
    // The leader's node names, for `<cluster>/<node>` routing.
    const published = db
      .prepare("SELECT node FROM fleet_nodes WHERE cluster = 'prod' ORDER BY node")
      .all() as {
      node: string;
    }[];
    expect(published.map((r) => r.node)).toEqual([...gpuNodeNames(sim)].sort());
  }, 30_000);
});
