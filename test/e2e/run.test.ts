/**
 * Issue 5, "Done when" (part 1): `gpu-medic run` as a child process in Slack HTTP mode against the
 * simulator (Kubernetes, AWS and Slack Web API fakes), driven by correctly signed Slack requests: the
 * automatic remediation story, `/gpu` commands and exclusions, signature checks, the ops routes.
 * One child serves every test of this file; each test works on its own node.
 */
import { describe, expect, it } from 'vitest';
import { isMutatingRequest } from '../../src/sim/index.js';
import type { SlackMessage } from '../../src/sim/slack-server.js';
import { waitFor } from '../support/wait.js';
import { adminUser, postSlack, slackSignature, slashCommand, viewerUser, waitForScans } from './helpers.js';
import {
  alertsFor,
  bot,
  channelId,
  db,
  diag,
  ephemeralsTo,
  expectInOrder,
  incidentsOf,
  names,
  nodes,
  outboxReplies,
  postedAlertBlocks,
  replaceStory,
  setupRunFixture,
  sim,
  slack,
  threadTexts,
  waitSettled,
} from './run-fixture.js';

setupRunFixture();

describe('gpu-medic run (child process, Slack HTTP mode)', () => {
  it('XID 79: one alert, an automatic replace told step by step in its thread, a final root update', async () => {
    const node = nodes[0] ?? '';
    sim.cluster.injectXid(node, 2, 79);
    const incident = await waitSettled(node);

    expect(incident.state).toBe('resolved');
    expect(incident.mode).toBe('auto');
    const alerts = alertsFor(node);
    expect(alerts, diag()).toHaveLength(1);
    const root = alerts[0] as SlackMessage;
    // An automatic action shows what gpu-medic does instead of buttons.
    expect(JSON.stringify(postedAlertBlocks(node))).toContain('Automatic replace');

    const thread = threadTexts(root);
    expectInOrder(thread, replaceStory);
    expect(thread).toEqual(outboxReplies(incident.id));

    // The root now tells how it ended.
    expect(root.updates).toBeGreaterThan(0);
    expect(JSON.stringify(root.blocks)).toContain('Resolved');
    // Exactly one AWS action on the instance: the termination that replaces it.
    const aws = sim
      .mutatingRequests()
      .filter((r) => r.service !== 'k8s' && names(r, node, incident.instance_id))
      .map((r) => r.operation);
    expect(aws).toHaveLength(1);
    expect(aws[0]).toMatch(/Terminate/);

    // Many more scans: still the one alert, and still the one incident.
    await waitForScans(bot.base, 3, diag);
    expect(alertsFor(node)).toHaveLength(1);
    expect(incidentsOf(node)).toHaveLength(1);
  }, 90_000);

  it('/gpu status, exclude, exclusions, unexclude; an excluded node is not remediated', async () => {
    const node = nodes[2] ?? '';
    const command = async (text: string, user: string) => {
      const before = ephemeralsTo(user).length;
      const res = await postSlack(bot.base, slashCommand(text, user, channelId));
      expect(res.status).toBe(200);
      return waitFor(`the answer to /gpu ${text}`, () => ephemeralsTo(user)[before], {
        context: diag,
        timeoutMs: 30_000,
      });
    };

    const status = await command('status', viewerUser);
    expect(status.text).toMatch(/GPU fleet sim-cluster: \d+ GPU nodes/);

    await command(`exclude ${node} 2h maintenance`, adminUser);
    const row = db.prepare('SELECT * FROM exclusions WHERE node = ?').get(node) as
      | { reason: string; created_by: string; created_at: number; expires_at: number }
      | undefined;
    expect(row).toMatchObject({ reason: 'maintenance', created_by: `slack:${adminUser}` });
    expect(Math.abs((row?.expires_at ?? 0) - (row?.created_at ?? 0) - 2 * 3600_000)).toBeLessThan(60_000);

    const list = await command('exclusions', viewerUser);
    expect(list.text).toContain(node);

    const mark = sim.log.requests.length;
    sim.cluster.injectXid(node, 3, 79);
    // Excluded nodes are still scanned and shown: the fault is seen, and nothing is done about it.
    await waitFor(
      `the XID 79 on ${node} in its scanned verdict`,
      () => {
        const row = db.prepare('SELECT verdict FROM node_state WHERE node = ?').get(node) as
          | { verdict: string | null }
          | undefined;
        return row?.verdict?.includes('XID_CRITICAL_79');
      },
      { context: diag, timeoutMs: 30_000 },
    );
    await waitForScans(bot.base, 3, diag);
    const instanceId = sim.cluster.nodeInfo(node)?.instanceId ?? null;
    const touching = sim.log.requests
      .slice(mark)
      .filter((r) => isMutatingRequest(r) && names(r, node, instanceId))
      .map((r) => `${r.method} ${r.path} ${r.operation ?? ''}`);
    expect(touching).toEqual([]);
    expect(sim.cluster.getNode(node)?.spec?.unschedulable ?? false).toBe(false);
    expect(alertsFor(node)).toEqual([]);

    // Leave the node healthy before it is handed back, so no replace starts behind the other tests.
    sim.cluster.clearFaults(node);
    await command(`unexclude ${node}`, adminUser);
    expect(db.prepare('SELECT * FROM exclusions WHERE node = ?').get(node)).toBeUndefined();
  }, 60_000);

  it('serves /healthz, /readyz and /metrics on PORT next to /slack/events', async () => {
    expect((await fetch(`${bot.base}/healthz`)).status).toBe(200);
    expect((await fetch(`${bot.base}/readyz`)).status).toBe(200);
    const metrics = await fetch(`${bot.base}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toMatch(/^gpu_medic_scans_total\{[^}]*\} [1-9]/m);
    expect(text).toContain('gpu_medic_remediations_total');
  });

  it('a forged signature and a stale request get 401 and change nothing', async () => {
    const node = nodes[3] ?? '';
    const count = (table: string) =>
      (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    const before = {
      audit: count('audit_log'),
      exclusions: count('exclusions'),
      slackCalls: slack().calls.length,
      mutating: sim.mutatingRequests().length,
    };
    const body = slashCommand(`exclude ${node} 2h forged`, adminUser, channelId);
    const now = Math.floor(Date.now() / 1000);
    const forged = await postSlack(bot.base, body, {
      ts: now,
      signature: slackSignature(body, now, '0000000000000000000000000000dead'),
    });
    expect(forged.status).toBe(401);
    const stale = await postSlack(bot.base, body, { ts: now - 6 * 60 });
    expect(stale.status).toBe(401);
    const tampered = await postSlack(bot.base, body.replace('forged', 'tampered'), {
      ts: now,
      signature: slackSignature(body, now),
    });
    expect(tampered.status).toBe(401);

    // Give anything that slipped through time to show, then compare.
    await waitForScans(bot.base, 2, diag);
    expect({
      audit: count('audit_log'),
      exclusions: count('exclusions'),
      slackCalls: slack().calls.length,
      mutating: sim.mutatingRequests().length,
    }).toEqual(before);
  }, 60_000);
});
