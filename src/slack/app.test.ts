import type { AddressInfo } from 'node:net';
import { webApi } from '@slack/bolt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RecordingChatPort, RecordingSink } from '../../test/support/recording-chat-port.js';
import {
  buttonClick,
  postSlackEvent,
  SLACK_TEST_SECRET,
  signSlackRequest,
  slashCommand,
} from '../../test/support/slack-requests.js';
import { waitFor } from '../../test/support/wait.js';
import { ALERTMANAGER_PATH, createAlertmanagerHandler } from '../http/alertmanager.js';
import { opsHandler, startOpsServer } from '../http/ops-server.js';
import { SIM_SLACK_BOT_TOKEN, type SimSlack, startSimSlack } from '../sim/slack-server.js';
import { createSlackApp, type SlackApp } from './app.js';
import { createAuthorizer, type UsergroupsClient } from './authz.js';
import { encodeButtonValue } from './blocks/alert.js';

const secret = SLACK_TEST_SECRET;
const AM_TOKEN = 'slack-mode-alertmanager-token';
const admin = 'UADMIN0001';
const groupAdmin = 'UGROUP0001';
const viewer = 'UVIEWER001';
const channel = 'C0GPUOPS01';
const node = 'ip-10-0-1-2.ec2.internal';

let sim: SimSlack;
let chat: RecordingChatPort;
let sink: RecordingSink;
let slack: SlackApp;
let base: string;
let readyFlag = true;
let metricsFail = false;

const post = (body: string, opts: { contentType?: string; ts?: number; signature?: string } = {}) =>
  postSlackEvent(base, body, opts);

const command = (text: string, user: string) => slashCommand(text, user, channel);

const click = (actionId: string, value: string, user: string) =>
  buttonClick({ actionId, value }, user, { channelId: channel, ts: '1700000000.000100' });

function ephemeralsFor(user: string) {
  return sim.messages.ephemeral.filter((e) => e.user === user);
}

beforeEach(async () => {
  sim = await startSimSlack({ usergroups: { S0ADMINS01: [groupAdmin] } });
  chat = new RecordingChatPort();
  sink = new RecordingSink();
  readyFlag = true;
  metricsFail = false;
  const groupClient = new webApi.WebClient(SIM_SLACK_BOT_TOKEN, {
    slackApiUrl: sim.url,
    retryConfig: { retries: 0 },
  }) as unknown as UsergroupsClient;
  slack = createSlackApp({
    botToken: SIM_SLACK_BOT_TOKEN,
    signingSecret: secret,
    slackApiUrl: sim.url,
    port: 0,
    host: '127.0.0.1',
    chat,
    sink,
    authz: createAuthorizer({ adminUsers: [admin], adminGroup: 'S0ADMINS01', client: groupClient }),
    ops: opsHandler({
      healthy: () => true,
      ready: () => readyFlag,
      metrics: async () => {
        if (metricsFail) throw new Error('registry broken');
        return { contentType: 'text/plain; version=0.0.4', body: 'gpu_medic_scans_total 3\n' };
      },
      alertmanager: createAlertmanagerHandler({
        token: AM_TOKEN,
        listNodes: () => [],
        scan: async () => [],
      }),
    }),
    botId: 'B0BOT00001',
    botUserId: 'U0BOT00001',
  });
  const { port } = await slack.start();
  base = `http://127.0.0.1:${port}`;
});

afterEach(async () => {
  await slack.stop();
  await sim.close();
});

