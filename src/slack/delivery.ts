/**
 * The Slack side of the notification outbox. Every alert, thread reply and root update is written to the
 * outbox first; a worker delivers them with its own WebClient, paced per channel, retrying errors and 429s
 * with backoff. All messages of one incident share an ordering key, so the root is posted before its replies
 * and replies keep their order; the root's ts is remembered (SlackRefs) for the replies and chat.update.
 * A Slack outage delays messages; it never loses them.
 */
import { createHash } from 'node:crypto';
import { webApi } from '@slack/bolt';
import type { Logger } from 'pino';
import { z } from 'zod';
import { backoffDelay } from '../domain/backoff.js';
import type { ProgressEvent } from '../domain/events.js';
import { type AlertView, alertMessage } from './blocks/alert.js';
import { threadReply } from './blocks/thread.js';
import type { ChatOutbox, ChatOutboxEntry, ChatSink, SlackRefs } from './chat-port.js';

export const slackSinkName = 'slack';

/**
 * How long a claimed batch is this process's: longer than one batch takes to post (Slack's rate limits
 * included), short enough that a batch claimed by a process killed mid-way is posted by its successor
 * within half a minute.
 */
const claimLeaseMs = 30_000;

const SlackOutboxPayload = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('root'),
    incidentId: z.string(),
    channel: z.string(),
    text: z.string(),
    blocks: z.array(z.unknown()).optional(),
  }),
  z.object({ kind: z.literal('reply'), incidentId: z.string(), channel: z.string(), text: z.string() }),
  z.object({
    kind: z.literal('update'),
    incidentId: z.string(),
    channel: z.string(),
    text: z.string(),
    blocks: z.array(z.unknown()).optional(),
  }),
]);
export type SlackOutboxPayload = z.infer<typeof SlackOutboxPayload>;

/** The two Web API calls the worker makes; a WebClient fits. */
export interface SlackPostClient {
  chat: {
    postMessage(args: {
      channel: string;
      text: string;
      blocks?: unknown[];
      thread_ts?: string;
      unfurl_links?: boolean;
    }): Promise<{ ok?: boolean; ts?: string; channel?: string }>;
    update(args: {
      channel: string;
      ts: string;
      text: string;
      blocks?: unknown[];
    }): Promise<{ ok?: boolean; ts?: string; channel?: string }>;
  };
}

/**
 * A WebClient for the worker: no retries of its own and 429s thrown at once, because a retrying client
 * pauses its whole queue on one rate-limited channel; the outbox retries per message instead.
 */
export function createDeliveryClient(botToken: string, slackApiUrl?: string): SlackPostClient {
  return new webApi.WebClient(botToken, {
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    ...(slackApiUrl ? { slackApiUrl } : {}),
    logLevel: webApi.LogLevel.ERROR,
  }) as unknown as SlackPostClient;
}

export interface SlackDeliveryOptions {
  outbox: ChatOutbox;
  refs: SlackRefs;
  /** Where alerts go (SLACK_CHANNEL): an id, or a name for postMessage. */
  channel: string;
  client: SlackPostClient;
  now?: () => number;
  /** Minimum gap between two posts to one channel (Slack allows about one message per second). */
  paceMs?: number;
  /** How often the worker looks for due messages when nothing wakes it. */
  pollMs?: number;
  batchSize?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Draws the retry delays' jitter (0 … 1). */
  random?: () => number;
  logger?: Logger;
}

/** Slack answers that the same request can never succeed: retrying would block the thread forever. */
const permanentErrors = new Set([
  'invalid_blocks',
  'invalid_blocks_format',
  'msg_too_long',
  'no_text',
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'message_not_found',
  'cant_update_message',
  'edit_window_closed',
  'invalid_arguments',
  'too_many_attachments',
  'restricted_action',
  'thread_reply_not_allowed',
]);

export interface DeliveryFailure {
  retry: boolean;
  retryAfterMs?: number;
  reason: string;
  /** The Slack error code, for invalid_blocks fallbacks. */
  slackError?: string;
}

