import type { CachedClassification, SignatureCache } from '../domain/ports.js';
import { type Clock, fromJson, toJson } from './json.js';
import type { SqlDatabase, SqlStatement } from './sql.js';

interface Row {
  value: string;
  expires_at: number;
}

/** The LLM's answers by fault signature, shared by every node showing that fault and kept across restarts. */
export class SqliteSignatureCache implements SignatureCache {
  private readonly sel: SqlStatement<Row>;
  private readonly hit: SqlStatement;
  private readonly ups: SqlStatement;
  private readonly purge: SqlStatement;
  private readonly count: SqlStatement<{ n: number }>;

  constructor(
    db: SqlDatabase,
    private readonly clock: Clock,
  ) {
    this.sel = db.prepare('SELECT value, expires_at FROM llm_cache WHERE signature = ? AND expires_at > ?');
    this.hit = db.prepare('UPDATE llm_cache SET hits = hits + 1 WHERE signature = ?');
    this.ups = db.prepare(
      `INSERT INTO llm_cache (signature, value, expires_at, created_at, hits) VALUES (?, ?, ?, ?, 0)
       ON CONFLICT (signature) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at,
       created_at = excluded.created_at, hits = 0`,
    );
    this.purge = db.prepare('DELETE FROM llm_cache WHERE expires_at <= ?');
    this.count = db.prepare('SELECT COUNT(*) AS n FROM llm_cache WHERE expires_at > ?');
  }

  /** An expired entry is a miss. A row that no longer parses is a miss too (the model is asked again). */
  get(signature: string, now: number): CachedClassification | undefined {
    const r = this.sel.get(signature, now);
    if (!r) return undefined;
    const value = fromJson<CachedClassification | undefined>(r.value, undefined);
    if (value) this.hit.run(signature);
    return value;
  }

  put(signature: string, value: CachedClassification, expiresAt: number): void {
    this.ups.run(signature, toJson(value), expiresAt, this.clock());
  }

  purgeExpired(now: number): number {
    return this.purge.run(now).changes;
  }

  size(now: number): number {
    return this.count.get(now)?.n ?? 0;
  }
}
