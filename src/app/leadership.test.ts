import { describe, expect, it } from 'vitest';
import { silentLogger } from '../log/logger.js';
import type { Monitor } from '../monitor/monitor.js';
import type { RemediationEngine } from '../remediate/engine.js';
import type { RemediationServices } from '../remediate/services.js';
import { type Acting, actingRole } from './leadership.js';

/** A promise and the function that settles it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

function role() {
  const events: string[] = [];
  let stopGate: Promise<void> | undefined;
  const engine = {
    start: async () => [],
    abort: async (why: string) => void events.push(`abort:${why}`),
  } as unknown as RemediationEngine;
  const services = {
    resumeFollowUps: async () => [],
    resumeDeferrals: () => [],
    stopWatching: async () => undefined,
  } as unknown as RemediationServices;
  const monitor = {
    start: () => void events.push('monitor.start'),
    stop: async () => {
      events.push('monitor.stop');
      await stopGate;
    },
  } as unknown as Monitor;
  let running = false;
  const task: Acting = {
    start: async () => {
      running = true;
    },
    stop: async () => {
      running = false;
    },
  };
  const acting = actingRole({ engine, services, monitor, logger: silentLogger() });
  acting.add(task);
  return {
    acting,
    events,
    taskRunning: () => running,
    holdStops: (g: Promise<void>) => {
      stopGate = g;
    },
  };
}

describe('the acting role', () => {
  it('a lease won back while the stop still winds down: acting, with its tasks running, once the stop is done', async () => {
    const r = role();
    await r.acting.start();
    expect([r.acting.isActing(), r.taskRunning()]).toEqual([true, true]);
    const slow = gate();
    r.holdStops(slow.promise);
    const stopping = r.acting.stop('lost the lease');
    // The runs in progress are aborted at once.
    expect(r.events).toContain('abort:lost the lease');
    const starting = r.acting.start();
    slow.open();
    await Promise.all([stopping, starting]);
    expect([r.acting.isActing(), r.taskRunning()]).toEqual([true, true]);
    expect(r.events.filter((e) => e.startsWith('monitor.'))).toEqual([
      'monitor.start',
      'monitor.stop',
      'monitor.start',
    ]);
  });

  it('start and stop are idempotent', async () => {
    const r = role();
    await Promise.all([r.acting.start(), r.acting.start()]);
    await Promise.all([r.acting.stop('a'), r.acting.stop('b')]);
    expect(r.acting.isActing()).toBe(false);
    expect(r.taskRunning()).toBe(false);
    expect(r.events.filter((e) => e.startsWith('monitor.'))).toEqual(['monitor.start', 'monitor.stop']);
  });
});
