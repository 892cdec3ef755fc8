/**
 * PostgreSQL as a synchronous SqlDatabase: `pg` runs in a worker thread (worker-source.ts) and each call
 * sleeps in Atomics.wait until the worker answers, so the repositories and the ports above them stay
 * synchronous, exactly as with better-sqlite3.
 *
 * Never blocks forever: the server cancels a statement after `statementTimeoutMs`, and the caller stops
 * waiting a little later still. While the connection is down a call fails at once with a StoreError
 * STORE_UNAVAILABLE (no round trip), and the worker reconnects with backoff in the background.
 */
import { createRequire } from 'node:module';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { backoffDelay } from '../../domain/backoff.js';
import type { SqlDatabase, SqlRunResult, SqlStatement } from '../sql.js';
import { StoreError } from '../store-error.js';
import { pgWorkerSource } from './worker-source.js';

export interface PgConnectOptions {
  url: string;
  /** `schema, schema …`, already quoted where needed; set on every (re)connection. */
  searchPath?: string;
  /** The server cancels a statement after this long. Default 15 s. */
  statementTimeoutMs?: number;
  /** Connecting (at start-up and on each reconnect) gives up after this long. Default 10 s. */
  connectTimeoutMs?: number;
  /** Reconnect delays: exponential with jitter from this base up to this cap. Default 250 ms … 10 s. */
  reconnect?: { baseMs: number; capMs: number };
}

interface WireError {
  message: string;
  code?: string;
  unavailable?: boolean;
}

type Answer =
  | { id: number; ok: true; rows?: unknown[]; rowCount?: number; command?: string }
  | { id: number; ok: false; error: WireError };

type TxMark = 'begin' | 'in' | 'end';

/** Where the URL points, without user or password: what every error sentence names. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    const db = u.pathname.replace(/^\//, '') || '(default database)';
    return `${u.hostname || 'localhost'}:${u.port || '5432'}/${decodeURIComponent(db)}`;
  } catch {
    return '(an unparsable DATABASE_URL)';
  }
}

/**
 * `?` and `@name` → `$1 …`, outside quoted text. Named parameters keep their order of first appearance;
 * a name used twice is one parameter.
 */
export function rewriteParams(sql: string): { text: string; names?: string[] } {
  let out = '';
  let n = 0;
  const names: string[] = [];
  let quote: string | undefined;
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i] as string;
    if (quote) {
      out += ch;
      if (ch === quote) quote = undefined;
      continue;
    }
    if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') {
      out += `$${++n}`;
    } else if (ch === '@' && /[A-Za-z_]/.test(sql[i + 1] ?? '')) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(sql.slice(i + 1));
      const name = m?.[0] ?? '';
      let at = names.indexOf(name);
      if (at < 0) at = names.push(name) - 1;
      out += `$${at + 1}`;
      i += name.length;
    } else {
      out += ch;
    }
  }
  if (n > 0 && names.length > 0) throw new Error(`mixed ? and @name parameters in: ${sql}`);
  return names.length > 0 ? { text: out, names } : { text: out };
}

function values(params: unknown[], names: string[] | undefined): unknown[] {
  if (names) {
    const obj = (params[0] ?? {}) as Record<string, unknown>;
    return names.map((k) => obj[k] ?? null);
  }
  return params.map((v) => (v === undefined ? null : v));
}

class PgStatement<R> implements SqlStatement<R> {
  private readonly text: string;
  private readonly names: string[] | undefined;

  constructor(
    private readonly db: PgSqlDatabase,
    sql: string,
  ) {
    const r = rewriteParams(sql);
    this.text = r.text;
    this.names = r.names;
  }

  get(...params: unknown[]): R | undefined {
    return this.db.query(this.text, values(params, this.names)).rows[0] as R | undefined;
  }

  all(...params: unknown[]): R[] {
    return this.db.query(this.text, values(params, this.names)).rows as R[];
  }

  run(...params: unknown[]): SqlRunResult {
    return { changes: this.db.query(this.text, values(params, this.names)).rowCount };
  }
}

