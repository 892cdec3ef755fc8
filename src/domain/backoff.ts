/**
 * Exponential backoff, pure: retry number → delay. Every retry loop computes its wait here, so the curves
 * differ only by their figures. Randomness is a parameter, so a test can pin it.
 */

/**
 * How the exponential delay is spread, so many callers that failed together do not retry together:
 * - `none`: exactly base·2^retry (capped);
 * - `full`: uniformly 0 … the capped delay;
 * - `equal`: half the capped delay, plus uniformly 0 … the other half;
 * - `{ spread }`: the delay grown by uniformly 0 … `spread` of itself, then capped.
 */
export type Jitter = 'none' | 'full' | 'equal' | { spread: number };

export type BackoffPolicy = {
  /** The first retry's delay. */
  baseMs: number;
  /** The longest delay; none when omitted (the loop's attempt limit bounds it). */
  capMs?: number;
} & ({ jitter?: 'none' } | { jitter: Exclude<Jitter, 'none'>; random: () => number });

/** Doublings past this change nothing with any cap in use, and keep the arithmetic finite. */
const MAX_DOUBLINGS = 40;

/**
 * The delay before retry number `retry` (0 for the first retry, after the first failure): base·2^retry,
 * capped, jittered as the policy says. Jittered delays are whole milliseconds.
 */
export function backoffDelay(retry: number, policy: BackoffPolicy): number {
  const cap = policy.capMs ?? Number.POSITIVE_INFINITY;
  const doublings = Math.min(Math.max(Math.floor(retry), 0), MAX_DOUBLINGS);
  const raw = policy.baseMs * 2 ** doublings;
  if (!('random' in policy)) return Math.min(cap, raw);
  const r = policy.random();
  const { jitter } = policy;
  if (jitter === 'full') return Math.round(r * Math.min(cap, raw));
  if (jitter === 'equal') {
    const capped = Math.min(cap, raw);
    return Math.round(capped / 2 + (capped / 2) * r);
  }
  return Math.round(Math.min(cap, raw * (1 + r * jitter.spread)));
}
