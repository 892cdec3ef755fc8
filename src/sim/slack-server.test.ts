import { ErrorCode, LogLevel, WebClient } from '@slack/web-api';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { blockKitProblems, SIM_SLACK_BOT_TOKEN, type SimSlack, startSimSlack } from './slack-server.js';

let slack: SimSlack;

beforeAll(async () => {
  slack = await startSimSlack({
    users: { U0SRE00001: { name: 'alice', real_name: 'Alice SRE', tz: 'Europe/Paris' } },
    usergroups: { S0ONCALL01: ['U0SRE00001', 'U0SRE00002'] },
  });
});
afterAll(async () => {
  await slack.close();
});
beforeEach(() => {
  slack.log.clear();
  slack.faults.clear();
  slack.calls.length = 0;
  slack.messages.clear();
});
afterEach(() => {
  slack.log.assertNoUnexpected();
});

const client = (token = SIM_SLACK_BOT_TOKEN, extra: ConstructorParameters<typeof WebClient>[1] = {}) =>
  new WebClient(token, {
    slackApiUrl: slack.url,
    retryConfig: { retries: 0 },
    logLevel: LogLevel.ERROR,
    ...extra,
  });

const CHANNEL = 'C0GPUOPS01';
const card = [
  { type: 'header', text: { type: 'plain_text', text: 'Xid 79 on ip-10-0-1-17' } },
  {
    type: 'actions',
    elements: [
      { type: 'button', action_id: 'approve', text: { type: 'plain_text', text: 'Approve' }, value: 'inc-1' },
    ],
  },
];

describe('chat.postMessage / chat.update / threads', () => {
  it('posts with a form body, decodes blocks, answers ok with channel, ts and message', async () => {
    const out = await client().chat.postMessage({ channel: CHANNEL, text: 'GPU fault', blocks: card });
    expect(out).toMatchObject({
      ok: true,
      channel: CHANNEL,
      message: { text: 'GPU fault', bot_id: expect.any(String) },
    });
    expect(out.ts).toMatch(/^\d{10}\.\d{6}$/);
    const req = slack.log.find('chat.postMessage')[0];
    expect(req?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(req?.headers.authorization).toBe(`Bearer ${SIM_SLACK_BOT_TOKEN}`);
    expect(new URLSearchParams(req?.body).get('blocks')).toBe(JSON.stringify(card));
    expect(slack.calls[0]?.args.blocks).toEqual(card);
    expect(slack.messages.channel(CHANNEL)).toEqual([
      expect.objectContaining({ ts: out.ts, blocks: card, updates: 0 }),
    ]);
  });

  it('keeps threads, increases ts monotonically and applies updates in place', async () => {
    const web = client();
    const parent = await web.chat.postMessage({ channel: CHANNEL, text: 'incident 1' });
    const r1 = await web.chat.postMessage({ channel: CHANNEL, text: 'cordoned', thread_ts: parent.ts });
    const other = await web.chat.postMessage({ channel: CHANNEL, text: 'incident 2' });
    const r2 = await web.chat.postMessage({ channel: CHANNEL, text: 'drained', thread_ts: parent.ts });
    const stamps = [parent.ts, r1.ts, other.ts, r2.ts].map(Number);
    expect([...stamps].sort((a, b) => a - b)).toEqual(stamps);
    expect(new Set(stamps).size).toBe(4);

    const updated = await web.chat.update({
      channel: CHANNEL,
      ts: parent.ts ?? '',
      text: 'incident 1 — resolved',
    });
    expect(updated).toMatchObject({ ok: true, channel: CHANNEL, ts: parent.ts });

    expect(slack.messages.channel(CHANNEL).map((m) => [m.text, m.updates])).toEqual([
      ['incident 1 — resolved', 1],
      ['incident 2', 0],
    ]);
    expect(slack.messages.thread(CHANNEL, parent.ts ?? '').map((m) => m.text)).toEqual([
      'cordoned',
      'drained',
    ]);
  });

  it('refuses to update a message that does not exist', async () => {
    const err = await client()
      .chat.update({ channel: CHANNEL, ts: '1700000000.999999', text: 'x' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: ErrorCode.PlatformError,
      data: { ok: false, error: 'message_not_found' },
    });
  });

  it('resolves a channel name to an id on post, and refuses a name on update as Slack does', async () => {
    const out = await client().chat.postMessage({ channel: '#gpu-ops', text: 'hello' });
    expect(out.channel).toBe(slack.channelId('gpu-ops'));
    expect(out.channel).toMatch(/^C[A-Z0-9]{10}$/);
    expect(slack.messages.channel('#gpu-ops')).toHaveLength(1);
    const err = await client()
      .chat.update({ channel: '#gpu-ops', ts: out.ts ?? '', text: 'x' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ data: { error: 'channel_not_found' } });
  });

  it.each([
    ['no text or blocks', { channel: CHANNEL }, 'no_text'],
    [
      'a header over 150 chars',
      { channel: CHANNEL, blocks: [{ type: 'header', text: { type: 'plain_text', text: 'h'.repeat(151) } }] },
      'invalid_blocks',
    ],
    [
      '51 blocks',
      { channel: CHANNEL, blocks: Array.from({ length: 51 }, () => ({ type: 'divider' })) },
      'invalid_blocks',
    ],
    ['a block without type', { channel: CHANNEL, text: 't', blocks: [{ text: 'x' }] }, 'invalid_blocks'],
  ])('answers ok:false for %s and stores nothing', async (_label, args, error) => {
    const err = await client()
      .apiCall('chat.postMessage', args)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ data: { ok: false, error } });
    expect(slack.messages.all()).toEqual([]);
  });
});

