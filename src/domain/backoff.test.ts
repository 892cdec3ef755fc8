import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.js';

const delays = (n: number, f: (retry: number) => number) => Array.from({ length: n }, (_, i) => f(i));

describe('backoffDelay', () => {
  it('doubles from the base and stops at the cap', () => {
    expect(delays(7, (r) => backoffDelay(r, { baseMs: 1_000, capMs: 30_000 }))).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000,
    ]);
  });

  it('has no cap when none is given, and stays finite however many retries', () => {
    expect(delays(4, (r) => backoffDelay(r, { baseMs: 250 }))).toEqual([250, 500, 1_000, 2_000]);
    expect(Number.isFinite(backoffDelay(10_000, { baseMs: 1_000 }))).toBe(true);
    expect(backoffDelay(10_000, { baseMs: 1_000, capMs: 60_000 })).toBe(60_000);
  });

  it('treats a negative or fractional retry as the whole retries before it', () => {
    expect(backoffDelay(-3, { baseMs: 100 })).toBe(100);
    expect(backoffDelay(2.7, { baseMs: 100 })).toBe(400);
  });

  it('full jitter draws from zero to the capped delay', () => {
    const p = (random: number) => ({
      baseMs: 250,
      capMs: 4_000,
      jitter: 'full' as const,
      random: () => random,
    });
    expect(backoffDelay(2, p(0))).toBe(0);
    expect(backoffDelay(2, p(0.5))).toBe(500);
    expect(backoffDelay(2, p(0.999))).toBe(999);
    expect(backoffDelay(9, p(0.5))).toBe(2_000);
  });

  it('equal jitter keeps half the capped delay and draws the other half', () => {
    const p = (random: number) => ({
      baseMs: 1_000,
      capMs: 300_000,
      jitter: 'equal' as const,
      random: () => random,
    });
    expect(backoffDelay(0, p(0))).toBe(500);
    expect(backoffDelay(0, p(1))).toBe(1_000);
    expect(backoffDelay(3, p(0.5))).toBe(6_000);
    expect(backoffDelay(20, p(0))).toBe(150_000);
  });

  it('a spread grows the delay by up to that fraction, within the cap', () => {
    const p = (random: number) => ({
      baseMs: 1_000,
      capMs: 300_000,
      jitter: { spread: 0.25 },
      random: () => random,
    });
    expect(backoffDelay(0, p(0))).toBe(1_000);
    expect(backoffDelay(0, p(1))).toBe(1_250);
    expect(backoffDelay(2, p(0.5))).toBe(4_500);
    // 2^8 s × 1.25 is past the cap: the cap, not the cap grown by the spread.
    expect(backoffDelay(8, p(1))).toBe(300_000);
  });

  it('asks for a random number only when it jitters', () => {
    let calls = 0;
    const random = () => {
      calls++;
      return 0.5;
    };
    backoffDelay(1, { baseMs: 10, capMs: 100 });
    expect(calls).toBe(0);
    backoffDelay(1, { baseMs: 10, capMs: 100, jitter: 'full', random });
    expect(calls).toBe(1);
  });
});
