/**
 * Fleet routing through the real Slack app (HTTP mode, signed requests, the Slack simulator) and the
 * SQLite fleet repositories: three "processes" — cluster prod's standby and leader, cluster staging's
 * leader — each its own Slack receiver and store connection over one database file. The chat port behind
 * each is the recording one (the services are covered elsewhere): what is checked here is who executes.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fleetContextOf, requestWorker } from '../../src/app/fleet.js';
import { loadConfig } from '../../src/config/config.js';
import { silentLogger } from '../../src/log/logger.js';
import { SIM_SLACK_BOT_TOKEN, type SimSlack, startSimSlack } from '../../src/sim/slack-server.js';
import { createSlackApp, type SlackApp } from '../../src/slack/app.js';
import { createAuthorizer } from '../../src/slack/authz.js';
import { encodeButtonValue } from '../../src/slack/blocks/alert.js';
import { openStore, type Store } from '../../src/store/index.js';
import { RecordingChatPort, RecordingSink } from '../support/recording-chat-port.js';
import { suiteSandbox } from '../support/sim-runtime.js';
import { buttonClick, postSlackEvent, SLACK_TEST_SECRET, slashCommand } from '../support/slack-requests.js';
import { waitFor } from '../support/wait.js';

const secret = SLACK_TEST_SECRET;
const admin = 'UADMIN0001';
const viewer = 'UVIEWER001';
const channel = 'C0GPUOPS01';
const node = 'ip-10-0-1-2.ec2.internal';
const alertTs = '1700000000.000100';
const sandbox = suiteSandbox('gpu-medic-fleet-');

interface Proc {
  name: string;
  cluster: string;
  acting: boolean;
  store: Store;
  chat: RecordingChatPort;
  slack: SlackApp;
  base: string;
  worker: ReturnType<typeof requestWorker>;
}

let sim: SimSlack;
let procs: Proc[] = [];
const clock = 1_700_000_000_000;

async function startProc(db: string, name: string, cluster: string, acting: boolean): Promise<Proc> {
  const config = loadConfig({ CLUSTER_NAME: cluster, DB_PATH: db, LEASE_DURATION: '15' });
  const store = openStore(db, { now: () => clock });
  const chat = new RecordingChatPort();
  // One clock for the chat layer and the fleet tables (how long ago a leader reported is read across both).
  chat.clock = clock;
  const fleet = fleetContextOf({ config, store, clock: { now: () => clock }, isActing: () => acting });
  const slack = createSlackApp({
    botToken: SIM_SLACK_BOT_TOKEN,
    signingSecret: secret,
    slackApiUrl: sim.url,
    port: 0,
    host: '127.0.0.1',
    chat,
    sink: new RecordingSink(),
    authz: createAuthorizer({ adminUsers: [admin] }),
    botId: 'B0BOT00001',
    botUserId: 'U0BOT00001',
    cluster,
    fleet,
  });
  const { port } = await slack.start();
  const worker = requestWorker({
    config,
    store,
    clock: { now: () => clock },
    identity: `${name}-id`,
    execute: (request) => slack.execute(request),
    logger: silentLogger(),
  });
  const proc = { name, cluster, acting, store, chat, slack, base: `http://127.0.0.1:${port}`, worker };
  procs.push(proc);
  return proc;
}

const signedPost = (p: Proc, body: string, contentType?: string) =>
  postSlackEvent(p.base, body, contentType ? { contentType } : {});

const command = (text: string, user: string) => slashCommand(text, user, channel);

const click = (actionId: string, value: string, user: string) =>
  buttonClick({ actionId, value }, user, { channelId: channel, ts: alertTs });

const ephemeralsFor = (user: string) => sim.messages.ephemeral.filter((e) => e.user === user);

const summary = (critical: number) => ({
  gpuNodes: 4,
  healthy: 4 - critical,
  warning: 0,
  critical,
  unknown: 0,
  inRemediation: 0,
  excluded: 0,
  breaker: 'closed' as const,
  dryRun: false,
  openIncidents:
    critical > 0 ? [{ id: 'inc-0001', node, severity: 'critical', state: 'awaiting_approval' }] : [],
});

let prodStandby: Proc;
let prodLeader: Proc;
let stagingLeader: Proc;

beforeEach(async () => {
  sim = await startSimSlack();
  procs = [];
  const db = sandbox.dbPath('fleet');
  prodStandby = await startProc(db, 'prod-b', 'prod', false);
  prodLeader = await startProc(db, 'prod-a', 'prod', true);
  stagingLeader = await startProc(db, 'staging-a', 'staging', true);
  // What each leader publishes every scan period.
  prodLeader.store.fleet.publish('prod', 'prod-a-id', summary(1), clock);
  prodLeader.store.fleet.replaceNodes('prod', [node, 'ip-10-0-1-3.ec2.internal']);
  stagingLeader.store.fleet.publish('staging', 'staging-a-id', summary(0), clock);
  stagingLeader.store.fleet.replaceNodes('staging', ['ip-10-9-9-9.ec2.internal']);
});

afterEach(async () => {
  for (const p of procs) {
    await p.slack.stop();
    p.store.close();
  }
  await sim.close();
});

describe('fleet routing', () => {
  it("queues a standby's click, which the leader executes once and answers in the alert's thread", async () => {
    const res = await signedPost(
      prodStandby,
      click('gpu_reboot', encodeButtonValue('inc-0001', node, 'prod'), admin),
    );
    expect(res.status).toBe(200);
    await waitFor('the acknowledgement', () => ephemeralsFor(admin).length === 1);
    expect(ephemeralsFor(admin)[0]?.text).toContain("Queued for `prod`'s leader");
    expect(prodStandby.chat.callsOf('approve')).toHaveLength(0);
    // Another cluster's leader finds nothing for it; prod's leader executes it, once.
    expect(await stagingLeader.worker.drain()).toBe(0);
    expect(await prodLeader.worker.drain()).toBe(1);
    expect(await prodLeader.worker.drain()).toBe(0);
    expect(prodLeader.chat.callsOf('approve').map((c) => c.args)).toEqual([
      ['inc-0001', `slack:${admin}`, 'reboot'],
    ]);
    const answers = ephemeralsFor(admin);
    expect(answers).toHaveLength(2);
    expect(answers[1]).toMatchObject({
      channel,
      thread_ts: alertTs,
      text: expect.stringContaining('approved'),
    });
    const [row] = prodLeader.store.requests.listRecent(5);
    expect(row).toMatchObject({ cluster: 'prod', kind: 'action', status: 'done', claimedBy: 'prod-a-id' });
    expect(row?.result).toMatchObject({ answered: 'thread' });
    sim.log.assertNoUnexpected();
  });

  it('records a queued request executed while Slack refuses its answer as executed but undelivered', async () => {
    await signedPost(prodStandby, click('gpu_reboot', encodeButtonValue('inc-0001', node, 'prod'), admin));
    await waitFor('the acknowledgement', () => ephemeralsFor(admin).length === 1);
    sim.faults.set({ error: 'channel_not_found', methods: ['chat.postEphemeral'] });
    try {
      expect(await prodLeader.worker.drain()).toBe(1);
    } finally {
      sim.faults.clear();
    }
    // The approval happened once; the row says nobody was told here (the alert's thread still shows it).
    expect(prodLeader.chat.callsOf('approve')).toHaveLength(1);
    expect(ephemeralsFor(admin)).toHaveLength(1);
    const [row] = prodLeader.store.requests.listRecent(5);
    expect(row).toMatchObject({ status: 'done', result: { answered: 'undelivered' } });
  });

  it("re-checks authorization on the leader: a viewer's queued click is denied there and audited", async () => {
    await signedPost(prodStandby, click('gpu_reboot', encodeButtonValue('inc-0001', node, 'prod'), viewer));
    await waitFor('the acknowledgement', () => ephemeralsFor(viewer).length === 1);
    await prodLeader.worker.drain();
    expect(ephemeralsFor(viewer)[1]?.text).toContain('not allowed');
    expect(prodLeader.chat.callsOf('approve')).toHaveLength(0);
    expect(prodLeader.chat.audits).toEqual([
      expect.objectContaining({ actor: `slack:${viewer}`, action: 'click.reboot', result: 'denied' }),
    ]);
  });

  it("queues a click on cluster B's alert received by cluster A's leader for B's leader", async () => {
    await signedPost(prodLeader, click('gpu_dismiss', encodeButtonValue('inc-0001', node, 'staging'), admin));
    await waitFor('the acknowledgement', () => ephemeralsFor(admin).length === 1);
    expect(ephemeralsFor(admin)[0]?.text).toContain("Queued for `staging`'s leader");
    expect(await prodLeader.worker.drain()).toBe(0);
    expect(prodLeader.chat.callsOf('dismiss')).toHaveLength(0);
    expect(await stagingLeader.worker.drain()).toBe(1);
    expect(stagingLeader.chat.callsOf('dismiss')).toHaveLength(1);
  });

  it('executes an old button value without a cluster as this cluster, here when leading', async () => {
    await signedPost(prodLeader, click('gpu_reboot', encodeButtonValue('inc-0001', node), admin));
    await waitFor('the answer', () => ephemeralsFor(admin).length === 1);
    expect(prodLeader.chat.callsOf('approve')).toHaveLength(1);
    expect(prodLeader.store.requests.listRecent(5)).toEqual([]);
  });

  it('routes `/gpu reboot <cluster>/<node>` to that cluster, whose confirmation carries the cluster', async () => {
    await signedPost(prodLeader, command('reboot staging/ip-10-9-9-9.ec2.internal', admin));
    await waitFor('the acknowledgement', () => ephemeralsFor(admin).length === 1);
    expect(await stagingLeader.worker.drain()).toBe(1);
    const confirm = ephemeralsFor(admin)[1];
    expect(confirm?.text).toContain('Reboot ip-10-9-9-9.ec2.internal in staging?');
    const value = JSON.stringify(confirm?.blocks).match(/\\"c\\":\\"(\w+)\\"/)?.[1];
    expect(value).toBe('staging');
  });

  it('offers a choice for a bare node name two clusters have, and queues nothing', async () => {
    stagingLeader.store.fleet.replaceNodes('staging', [node]);
    await signedPost(prodStandby, command(`reboot ${node}`, admin));
    await waitFor('the choice', () => ephemeralsFor(admin).length === 1);
    const text = ephemeralsFor(admin)[0]?.text ?? '';
    expect(text).toContain(`/gpu reboot prod/${node}`);
    expect(text).toContain(`/gpu reboot staging/${node}`);
    expect(prodLeader.store.requests.listRecent(5)).toEqual([]);
  });

  it('asks which cluster to pause or resume where several share the app; with cluster:<name>, that one pauses', async () => {
    await signedPost(prodStandby, command('pause upgrading drivers', admin));
    await waitFor('the question', () => ephemeralsFor(admin).length === 1);
    const text = ephemeralsFor(admin)[0]?.text ?? '';
    expect(text).toContain('/gpu pause cluster:prod upgrading drivers');
    expect(text).toContain('/gpu pause cluster:staging upgrading drivers');
    expect(prodLeader.store.requests.listRecent(5)).toEqual([]);

    await signedPost(prodStandby, command('pause cluster:staging upgrading drivers', admin));
    await waitFor('the acknowledgement', () => ephemeralsFor(admin).length === 2);
    expect(ephemeralsFor(admin)[1]?.text).toContain("Queued for `staging`'s leader");
    expect(await prodLeader.worker.drain()).toBe(0);
    expect(await stagingLeader.worker.drain()).toBe(1);
    expect(prodLeader.chat.callsOf('pause')).toHaveLength(0);
    expect(stagingLeader.chat.callsOf('pause').map((c) => c.args)).toEqual([
      [`slack:${admin}`, 'upgrading drivers'],
    ]);
    // Its own cluster, at its leader: done there, nothing queued.
    await signedPost(prodLeader, command('resume cluster:prod', admin));
    await waitFor('the answer', () => ephemeralsFor(admin).length === 4);
    expect(prodLeader.chat.callsOf('resume')).toHaveLength(1);
  });

  it("lists another cluster's exclusions through its leader; its own from its store, even on a standby", async () => {
    await signedPost(prodStandby, command('exclusions', admin));
    await waitFor('the question', () => ephemeralsFor(admin).length === 1);
    expect(ephemeralsFor(admin)[0]?.text).toContain('/gpu exclusions cluster:staging');
    expect(prodStandby.chat.callsOf('exclusions')).toHaveLength(0);

    await signedPost(prodStandby, command('exclusions cluster:staging', admin));
    await waitFor('the acknowledgement', () => ephemeralsFor(admin).length === 2);
    expect(await stagingLeader.worker.drain()).toBe(1);
    expect(stagingLeader.chat.callsOf('exclusions')).toHaveLength(1);

    await signedPost(prodStandby, command('exclusions cluster:prod', admin));
    await waitFor('the answer', () => ephemeralsFor(admin).length === 4);
    expect(prodStandby.chat.callsOf('exclusions')).toHaveLength(1);
    expect(prodLeader.store.requests.listRecent(5).map((r) => r.cluster)).toEqual(['staging']);
  });

  it('does not queue for a cluster whose leader is silent, and forgets one silent for a day', async () => {
    const hour = 60 * 60_000;
    prodLeader.store.fleet.publish('quiet', 'quiet-a-id', summary(0), clock - hour);
    prodLeader.store.fleet.publish('retired', 'retired-a-id', summary(0), clock - 25 * hour);
    prodLeader.store.fleet.replaceNodes('retired', ['ip-10-0-1-3.ec2.internal']);

    await signedPost(prodStandby, command('cordon quiet/ip-10-7-7-7.ec2.internal', admin));
    await waitFor('the refusal', () => ephemeralsFor(admin).length === 1);
    expect(ephemeralsFor(admin)[0]?.text).toContain('No gpu-medic leader of `quiet` has reported for 60 min');
    expect(prodLeader.store.requests.listRecent(5)).toEqual([]);

    // The retired cluster is not a choice: a node name only it (and prod) had goes to prod.
    await signedPost(prodStandby, command('pause', admin));
    await waitFor('the choice', () => ephemeralsFor(admin).length === 2);
    const choice = ephemeralsFor(admin)[1]?.text ?? '';
    expect(choice).toContain('cluster:quiet');
    expect(choice).not.toContain('retired');
    await signedPost(prodStandby, command('reboot ip-10-0-1-3.ec2.internal', admin));
    await waitFor('the acknowledgement', () => ephemeralsFor(admin).length === 3);
    expect(ephemeralsFor(admin)[2]?.text).toContain("Queued for `prod`'s leader");
    await signedPost(prodStandby, command('cordon retired/ip-10-0-1-3.ec2.internal', admin));
    await waitFor('the refusal', () => ephemeralsFor(admin).length === 4);
    expect(ephemeralsFor(admin)[3]?.text).toContain('No cluster named `retired`');
  });

  it("answers a standby's `/gpu status <its cluster>` through its leader before the leader's first report", async () => {
    const fresh = await startProc(sandbox.dbPath('fleet-fresh'), 'solo-b', 'solo', false);
    await signedPost(fresh, command('status solo', admin));
    await waitFor('the acknowledgement', () => ephemeralsFor(admin).length === 1);
    expect(ephemeralsFor(admin)[0]?.text).toContain("Queued for `solo`'s leader");
  });

  it('refuses a cluster the fleet does not know', async () => {
    await signedPost(prodStandby, command(`cordon qa/${node}`, admin));
    await waitFor('the refusal', () => ephemeralsFor(admin).length === 1);
    expect(ephemeralsFor(admin)[0]?.text).toContain('No cluster named `qa`');
    expect(prodLeader.store.requests.listRecent(5)).toEqual([]);
  });

  it('answers `/gpu status` with every cluster from any process, and `/gpu status <cluster>` with one', async () => {
    await signedPost(prodStandby, command('status', viewer));
    await waitFor('the fleet', () => ephemeralsFor(viewer).length === 1);
    const fleet = ephemeralsFor(viewer)[0]?.text ?? '';
    expect(fleet).toContain('prod: 4 GPU nodes');
    expect(fleet).toContain('staging: 4 GPU nodes');
    await signedPost(prodLeader, command('status staging', viewer));
    await waitFor('one cluster', () => ephemeralsFor(viewer).length === 2);
    expect(ephemeralsFor(viewer)[1]?.text).toContain('staging: 4 GPU nodes');
    expect(ephemeralsFor(viewer)[1]?.text).not.toContain('prod');
    expect(prodStandby.chat.callsOf('fleetSummary')).toHaveLength(0);
  });

  it('shows every cluster in App Home; the leader adds its own detail', async () => {
    const homeOpened = (user: string) =>
      JSON.stringify({
        team_id: 'T0SIM00001',
        api_app_id: 'A0APP00001',
        type: 'event_callback',
        event_id: `Ev${user}`,
        event_time: 1_700_000_000,
        event: { type: 'app_home_opened', user, channel: 'D0DM000001', tab: 'home', event_ts: '1.2' },
      });
    await signedPost(prodStandby, homeOpened(viewer), 'application/json');
    await waitFor('the standby home', () => sim.views.published.has(viewer));
    const standbyHome = JSON.stringify(sim.views.published.get(viewer));
    expect(standbyHome).toContain('GPU fleet · 2 clusters');
    expect(standbyHome).not.toContain('Open incidents (');
    expect(prodStandby.chat.callsOf('fleetSummary')).toHaveLength(0);
    await signedPost(prodLeader, homeOpened(admin), 'application/json');
    await waitFor('the leader home', () => sim.views.published.has(admin));
    const leaderHome = JSON.stringify(sim.views.published.get(admin));
    expect(leaderHome).toContain('GPU fleet · 2 clusters');
    expect(leaderHome).toContain('Open incidents (1)');
  });

  it('fails a queued request whose payload does not validate, with the reason, and goes on', async () => {
    const bad = prodStandby.store.requests.enqueue(
      { cluster: 'prod', kind: 'action', payload: { kind: 'action', userId: admin }, requestedBy: admin },
      clock,
    );
    await signedPost(prodStandby, command(`exclude ${node} 2h`, admin));
    await waitFor('the acknowledgement', () => ephemeralsFor(admin).length === 1);
    expect(await prodLeader.worker.drain()).toBe(2);
    expect(prodLeader.store.requests.get(bad)).toMatchObject({
      status: 'failed',
      error: expect.stringContaining('invalid request payload'),
    });
    expect(prodLeader.chat.callsOf('exclude')).toHaveLength(1);
  });
});
