import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signWebhook, verifyWebhookSignature } from './webhook-signature.js';

const secret = 's3cret';
const body = '{"incident_id":"inc-1"}';
const now = 1_750_000_000_000;
const ts = Math.floor(now / 1000);

describe('webhook signatures', () => {
  it('is sha256=<hex HMAC of "<timestamp>.<body>">, as documented', () => {
    const hex = createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
    expect(signWebhook(secret, ts, body)).toBe(`sha256=${hex}`);
  });

  it('verifies a fresh, untouched request', () => {
    expect(verifyWebhookSignature(secret, String(ts), body, signWebhook(secret, ts, body), { now })).toBe(
      true,
    );
  });

  it.each([
    ['a tampered body', String(ts), `${body} `, signWebhook(secret, ts, body)],
    ['another secret', String(ts), body, signWebhook('other', ts, body)],
    ['a replayed old request', String(ts - 301), body, signWebhook(secret, ts - 301, body)],
    ['a timestamp swapped after signing', String(ts + 1), body, signWebhook(secret, ts, body)],
    ['a missing header', String(ts), body, undefined],
    ['a malformed header', String(ts), body, 'sha256=zz'],
    ['a malformed timestamp', 'yesterday', body, signWebhook(secret, 'yesterday', body)],
  ])('rejects %s', (_label, timestamp, b, header) => {
    expect(verifyWebhookSignature(secret, timestamp, b, header, { now })).toBe(false);
  });

  it('honours a custom tolerance', () => {
    const old = ts - 600;
    expect(
      verifyWebhookSignature(secret, old, body, signWebhook(secret, old, body), { now, toleranceSec: 900 }),
    ).toBe(true);
  });
});
