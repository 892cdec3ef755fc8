import { describe, expect, it } from 'vitest';
import { breakerNodes, checkSafety, type SafetyInput, shouldTripBreaker } from './safety.js';

const now = Date.parse('2025-01-02T00:00:00Z');
const base: SafetyInput = {
  trigger: 'auto',
  action: 'reboot',
  node: 'n1',
  inFlight: 0,
  maxConcurrent: 1,
  recentRemediations: [],
  perHour: 5,
  now,
  breakerOpen: false,
  dryRun: false,
  excluded: undefined,
  optOutLabel: false,
};
const exclusion = { node: 'n1', reason: 'vendor RMA', createdBy: 'slack:U1', createdAt: now - 1000 };

describe('checkSafety', () => {
  it.each<[string, Partial<SafetyInput>, string | undefined]>([
    ['all clear', {}, undefined],
    ['excluded', { excluded: exclusion }, 'excluded'],
    ['excluded, even for a human', { excluded: exclusion, trigger: 'manual' }, 'excluded'],
    ['opt-out label', { optOutLabel: true }, 'opt_out'],
    ['opt-out label, even for a human', { optOutLabel: true, trigger: 'manual' }, 'opt_out'],
    ['breaker open', { breakerOpen: true }, 'breaker'],
    ['breaker open, human bypasses', { breakerOpen: true, trigger: 'manual' }, undefined],
    ['at max concurrent', { inFlight: 1 }, 'concurrency'],
    ['at max concurrent, a human too', { inFlight: 1, trigger: 'manual' }, 'concurrency'],
    [
      'uncordon is never held by concurrency',
      { inFlight: 3, action: 'uncordon', trigger: 'manual' },
      undefined,
    ],
    ['5 in the last hour', { recentRemediations: [1, 2, 3, 4, 5].map((m) => now - m * 60_000) }, 'rate'],
    [
      '5 in the last hour, human bypasses',
      { trigger: 'manual', recentRemediations: [1, 2, 3, 4, 5].map((m) => now - m * 60_000) },
      undefined,
    ],
    [
      'old ones do not count',
      { recentRemediations: [61, 62, 63, 64, 65].map((m) => now - m * 60_000) },
      undefined,
    ],
  ])('%s', (_, patch, limit) => {
    const v = checkSafety({ ...base, ...patch });
    if (limit === undefined) expect(v).toEqual({ allowed: true });
    else {
      expect(v).toMatchObject({ allowed: false, limit });
      expect(v.allowed ? '' : v.message).toContain('n1');
    }
  });

  it('tells how to undo an exclusion', () => {
    const v = checkSafety({ ...base, excluded: exclusion });
    expect(v.allowed ? '' : v.message).toContain('/gpu unexclude n1');
  });
});

describe('shouldTripBreaker', () => {
  it.each([
    [0, 10, false],
    [2, 10, false],
    [3, 10, true],
    [4, 10, true],
    [1, 0, false],
    [0, 0, false],
    // A single broken node never trips the percentage: a 4-node cluster can still repair one node.
    [1, 4, false],
    [1, 2, false],
    [2, 4, true],
  ])('%i of %i nodes unhealthy (max 20%%) → trip %s', (n, total, trip) => {
    expect(
      shouldTripBreaker({ unhealthyOrCordonedByUs: n, gpuNodeCount: total, maxUnhealthyPercent: 20 }).trip,
    ).toBe(trip);
  });

  it('trips on maxUnhealthyNodes too', () => {
    const r = shouldTripBreaker({
      unhealthyOrCordonedByUs: 3,
      gpuNodeCount: 100,
      maxUnhealthyPercent: 20,
      maxUnhealthyNodes: 2,
    });
    expect(r.trip).toBe(true);
    expect(r.message).toContain('/gpu resume');
  });
});

describe('breakerNodes: what the GPU circuit breaker counts', () => {
  const since = now - 600_000;
  const inc = (
    node: string,
    category: string,
    severity: 'warning' | 'critical',
    state = 'detected' as const,
  ) => ({
    node,
    category,
    severity,
    state,
    lastSeen: now,
  });

  it('counts recent critical GPU incidents and remediations in flight, once per node', () => {
    const nodes = breakerNodes(
      [
        inc('a', 'XID_CRITICAL_79', 'critical'),
        inc('a', 'ECC_ERROR', 'critical'),
        { ...inc('b', 'XID_WARNING_13', 'warning'), state: 'rebooting' as const },
        inc('c', 'XID_WARNING_13', 'warning'),
        { ...inc('d', 'GPU_MISSING', 'critical'), lastSeen: since - 1 },
      ],
      since,
    );
    expect([...nodes].sort()).toEqual(['a', 'b']);
  });

  it('never counts a node problem (NODE_CONDITION), even critical or being acted on by a policy rule', () => {
    const nodes = breakerNodes(
      [
        inc('k1', 'NODE_CONDITION', 'warning'),
        inc('k2', 'NODE_CONDITION', 'critical'),
        { ...inc('k3', 'NODE_CONDITION', 'warning'), state: 'cordoned' as const },
      ],
      since,
    );
    expect(nodes.size).toBe(0);
  });
});