export class PgSqlDatabase implements SqlDatabase {
  readonly dialect = 'postgres' as const;
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly ctrl: Int32Array;
  private readonly waitMs: number;
  private readonly where: string;
  private nextId = 1;
  private depth = 0;
  private sent = 0;
  private deadReason: string | undefined;
  private closed = false;

  /** Connects before returning; a server that cannot be reached is a StoreError naming host:port/database. */
  constructor(options: PgConnectOptions) {
    this.where = describeUrl(options.url);
    const statementTimeoutMs = options.statementTimeoutMs ?? 15_000;
    const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.waitMs = statementTimeoutMs + 3_000;
    const policy = options.reconnect ?? { baseMs: 250, capMs: 10_000 };
    const reconnectDelaysMs = Array.from({ length: 16 }, (_, i) =>
      backoffDelay(i, { ...policy, jitter: 'equal', random: Math.random }),
    );
    const shared = new SharedArrayBuffer(12);
    this.ctrl = new Int32Array(shared);
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(pgWorkerSource, {
      eval: true,
      workerData: {
        pgPath: createRequire(import.meta.url).resolve('pg'),
        url: options.url,
        searchPath: options.searchPath,
        statementTimeoutMs,
        connectTimeoutMs,
        reconnectDelaysMs,
        shared,
        port: port2,
      },
      transferList: [port2],
    });
    this.worker.unref();
    // A worker that died answers nothing more: fail every later call at once rather than after the wait.
    this.worker.on('error', (err) => {
      this.deadReason = `the database worker failed: ${err.message}`;
    });
    this.worker.on('exit', (code) => {
      this.deadReason ??= `the database worker exited (code ${code})`;
    });
    const a = this.send({ op: 'connect' }, connectTimeoutMs + 3_000);
    if (!a.ok) {
      this.stopWorker();
      throw new StoreError(
        'STORE_OPEN_FAILED',
        this.where,
        `cannot connect to PostgreSQL at ${this.where}: ${explain(a.error, connectTimeoutMs)}. Check DATABASE_URL, ` +
          'that the server is running and reachable from here, and its user, password and database.',
      );
    }
  }

  /** Round trips to the server so far (statements, BEGIN/COMMIT, savepoints): what the bench counts. */
  get roundTrips(): number {
    return this.sent;
  }

  /** The host:port/database this connection is to (no credentials). */
  get location(): string {
    return this.where;
  }

  prepare<R = unknown>(sql: string): SqlStatement<R> {
    return new PgStatement<R>(this, sql);
  }

  exec(sql: string): void {
    this.check(this.send({ op: 'query', sql, tx: this.mark() }));
  }

  available(): boolean {
    return !this.closed && !this.deadReason && Atomics.load(this.ctrl, 1) === 1;
  }

  outages(): number {
    return Atomics.load(this.ctrl, 2);
  }

  transaction<T>(fn: () => T): T {
    const level = this.depth;
    const sp = `gm_sp${level}`;
    this.check(
      this.send({
        op: 'query',
        sql: level === 0 ? 'BEGIN' : `SAVEPOINT ${sp}`,
        tx: level === 0 ? 'begin' : 'in',
      }),
    );
    this.depth++;
    let result: T;
    try {
      result = fn();
    } catch (err) {
      this.depth--;
      if (level === 0) {
        // The original error is what the caller needs; a failed rollback (connection gone) ends it anyway.
        this.send({ op: 'query', sql: 'ROLLBACK', tx: 'end', rollback: true });
        throw err;
      }
      const undo = this.send({ op: 'query', sql: `ROLLBACK TO SAVEPOINT ${sp}`, tx: 'in', rollback: true });
      // Not undone, the enclosing transaction stays aborted: a caller that caught the inner error and carried
      // on would write nothing, so it must not see an error it takes for the inner one alone.
      if (!undo.ok) throw this.savepointFailed(err, undo.error);
      throw err;
    }
    this.depth--;
    if (level === 0) {
      const done = this.check(this.send({ op: 'query', sql: 'COMMIT', tx: 'end' }));
      // PostgreSQL answers COMMIT of a transaction an error aborted with ROLLBACK and no error: the caller
      // caught that error and carried on, and every write of the transaction is gone.
      if (done.command === 'ROLLBACK') {
        throw Object.assign(
          new Error('the transaction was rolled back by an earlier error; nothing was written'),
          { code: '25P02' },
        );
      }
    } else {
      this.check(this.send({ op: 'query', sql: `RELEASE SAVEPOINT ${sp}`, tx: 'in' }));
    }
    return result;
  }

