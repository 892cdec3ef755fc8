/**
 * Webhook signatures. A receiver checks, for every POST:
 *
 *   X-GpuMedic-Timestamp: <unix seconds>
 *   X-GpuMedic-Signature: sha256=<hex HMAC-SHA256(WEBHOOK_SECRET, "<timestamp>.<raw body>")>
 *
 * computed over the raw request bytes (before any JSON parsing), compared in constant time, and rejects a
 * timestamp more than 5 minutes from its clock: the timestamp is inside the signed string, so an old
 * request cannot be replayed with a fresh one. `X-GpuMedic-Delivery` (the outbox id) is the same on every
 * retry of a message: receivers use it to drop duplicates.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { systemClock } from '../domain/clock.js';

export const SIGNATURE_HEADER = 'X-GpuMedic-Signature';
export const TIMESTAMP_HEADER = 'X-GpuMedic-Timestamp';
export const DELIVERY_HEADER = 'X-GpuMedic-Delivery';
export const DEFAULT_TOLERANCE_SEC = 300;

export function signWebhook(secret: string, timestamp: number | string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * true when `header` is the signature of `body` at `timestamp` under `secret` and the timestamp is within
 * `toleranceSec` of `now` (epoch ms). Never throws on malformed input.
 */
export function verifyWebhookSignature(
  secret: string,
  timestamp: string | number | undefined,
  body: string,
  header: string | undefined,
  options: { toleranceSec?: number; now?: number } = {},
): boolean {
  if (secret === '' || header === undefined || timestamp === undefined) return false;
  const ts = String(timestamp);
  if (!/^\d{1,12}$/.test(ts)) return false;
  const nowSec = (options.now ?? systemClock.now()) / 1000;
  if (Math.abs(nowSec - Number(ts)) > (options.toleranceSec ?? DEFAULT_TOLERANCE_SEC)) return false;
  const expected = Buffer.from(signWebhook(secret, ts, body));
  const given = Buffer.from(header.trim());
  return given.length === expected.length && timingSafeEqual(given, expected);
}
