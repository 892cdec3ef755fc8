/**
 * Issue 5, "Done when": `npm run demo` shows an incident, its remediation thread and `/gpu status` on the
 * console. The demo runs as a child process, exactly as `gpu-medic demo` is started by hand.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SIM_SLACK_BOT_TOKEN, type SimSlack, startSimSlack } from '../../src/sim/slack-server.js';
import { waitFor } from '../support/wait.js';
import { type ChildGpuMedic, spawnGpuMedic } from './helpers.js';

let demo: ChildGpuMedic | undefined;
let slack: SimSlack | undefined;

afterAll(async () => {
  await demo?.stop();
  await slack?.close();
});

const noSlack = [
  'SLACK_BOT_TOKEN',
  'SLACK_APP_TOKEN',
  'SLACK_CHANNEL',
  'SLACK_API_URL',
  'SLACK_SIGNING_SECRET',
];

function inOrder(text: string, patterns: RegExp[]): void {
  let from = 0;
  for (const p of patterns) {
    const m = p.exec(text.slice(from));
    expect(m, `${p} after offset ${from} in:\n${text}`).not.toBeNull();
    from += (m?.index ?? 0) + (m?.[0].length ?? 0);
  }
}

describe('gpu-medic demo (child process)', () => {
  it('shows an alert, its remediation thread and the answer to /gpu status, then exits 0', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
    // Console chat: no Slack, whatever the developer's shell has.
    for (const k of [...noSlack, 'DB_PATH']) delete env[k];
    const child = spawnGpuMedic(['demo', '--nodes', '4', '--interval', '1', '--duration', '25'], env);
    demo = child;

    // Typed once the first alert is on screen, like a person would.
    await waitFor('the first alert', () => child.output().includes('━━ 🔴 critical'), {
      timeoutMs: 30_000,
      context: () => child.tail(),
    });
    child.send('/gpu status');
    const code = await Promise.race([
      child.exited,
      new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 45_000).unref()),
    ]);
    const out = child.output();
    expect(code, out).toBe(0);

    // The XID 79 alert, then its automatic replace told in the thread, in order.
    const node = /XID 79 \(GPU fallen off the bus\) on (\S+) GPU 2/.exec(out)?.[1];
    expect(node, out).toBeDefined();
    const story = out.slice(out.indexOf(`━━ 🔴 critical · ${node}`));
    inOrder(story, [
      /XID \/ Category: XID 79/,
      /↳ .*Cordoned/,
      /↳ .*Drained/,
      /↳ .*Replacement requested/,
      /↳ .*Resolved: \S+ was replaced/,
    ]);
    // The XID 119 on a p5: every GPU reset together, no reboot, and the node healthy again.
    const resetNode = /XID 119 \(GSP RPC timeout\) on (\S+) GPU 3/.exec(out)?.[1];
    expect(resetNode, out).toBeDefined();
    const tag = `↳ \\[${(resetNode ?? '').split('.')[0]}\\] `;
    inOrder(out.slice(out.indexOf(`━━ 🔴 critical · ${resetNode}`)), [
      /XID \/ Category: XID 119/,
      new RegExp(`${tag}✅ Drained`),
      new RegExp(`${tag}🔄 Reset all 8 GPUs and the NVSwitches together .*no reboot`),
      new RegExp(`${tag}🧪 GPU scan healthy: 8/8`),
      new RegExp(`${tag}✅ Uncordoned`),
      new RegExp(`${tag}🎉 Resolved: \\S+ is healthy`),
    ]);
    // The answer to /gpu status (console answers are marked with │).
    expect(out).toMatch(/│ ━━ GPU fleet · sim-cluster ━━/);
    expect(out).toMatch(/│ {3}GPU nodes: \d+/);
    expect(out).toContain('stopping …');
  }, 90_000);

  it('with a bot token and a channel, posts the alert and its thread to Slack instead of the console', async () => {
    slack = await startSimSlack();
    const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn' };
    for (const k of [...noSlack, 'DB_PATH']) delete env[k];
    Object.assign(env, {
      SLACK_BOT_TOKEN: SIM_SLACK_BOT_TOKEN,
      SLACK_API_URL: slack.url,
      SLACK_CHANNEL: '#gpu-demo',
    });
    const child = spawnGpuMedic(['demo', '--nodes', '4', '--interval', '1', '--duration', '12'], env);
    demo = child;
    const code = await Promise.race([
      child.exited,
      new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 40_000).unref()),
    ]);
    const out = child.output();
    expect(code, out).toBe(0);
    expect(out).toContain('chat on Slack #gpu-demo');
    expect(out).not.toContain('━━ 🔴');

    const node = /XID 79 \(GPU fallen off the bus\) on (\S+) GPU 2/.exec(out)?.[1] ?? '(none)';
    const roots = slack.messages.channel('#gpu-demo').filter((m) => m.text?.includes(node));
    expect(roots, out).toHaveLength(1);
    const thread = slack.messages.thread('#gpu-demo', roots[0]?.ts ?? '').map((m) => m.text ?? '');
    inOrder(thread.join('\n'), [/Policy: replace · auto/, /Cordoned/]);
    expect(slack.log.unexpected).toEqual([]);
  }, 60_000);
});