  /** One statement: what PgStatement calls. */
  query(sql: string, vals: unknown[]): { rows: unknown[]; rowCount: number } {
    const a = this.check(this.send({ op: 'query', sql, values: vals, tx: this.mark() }));
    return { rows: a.rows ?? [], rowCount: a.rowCount ?? 0 };
  }

  close(): void {
    if (this.closed) return;
    this.send({ op: 'close' }, 5_000);
    this.closed = true;
    this.stopWorker();
  }

  private mark(): TxMark | undefined {
    return this.depth > 0 ? 'in' : undefined;
  }

  private stopWorker(): void {
    this.closed = true;
    this.port.close();
    void this.worker.terminate();
  }

  private savepointFailed(original: unknown, e: WireError): Error {
    const what = original instanceof Error ? original.message : String(original);
    if (e.unavailable) {
      return new StoreError('STORE_UNAVAILABLE', this.where, `PostgreSQL at ${this.where}: ${e.message}`, {
        cause: original,
      });
    }
    return Object.assign(
      new Error(
        `${what}; and ROLLBACK TO SAVEPOINT failed too (${e.message}), so the whole transaction is aborted ` +
          'and nothing of it will be written',
        { cause: original },
      ),
      { code: '25P02' },
    );
  }

  private check(a: Answer): Extract<Answer, { ok: true }> {
    if (a.ok) return a;
    if (a.error.unavailable) {
      throw new StoreError(
        'STORE_UNAVAILABLE',
        this.where,
        `PostgreSQL at ${this.where}: ${a.error.message}`,
      );
    }
    throw Object.assign(new Error(a.error.message), { code: a.error.code });
  }

  /** Posts a request and sleeps until its answer (or the bounded wait ends). */
  private send(req: Record<string, unknown>, waitMs = this.waitMs): Answer {
    const id = this.nextId++;
    if (this.closed) return unavailableAnswer(id, 'the store is closed');
    if (this.deadReason) return unavailableAnswer(id, this.deadReason);
    if (req.op === 'query' && Atomics.load(this.ctrl, 1) === 0 && !req.rollback) {
      return unavailableAnswer(id, 'the database is unavailable; reconnecting');
    }
    this.port.postMessage({ ...req, id });
    this.sent++;
    const deadline = Date.now() + waitMs;
    for (;;) {
      // Read the counter before looking for the answer: an answer posted in between wakes the wait at once.
      const seen = Atomics.load(this.ctrl, 0);
      const msg = receiveMessageOnPort(this.port)?.message as Answer | undefined;
      if (msg) {
        if (msg.id === id) return msg;
        continue; // a late answer to a request given up on
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      Atomics.wait(this.ctrl, 0, seen, left);
    }
    this.port.postMessage({ op: 'drop', id: this.nextId++, reason: `no answer within ${waitMs} ms` });
    return unavailableAnswer(id, `no answer within ${waitMs} ms`);
  }
}

function unavailableAnswer(id: number, message: string): Answer {
  return { id, ok: false, error: { message, code: 'STORE_UNAVAILABLE', unavailable: true } };
}

/** The driver's reason in words an operator acts on (never the password: pg does not echo it). */
function explain(e: WireError, connectTimeoutMs: number): string {
  if (e.code === 'STORE_UNAVAILABLE' || /timeout/i.test(e.message)) {
    return `no answer within ${connectTimeoutMs / 1000} s (a firewall or security group dropping the connection?)`;
  }
  switch (e.code) {
    case 'ECONNREFUSED':
      return 'connection refused (no server listening there)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name not found';
    case '28P01':
      return 'password authentication failed';
    case '28000':
      return `not authorised (${e.message})`;
    case '3D000':
      return `the database does not exist (${e.message})`;
    default:
      return e.message;
  }
}
