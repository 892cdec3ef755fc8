import { type Clock, fromJson, opt, toJson } from './json.js';
import { inList, listParam, type SqlDatabase, type SqlStatement, skipLocked } from './sql.js';

export const OutboxStatuses = ['pending', 'delivered', 'dead'] as const;
export type OutboxStatus = (typeof OutboxStatuses)[number];

/**
 * A message to a sink (slack, sns, webhook, cloudwatch, lambda), persisted before delivery so an outage
 * delays it and never loses it. Messages sharing an `orderingKey` (a Slack thread, a channel) are delivered
 * one at a time, oldest first.
 */
export interface OutboxMessage<P = unknown> {
  id: number;
  sink: string;
  orderingKey: string;
  payload: P;
  status: OutboxStatus;
  attempts: number;
  nextAttemptAt: number;
  lastError?: string;
  createdAt: number;
  deliveredAt?: number;
  /** What the sink answered (e.g. the Slack `ts`), for later messages that refer to this one. */
  result?: unknown;
  dedupeKey?: string;
}

export interface EnqueueResult {
  id: number;
  /** true: a message with that dedupeKey already existed; nothing was added. */
  duplicate: boolean;
}

export interface OutboxRepo {
  enqueue(
    sink: string,
    orderingKey: string,
    payload: unknown,
    options?: { dedupeKey?: string; now?: number },
  ): EnqueueResult;
  /**
   * Up to `limit` messages due at `now`: per ordering key only its OLDEST pending message, and only if that
   * one is due (a later message never overtakes an earlier one waiting for its retry).
   */
  nextBatch<P = unknown>(sink: string, now: number, limit: number): OutboxMessage<P>[];
  /**
   * `nextBatch`, taken: the messages returned are not due again until `leaseUntil`, so another process
   * delivering the same sink skips them (PostgreSQL: rows locked FOR UPDATE SKIP LOCKED while taken). The
   * taker then marks each delivered, retry or dead; a taker that dies leaves them due again at `leaseUntil`.
   */
  claimBatch<P = unknown>(sink: string, now: number, limit: number, leaseUntil: number): OutboxMessage<P>[];
  /**
   * Leaves a taken message pending and due at `dueAt` without counting an attempt: a claim given back
   * (pacing, a stop before it was sent).
   */
  defer(id: number, dueAt: number): boolean;
  markDelivered(id: number, result?: unknown, now?: number): boolean;
  /** Counts an attempt and schedules the next one. */
  markRetry(id: number, error: string, nextAttemptAt: number): boolean;
  /** Gives up on a message (permanent error): counts the attempt; the next message of its key proceeds. */
  markDead(id: number, error: string, now?: number): boolean;
  get<P = unknown>(id: number): OutboxMessage<P> | undefined;
  getByDedupeKey<P = unknown>(dedupeKey: string): OutboxMessage<P> | undefined;
  /** Pending messages, for one sink or all. */
  depth(sink?: string): number;
  /** Deletes delivered/dead messages older than `before`; returns how many. */
  prune(before: number): number;
}

interface Row {
  id: number;
  sink: string;
  ordering_key: string;
  payload: string;
  status: OutboxStatus;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  created_at: number;
  delivered_at: number | null;
  result: string | null;
  dedupe_key: string | null;
}

function map<P>(r: Row): OutboxMessage<P> {
  const m: OutboxMessage<P> = {
    id: r.id,
    sink: r.sink,
    orderingKey: r.ordering_key,
    payload: fromJson<P>(r.payload, null as P),
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    createdAt: r.created_at,
  };
  const extra = {
    lastError: opt(r.last_error),
    deliveredAt: opt(r.delivered_at),
    result: r.result === null ? undefined : fromJson<unknown>(r.result, null),
    dedupeKey: opt(r.dedupe_key),
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) Object.assign(m, { [k]: v });
  return m;
}

export class SqliteOutboxRepo implements OutboxRepo {
  private readonly ins: SqlStatement<{ id: number }>;
  private readonly byKey: SqlStatement<Row>;
  private readonly byId: SqlStatement<Row>;
  private readonly batch: SqlStatement<Row>;
  private readonly claim: SqlStatement<Row>;
  private readonly lease: SqlStatement;
  private readonly delivered: SqlStatement;
  private readonly retry: SqlStatement;
  private readonly dead: SqlStatement;
  private readonly depthAll: SqlStatement<{ n: number }>;
  private readonly depthSink: SqlStatement<{ n: number }>;
  private readonly pruneStmt: SqlStatement;

