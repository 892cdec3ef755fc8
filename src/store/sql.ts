/**
 * The one SQL surface every repository is written against, with better-sqlite3's call shape: SQLite
 * (better-sqlite3) and PostgreSQL (pg in a worker thread, src/store/pg/) both implement it, synchronously.
 *
 * Portable SQL only: `?` or `@name` parameters; no `json_each`, no implicit `rowid` unless the PostgreSQL
 * table has an explicit column of that name; `ON CONFLICT … DO NOTHING/UPDATE` (no `INSERT OR …`);
 * `RETURNING` instead of `lastInsertRowid`; times are epoch-ms integers, booleans 0/1, JSON as TEXT.
 * What differs between the dialects goes through the helpers below.
 */
import type { Database } from 'better-sqlite3';

export type SqlDialect = 'sqlite' | 'postgres';

/** Positional values (`?`), or one object whose keys are the `@name` parameters. */
export type SqlParams = unknown[];

export interface SqlRunResult {
  changes: number;
}

export interface SqlStatement<R = unknown> {
  get(...params: SqlParams): R | undefined;
  all(...params: SqlParams): R[];
  run(...params: SqlParams): SqlRunResult;
}

export interface SqlDatabase {
  readonly dialect: SqlDialect;
  prepare<R = unknown>(sql: string): SqlStatement<R>;
  /**
   * Runs `fn` in one transaction and returns its result; a throw rolls it back. SQLite takes the write lock
   * first (IMMEDIATE). A nested call is a savepoint: its throw undoes only its own writes.
   */
  transaction<T>(fn: () => T): T;
  /** Statements without parameters or results (DDL), possibly several separated by `;`. */
  exec(sql: string): void;
  /** False while the database cannot be reached (PostgreSQL only; a SQLite file is always there). */
  available(): boolean;
  /** How many times the connection was lost so far (0 for SQLite): an outage shorter than a poll still counts. */
  outages(): number;
  close(): void;
}

/** better-sqlite3 as a SqlDatabase; its own statements already have the right call shape. */
export class SqliteSqlDatabase implements SqlDatabase {
  readonly dialect = 'sqlite' as const;

  constructor(readonly raw: Database) {}

  prepare<R = unknown>(sql: string): SqlStatement<R> {
    return this.raw.prepare(sql) as unknown as SqlStatement<R>;
  }

  transaction<T>(fn: () => T): T {
    // better-sqlite3 turns a nested transaction into a savepoint by itself.
    return this.raw.transaction(fn).immediate();
  }

  exec(sql: string): void {
    this.raw.exec(sql);
  }

  available(): boolean {
    return this.raw.open;
  }

  outages(): number {
    return 0;
  }

  close(): void {
    this.raw.close();
  }
}

/** The better-sqlite3 connection under a SQLite store (pragmas, backups); throws for PostgreSQL. */
export function sqliteOf(db: SqlDatabase): Database {
  if (db instanceof SqliteSqlDatabase) return db.raw;
  throw new Error(`not a SQLite database (${db.dialect})`);
}

/**
 * `column IN (values)` with the values as ONE parameter, so a statement is prepared once for any number of
 * values: a JSON array unpacked by json_each in SQLite, an array compared with `= ANY` in PostgreSQL.
 */
export function inList(
  db: Pick<SqlDatabase, 'dialect'>,
  column: string,
  type: 'text' | 'bigint' = 'text',
): string {
  return db.dialect === 'sqlite'
    ? `${column} IN (SELECT value FROM json_each(?))`
    : `${column} = ANY(?::${type}[])`;
}

/** The parameter value `inList` expects. */
export function listParam(db: Pick<SqlDatabase, 'dialect'>, values: readonly (string | number)[]): unknown {
  return db.dialect === 'sqlite' ? JSON.stringify(values) : [...values];
}

/** ` FOR UPDATE` in PostgreSQL (a row lock until the transaction ends); SQLite's write lock covers it. */
export function forUpdate(db: Pick<SqlDatabase, 'dialect'>): string {
  return db.dialect === 'postgres' ? ' FOR UPDATE' : '';
}

/**
 * ` FOR UPDATE [OF table] SKIP LOCKED` in PostgreSQL: a claim that passes over rows another process is
 * taking right now instead of waiting for them (queues: the outbox, fleet requests). SQLite's write lock
 * already serialises claimers, so nothing is added there.
 */
export function skipLocked(db: Pick<SqlDatabase, 'dialect'>, of?: string): string {
  return db.dialect === 'postgres' ? ` FOR UPDATE${of ? ` OF ${of}` : ''} SKIP LOCKED` : '';
}

/** A unique-constraint violation, in either dialect (a race lost to another process, or a caller's bug). */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === '23505';
}
