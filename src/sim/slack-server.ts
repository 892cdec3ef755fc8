/**
 * The Slack Web API fake: a loopback server the real @slack/web-api WebClient reaches through
 * `slackApiUrl`. It answers like slack.com does (HTTP 200 with `{ ok: false, error }` for
 * application errors, 429 + `Retry-After` for rate limits, JSON bodies), keeps the messages it was
 * sent — threads and updates applied — and refuses what it does not know.
 */

import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  BodyError,
  headerRecord,
  listen,
  PendingTimers,
  parseForm,
  pathAndQuery,
  readBody,
  send,
} from './http-util.js';
import { type RecordedRequest, RequestLog } from './recorder.js';
import { type SimSlackFile, SlackFiles } from './slack-files.js';

export const SIM_SLACK_BOT_TOKEN = 'xoxb-sim-0000000000-gpu-medic';

export const SIM_SLACK_IDENTITY = {
  team: 'sim',
  team_id: 'T0SIM00001',
  user: 'gpu-medic',
  user_id: 'U0BOT00001',
  bot_id: 'B0BOT00001',
  app_id: 'A0APP00001',
  url: 'https://sim.slack.com/',
} as const;

export interface SimSlackUser {
  name?: string;
  real_name?: string;
  is_admin?: boolean;
  tz?: string;
}

export interface SimSlackOptions {
  port?: number;
  log?: RequestLog;
  botToken?: string;
  /** Users known to `users.info` (and required for `chat.postEphemeral` when given), by id. */
  users?: Record<string, SimSlackUser>;
  /** User group id → member user ids, for `usergroups.users.list`. */
  usergroups?: Record<string, string[]>;
}

export interface SlackCall {
  method: string;
  /** Parameters as the client sent them, with JSON-encoded form fields (`blocks`, `view` …) decoded. */
  args: Record<string, unknown>;
  at: number;
}

export interface SlackMessage {
  channel: string;
  ts: string;
  thread_ts?: string;
  text?: string;
  blocks?: unknown[];
  attachments?: unknown[];
  metadata?: unknown;
  user: string;
  bot_id: string;
  /** How many times `chat.update` changed it. */
  updates: number;
}

export interface SlackEphemeral {
  channel: string;
  user: string;
  text?: string;
  blocks?: unknown[];
  message_ts: string;
  thread_ts?: string;
}

export interface SlackFault {
  /** HTTP status: 429 (with `retryAfterSec` → `Retry-After`) or a 5xx. Omit with `error`. */
  status?: number;
  retryAfterSec?: number;
  /** An application error answered as HTTP 200 `{ ok: false, error }` (e.g. `ratelimited`). */
  error?: string;
  /** How many requests get the fault; unlimited when omitted. */
  times?: number;
  /** Only these Web API methods are affected (all when omitted). */
  methods?: string[];
  delayMs?: number;
}

export class SlackFaults {
  private fault: (SlackFault & { left: number }) | undefined;

  set(fault: SlackFault): void {
    this.fault = { ...fault, left: fault.times ?? Number.POSITIVE_INFINITY };
  }

  clear(): void {
    this.fault = undefined;
  }

  /** Consumes one use of the fault if it applies to `method`. */
  take(method: string): SlackFault | undefined {
    const f = this.fault;
    if (!f || (f.methods && !f.methods.includes(method))) return undefined;
    f.left -= 1;
    if (f.left <= 0) this.fault = undefined;
    return f;
  }
}

/** Messages as Slack would show them: in order, with updates applied and replies under their parent. */
export class SlackMessages {
  private readonly list: SlackMessage[] = [];
  private readonly byKey = new Map<string, SlackMessage>();
  readonly ephemeral: SlackEphemeral[] = [];

  constructor(private readonly resolve: (channel: string) => string) {}

  /** @internal */
  add(m: SlackMessage): void {
    this.list.push(m);
    this.byKey.set(`${m.channel}/${m.ts}`, m);
  }

  get(channel: string, ts: string): SlackMessage | undefined {
    return this.byKey.get(`${this.resolve(channel)}/${ts}`);
  }

