/**
 * Issue 5, "Done when" (part 2): `gpu-medic run` as a child process in Slack HTTP mode — a signed button
 * click raced against itself and refused to a non-admin, and a Slack outage (429, then 500) in the middle
 * of a remediation. Its own child, so it runs next to run.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { SlackMessage } from '../../src/sim/slack-server.js';
import { waitFor } from '../support/wait.js';
import { adminUser, buttonClick, postSlack, viewerUser } from './helpers.js';
import {
  alertButtons,
  alertsFor,
  bot,
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

describe('gpu-medic run (child process, Slack HTTP mode): clicks and a Slack outage', () => {
  it('a signed Reboot click on a warning alert: admin twice at once → one reboot; a non-admin is refused and audited', async () => {
    const node = nodes[1] ?? '';
    sim.cluster.injectXid(node, 0, 13);
    const root = await waitFor(`the alert about ${node}`, () => alertsFor(node)[0], {
      context: diag,
      timeoutMs: 30_000,
    });
    const incident = incidentsOf(node)[0];
    expect(incident?.severity).toBe('warning');

    const actions = alertButtons(postedAlertBlocks(node));
    expect(actions?.buttons.map((b) => b.action_id)).toEqual([
      'gpu_reset',
      'gpu_replace',
      'gpu_reboot',
      'gpu_cordon',
      'gpu_diagnose',
      'gpu_exclude',
      'gpu_dismiss',
    ]);
    const reboot = actions?.buttons.find((b) => b.action_id === 'gpu_reboot');
    if (!reboot || !actions) throw new Error('no Reboot button');
    const click = (user: string) =>
      postSlack(
        bot.base,
        buttonClick({ actionId: reboot.action_id, value: reboot.value, blockId: actions.blockId }, user, {
          channelId: root.channel,
          ts: root.ts,
          text: root.text ?? '',
        }),
      );
    const rebootsOfNode = () =>
      sim.log.find('RebootInstances').filter((r) => names(r, node, incident?.instance_id ?? null));

    // A non-admin: refused, told so privately, audited, and nothing happens to the node.
    expect((await click(viewerUser)).status).toBe(200);
    const denial = await waitFor('the denial', () => ephemeralsTo(viewerUser).at(-1), {
      context: diag,
      timeoutMs: 30_000,
    });
    expect(denial.text).toMatch(/not allowed|admin|permission/i);
    const denied = await waitFor(
      'the audited denial',
      () => {
        const rows = db
          .prepare("SELECT * FROM audit_log WHERE actor = ? AND result = 'denied'")
          .all(`slack:${viewerUser}`) as Array<{ action: string; node: string }>;
        return rows.length > 0 ? rows : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(denied[0]).toMatchObject({ action: 'click.reboot', node });
    expect(rebootsOfNode()).toHaveLength(0);

    // The admin's click arrives twice at once (a double click, or a retry): one reboot.
    const before = ephemeralsTo(adminUser).length;
    const answers = await Promise.all([click(adminUser), click(adminUser)]);
    expect(answers.map((r) => r.status)).toEqual([200, 200]);
    const settled = await waitSettled(node);
    expect(settled.state).toBe('resolved');
    await waitFor('both answers to the admin', () => ephemeralsTo(adminUser).length >= before + 2, {
      timeoutMs: 30_000,
    });
    const replies = ephemeralsTo(adminUser)
      .slice(before)
      .map((e) => e.text ?? '');
    expect(
      replies.filter((t) => /already/i.test(t)),
      replies.join('\n'),
    ).toHaveLength(1);
    expect(rebootsOfNode()).toHaveLength(1);

    const thread = threadTexts(root);
    expectInOrder(thread, [
      /approved by/,
      /Cordoned/,
      /Drained/,
      /Reboot issued/,
      /Node back/,
      /GPU scan healthy/,
      /Uncordoned/,
      /Resolved/,
    ]);
    expect(thread).toEqual(outboxReplies(settled.id));
    // The root shows who acted, so the buttons are gone.
    const final = slack().messages.get(root.channel, root.ts);
    expect(alertButtons((final?.blocks ?? []) as unknown[])).toBeUndefined();
  }, 90_000);

  it('Slack answering 429 then 500 during a remediation: every message arrives, in order, once', async () => {
    // A node-group node: its group brings a replacement, which the replace story ends with. (A Karpenter node
    // with no pod waiting for a GPU gets none: that story ends "the pool provisions on demand".)
    const node = nodes.slice(4).find((n) => sim.cluster.nodeInfo(n)?.nodeGroup !== undefined) ?? '';
    const s = slack();
    const methods = ['chat.postMessage', 'chat.update'];
    const failures = (status: number) =>
      s.log.requests.filter((r) => r.service === 'slack' && r.status === status);
    const rateLimitedBefore = failures(429).length;
    const brokenBefore = failures(500).length;
    s.faults.set({ status: 429, retryAfterSec: 1, times: 1, methods });
    sim.cluster.injectXid(node, 5, 79);
    await waitFor('a 429 answer', () => failures(429).length >= rateLimitedBefore + 1, {
      context: diag,
      timeoutMs: 30_000,
    });
    s.faults.set({ status: 500, times: 2, methods });
    await waitFor('two 500 answers', () => failures(500).length >= brokenBefore + 2, {
      context: diag,
      timeoutMs: 30_000,
    });

    const incident = await waitSettled(node, 80_000);
    expect(incident.state).toBe('resolved');
    const alerts = alertsFor(node);
    expect(alerts).toHaveLength(1);
    const root = alerts[0] as SlackMessage;
    const thread = threadTexts(root);
    expectInOrder(thread, replaceStory);
    // Exactly what was written to the outbox, in its order, each once (the fake keeps only what it accepted).
    expect(thread).toEqual(outboxReplies(incident.id));
    expect(JSON.stringify(root.blocks)).toContain('Resolved');
  }, 90_000);
});