/** Retry or give up, from what the WebClient threw. Unknown failures retry: losing a message is worse. */
export function classifyFailure(error: unknown): DeliveryFailure {
  const e = (typeof error === 'object' && error !== null ? error : {}) as {
    code?: unknown;
    retryAfter?: unknown;
    statusCode?: unknown;
    headers?: Record<string, unknown>;
    data?: { error?: unknown };
    message?: unknown;
  };
  const message = typeof e.message === 'string' ? e.message : String(error);
  if (e.code === 'slack_webapi_rate_limited_error') {
    const sec = typeof e.retryAfter === 'number' && e.retryAfter > 0 ? e.retryAfter : 1;
    return { retry: true, retryAfterMs: sec * 1000, reason: `rate limited (retry after ${sec}s)` };
  }
  if (e.code === 'slack_webapi_http_error') {
    const status = typeof e.statusCode === 'number' ? e.statusCode : 0;
    const retryAfter = Number(e.headers?.['retry-after'] ?? e.headers?.['Retry-After']);
    const retryAfterMs = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter * 1000 : undefined;
    const retry = status >= 500 || status === 429 || status === 408 || status === 0;
    return { retry, reason: `HTTP ${status}`, ...(retryAfterMs ? { retryAfterMs } : {}) };
  }
  if (e.code === 'slack_webapi_platform_error') {
    const slackError = typeof e.data?.error === 'string' ? e.data.error : 'unknown_error';
    return { retry: !permanentErrors.has(slackError), reason: `Slack error ${slackError}`, slackError };
  }
  return { retry: true, reason: message };
}

function shortHash(text: string): string {
  return createHash('sha1').update(text).digest('hex').slice(0, 12);
}

/** Orders the incident's messages: root, then replies and updates, one at a time. */
export function incidentOrderingKey(incidentId: string): string {
  return `incident:${incidentId}`;
}

export class SlackDelivery implements ChatSink {
  private readonly o: Required<Omit<SlackDeliveryOptions, 'logger'>> & { logger?: Logger };
  private readonly channelNextAt = new Map<string, number>();
  private readonly channelIds = new Map<string, string>();
  private loop: Promise<void> | undefined;
  private stopped = true;
  private wake: (() => void) | undefined;
  private kicked = false;

  constructor(options: SlackDeliveryOptions) {
    this.o = {
      now: Date.now,
      paceMs: 1000,
      pollMs: 250,
      batchSize: 20,
      backoffBaseMs: 1000,
      backoffMaxMs: 5 * 60_000,
      random: Math.random,
      ...options,
      ...(options.logger ? { logger: options.logger.child({ component: 'slack-delivery' }) } : {}),
    };
  }

  /** One alert per incident: a repeat (another scan, a restart) finds the dedupe key and adds nothing. */
  postAlert(view: AlertView): void {
    const message = alertMessage(view);
    const id = view.incident.id;
    this.enqueue(
      { kind: 'root', incidentId: id, channel: this.o.channel, text: message.text, blocks: message.blocks },
      `slack:alert:${id}`,
    );
  }

  postProgress(event: ProgressEvent): void {
    const { text } = threadReply(event);
    this.enqueue(
      { kind: 'reply', incidentId: event.incidentId, channel: this.o.channel, text },
      `slack:progress:${event.incidentId}:${event.step}:${event.at}:${shortHash(text)}`,
    );
  }

  updateRoot(incidentId: string, view: AlertView): void {
    const message = alertMessage(view);
    this.enqueue({
      kind: 'update',
      incidentId,
      channel: this.o.channel,
      text: message.text,
      blocks: message.blocks,
    });
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.run();
  }

  /** Stops after the current delivery; what is pending stays in the outbox for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    this.loop = undefined;
  }

  /** Delivers what is due now (at most one batch); returns how many messages were delivered. */
  async runOnce(): Promise<number> {
    const now = this.o.now();
    const batch = this.o.outbox.claimBatch<unknown>(slackSinkName, now, this.o.batchSize, now + claimLeaseMs);
    let delivered = 0;
    for (const entry of batch) {
      // Stopping: what is left of the batch is given back at once, for the next start or another replica.
      if (this.stopped && this.loop) this.o.outbox.defer(entry.id, now);
      else if (await this.deliver(entry)) delivered += 1;
    }
    return delivered;
  }

  private enqueue(payload: SlackOutboxPayload, dedupeKey?: string): void {
    const { duplicate } = this.o.outbox.enqueue(
      slackSinkName,
      incidentOrderingKey(payload.incidentId),
      payload,
      dedupeKey ? { dedupeKey, now: this.o.now() } : { now: this.o.now() },
    );
    if (!duplicate) this.kick();
  }