  all(): SlackMessage[] {
    return [...this.list];
  }

  /** Top-level messages of a channel (id or name), in posting order. */
  channel(channel: string): SlackMessage[] {
    const id = this.resolve(channel);
    return this.list.filter((m) => m.channel === id && (m.thread_ts === undefined || m.thread_ts === m.ts));
  }

  /** Replies in the thread under `ts`, in posting order (the parent not included). */
  thread(channel: string, ts: string): SlackMessage[] {
    const id = this.resolve(channel);
    return this.list.filter((m) => m.channel === id && m.thread_ts === ts && m.ts !== ts);
  }

  clear(): void {
    this.list.length = 0;
    this.byKey.clear();
    this.ephemeral.length = 0;
  }
}

export interface SimSlack {
  /** Ends with `/api/`: pass as the WebClient's `slackApiUrl`. */
  url: string;
  log: RequestLog;
  calls: SlackCall[];
  messages: SlackMessages;
  /** Views by user id (`views.publish`) and in opening order (`views.open`). */
  views: { published: Map<string, Record<string, unknown>>; opened: Record<string, unknown>[] };
  faults: SlackFaults;
  /** Files uploaded through files.getUploadURLExternal / completeUploadExternal, in order. */
  files: SimSlackFile[];
  /** The channel id a name (`#gpu-ops` / `gpu-ops`) resolves to; ids pass through. */
  channelId(channel: string): string;
  close(): Promise<void>;
}

type SlackResult = Record<string, unknown> & { ok: boolean };

class SlackApiError extends Error {
  constructor(
    readonly error: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(error);
  }
}

/** Form fields the WebClient JSON-encodes because their values are objects or arrays. */
const JSON_FIELDS = ['blocks', 'attachments', 'view', 'metadata'] as const;
const CHANNEL_ID = /^[CDG][A-Z0-9]{8,}$/;
const TS_BASE_MICROS = 1_700_000_000_000_100;
const MAX_TEXT = 40_000;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function textOf(v: unknown): string | undefined {
  return isRecord(v) && typeof v.text === 'string' ? v.text : undefined;
}

/**
 * The Block Kit limits Slack enforces most often; breaking one makes Slack answer `invalid_blocks`,
 * so the fake does too rather than accept what production would refuse.
 */
export function blockKitProblems(blocks: unknown, maxBlocks = 50): string[] {
  if (!Array.isArray(blocks)) return ['blocks must be an array'];
  const problems: string[] = [];
  if (blocks.length > maxBlocks)
    problems.push(`no more than ${maxBlocks} items allowed [json-pointer:/blocks]`);
  blocks.forEach((b, i) => {
    const at = `[json-pointer:/blocks/${i}]`;
    if (!isRecord(b) || typeof b.type !== 'string') {
      problems.push(`missing required field: type ${at}`);
      return;
    }
    if (typeof b.block_id === 'string' && b.block_id.length > 255) problems.push(`block_id too long ${at}`);
    const text = textOf(b.text);
    if (b.type === 'header') {
      if (!isRecord(b.text) || b.text.type !== 'plain_text')
        problems.push(`header text must be plain_text ${at}`);
      if ((text?.length ?? 0) > 150) problems.push(`must be less than 151 characters ${at}/text/text`);
    }
    if (b.type === 'section') {
      if (text === undefined && !Array.isArray(b.fields)) problems.push(`must provide text or fields ${at}`);
      if ((text?.length ?? 0) > 3000) problems.push(`must be less than 3001 characters ${at}/text/text`);
      if (Array.isArray(b.fields)) {
        if (b.fields.length > 10) problems.push(`no more than 10 items allowed ${at}/fields`);
        b.fields.forEach((f, j) => {
          if ((textOf(f)?.length ?? 0) > 2000)
            problems.push(`must be less than 2001 characters ${at}/fields/${j}/text`);
        });
      }
    }
    if (b.type === 'actions' || b.type === 'context') {
      const max = b.type === 'actions' ? 25 : 10;
      if (!Array.isArray(b.elements) || b.elements.length === 0)
        problems.push(`missing required field: elements ${at}`);
      else if (b.elements.length > max) problems.push(`no more than ${max} items allowed ${at}/elements`);
      if (Array.isArray(b.elements)) {
        b.elements.forEach((e, j) => {
          if (!isRecord(e)) return;
          if (e.type === 'button' && (textOf(e.text)?.length ?? 0) > 75) {
            problems.push(`must be less than 76 characters ${at}/elements/${j}/text/text`);
          }
          if (typeof e.action_id === 'string' && e.action_id.length > 255) {
            problems.push(`action_id too long ${at}/elements/${j}`);
          }
        });
      }
    }
  });
  return problems;
}

