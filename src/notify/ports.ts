/**
 * What the notification fan-out needs from the outside: a persisted outbox (the SQLite store satisfies it
 * structurally), one `Sink` per destination, and thin AWS ports the adapters in src/aws implement.
 */

export type OutboxStatus = 'pending' | 'delivered' | 'dead';

/** One persisted message, as the store's outbox returns it. */
export interface OutboxEntry<P = unknown> {
  id: number;
  sink: string;
  orderingKey: string;
  payload: P;
  status: OutboxStatus;
  attempts: number;
  nextAttemptAt: number;
  lastError?: string;
  createdAt: number;
  dedupeKey?: string;
}

/** The subset of the store's OutboxRepo the fan-out uses. */
export interface OutboxPort {
  enqueue(
    sink: string,
    orderingKey: string,
    payload: unknown,
    options?: { dedupeKey?: string; now?: number },
  ): { id: number; duplicate: boolean };
  /** Per ordering key only its oldest pending message, and only when due. */
  nextBatch<P = unknown>(sink: string, now: number, limit: number): OutboxEntry<P>[];
  /**
   * `nextBatch`, taken until `leaseUntil`: another process delivering the same sink (replicas sharing one
   * PostgreSQL) skips them, so a message is not delivered twice by two processes.
   */
  claimBatch<P = unknown>(sink: string, now: number, limit: number, leaseUntil: number): OutboxEntry<P>[];
  markDelivered(id: number, result?: unknown, now?: number): boolean;
  markRetry(id: number, error: string, nextAttemptAt: number): boolean;
  markDead(id: number, error: string, now?: number): boolean;
  depth(sink?: string): number;
}

export const SinkNames = ['cloudwatch', 'sns', 'webhook', 'lambda'] as const;
export type SinkName = (typeof SinkNames)[number];

/**
 * delivered: done · retry: transient (timeouts, throttling, 5xx, network): try again later, never given up ·
 * permanent: retrying the same message cannot help (validation, 4xx): the worker marks it dead.
 */
export type DeliveryOutcome = 'delivered' | 'retry' | 'permanent';

export interface DeliveryResult {
  id: number;
  outcome: DeliveryOutcome;
  /** Kept with the delivered row (message id, status code …). */
  result?: unknown;
  error?: string;
  /** The receiver asked for this delay (Retry-After). */
  retryAfterMs?: number;
}

export interface Sink {
  readonly name: string;
  /** Whether this sink wants a message at all (CloudWatch ignores steps that make no datapoint). */
  accepts?(payload: unknown): boolean;
  /**
   * How messages are ordered: entries with the same key are delivered one at a time, oldest first.
   * Metric datapoints carry their own timestamps, so CloudWatch gives each message its own key and
   * batches freely.
   */
  orderingKey?(payload: unknown, dedupeKey: string): string;
  /** One result per entry of the batch (by id); an entry without a result is retried. */
  deliver(batch: OutboxEntry[]): Promise<DeliveryResult[]>;
}

/** A failed call with what the worker needs to decide: retry later, or give up on this message. */
export class SinkError extends Error {
  readonly code = 'SINK_ERROR';
  constructor(
    message: string,
    readonly permanent: boolean,
    readonly details: { status?: number; errorCode?: string; retryAfterMs?: number } = {},
  ) {
    super(message);
    this.name = 'SinkError';
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Maps a thrown error to a result: a SinkError says whether it is permanent; anything else is retried. */
export function failureResult(id: number, error: unknown): DeliveryResult {
  if (error instanceof SinkError) {
    const r: DeliveryResult = {
      id,
      outcome: error.permanent ? 'permanent' : 'retry',
      error: error.message,
    };
    if (error.details.retryAfterMs !== undefined) r.retryAfterMs = error.details.retryAfterMs;
    return r;
  }
  return { id, outcome: 'retry', error: errorMessage(error) };
}

// ─── AWS ports (implemented in src/aws) ──────────────────────────────────────────────────────────

export interface MetricDimension {
  name: string;
  value: string;
}

export interface MetricPoint {
  metric: string;
  value: number;
  unit: 'Count' | 'None';
  dimensions: MetricDimension[];
  /** Epoch ms. */
  timestamp: number;
}

export interface MetricPublisher {
  /** One PutMetricData call; throws SinkError. The caller keeps within the API limits. */
  putMetricData(namespace: string, points: MetricPoint[]): Promise<void>;
}

export interface TopicMessage {
  topicArn: string;
  subject: string;
  message: string;
  attributes: Record<string, string>;
  /** FIFO topics only. */
  groupId?: string;
  deduplicationId?: string;
}

export interface TopicPublisher {
  /** Throws SinkError. */
  publish(message: TopicMessage): Promise<{ messageId?: string }>;
}

export interface FunctionInvoker {
  /** Asynchronous ('Event') invocation; throws SinkError. */
  invokeAsync(functionName: string, payload: string): Promise<{ statusCode?: number }>;
}