  private kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      this.kicked = false;
      try {
        await this.runOnce();
      } catch (error) {
        this.o.logger?.error({ err: error }, 'slack delivery pass failed');
      }
      if (this.stopped) break;
      if (this.kicked) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.o.pollMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** true when delivered; false when left for later (pacing, retry) or given up. */
  private async deliver(entry: ChatOutboxEntry): Promise<boolean> {
    const { outbox, logger } = this.o;
    const parsed = SlackOutboxPayload.safeParse(entry.payload);
    if (!parsed.success) {
      outbox.markDead(entry.id, `unreadable payload: ${parsed.error.message}`, this.o.now());
      logger?.error({ id: entry.id }, 'unreadable slack outbox payload dropped');
      return false;
    }
    const payload = parsed.data;
    const ref = this.o.refs.get(payload.incidentId);
    // Pace by channel id: roots name the channel (`#gpu-ops`), replies carry the id Slack answered.
    const channel = ref?.channel ?? this.channelIds.get(payload.channel) ?? payload.channel;
    const now = this.o.now();
    const pacedUntil = this.channelNextAt.get(channel) ?? 0;
    if (pacedUntil > now) {
      outbox.defer(entry.id, pacedUntil);
      return false;
    }
    this.channelNextAt.set(channel, now + this.o.paceMs);

    try {
      const result = await this.call(payload, ref, channel, false);
      outbox.markDelivered(entry.id, result, this.o.now());
      return true;
    } catch (error) {
      let failure = classifyFailure(error);
      if (failure.slackError === 'invalid_blocks' && payload.kind !== 'reply') {
        // Blocks Slack refuses must not cost the message: send its text alone.
        logger?.warn({ id: entry.id, incidentId: payload.incidentId }, 'blocks refused; sending text only');
        try {
          const result = await this.call(payload, ref, channel, true);
          outbox.markDelivered(entry.id, result, this.o.now());
          return true;
        } catch (again) {
          failure = classifyFailure(again);
        }
      }
      const at = this.o.now();
      if (!failure.retry) {
        outbox.markDead(entry.id, failure.reason, at);
        logger?.error(
          { id: entry.id, incidentId: payload.incidentId, kind: payload.kind, reason: failure.reason },
          'slack message given up',
        );
        return false;
      }
      const backoff = backoffDelay(entry.attempts, {
        baseMs: this.o.backoffBaseMs,
        capMs: this.o.backoffMaxMs,
        jitter: { spread: 0.25 },
        random: this.o.random,
      });
      const delay = Math.max(failure.retryAfterMs ?? 0, backoff);
      if (failure.retryAfterMs) this.channelNextAt.set(channel, at + failure.retryAfterMs);
      outbox.markRetry(entry.id, failure.reason, at + delay);
      logger?.warn(
        {
          id: entry.id,
          incidentId: payload.incidentId,
          reason: failure.reason,
          retryInMs: Math.round(delay),
        },
        'slack delivery failed; will retry',
      );
      return false;
    }
  }

  private async call(
    payload: SlackOutboxPayload,
    ref: { channel: string; ts: string } | undefined,
    channel: string,
    textOnly: boolean,
  ): Promise<{ channel: string; ts: string }> {
    const { client, refs } = this.o;
    const blocks = textOnly || payload.kind === 'reply' ? undefined : payload.blocks;
    const content = { text: payload.text, ...(blocks ? { blocks } : {}) };
    if ((payload.kind === 'update' || payload.kind === 'root') && ref) {
      // A root that was posted before (a crash before it was marked delivered) is updated, not posted twice.
      const r = await client.chat.update({ channel: ref.channel, ts: ref.ts, ...content });
      return { channel: r.channel ?? ref.channel, ts: r.ts ?? ref.ts };
    }
    if (payload.kind === 'reply' && ref) {
      const r = await client.chat.postMessage({ channel: ref.channel, thread_ts: ref.ts, ...content });
      return { channel: r.channel ?? ref.channel, ts: r.ts ?? '' };
    }
    // A root, or a reply/update whose incident has no alert yet (a manual action, an alert given up):
    // it becomes the thread's root so the story still lands in one place.
    const r = await client.chat.postMessage({ channel, unfurl_links: false, ...content });
    if (!r.ts) throw new Error('chat.postMessage answered without a ts');
    const posted = { channel: r.channel ?? channel, ts: r.ts };
    refs.set(payload.incidentId, posted.channel, posted.ts);
    if (posted.channel !== channel) {
      this.channelIds.set(channel, posted.channel);
      this.channelNextAt.set(posted.channel, this.channelNextAt.get(channel) ?? 0);
    }
    return posted;
  }
}
