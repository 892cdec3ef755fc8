import type { Exclusion } from '../domain/ports.js';
import { type Clock, opt } from './json.js';
import type { SqlDatabase, SqlStatement } from './sql.js';

export interface ExclusionRepo {
  /** Adds or replaces the node's exclusion. */
  add(exclusion: Exclusion): void;
  /** false if the node had no exclusion (or only an expired one). */
  remove(node: string, now?: number): boolean;
  /** The node's exclusion if it has not expired at `now`. */
  get(node: string, now: number): Exclusion | undefined;
  /** Unexpired exclusions at `now`, by node. */
  list(now: number): Exclusion[];
  /** Deletes expired rows; returns how many. */
  purgeExpired(now: number): number;
}

interface Row {
  node: string;
  reason: string;
  created_by: string;
  created_at: number;
  expires_at: number | null;
}

function map(r: Row): Exclusion {
  const e: Exclusion = { node: r.node, reason: r.reason, createdBy: r.created_by, createdAt: r.created_at };
  const expiresAt = opt(r.expires_at);
  if (expiresAt !== undefined) e.expiresAt = expiresAt;
  return e;
}

const live = '(expires_at IS NULL OR expires_at > ?)';

export class SqliteExclusionRepo implements ExclusionRepo {
  private readonly ups: SqlStatement;
  private readonly del: SqlStatement;
  private readonly sel: SqlStatement<Row>;
  private readonly all: SqlStatement<Row>;
  private readonly purge: SqlStatement;

  constructor(
    db: SqlDatabase,
    private readonly clock: Clock,
  ) {
    this.ups = db.prepare(
      `INSERT INTO exclusions (node, reason, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (node) DO UPDATE SET reason = excluded.reason, created_by = excluded.created_by,
       created_at = excluded.created_at, expires_at = excluded.expires_at`,
    );
    this.del = db.prepare(`DELETE FROM exclusions WHERE node = ? AND ${live}`);
    this.sel = db.prepare(`SELECT * FROM exclusions WHERE node = ? AND ${live}`);
    this.all = db.prepare(`SELECT * FROM exclusions WHERE ${live} ORDER BY node`);
    this.purge = db.prepare('DELETE FROM exclusions WHERE expires_at IS NOT NULL AND expires_at <= ?');
  }

  add(e: Exclusion): void {
    this.ups.run(e.node, e.reason, e.createdBy, e.createdAt, e.expiresAt ?? null);
  }

  remove(node: string, now = this.clock()): boolean {
    return this.del.run(node, now).changes > 0;
  }

  get(node: string, now: number): Exclusion | undefined {
    const r = this.sel.get(node, now);
    return r ? map(r) : undefined;
  }

  list(now: number): Exclusion[] {
    return this.all.all(now).map(map);
  }

  purgeExpired(now: number): number {
    return this.purge.run(now).changes;
  }
}