export async function startSimSlack(opts: SimSlackOptions = {}): Promise<SimSlack> {
  const log = opts.log ?? new RequestLog();
  const token = opts.botToken ?? SIM_SLACK_BOT_TOKEN;
  const users = opts.users;
  const usergroups = opts.usergroups ?? {};
  const calls: SlackCall[] = [];
  const faults = new SlackFaults();
  const timers = new PendingTimers();
  const channelIds = new Map<string, string>();
  const views: SimSlack['views'] = { published: new Map(), opened: [] };
  let seq = 0;
  let viewSeq = 0;
  let requestSeq = 0;

  function channelId(channel: string): string {
    if (CHANNEL_ID.test(channel)) return channel;
    const name = channel.replace(/^#/, '');
    let id = channelIds.get(name);
    if (!id) {
      id = `C${createHash('sha1').update(name).digest('hex').slice(0, 10).toUpperCase()}`;
      channelIds.set(name, id);
    }
    return id;
  }

  const messages = new SlackMessages(channelId);
  let origin = '';
  const uploads = new SlackFiles(() => origin, channelId);

  function nextTs(): string {
    const micros = TS_BASE_MICROS + ++seq * 100;
    const secs = Math.floor(micros / 1_000_000);
    return `${secs}.${String(micros % 1_000_000).padStart(6, '0')}`;
  }

  function str(args: Record<string, unknown>, key: string): string | undefined {
    const v = args[key];
    return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;
  }

  function content(args: Record<string, unknown>): {
    text?: string;
    blocks?: unknown[];
    attachments?: unknown[];
  } {
    const text = str(args, 'text');
    const blocks = args.blocks;
    const attachments = args.attachments;
    if (text === undefined && blocks === undefined && attachments === undefined)
      throw new SlackApiError('no_text');
    if (text !== undefined && text.length > MAX_TEXT) throw new SlackApiError('msg_too_long');
    if (blocks !== undefined) {
      const problems = blockKitProblems(blocks);
      if (problems.length > 0) {
        throw new SlackApiError('invalid_blocks', {
          errors: problems,
          response_metadata: { messages: problems },
        });
      }
    }
    if (attachments !== undefined && !Array.isArray(attachments))
      throw new SlackApiError('invalid_attachments');
    return {
      text,
      blocks: Array.isArray(blocks) ? blocks : undefined,
      attachments: Array.isArray(attachments) ? attachments : undefined,
    };
  }

  function requireChannel(args: Record<string, unknown>): string {
    const channel = str(args, 'channel');
    if (!channel) throw new SlackApiError('channel_not_found');
    return channel;
  }

  function wireMessage(m: SlackMessage): Record<string, unknown> {
    const { channel: _channel, updates: _updates, ...rest } = m;
    return { type: 'message', ...rest, app_id: SIM_SLACK_IDENTITY.app_id, team: SIM_SLACK_IDENTITY.team_id };
  }

  function view(args: Record<string, unknown>, type: 'home' | 'modal'): Record<string, unknown> {
    const v = args.view;
    if (!isRecord(v)) throw new SlackApiError('invalid_arguments');
    if (v.type !== type)
      throw new SlackApiError('invalid_arguments', {
        response_metadata: { messages: [`view type must be ${type}`] },
      });
    const problems = blockKitProblems(v.blocks, 100);
    if (type === 'modal' && (!isRecord(v.title) || typeof v.title.text !== 'string')) {
      problems.push('missing required field: title [json-pointer:/view/title]');
    }
    if (problems.length > 0) {
      throw new SlackApiError('invalid_arguments', { response_metadata: { messages: problems } });
    }
    return { id: `V${String(++viewSeq).padStart(10, '0')}`, team_id: SIM_SLACK_IDENTITY.team_id, ...v };
  }

  const methods: Record<string, (args: Record<string, unknown>) => SlackResult> = {
    'auth.test': () => ({ ok: true, ...SIM_SLACK_IDENTITY, is_enterprise_install: false }),

    'chat.postMessage': (args) => {
      const channel = channelId(requireChannel(args));
      const body = content(args);
      const threadTs = str(args, 'thread_ts');
      const m: SlackMessage = {
        channel,
        ts: nextTs(),
        ...(threadTs ? { thread_ts: threadTs } : {}),
        ...body,
        ...(args.metadata !== undefined ? { metadata: args.metadata } : {}),
        user: SIM_SLACK_IDENTITY.user_id,
        bot_id: SIM_SLACK_IDENTITY.bot_id,
        updates: 0,
      };
      messages.add(m);
      return { ok: true, channel, ts: m.ts, message: wireMessage(m) };
    },

    'chat.update': (args) => {
      const channel = requireChannel(args);
      const ts = str(args, 'ts');
      if (!ts) throw new SlackApiError('message_not_found');
      // chat.update wants the channel id; a name does not find the message on Slack either.
      if (!CHANNEL_ID.test(channel)) throw new SlackApiError('channel_not_found');
      const m = messages.get(channel, ts);
      if (!m) throw new SlackApiError('message_not_found');
      const body = content(args);
      if (body.text !== undefined) m.text = body.text;
      if (body.blocks !== undefined) m.blocks = body.blocks;
      if (body.attachments !== undefined) m.attachments = body.attachments;
      m.updates += 1;
      return { ok: true, channel, ts, text: m.text ?? '', message: wireMessage(m) };
    },

    'chat.postEphemeral': (args) => {
      const channel = channelId(requireChannel(args));
      const user = str(args, 'user');
      if (!user) throw new SlackApiError('user_not_found');
      if (users && !users[user]) throw new SlackApiError('user_not_in_channel');
      const body = content(args);
      const threadTs = str(args, 'thread_ts');
      const messageTs = nextTs();
      messages.ephemeral.push({
        channel,
        user,
        text: body.text,
        blocks: body.blocks,
        message_ts: messageTs,
        thread_ts: threadTs,
      });
      return { ok: true, message_ts: messageTs };
    },

    'views.publish': (args) => {
      const userId = str(args, 'user_id');
      if (!userId) throw new SlackApiError('invalid_arguments');
      const v = view(args, 'home');
      views.published.set(userId, v);
      return { ok: true, view: v };
    },

    'views.open': (args) => {
      if (!str(args, 'trigger_id')) throw new SlackApiError('invalid_trigger_id');
      const v = view(args, 'modal');
      views.opened.push(v);
      return { ok: true, view: v };
    },

    'usergroups.users.list': (args) => {
      const group = str(args, 'usergroup');
      const members = group === undefined ? undefined : usergroups[group];
      if (!members) throw new SlackApiError('no_such_subteam');
      return { ok: true, users: [...members] };
    },

    ...uploads.methods,

    'users.info': (args) => {
      const id = str(args, 'user');
      const u = id === undefined ? undefined : users?.[id];
      if (!id || !u) throw new SlackApiError('user_not_found');
      const name = u.name ?? id.toLowerCase();
      return {
        ok: true,
        user: {
          id,
          team_id: SIM_SLACK_IDENTITY.team_id,
          name,
          real_name: u.real_name ?? name,
          is_admin: u.is_admin ?? false,
          is_bot: false,
          tz: u.tz ?? 'UTC',
          profile: { real_name: u.real_name ?? name, display_name: name },
        },
      };
    },
  };

  function authorize(req: IncomingMessage, args: Record<string, unknown>): void {
    const header = req.headers.authorization;
    const given = header?.startsWith('Bearer ') ? header.slice(7) : str(args, 'token');
    if (!given) throw new SlackApiError('not_authed');
    if (given !== token) throw new SlackApiError('invalid_auth');
  }

  function parseArgs(
    req: IncomingMessage,
    query: Record<string, string>,
    raw: string,
  ): Record<string, unknown> {
    const args: Record<string, unknown> = { ...query };
    const type = String(req.headers['content-type'] ?? '');
    if (raw === '') return args;
    if (type.startsWith('application/json')) {
      let json: unknown;
      try {
        json = JSON.parse(raw);
      } catch {
        throw new SlackApiError('invalid_json');
      }
      if (!isRecord(json)) throw new SlackApiError('invalid_json');
      return { ...args, ...json };
    }
    if (!type.startsWith('application/x-www-form-urlencoded')) throw new SlackApiError('invalid_form_data');
    const form = parseForm(raw);
    for (const [k, v] of Object.entries(form)) args[k] = v;
    for (const field of JSON_FIELDS) {
      const v = args[field];
      if (typeof v !== 'string') continue;
      try {
        args[field] = JSON.parse(v);
      } catch {
        throw new SlackApiError(field === 'blocks' ? 'invalid_blocks_format' : `invalid_${field}`);
      }
    }
    return args;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { path, rawPath, query } = pathAndQuery(req);
    const method = path.startsWith('/api/') ? path.slice(5) : '';
    const record: RecordedRequest = {
      service: 'slack',
      method: req.method ?? 'GET',
      path: rawPath,
      query,
      headers: headerRecord(req),
      body: '',
      operation: method || undefined,
      status: 200,
      at: Date.now(),
    };
    const headers: Record<string, string> = { 'x-slack-req-id': String(++requestSeq) };
    let status = 200;
    let result: SlackResult;
    let unexpected = false;
    try {
      record.body = await readBody(req, 2 * 1024 * 1024);
      const uploaded = uploads.upload(path, String(req.headers['content-type'] ?? ''), record.body);
      if (uploaded) {
        record.status = uploaded.status;
        log.record(record);
        send(res, uploaded.status, 'text/plain; charset=utf-8', uploaded.text, headers);
        return;
      }
      const args = parseArgs(req, query, record.body);
      const handler = Object.hasOwn(methods, method) ? methods[method] : undefined;
      if (!handler) {
        unexpected = true;
        throw new SlackApiError('unknown_method');
      }
      authorize(req, args);
      const fault = faults.take(method);
      if (fault?.delayMs) await timers.wait(fault.delayMs);
      if (fault && (fault.status !== undefined || fault.error !== undefined)) {
        if (fault.status !== undefined && fault.status !== 200) {
          status = fault.status;
          if (fault.retryAfterSec !== undefined) headers['Retry-After'] = String(fault.retryAfterSec);
        }
        throw new SlackApiError(fault.error ?? (status === 429 ? 'ratelimited' : 'internal_error'));
      }
      const { token: _token, ...visible } = args;
      calls.push({ method, args: visible, at: record.at });
      result = handler(args);
    } catch (e) {
      if (e instanceof SlackApiError) result = { ok: false, error: e.error, ...e.extra };
      else if (e instanceof BodyError) {
        status = e.status === 413 ? 413 : 200;
        result = { ok: false, error: e.status === 413 ? 'request_too_large' : 'invalid_form_data' };
      } else {
        unexpected = true;
        result = { ok: false, error: 'fatal_error', detail: (e as Error).message };
      }
    }
    record.status = status;
    if (unexpected) log.recordUnexpected(record);
    else log.record(record);
    send(res, status, 'application/json; charset=utf-8', JSON.stringify(result), headers);
  }

  const started = await listen(
    (req, res) => {
      handle(req, res).catch(() => {
        if (!res.headersSent) res.destroy();
      });
    },
    opts.port ?? 0,
    () => timers.clear(),
  );

  origin = started.origin;
  return {
    url: `${started.origin}/api/`,
    log,
    calls,
    messages,
    views,
    faults,
    files: uploads.files,
    channelId,
    close: started.close,
  };
}
