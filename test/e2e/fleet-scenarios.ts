/**
 * The fleet end to end, ready to run once a PostgreSQL is available to the tests: two simulated clusters
 * (`alpha`, `beta`), two `gpu-medic run` processes each (leader + standby, Slack HTTP mode), one Slack
 * fake (alpha's simulator's), one database. `fleetEndToEnd(databaseUrl)` registers the suite; a test file
 * calls it with the URL of the test PostgreSQL (test/e2e/fleet.test.ts, once the PostgreSQL store and its
 * test server are merged). Not a test file itself: without a database it cannot run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { waitFor } from '../support/wait.js';
import {
  adminUser,
  alertChannel,
  buttonClick,
  type ChildGpuMedic,
  gpuNodeNames,
  postSlack,
  slashCommand,
  startRun,
  viewerUser,
} from './helpers.js';

type Medic = ChildGpuMedic & { base: string };
interface Cluster {
  name: string;
  sim: Simulator;
  medics: Medic[];
}

const leaseName = `gpu-medic-fleet-${process.pid}`;

export function fleetEndToEnd(databaseUrl: () => string): void {
  const clusters: Cluster[] = [];
  const diag = () =>
    clusters
      .flatMap((c) => c.medics.map((m, i) => `--- ${c.name}#${i} (tail) ---\n${m.tail(40)}`))
      .join('\n');
  const slack = () => {
    const s = clusters[0]?.sim.slack;
    if (!s) throw new Error('no Slack fake');
    return s;
  };
  const holder = (c: Cluster) => c.sim.cluster.getLease('gpu-medic', leaseName)?.spec?.holderIdentity ?? '';
  const role = (c: Cluster, which: 'leader' | 'standby'): Medic => {
    const leads = holder(c).startsWith(`${c.name}-0`);
    const index = (which === 'leader') === leads ? 0 : 1;
    return c.medics[index] as Medic;
  };
  const ephemeralsTo = (user: string) => slack().messages.ephemeral.filter((e) => e.user === user);
  const channelId = () => slack().channelId(alertChannel) ?? '';

  beforeAll(async () => {
    const timings = { nodes: 4, rebootDelayMs: 1500, devicePluginDelayMs: 600, exporterReadyDelayMs: 400 };
    const alpha = await startSimulator(timings);
    // One Slack app for the fleet: beta's processes talk to alpha's Slack fake.
    const beta = await startSimulator({ ...timings, slack: false });
    const slackEnv = {
      SLACK_API_URL: alpha.env.SLACK_API_URL ?? '',
      SLACK_BOT_TOKEN: alpha.env.SLACK_BOT_TOKEN ?? '',
    };
    for (const [name, sim] of [
      ['alpha', alpha],
      ['beta', beta],
    ] as const) {
      const cluster: Cluster = { name, sim, medics: [] };
      clusters.push(cluster);
      for (const i of [0, 1]) {
        cluster.medics.push(
          await startRun(sim, '/nonexistent/unused.db', {
            ...slackEnv,
            DATABASE_URL: databaseUrl(),
            CLUSTER_NAME: name,
            POD_NAME: `${name}-${i}`,
            LEASE_NAME: leaseName,
            LEASE_DURATION: '5',
            LEASE_RENEW: '1',
            FLEET_REQUEST_POLL: '0.2',
            MAX_UNHEALTHY_PERCENT: '80',
          }),
        );
      }
    }
    for (const c of clusters) {
      await waitFor(`${c.name}'s leader`, () => holder(c) !== '', { timeoutMs: 30_000, context: diag });
    }
    // Both leaders have published once both answer `/gpu status` with two clusters.
    await waitFor(
      'both clusters in the fleet',
      async () => {
        await postSlack(
          role(clusters[0] as Cluster, 'standby').base,
          slashCommand('status', viewerUser, channelId()),
        );
        const last = ephemeralsTo(viewerUser).at(-1)?.text ?? '';
        return last.includes('alpha:') && last.includes('beta:');
      },
      { timeoutMs: 60_000, intervalMs: 1000, context: diag },
    );
  }, 180_000);

  afterAll(async () => {
    for (const c of clusters)
      for (const m of c.medics) if (m.child.exitCode === null) await m.stop().catch(() => {});
    for (const c of clusters) await c.sim.close();
  }, 60_000);

  const alertOf = (cluster: string, node: string) =>
    slack()
      .messages.channel(alertChannel)
      .find((m) => m.text?.includes(node) && m.text.includes(`in ${cluster}`));

  const rebootButton = (cluster: string, node: string) => {
    const call = slack().calls.find(
      (c) =>
        c.method === 'chat.postMessage' &&
        c.args.thread_ts === undefined &&
        String(c.args.text).includes(node) &&
        String(c.args.text).includes(`in ${cluster}`),
    );
    const blocks = (call?.args.blocks ?? []) as Array<{
      type: string;
      block_id?: string;
      elements?: { action_id: string; value: string }[];
    }>;
    const actions = blocks.find((b) => b.type === 'actions');
    const button = actions?.elements?.find((e) => e.action_id === 'gpu_reboot');
    if (!button || !actions) throw new Error(`no Reboot button on ${cluster}'s alert about ${node}`);
    return { actionId: button.action_id, value: button.value, blockId: actions.block_id ?? '' };
  };

  describe('one Slack app, two clusters, two replicas each, one PostgreSQL', () => {
    it("executes a click on beta's alert, delivered to alpha's standby, once on beta's leader", async () => {
      const [alpha, beta] = clusters as [Cluster, Cluster];
      const node = gpuNodeNames(beta.sim)[1] ?? '';
      beta.sim.cluster.injectXid(node, 0, 13);
      const root = await waitFor("beta's alert", () => alertOf('beta', node), {
        timeoutMs: 30_000,
        context: diag,
      });
      const click = buttonClick(rebootButton('beta', node), adminUser, {
        channelId: root.channel,
        ts: root.ts,
      });
      expect((await postSlack(role(alpha, 'standby').base, click)).status).toBe(200);
      await waitFor(
        "beta's answer in the thread",
        () => ephemeralsTo(adminUser).find((e) => e.thread_ts === root.ts),
        {
          timeoutMs: 30_000,
          context: diag,
        },
      );
      await waitFor('the reboot', () => beta.sim.log.find('RebootInstances').length === 1, {
        timeoutMs: 60_000,
        context: diag,
      });
      expect(alpha.sim.log.find('RebootInstances')).toHaveLength(0);
      // Beta allows one remediation at a time: the scenarios after this one need it finished.
      await waitFor(
        'the remediation resolved',
        () =>
          slack()
            .messages.thread(alertChannel, root.ts)
            .some((m) => /Resolved/.test(m.text ?? '')),
        {
          timeoutMs: 60_000,
          context: () =>
            `thread:\n${slack()
              .messages.thread(alertChannel, root.ts)
              .map((m) => m.text)
              .join('\n')}\n${diag()}`,
        },
      );
    }, 150_000);

    it('answers a bare node name both clusters have with the choice', async () => {
      const [alpha, beta] = clusters as [Cluster, Cluster];
      const shared = gpuNodeNames(alpha.sim).find((n) => gpuNodeNames(beta.sim).includes(n));
      if (!shared) throw new Error('the two simulators share no node name');
      const before = ephemeralsTo(adminUser).length;
      await postSlack(role(beta, 'standby').base, slashCommand(`cordon ${shared}`, adminUser, channelId()));
      const answer = await waitFor('the choice', () => ephemeralsTo(adminUser)[before], {
        timeoutMs: 20_000,
      });
      expect(answer.text).toContain(`alpha/${shared}`);
      expect(answer.text).toContain(`beta/${shared}`);
    }, 60_000);

    it("finishes a remediation on beta's standby after beta's leader is SIGKILLed once it has cordoned, rebooting once", async () => {
      const [alpha, beta] = clusters as [Cluster, Cluster];
      const node = gpuNodeNames(beta.sim)[2] ?? '';
      const rebootsBefore = beta.sim.log.find('RebootInstances').length;
      beta.sim.cluster.injectXid(node, 0, 13);
      const root = await waitFor("beta's alert", () => alertOf('beta', node), {
        timeoutMs: 30_000,
        context: diag,
      });
      const leader = role(beta, 'leader');
      await postSlack(
        role(alpha, 'leader').base,
        buttonClick(rebootButton('beta', node), adminUser, { channelId: root.channel, ts: root.ts }),
      );
      await waitFor('the cordon', () => beta.sim.cluster.getNode(node)?.spec?.unschedulable === true, {
        timeoutMs: 30_000,
        context: diag,
      });
      leader.child.kill('SIGKILL');
      await waitFor(
        'the remediation resolved by the other replica',
        () =>
          slack()
            .messages.thread(alertChannel, root.ts)
            .some((m) => /Resolved/.test(m.text ?? '')),
        { timeoutMs: 120_000, context: diag },
      );
      expect(beta.sim.log.find('RebootInstances')).toHaveLength(rebootsBefore + 1);
    }, 180_000);
  });
}
