/**
 * The SQL surface the fleet repositories need, a subset of the store's dialect-neutral `SqlDatabase`
 * (prepare → get/all/run in better-sqlite3's call shape, a transaction, the dialect): the repositories are
 * written in portable SQL so that the same code runs on SQLite and PostgreSQL.
 */
import type { Database } from 'better-sqlite3';

export type SqlDialect = 'sqlite' | 'postgres';

export interface FleetStatement {
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): { changes: number };
}

export interface FleetSql {
  readonly dialect: SqlDialect;
  prepare(sql: string): FleetStatement;
  /** Runs `fn` in one transaction and returns what it returns. */
  transaction<T>(fn: () => T): T;
}

/** better-sqlite3 as the fleet repositories' SQL surface. */
export function sqliteFleetSql(db: Database): FleetSql {
  return {
    dialect: 'sqlite',
    prepare: (sql) => db.prepare(sql) as unknown as FleetStatement,
    transaction: (fn) => db.transaction(fn).immediate(),
  };
}

/**
 * The one dialect-specific fragment of the request claim: PostgreSQL locks the rows it picks and skips
 * rows another leader's transaction holds; SQLite has one writer at a time, so the statement alone is
 * atomic and needs no clause.
 */
export function claimLockClause(dialect: SqlDialect): string {
  return dialect === 'postgres' ? ' FOR UPDATE SKIP LOCKED' : '';
}