describe('other methods', () => {
  it('auth.test answers the bot identity', async () => {
    const out = await client().auth.test();
    expect(out).toMatchObject({
      ok: true,
      user_id: expect.any(String),
      bot_id: expect.any(String),
      team_id: expect.any(String),
    });
    expect(out.url).toMatch(/^https:\/\//);
  });

  it('rejects a wrong token with invalid_auth', async () => {
    const err = await client('xoxb-wrong')
      .auth.test()
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ data: { ok: false, error: 'invalid_auth' } });
    expect(slack.calls).toEqual([]);
  });

  it('postEphemeral answers message_ts and keeps the ephemeral message apart', async () => {
    const out = await client().chat.postEphemeral({ channel: CHANNEL, user: 'U0SRE00001', text: 'only you' });
    expect(out).toMatchObject({ ok: true, message_ts: expect.stringMatching(/^\d{10}\.\d{6}$/) });
    expect(slack.messages.ephemeral).toEqual([
      expect.objectContaining({ user: 'U0SRE00001', text: 'only you' }),
    ]);
    expect(slack.messages.channel(CHANNEL)).toEqual([]);
  });

  it('views.publish and views.open keep the views they were sent', async () => {
    const home = {
      type: 'home' as const,
      blocks: [{ type: 'section', text: { type: 'mrkdwn', text: '*Fleet*' } }],
    };
    const pub = await client().views.publish({ user_id: 'U0SRE00001', view: home });
    expect(pub).toMatchObject({ ok: true, view: { id: expect.stringMatching(/^V/), type: 'home' } });
    expect(slack.views.published.get('U0SRE00001')).toMatchObject(home);
    const modal = {
      type: 'modal' as const,
      title: { type: 'plain_text' as const, text: 'Exclude node' },
      blocks: [],
    };
    const open = await client().views.open({ trigger_id: '123.456.abc', view: modal });
    expect(open.view?.type).toBe('modal');
    expect(slack.views.opened).toHaveLength(1);
  });

  it('usergroups.users.list answers the group members, no_such_subteam otherwise', async () => {
    const out = await client().usergroups.users.list({ usergroup: 'S0ONCALL01' });
    expect(out.users).toEqual(['U0SRE00001', 'U0SRE00002']);
    const err = await client()
      .usergroups.users.list({ usergroup: 'S0NOPE0000' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ data: { error: 'no_such_subteam' } });
  });

  it('users.info answers a configured user', async () => {
    const out = await client().users.info({ user: 'U0SRE00001' });
    expect(out.user).toMatchObject({ id: 'U0SRE00001', name: 'alice', tz: 'Europe/Paris' });
  });

  it('accepts a JSON body too', async () => {
    const res = await fetch(`${slack.url}chat.postMessage`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json; charset=utf-8',
        authorization: `Bearer ${SIM_SLACK_BOT_TOKEN}`,
      },
      body: JSON.stringify({ channel: CHANNEL, text: 'json', blocks: card }),
    });
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toMatchObject({ ok: true, message: { blocks: card } });
  });
});

