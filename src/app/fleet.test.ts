import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { waitFor } from '../../test/support/wait.js';
import { loadConfig } from '../config/config.js';
import { type LeaderRequest, REQUEST_TTL_MS } from '../fleet/requests.js';
import { silentLogger } from '../log/logger.js';
import { openStore, type Store } from '../store/index.js';
import { fleetContextOf, requestWorker } from './fleet.js';

let store: Store;
const now = 1_000;
const clock = { now: () => now };
const config = loadConfig({ CLUSTER_NAME: 'prod', LEASE_DURATION: '15', FLEET_REQUEST_POLL: '0.05' });
const click: LeaderRequest = { kind: 'action', actionId: 'gpu_dismiss', value: '{}', userId: 'UADMIN0001' };

beforeEach(() => {
  store = openStore(':memory:', { now: clock.now });
});
afterEach(() => store.close());

describe('the leader request worker', () => {
  it('records a failed execution with its error and a thrown one does not stop the others', async () => {
    const fleet = fleetContextOf({ config, store, clock, isActing: () => false });
    const a = fleet.queue.enqueue('prod', click);
    const b = fleet.queue.enqueue('prod', { ...click, actionId: 'gpu_cordon' });
    const seen: string[] = [];
    const worker = requestWorker({
      config,
      store,
      clock,
      identity: 'leader-1',
      logger: silentLogger(),
      async execute(request) {
        if (request.kind !== 'action') throw new Error('unexpected');
        seen.push(request.actionId);
        if (request.actionId === 'gpu_dismiss') throw new Error('Slack is down');
        return { answered: 'thread' };
      },
    });
    expect(await worker.drain()).toBe(2);
    expect(seen.sort()).toEqual(['gpu_cordon', 'gpu_dismiss']);
    expect(store.requests.get(a)).toMatchObject({ status: 'failed', error: 'Slack is down' });
    expect(store.requests.get(b)).toMatchObject({ status: 'done', result: { answered: 'thread' } });
  });

  it('renews its claim while a request executes: another leader does not run it a second time', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      let t = 1_000;
      const moving = { now: () => t };
      const fleet = fleetContextOf({ config, store, clock: moving, isActing: () => false });
      const id = fleet.queue.enqueue('prod', click);
      let finish: () => void = () => {};
      const running = new Promise<void>((resolve) => {
        finish = resolve;
      });
      const base = { config, store, clock: moving, logger: silentLogger() };
      const slow = requestWorker({ ...base, identity: 'leader-1', execute: () => running.then(() => null) });
      const drained = slow.drain();
      // Half a minute later (the lease is 15 s) the first leader is still executing, and says so every 5 s.
      for (let i = 0; i < 6; i++) {
        t += 5_000;
        vi.advanceTimersByTime(5_000);
      }
      const next = requestWorker({ ...base, identity: 'leader-2', execute: async () => null });
      expect(await next.drain()).toBe(0);
      finish();
      await drained;
      expect(store.requests.get(id)).toMatchObject({ status: 'done', claimedBy: 'leader-1' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('claims and executes on its own while started', async () => {
    const fleet = fleetContextOf({ config, store, clock, isActing: () => false });
    let executed = 0;
    let signal: () => void = () => {};
    const worker = requestWorker({
      config,
      store,
      clock,
      identity: 'leader-1',
      logger: silentLogger(),
      async execute() {
        executed++;
        signal();
        return null;
      },
    });
    await worker.start();
    const first = new Promise<void>((resolve) => {
      signal = resolve;
    });
    fleet.queue.enqueue('prod', click);
    await first;
    await worker.stop('lost the lease');
    await waitFor('the request recorded done', () => store.requests.listRecent(1)[0]?.status === 'done');
    expect(executed).toBe(1);
  });

  it('claims nothing while the store is unavailable, and takes the request once it is back', async () => {
    const fleet = fleetContextOf({ config, store, clock, isActing: () => false });
    const id = fleet.queue.enqueue('prod', click);
    let up = false;
    let polls = 0;
    let claims = 0;
    const watched: Store = {
      ...store,
      available: () => {
        polls++;
        return up;
      },
      requests: {
        ...store.requests,
        claim: (...args: Parameters<Store['requests']['claim']>) => {
          claims++;
          return store.requests.claim(...args);
        },
      },
    };
    const worker = requestWorker({
      config,
      store: watched,
      clock,
      identity: 'leader-1',
      logger: silentLogger(),
      execute: async () => null,
    });
    await worker.start();
    try {
      await waitFor('three polls while the store is down', () => polls >= 3);
      expect(claims).toBe(0);
      expect(store.requests.get(id)?.status).toBe('pending');
      up = true;
      await waitFor(
        'the request done once the store is back',
        () => store.requests.get(id)?.status === 'done',
      );
    } finally {
      await worker.stop('test over');
    }
  });

  it('fails a request older than the TTL without executing it: a late click must not act on a node nobody looked at since', async () => {
    let at = 1_000;
    const later = { now: () => at };
    const fleet = fleetContextOf({ config, store, clock: later, isActing: () => false });
    const old = fleet.queue.enqueue('prod', click);
    at += REQUEST_TTL_MS - 1;
    const fresh = fleet.queue.enqueue('prod', click);
    at += 2;
    const executed: string[] = [];
    const worker = requestWorker({
      config,
      store,
      clock: later,
      identity: 'leader-1',
      logger: silentLogger(),
      async execute(request) {
        executed.push(request.userId);
        return null;
      },
    });
    expect(await worker.drain()).toBe(2);
    expect(executed).toHaveLength(1);
    expect(store.requests.get(old)).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/^expired: /),
    });
    expect(store.requests.get(fresh)?.status).toBe('done');
  });

  it('routes through the directory the leaders publish', () => {
    const fleet = fleetContextOf({ config, store, clock, isActing: () => true });
    store.fleet.replaceNodes('staging', ['n1']);
    expect(fleet.directory.clustersHavingNode('n1')).toEqual(['staging']);
    expect(fleet.acting()).toBe(true);
    expect(fleet.cluster).toBe('prod');
  });
});