describe('Slack app over HTTP with signed requests', () => {
  it('answers /gpu status ephemerally', async () => {
    const res = await post(command('status', viewer));
    expect(res.status).toBe(200);
    await waitFor('ephemeral answer', () => ephemeralsFor(viewer).length === 1);
    expect(ephemeralsFor(viewer)[0]).toMatchObject({ channel, text: expect.stringContaining('GPU fleet') });
    expect(chat.callsOf('fleetSummary')).toHaveLength(1);
    sim.log.assertNoUnexpected();
  });

  it('runs /gpu exclude for an admin with the parsed duration and reason', async () => {
    await post(command(`exclude ${node} 2h maintenance`, admin));
    await waitFor('ephemeral answer', () => ephemeralsFor(admin).length === 1);
    expect(chat.callsOf('exclude')[0]?.args).toEqual([
      node,
      { until: chat.clock + 2 * 3_600_000, reason: 'maintenance' },
      `slack:${admin}`,
    ]);
    expect(ephemeralsFor(admin)[0]?.text).toContain('excluded');
  });

  it('accepts a member of the admin user group', async () => {
    await post(command(`unexclude ${node}`, groupAdmin));
    await waitFor('ephemeral answer', () => ephemeralsFor(groupAdmin).length === 1);
    expect(chat.callsOf('unexclude')).toHaveLength(1);
  });

  it('denies /gpu exclude to a non-admin, ephemerally and audited', async () => {
    await post(command(`exclude ${node} 2h maintenance`, viewer));
    await waitFor('ephemeral denial', () => ephemeralsFor(viewer).length === 1);
    expect(ephemeralsFor(viewer)[0]?.text).toContain('not allowed');
    expect(chat.callsOf('exclude')).toHaveLength(0);
    expect(chat.audits).toEqual([
      expect.objectContaining({
        actor: `slack:${viewer}`,
        action: 'command.exclude',
        result: 'denied',
        node,
      }),
    ]);
    // Nothing was posted to the channel for everyone.
    expect(sim.messages.all()).toHaveLength(0);
  });

  it.each([
    [
      'a forged signature',
      { signature: signSlackRequest(command('pause', admin), Math.floor(Date.now() / 1000), 'wrong') },
    ],
    ['a request older than 5 minutes', { ts: Math.floor(Date.now() / 1000) - 6 * 60 }],
  ])('refuses %s with 401 and calls nothing', async (_name, opts) => {
    const body = command('pause', admin);
    const ts = 'ts' in opts ? opts.ts : Math.floor(Date.now() / 1000);
    const res = await post(body, {
      ts,
      signature: 'signature' in opts ? opts.signature : signSlackRequest(body, ts),
    });
    expect(res.status).toBe(401);
    expect(chat.calls).toHaveLength(0);
    expect(sim.calls).toHaveLength(0);
  });

  it('starts exactly one remediation when a button is clicked twice at once', async () => {
    const value = encodeButtonValue('inc-0001', node);
    const [a, b] = await Promise.all([
      post(click('gpu_reboot', value, admin)),
      post(click('gpu_reboot', value, admin)),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    await waitFor('two ephemeral answers', () => ephemeralsFor(admin).length === 2);
    expect(chat.callsOf('approve')).toHaveLength(2);
    expect(chat.callsOf('approve')[0]?.args).toEqual(['inc-0001', `slack:${admin}`, 'reboot']);
    const texts = ephemeralsFor(admin)
      .map((e) => e.text ?? '')
      .sort();
    expect(texts.filter((t) => t.startsWith('✅'))).toHaveLength(1);
    expect(texts.filter((t) => t.includes(`Already being handled by <@${admin}>`))).toHaveLength(1);
    // Only the winner replaces the buttons on the alert.
    expect(sink.updates).toHaveLength(1);
    expect(sink.updates[0]?.view.actedBy).toEqual({ action: 'reboot', userId: admin });
  });

  it("acts on a node from an alert only when the alert's incident is this cluster's, on that node", async () => {
    // An alert from another cluster (or from before the fleet, its button carrying no cluster) names a node
    // that may have a namesake here: Exclude and Run diagnostics refuse it.
    for (const value of [
      encodeButtonValue('inc-0999', node),
      encodeButtonValue('inc-0001', 'ip-10-0-1-3.ec2.internal'),
    ]) {
      await post(click('gpu_exclude', value, admin));
      await post(click('gpu_diagnose', value, admin));
    }
    await waitFor('four refusals', () => ephemeralsFor(admin).length === 4);
    for (const e of ephemeralsFor(admin)) expect(e.text).toContain('is not one of this cluster');
    expect(chat.callsOf('exclude')).toHaveLength(0);
    expect(chat.callsOf('runDiagnostics')).toHaveLength(0);
    await post(click('gpu_exclude', encodeButtonValue('inc-0001', node), admin));
    await waitFor('the exclusion', () => chat.callsOf('exclude').length === 1);
    expect(chat.callsOf('exclude')[0]?.args[0]).toBe(node);
  });

  it('refuses an alert click by a non-admin and audits it', async () => {
    await post(click('gpu_replace', encodeButtonValue('inc-0001', node), viewer));
    await waitFor('ephemeral denial', () => ephemeralsFor(viewer).length === 1);
    expect(ephemeralsFor(viewer)[0]?.text).toContain('not allowed');
    expect(chat.callsOf('approve')).toHaveLength(0);
    expect(chat.audits[0]).toMatchObject({
      action: 'click.replace',
      incidentId: 'inc-0001',
      result: 'denied',
    });
    expect(sink.updates).toHaveLength(0);
  });

  it('publishes the App Home on app_home_opened', async () => {
    const body = JSON.stringify({
      token: 'legacy',
      team_id: 'T0SIM00001',
      api_app_id: 'A0APP00001',
      type: 'event_callback',
      event_id: 'Ev0001',
      event_time: 1_700_000_000,
      event: { type: 'app_home_opened', user: viewer, channel: 'D0DM000001', tab: 'home', event_ts: '1.2' },
    });
    const res = await post(body, { contentType: 'application/json' });
    expect(res.status).toBe(200);
    await waitFor('views.publish', () => sim.views.published.has(viewer));
    expect(JSON.stringify(sim.views.published.get(viewer))).toContain('Open incidents (1)');
  });

  it('serves /healthz and /readyz from the injected readiness', async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    readyFlag = false;
    expect((await fetch(`${base}/readyz`)).status).toBe(503);
  });
});

describe('ops routes on the HTTP receiver (the one server on PORT in HTTP mode)', () => {
  it('serves /metrics from the injected renderer, and 500 when it fails', async () => {
    const ok = await fetch(`${base}/metrics`);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toContain('text/plain');
    expect(await ok.text()).toBe('gpu_medic_scans_total 3\n');
    metricsFail = true;
    expect((await fetch(`${base}/metrics`)).status).toBe(500);
  });

  it('answers /healthz and /readyz exactly as the ops server of the other modes does', async () => {
    const ops = await startOpsServer({ healthy: () => true, ready: () => readyFlag }, 0);
    const opsBase = `http://127.0.0.1:${(ops.address() as AddressInfo).port}`;
    try {
      for (const ready of [true, false]) {
        readyFlag = ready;
        for (const path of ['/healthz', '/readyz']) {
          const [a, b] = await Promise.all([fetch(`${base}${path}`), fetch(`${opsBase}${path}`)]);
          expect(a.status, path).toBe(b.status);
          expect(a.headers.get('content-type'), path).toBe(b.headers.get('content-type'));
          expect(await a.text(), path).toBe(await b.text());
        }
      }
      expect((await fetch(`${base}/readyz`)).status).toBe(503);
    } finally {
      await new Promise((resolve) => ops.close(resolve));
    }
  });

  it('serves POST /webhooks/alertmanager when given, behind its bearer token', async () => {
    const url = `${base}${ALERTMANAGER_PATH}`;
    const body = JSON.stringify({ version: '4', status: 'firing', alerts: [] });
    expect((await fetch(url, { method: 'POST', body })).status).toBe(401);
    const ok = await fetch(url, { method: 'POST', body, headers: { Authorization: `Bearer ${AM_TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ scanned: [], unknown: [] });
  });

  it('answers 404 on /metrics when no renderer is given', async () => {
    const bare = createSlackApp({
      botToken: SIM_SLACK_BOT_TOKEN,
      signingSecret: secret,
      slackApiUrl: sim.url,
      port: 0,
      host: '127.0.0.1',
      chat: new RecordingChatPort(),
      authz: createAuthorizer({ adminUsers: [] }),
      ops: opsHandler({ healthy: () => true, ready: () => true }),
      botId: 'B0BOT00001',
      botUserId: 'U0BOT00001',
    });
    try {
      const { port } = await bare.start();
      expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      const push = await fetch(`http://127.0.0.1:${port}${ALERTMANAGER_PATH}`, {
        method: 'POST',
        body: '{}',
      });
      expect(push.status).toBe(404);
    } finally {
      await bare.stop();
    }
  });
});

describe('start-up with Slack unreachable', () => {
  it('listens at once and resolves the bot identity later, with backoff', async () => {
    const sim2 = await startSimSlack();
    sim2.faults.set({ status: 500, methods: ['auth.test'], times: 2 });
    const app2 = createSlackApp({
      botToken: SIM_SLACK_BOT_TOKEN,
      signingSecret: secret,
      slackApiUrl: sim2.url,
      port: 0,
      host: '127.0.0.1',
      chat: new RecordingChatPort(),
      authz: createAuthorizer({ adminUsers: [] }),
      ops: opsHandler({ healthy: () => true, ready: () => true }),
      identityRetry: { baseMs: 10, maxMs: 50 },
    });
    try {
      const { port } = await app2.start();
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      await waitFor('identity', () => app2.identity() !== undefined);
      expect(app2.identity()).toEqual({ botId: 'B0BOT00001', botUserId: 'U0BOT00001' });
      expect(sim2.log.find('auth.test').map((r) => r.status)).toEqual([500, 500, 200]);
    } finally {
      await app2.stop();
      await sim2.close();
    }
  });
});

describe('/gpu report over HTTP', () => {
  const report = {
    repairs: 1,
    csv: 'ended_at,incident,gpu_uuid\r\n2026-12-03T09:30:00.000Z,inc-1,GPU-3333\r\n',
    filename: 'gpu-medic-repairs-2026-12-03-7d.csv',
    summary: '1 GPU repair in the last 7 days (1 replace resolved):',
  };

  it('posts the CSV to the channel through the external upload, then answers ephemerally', async () => {
    chat.report = report;
    await post(command('report 7', viewer));
    await waitFor('ephemeral answer', () => ephemeralsFor(viewer).length === 1);
    expect(sim.files).toEqual([
      expect.objectContaining({
        filename: report.filename,
        content: report.csv,
        channel,
        completed: true,
        initialComment: expect.stringContaining('RMA'),
      }),
    ]);
    expect(ephemeralsFor(viewer)[0]?.text).toContain(report.filename);
    sim.log.assertNoUnexpected();
  });

  it('answers with the summary when the app lacks files:write', async () => {
    chat.report = report;
    sim.faults.set({ error: 'missing_scope', methods: ['files.getUploadURLExternal'] });
    await post(command('report 7', viewer));
    await waitFor('ephemeral answer', () => ephemeralsFor(viewer).length === 1);
    expect(sim.files).toEqual([]);
    expect(ephemeralsFor(viewer)[0]?.text).toContain('1 GPU repair in the last 7 days');
    expect(ephemeralsFor(viewer)[0]?.text).toContain('files:write');
  });
});