describe('faults and unknown calls', () => {
  it('a 429 with Retry-After reaches the client as a rate-limit error and stores nothing', async () => {
    slack.faults.set({ status: 429, retryAfterSec: 1, times: 1 });
    const err = await client(SIM_SLACK_BOT_TOKEN, { rejectRateLimitedCalls: true })
      .chat.postMessage({ channel: CHANNEL, text: 'x' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.RateLimitedError, retryAfter: 1 });
    expect(slack.messages.all()).toEqual([]);
    expect(slack.log.requests.at(-1)?.status).toBe(429);
  });

  it('a retrying client loses nothing through three 429s', async () => {
    slack.faults.set({ status: 429, retryAfterSec: 0, times: 3 });
    const web = client(SIM_SLACK_BOT_TOKEN, {
      retryConfig: { retries: 3, factor: 1, minTimeout: 0, maxTimeout: 0 },
    });
    const out = await web.chat.postMessage({ channel: CHANNEL, text: 'must arrive once' });
    expect(out.ok).toBe(true);
    expect(slack.log.requests.map((r) => r.status)).toEqual([429, 429, 429, 200]);
    expect(slack.messages.channel(CHANNEL).map((m) => m.text)).toEqual(['must arrive once']);
  });

  it.each([
    ['HTTP 500', { status: 500 }, { code: ErrorCode.HTTPError, statusCode: 500 }],
    [
      'ok:false ratelimited',
      { error: 'ratelimited' },
      { code: ErrorCode.PlatformError, data: { error: 'ratelimited' } },
    ],
  ])('%s is answered only to the chosen method', async (_label, fault, expected) => {
    slack.faults.set({ ...fault, times: 1, methods: ['chat.postMessage'] });
    await expect(client().auth.test()).resolves.toMatchObject({ ok: true });
    const err = await client()
      .chat.postMessage({ channel: CHANNEL, text: 'x' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject(expected);
    await expect(client().chat.postMessage({ channel: CHANNEL, text: 'y' })).resolves.toMatchObject({
      ok: true,
    });
  });

  it('an unknown method answers unknown_method and lands in log.unexpected', async () => {
    const err = await client()
      .apiCall('admin.teams.create', { team_name: 'x' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ data: { error: 'unknown_method' } });
    expect(slack.log.unexpected.map((r) => r.operation)).toEqual(['admin.teams.create']);
    slack.log.clear();
  });

  it('never crashes on a malformed body', async () => {
    const res = await fetch(`${slack.url}chat.postMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${SIM_SLACK_BOT_TOKEN}` },
      body: '{"channel":',
    });
    expect(await res.json()).toEqual({ ok: false, error: 'invalid_json' });
    await expect(client().auth.test()).resolves.toMatchObject({ ok: true });
  });
});

describe('blockKitProblems', () => {
  it.each([
    ['a valid card', card, 0],
    [
      'a section with 11 fields',
      [{ type: 'section', fields: Array.from({ length: 11 }, () => ({ type: 'mrkdwn', text: 'f' })) }],
      1,
    ],
    [
      'a button label over 75 chars',
      [
        {
          type: 'actions',
          elements: [{ type: 'button', text: { type: 'plain_text', text: 'b'.repeat(76) } }],
        },
      ],
      1,
    ],
    [
      'a section text over 3000 chars',
      [{ type: 'section', text: { type: 'mrkdwn', text: 's'.repeat(3001) } }],
      1,
    ],
  ])('%s has %i problem(s)', (_label, blocks, count) => {
    expect(blockKitProblems(blocks)).toHaveLength(count);
  });
});
