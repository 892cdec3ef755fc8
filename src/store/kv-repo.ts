import { type Clock, fromJson, toJson } from './json.js';
import type { SqlDatabase, SqlStatement } from './sql.js';

/** Small named state that must survive a restart: breaker open/paused, last leader, counters … */
export interface KvRepo {
  get<T>(key: string): T | undefined;
  set(key: string, value: unknown, now?: number): void;
  delete(key: string): boolean;
}

export class SqliteKvRepo implements KvRepo {
  private readonly sel: SqlStatement<{ value: string }>;
  private readonly ups: SqlStatement;
  private readonly del: SqlStatement;

  constructor(
    db: SqlDatabase,
    private readonly clock: Clock,
  ) {
    this.sel = db.prepare('SELECT value FROM kv WHERE key = ?');
    this.ups = db.prepare(
      `INSERT INTO kv (key, value, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    );
    this.del = db.prepare('DELETE FROM kv WHERE key = ?');
  }

  get<T>(key: string): T | undefined {
    const r = this.sel.get(key);
    return r ? fromJson<T | undefined>(r.value, undefined) : undefined;
  }

  set(key: string, value: unknown, now = this.clock()): void {
    this.ups.run(key, toJson(value), now);
  }

  delete(key: string): boolean {
    return this.del.run(key).changes > 0;
  }
}
