import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { slackEvent, slackIncident } from '../../test/support/recording-chat-port.js';
import { waitFor } from '../../test/support/wait.js';
import type { ProgressStep } from '../domain/events.js';
import { SIM_SLACK_BOT_TOKEN, type SimSlack, startSimSlack } from '../sim/slack-server.js';
import { openStore, type Store } from '../store/index.js';
import type { AlertView } from './blocks/alert.js';
import { threadReply } from './blocks/thread.js';
import { classifyFailure, createDeliveryClient, SlackDelivery, slackSinkName } from './delivery.js';

const steps: ProgressStep[] = [
  'approved',
  'cordoned',
  'drain_started',
  'pod_evicted',
  'drained',
  'reboot_issued',
];

let sim: SimSlack;
let store: Store;
let delivery: SlackDelivery;

function view(id: string, node: string): AlertView {
  return { incident: slackIncident({ id, node }), cluster: 'sim-cluster' };
}

beforeEach(async () => {
  sim = await startSimSlack();
  store = openStore(':memory:');
  delivery = new SlackDelivery({
    outbox: store.outbox,
    refs: store.slackRefs,
    channel: '#gpu-ops',
    client: createDeliveryClient(SIM_SLACK_BOT_TOKEN, sim.url),
    paceMs: 5,
    pollMs: 10,
    backoffBaseMs: 20,
    backoffMaxMs: 200,
  });
});

afterEach(async () => {
  await delivery.stop();
  store.close();
  await sim.close();
});

describe('SlackDelivery', () => {
  it('delivers every message in order through 429s and 500s, root first, no duplicates', async () => {
    const a = view('inc-a', 'ip-10-0-1-2.ec2.internal');
    const b = view('inc-b', 'ip-10-0-1-3.ec2.internal');
    delivery.postAlert(a);
    steps.forEach((step, i) => {
      delivery.postProgress(slackEvent('inc-a', step, i));
      if (i === 2) delivery.postAlert(b);
      // The monitor re-reports the incident on every scan: still one alert.
      delivery.postAlert(a);
    });
    delivery.postProgress(slackEvent('inc-b', 'cordoned', 0));
    delivery.updateRoot('inc-a', { ...a, actedBy: { action: 'reboot', userId: 'UADMIN0001' } });

    sim.faults.set({ status: 429, retryAfterSec: 1, times: 1, methods: ['chat.postMessage'] });
    delivery.start();
    await waitFor('the 429', () => sim.log.find('chat.postMessage').some((r) => r.status === 429));
    sim.faults.set({ status: 500, times: 6 });
    await waitFor('outbox drained', () => store.outbox.depth(slackSinkName) === 0);

    const statuses = sim.log.find('chat.postMessage').map((r) => r.status);
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s === 500).length).toBeGreaterThan(0);

    const roots = sim.messages.channel('#gpu-ops');
    expect(roots).toHaveLength(2);
    const refA = store.slackRefs.get('inc-a');
    const refB = store.slackRefs.get('inc-b');
    expect(refA && refB).toBeTruthy();
    const rootA = roots.find((m) => m.ts === refA?.ts);
    expect(rootA?.text).toContain('ip-10-0-1-2.ec2.internal');
    const replies = sim.messages.thread('#gpu-ops', refA?.ts ?? '');
    expect(replies.map((m) => m.text)).toEqual(
      steps.map((step, i) => threadReply(slackEvent('inc-a', step, i)).text),
    );
    // Root before its replies (Slack ts grow with time).
    expect(replies.every((r) => Number(r.ts) > Number(refA?.ts))).toBe(true);
    expect(sim.messages.thread('#gpu-ops', refB?.ts ?? '')).toHaveLength(1);
    // The update reached the root: buttons replaced by who approved.
    expect(rootA?.updates).toBe(1);
    expect(JSON.stringify(rootA?.blocks)).toContain('Reboot approved by <@UADMIN0001>');
    expect(JSON.stringify(rootA?.blocks)).not.toContain('"type":"actions"');
    sim.log.assertNoUnexpected();
  });

  it('keeps messages through a restart: a new worker delivers what the old one left', async () => {
    sim.faults.set({ status: 503 });
    delivery.postAlert(view('inc-c', 'ip-10-0-1-2.ec2.internal'));
    delivery.postProgress(slackEvent('inc-c', 'cordoned', 0));
    delivery.start();
    await waitFor('failed attempts', () => sim.log.find('chat.postMessage').length >= 2);
    await delivery.stop();
    expect(store.outbox.depth(slackSinkName)).toBe(2);

    sim.faults.clear();
    delivery = new SlackDelivery({
      outbox: store.outbox,
      refs: store.slackRefs,
      channel: '#gpu-ops',
      client: createDeliveryClient(SIM_SLACK_BOT_TOKEN, sim.url),
      paceMs: 5,
      pollMs: 10,
      backoffBaseMs: 20,
      backoffMaxMs: 100,
    });
    delivery.start();
    await waitFor('outbox drained', () => store.outbox.depth(slackSinkName) === 0);
    const root = sim.messages.channel('#gpu-ops');
    expect(root).toHaveLength(1);
    expect(sim.messages.thread('#gpu-ops', root[0]?.ts ?? '')).toHaveLength(1);
  });

  it('gives up on a message Slack can never accept, and the thread goes on', async () => {
    sim.faults.set({ error: 'channel_not_found', times: 1, methods: ['chat.postMessage'] });
    delivery.postAlert(view('inc-d', 'ip-10-0-1-2.ec2.internal'));
    delivery.postProgress(slackEvent('inc-d', 'cordoned', 0));
    delivery.start();
    await waitFor('outbox drained', () => store.outbox.depth(slackSinkName) === 0);
    // The reply became the thread's root so the story still lands in the channel.
    expect(sim.messages.channel('#gpu-ops').map((m) => m.text)).toEqual([
      threadReply(slackEvent('inc-d', 'cordoned', 0)).text,
    ]);
  });
});

describe('classifyFailure', () => {
  it.each([
    [{ code: 'slack_webapi_rate_limited_error', retryAfter: 3 }, true, 3000],
    [{ code: 'slack_webapi_http_error', statusCode: 503, headers: {} }, true, undefined],
    [{ code: 'slack_webapi_http_error', statusCode: 400, headers: {} }, false, undefined],
    [{ code: 'slack_webapi_platform_error', data: { error: 'invalid_blocks' } }, false, undefined],
    [{ code: 'slack_webapi_platform_error', data: { error: 'internal_error' } }, true, undefined],
    [{ code: 'slack_webapi_request_error' }, true, undefined],
    [new Error('socket hang up'), true, undefined],
  ])('%j → retry %s', (error, retry, retryAfterMs) => {
    const f = classifyFailure(error);
    expect(f.retry).toBe(retry);
    expect(f.retryAfterMs).toBe(retryAfterMs);
  });
});
