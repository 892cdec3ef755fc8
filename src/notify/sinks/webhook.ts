/**
 * The webhook sink: POST of the JSON notification, signed (see ../webhook-signature.ts), with a timeout.
 * 2xx = delivered; 408, 429 and 5xx, timeouts and network errors = retried; any other status = dead.
 */
import type { Logger } from 'pino';
import { describeIssues, StoredNotification } from '../payload.js';
import { type DeliveryResult, errorMessage, type OutboxEntry, type Sink } from '../ports.js';
import { DELIVERY_HEADER, SIGNATURE_HEADER, signWebhook, TIMESTAMP_HEADER } from '../webhook-signature.js';
import { deliverEach } from './deliver-each.js';

export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;
const RETRY_AFTER_MAX_MS = 3600_000;

export interface WebhookSinkOptions {
  url: string;
  /** WEBHOOK_SECRET; without it requests are sent unsigned (a warning is logged once). */
  secret?: string;
  timeoutMs?: number;
  concurrency?: number;
  clock?: () => number;
  fetch?: typeof fetch;
  logger?: Logger;
}

/** Retry-After in seconds or as an HTTP date. */
export function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const secs = Number(value);
  const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(value) - now;
  // Whole milliseconds: the outbox stores due times as integers (PostgreSQL refuses 1234.5 for a BIGINT).
  return Number.isFinite(ms) && ms >= 0 ? Math.min(Math.ceil(ms), RETRY_AFTER_MAX_MS) : undefined;
}

export class WebhookSink implements Sink {
  readonly name = 'webhook';
  private readonly clock: () => number;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: WebhookSinkOptions) {
    this.clock = options.clock ?? Date.now;
    this.fetch = options.fetch ?? globalThis.fetch;
    if (!options.secret) options.logger?.warn('WEBHOOK_SECRET is not set: webhook requests are not signed');
  }

  deliver(batch: OutboxEntry[]): Promise<DeliveryResult[]> {
    return deliverEach(batch, this.options.concurrency ?? 4, (entry) => this.deliverOne(entry));
  }

  private async deliverOne(entry: OutboxEntry): Promise<DeliveryResult> {
    const parsed = StoredNotification.safeParse(entry.payload);
    if (!parsed.success) {
      return { id: entry.id, outcome: 'permanent', error: `bad payload: ${describeIssues(parsed.error)}` };
    }
    const body = JSON.stringify(entry.payload);
    const timestamp = Math.floor(this.clock() / 1000);
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'User-Agent': 'gpu-medic',
      [TIMESTAMP_HEADER]: String(timestamp),
      [DELIVERY_HEADER]: String(entry.id),
    };
    if (this.options.secret) headers[SIGNATURE_HEADER] = signWebhook(this.options.secret, timestamp, body);
    let response: Response;
    try {
      response = await this.fetch(this.options.url, {
        method: 'POST',
        headers,
        body,
        // A redirect could carry the signed body somewhere unexpected: it counts as a refusal.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs ?? DEFAULT_WEBHOOK_TIMEOUT_MS),
      });
    } catch (error) {
      return { id: entry.id, outcome: 'retry', error: `webhook POST failed: ${errorMessage(error)}` };
    }
    // Drain the body so the connection can be reused; its content does not matter.
    await response.arrayBuffer().catch(() => undefined);
    const status = response.status;
    if (status >= 200 && status < 300) return { id: entry.id, outcome: 'delivered', result: { status } };
    const error = `webhook answered HTTP ${status}`;
    if (status === 408 || status === 429 || status >= 500) {
      const r: DeliveryResult = { id: entry.id, outcome: 'retry', error };
      const after = parseRetryAfter(response.headers.get('retry-after'), this.clock());
      if (after !== undefined) r.retryAfterMs = after;
      return r;
    }
    this.options.logger?.error({ id: entry.id, status }, 'webhook refused a notification; giving up on it');
    return { id: entry.id, outcome: 'permanent', error };
  }
}
