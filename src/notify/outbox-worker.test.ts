import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMetrics, type Metrics } from '../metrics/metrics.js';
import { openStore, type Store } from '../store/store.js';
import { backoffDelayMs, OutboxWorker } from './outbox-worker.js';
import type { DeliveryResult, OutboxEntry, Sink } from './ports.js';

/** A sink whose answer per delivery is scripted by payload; records what it was given. */
class ScriptedSink implements Sink {
  readonly name = 'test';
  readonly seen: unknown[] = [];
  answer: (e: OutboxEntry) => DeliveryResult | Promise<DeliveryResult> = (e) => ({
    id: e.id,
    outcome: 'delivered',
  });
  async deliver(batch: OutboxEntry[]): Promise<DeliveryResult[]> {
    this.seen.push(...batch.map((e) => e.payload));
    return Promise.all(batch.map((e) => this.answer(e)));
  }
}

let now: number;
let store: Store;
let sink: ScriptedSink;
let metrics: Metrics;

beforeEach(() => {
  now = 1_000_000;
  store = openStore(':memory:', { now: () => now });
  sink = new ScriptedSink();
  metrics = createMetrics(new Registry(), { defaultMetrics: false });
});
afterEach(() => store.close());

function worker(extra: Partial<ConstructorParameters<typeof OutboxWorker>[0]> = {}): OutboxWorker {
  return new OutboxWorker({
    sink,
    outbox: store.outbox,
    clock: () => now,
    backoff: { baseMs: 1000, capMs: 300_000, random: () => 0 },
    metrics,
    ...extra,
  });
}

async function count(outcome: string): Promise<number> {
  const m = await metrics.notificationDeliveries.get();
  return m.values.find((v) => v.labels.outcome === outcome && v.labels.sink === 'test')?.value ?? 0;
}

describe('backoffDelayMs', () => {
  it.each([
    [1, 0, 500],
    [1, 1, 1000],
    [2, 0, 1000],
    [5, 1, 16_000],
    [20, 1, 300_000],
    [1000, 0, 150_000],
  ])('attempt %i with random %d → %i ms', (attempt, r, ms) => {
    expect(backoffDelayMs(attempt, { random: () => r })).toBe(ms);
  });
});

describe('OutboxWorker', () => {
  it('delivers due messages and records the result and metrics', async () => {
    store.outbox.enqueue('test', 'k1', { n: 1 });
    store.outbox.enqueue('other', 'k1', { n: 'not mine' });
    const w = worker();
    expect(await w.runOnce()).toBe(1);
    expect(sink.seen).toEqual([{ n: 1 }]);
    expect(store.outbox.depth('test')).toBe(0);
    expect(store.outbox.depth('other')).toBe(1);
    expect(await count('delivered')).toBe(1);
    expect((await metrics.outboxDepth.get()).values).toContainEqual({ labels: { sink: 'test' }, value: 0 });
  });

  it('retries transient failures with backoff, keeping later messages of the key behind', async () => {
    const first = store.outbox.enqueue('test', 'k', { n: 1 });
    store.outbox.enqueue('test', 'k', { n: 2 });
    let fail = 3;
    sink.answer = (e) =>
      fail-- > 0 ? { id: e.id, outcome: 'retry', error: 'HTTP 503' } : { id: e.id, outcome: 'delivered' };
    const w = worker();

    await w.runOnce();
    expect(store.outbox.get(first.id)).toMatchObject({
      attempts: 1,
      nextAttemptAt: now + 500,
      lastError: 'HTTP 503',
    });
    expect(await w.runOnce()).toBe(0); // not due yet, and message 2 must not overtake
    now += 500;
    await w.runOnce();
    expect(store.outbox.get(first.id)?.nextAttemptAt).toBe(now + 1000);
    now += 1000;
    await w.runOnce();
    now += 2000;
    await w.runOnce(); // 4th attempt of message 1 succeeds
    await w.runOnce(); // then message 2
    expect(sink.seen).toEqual([{ n: 1 }, { n: 1 }, { n: 1 }, { n: 1 }, { n: 2 }]);
    expect(store.outbox.depth('test')).toBe(0);
    expect(await count('retry')).toBe(3);
  });

  it('honours Retry-After when it is longer than the backoff', async () => {
    const m = store.outbox.enqueue('test', 'k', {});
    sink.answer = (e) => ({ id: e.id, outcome: 'retry', error: '429', retryAfterMs: 60_000 });
    await worker().runOnce();
    expect(store.outbox.get(m.id)?.nextAttemptAt).toBe(now + 60_000);
  });

  it('marks a permanently refused message dead and moves on to the next of its key', async () => {
    const bad = store.outbox.enqueue('test', 'k', { bad: true });
    store.outbox.enqueue('test', 'k', { bad: false });
    sink.answer = (e) =>
      (e.payload as { bad: boolean }).bad
        ? { id: e.id, outcome: 'permanent', error: 'HTTP 400' }
        : { id: e.id, outcome: 'delivered' };
    const w = worker();
    await w.runOnce();
    expect(store.outbox.get(bad.id)).toMatchObject({ status: 'dead', lastError: 'HTTP 400' });
    await w.runOnce();
    expect(store.outbox.depth('test')).toBe(0);
    expect(await count('dead')).toBe(1);
  });

  it('allows several permanent failures when configured', async () => {
    const m = store.outbox.enqueue('test', 'k', {});
    sink.answer = (e) => ({ id: e.id, outcome: 'permanent', error: 'HTTP 400' });
    const w = worker({ permanentAttempts: 2 });
    await w.runOnce();
    expect(store.outbox.get(m.id)?.status).toBe('pending');
    now += 10_000;
    await w.runOnce();
    expect(store.outbox.get(m.id)?.status).toBe('dead');
  });

  it('retries everything when the sink throws or forgets a result', async () => {
    const a = store.outbox.enqueue('test', 'a', {});
    const b = store.outbox.enqueue('test', 'b', {});
    sink.deliver = async () => {
      throw new Error('boom');
    };
    await worker().runOnce();
    expect(store.outbox.get(a.id)).toMatchObject({ status: 'pending', attempts: 1, lastError: 'boom' });
    sink.deliver = async (batch) =>
      batch.filter((e) => e.id === a.id).map((e) => ({ id: e.id, outcome: 'delivered' }));
    now += 10_000;
    await worker().runOnce();
    expect(store.outbox.get(a.id)?.status).toBe('delivered');
    expect(store.outbox.get(b.id)).toMatchObject({
      status: 'pending',
      attempts: 2,
      lastError: 'no result from sink',
    });
  });

  it('runs by itself once started, is kicked on enqueue, and stop() lets the delivery in flight finish', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const delivering = vi.fn();
    sink.answer = async (e) => {
      delivering();
      await gate;
      return { id: e.id, outcome: 'delivered' };
    };
    const w = worker({ clock: Date.now, pollIntervalMs: 60_000 });
    w.start();
    const m = store.outbox.enqueue('test', 'k', {}, { now: Date.now() });
    w.kick();
    await vi.waitFor(() => expect(delivering).toHaveBeenCalled());
    const stopped = w.stop();
    release();
    await stopped;
    expect(store.outbox.get(m.id)?.status).toBe('delivered');
  });
});