  constructor(
    private readonly db: SqlDatabase,
    private readonly clock: Clock,
  ) {
    this.ins = db.prepare(
      `INSERT INTO outbox (sink, ordering_key, payload, next_attempt_at, created_at, dedupe_key)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id`,
    );
    this.byKey = db.prepare('SELECT * FROM outbox WHERE dedupe_key = ?');
    this.byId = db.prepare('SELECT * FROM outbox WHERE id = ?');
    this.batch = db.prepare(
      `SELECT o.* FROM outbox o
       JOIN (SELECT MIN(id) AS head FROM outbox WHERE sink = ? AND status = 'pending' GROUP BY ordering_key) h
         ON o.id = h.head
       WHERE o.next_attempt_at <= ?
       ORDER BY o.id LIMIT ?`,
    );
    // The same heads, locked; in PostgreSQL a head another process is taking right now is skipped, never
    // replaced by the next message of its key (that one is not a head).
    this.claim = db.prepare(
      `SELECT o.* FROM outbox o
       JOIN (SELECT MIN(id) AS head FROM outbox WHERE sink = ? AND status = 'pending' GROUP BY ordering_key) h
         ON o.id = h.head
       WHERE o.next_attempt_at <= ? AND o.status = 'pending'
       ORDER BY o.id LIMIT ?${skipLocked(db, 'o')}`,
    );
    this.lease = db.prepare(
      `UPDATE outbox SET next_attempt_at = ? WHERE ${inList(db, 'id', 'bigint')} AND status = 'pending'`,
    );
    this.delivered = db.prepare(
      `UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, result = ?, last_error = NULL
       WHERE id = ? AND status = 'pending'`,
    );
    this.retry = db.prepare(
      `UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?
       WHERE id = ? AND status = 'pending'`,
    );
    this.dead = db.prepare(
      `UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_error = ?, delivered_at = ?
       WHERE id = ? AND status = 'pending'`,
    );
    this.depthAll = db.prepare("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending'");
    this.depthSink = db.prepare("SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending' AND sink = ?");
    this.pruneStmt = db.prepare(
      "DELETE FROM outbox WHERE status IN ('delivered', 'dead') AND created_at < ?",
    );
  }

  enqueue(
    sink: string,
    orderingKey: string,
    payload: unknown,
    options: { dedupeKey?: string; now?: number } = {},
  ): EnqueueResult {
    const dedupe = options.dedupeKey ?? null;
    const now = options.now ?? this.clock();
    const text = toJson(payload);
    return this.db.transaction(() => {
      const inserted = this.ins.get(sink, orderingKey, text, now, now, dedupe);
      if (inserted) return { id: inserted.id, duplicate: false };
      const existing = dedupe === null ? undefined : this.byKey.get(dedupe);
      if (!existing) throw new Error('outbox insert ignored without a matching dedupe key');
      return { id: existing.id, duplicate: true };
    });
  }

  nextBatch<P = unknown>(sink: string, now: number, limit: number): OutboxMessage<P>[] {
    return this.batch.all(sink, now, limit).map((r) => map<P>(r));
  }

  claimBatch<P = unknown>(sink: string, now: number, limit: number, leaseUntil: number): OutboxMessage<P>[] {
    return this.db.transaction(() => {
      const rows = this.claim.all(sink, now, limit);
      if (rows.length > 0)
        this.lease.run(
          leaseUntil,
          listParam(
            this.db,
            rows.map((r) => r.id),
          ),
        );
      return rows.map((r) => map<P>(r));
    });
  }

  defer(id: number, dueAt: number): boolean {
    return this.lease.run(dueAt, listParam(this.db, [id])).changes === 1;
  }

  markDelivered(id: number, result?: unknown, now = this.clock()): boolean {
    return this.delivered.run(now, result === undefined ? null : toJson(result), id).changes === 1;
  }

  markRetry(id: number, error: string, nextAttemptAt: number): boolean {
    return this.retry.run(error, nextAttemptAt, id).changes === 1;
  }

  markDead(id: number, error: string, now = this.clock()): boolean {
    return this.dead.run(error, now, id).changes === 1;
  }

  get<P = unknown>(id: number): OutboxMessage<P> | undefined {
    const r = this.byId.get(id);
    return r ? map<P>(r) : undefined;
  }

  getByDedupeKey<P = unknown>(dedupeKey: string): OutboxMessage<P> | undefined {
    const r = this.byKey.get(dedupeKey);
    return r ? map<P>(r) : undefined;
  }

  depth(sink?: string): number {
    return (sink === undefined ? this.depthAll.get() : this.depthSink.get(sink))?.n ?? 0;
  }

  prune(before: number): number {
    return this.pruneStmt.run(before).changes;
  }
}
