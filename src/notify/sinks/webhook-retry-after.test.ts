import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from './webhook.js';

describe('Retry-After', () => {
  it('reads seconds (fractions up to whole milliseconds, which the outbox stores) and HTTP dates', () => {
    const now = Date.UTC(2026, 11, 3, 12, 0, 0);
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('1.2345', now)).toBe(1235);
    expect(parseRetryAfter(new Date(now + 30_000).toUTCString(), now)).toBe(30_000);
    for (const bad of [null, '', 'soon', '-5']) expect(parseRetryAfter(bad, now)).toBeUndefined();
  });
});
