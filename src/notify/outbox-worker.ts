/**
 * One delivery loop per sink over the persisted outbox. Each worker has its own timers and never awaits
 * another sink, so a sink that is down only delays its own messages; the monitor only enqueues (a
 * synchronous SQLite insert) and never waits for a delivery.
 *
 * Transient failures (timeouts, throttling, 5xx, network, configuration errors an operator can fix) are
 * retried with exponential backoff and jitter for as long as it takes: nothing is dropped. Only permanent
 * failures (the receiver refuses this very message) mark a message dead, after `permanentAttempts`.
 */
import type { Logger } from 'pino';
import { backoffDelay } from '../domain/backoff.js';
import type { Metrics } from '../metrics/metrics.js';
import { type DeliveryResult, errorMessage, type OutboxEntry, type OutboxPort, type Sink } from './ports.js';

export interface BackoffOptions {
  baseMs?: number;
  capMs?: number;
  random?: () => number;
}

export const DEFAULT_BACKOFF_BASE_MS = 1_000;
export const DEFAULT_BACKOFF_CAP_MS = 300_000;

/**
 * Delay before attempt `attempt + 1` after `attempt` failures (1-based): base·2^(attempt−1) capped, of which
 * the upper half is random ("equal jitter") so a recovering endpoint is not hit by every message at once.
 */
export function backoffDelayMs(attempt: number, options: BackoffOptions = {}): number {
  return backoffDelay(attempt - 1, {
    baseMs: options.baseMs ?? DEFAULT_BACKOFF_BASE_MS,
    capMs: options.capMs ?? DEFAULT_BACKOFF_CAP_MS,
    jitter: 'equal',
    random: options.random ?? Math.random,
  });
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    // A pending poll must not keep a finished process alive.
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface OutboxWorkerOptions {
  sink: Sink;
  outbox: OutboxPort;
  /** Entries fetched per round (each a different ordering key). Default 1000. */
  batchSize?: number;
  /** How often an idle worker looks for due retries. Default 1 s. */
  pollIntervalMs?: number;
  /**
   * How long a taken batch is this worker's: longer than a delivery takes. A process that dies mid-batch
   * leaves its messages due again after this. Default 5 min.
   */
  claimLeaseMs?: number;
  backoff?: BackoffOptions;
  /** Permanent failures allowed before a message is marked dead. Default 1. */
  permanentAttempts?: number;
  clock?: () => number;
  timers?: Timers;
  logger?: Logger;
  metrics?: Pick<Metrics, 'notificationDeliveries' | 'outboxDepth'>;
}

export class OutboxWorker {
  readonly sink: Sink;
  private readonly outbox: OutboxPort;
  private readonly clock: () => number;
  private readonly timers: Timers;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly permanentAttempts: number;
  private readonly logger: Logger | undefined;
  private timer: unknown;
  private inFlight: Promise<void> | undefined;
  private running = false;
  private looping = false;
  private again = false;

  constructor(private readonly options: OutboxWorkerOptions) {
    this.sink = options.sink;
    this.outbox = options.outbox;
    this.clock = options.clock ?? Date.now;
    this.timers = options.timers ?? realTimers;
    this.batchSize = options.batchSize ?? 1000;
    this.pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.permanentAttempts = Math.max(1, options.permanentAttempts ?? 1);
    this.logger = options.logger?.child({ sink: options.sink.name });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Something was enqueued: look now instead of at the next poll. */
  kick(): void {
    if (!this.running) return;
    if (this.looping) this.again = true;
    else this.schedule(0);
  }

  /** Stops polling; the delivery in flight finishes and its results are recorded. */
  async stop(): Promise<void> {
    this.running = false;
    this.clearTimer();
    await this.inFlight;
  }

  /**
   * One round: deliver what is due and record the results; returns how many entries were attempted.
   * Rounds never overlap (an entry must not be sent twice at once). The loop calls it; tests and a final
   * flush may too.
   */
  runOnce(): Promise<number> {
    const round = (this.inFlight ?? Promise.resolve()).then(() => this.round());
    const settled = round.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight = settled;
    void settled.then(() => {
      if (this.inFlight === settled) this.inFlight = undefined;
    });
    return round;
  }

  private schedule(ms: number): void {
    this.clearTimer();
    this.timer = this.timers.setTimeout(() => {
      this.timer = undefined;
      void this.loop();
    }, ms);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async loop(): Promise<void> {
    if (!this.running) return;
    if (this.looping) {
      this.again = true;
      return;
    }
    this.looping = true;
    this.again = false;
    let attempted = 0;
    try {
      attempted = await this.runOnce();
    } catch (error) {
      // The store itself failed (disk full, locked): log and try again at the next poll.
      this.logger?.error({ err: errorMessage(error) }, 'outbox round failed');
    } finally {
      this.looping = false;
    }
    if (!this.running) return;
    this.schedule(attempted > 0 || this.again ? 0 : this.pollIntervalMs);
  }

  private async round(): Promise<number> {
    const name = this.sink.name;
    const now = this.clock();
    const lease = now + (this.options.claimLeaseMs ?? 5 * 60_000);
    const batch = this.outbox.claimBatch(name, now, this.batchSize, lease);
    if (batch.length === 0) {
      this.options.metrics?.outboxDepth.set({ sink: name }, this.outbox.depth(name));
      return 0;
    }
    let results: DeliveryResult[];
    try {
      results = await this.sink.deliver(batch);
    } catch (error) {
      const message = errorMessage(error);
      results = batch.map((e) => ({ id: e.id, outcome: 'retry', error: message }));
    }
    const byId = new Map(results.map((r) => [r.id, r]));
    for (const entry of batch) {
      this.record(
        entry,
        byId.get(entry.id) ?? { id: entry.id, outcome: 'retry', error: 'no result from sink' },
      );
    }
    this.options.metrics?.outboxDepth.set({ sink: name }, this.outbox.depth(name));
    return batch.length;
  }

  private record(entry: OutboxEntry, r: DeliveryResult): void {
    const sink = this.sink.name;
    const attempt = entry.attempts + 1;
    const error = r.error ?? 'delivery failed';
    if (r.outcome === 'delivered') {
      this.outbox.markDelivered(entry.id, r.result, this.clock());
      this.options.metrics?.notificationDeliveries.inc({ sink, outcome: 'delivered' });
      return;
    }
    if (r.outcome === 'permanent' && attempt >= this.permanentAttempts) {
      this.outbox.markDead(entry.id, error, this.clock());
      this.options.metrics?.notificationDeliveries.inc({ sink, outcome: 'dead' });
      this.logger?.error({ id: entry.id, attempts: attempt, error }, 'notification refused; marked dead');
      return;
    }
    const delay = Math.max(r.retryAfterMs ?? 0, backoffDelayMs(attempt, this.options.backoff));
    this.outbox.markRetry(entry.id, error, this.clock() + delay);
    this.options.metrics?.notificationDeliveries.inc({ sink, outcome: 'retry' });
    // Early failures are routine (a blip); a long streak is worth a warning.
    const level = attempt >= 5 ? 'warn' : 'debug';
    this.logger?.[level](
      { id: entry.id, attempts: attempt, delayMs: delay, error },
      'notification delivery failed; will retry',
    );
  }
}
