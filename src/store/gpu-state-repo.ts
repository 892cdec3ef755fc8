import type { Clock } from './json.js';
import { opt } from './json.js';
import type { SqlDatabase, SqlStatement } from './sql.js';

/** The last XID value and count seen per GPU, so a sticky DCGM value is not a new fault after a restart. */
export interface GpuStateRow {
  gpu: number;
  xidLast?: number;
  xidCount?: number;
  updatedAt: number;
}

export interface GpuStateRepo {
  get(node: string): GpuStateRow[];
  /** Replaces the given GPUs' rows in one transaction; GPUs not listed keep their rows. */
  upsertMany(node: string, rows: readonly Omit<GpuStateRow, 'updatedAt'>[], now?: number): void;
  deleteNode(node: string): void;
}

interface Row {
  gpu: number;
  xid_last: number | null;
  xid_count: number | null;
  updated_at: number;
}

/** Rows per statement: far above a node's GPU count, far below SQLite's 32,766 parameters. */
const MAX_ROWS = 64;

export class SqliteGpuStateRepo implements GpuStateRepo {
  private readonly sel: SqlStatement<Row>;
  /** One multi-row upsert per row count: a node's GPUs in one statement (one round trip in PostgreSQL). */
  private readonly ups = new Map<number, SqlStatement>();
  private readonly del: SqlStatement;

  constructor(
    private readonly db: SqlDatabase,
    private readonly clock: Clock,
  ) {
    this.sel = db.prepare(
      'SELECT gpu, xid_last, xid_count, updated_at FROM gpu_state WHERE node = ? ORDER BY gpu',
    );
    this.del = db.prepare('DELETE FROM gpu_state WHERE node = ?');
  }

  get(node: string): GpuStateRow[] {
    return this.sel.all(node).map((r) => ({
      gpu: r.gpu,
      xidLast: opt(r.xid_last),
      xidCount: opt(r.xid_count),
      updatedAt: r.updated_at,
    }));
  }

  upsertMany(node: string, rows: readonly Omit<GpuStateRow, 'updatedAt'>[], now = this.clock()): void {
    // One row per GPU, the last given winning (PostgreSQL refuses to upsert one key twice in a statement).
    const byGpu = [...new Map(rows.map((r) => [r.gpu, r])).values()];
    for (let i = 0; i < byGpu.length; i += MAX_ROWS) {
      const chunk = byGpu.slice(i, i + MAX_ROWS);
      const values = chunk.flatMap((r) => [node, r.gpu, r.xidLast ?? null, r.xidCount ?? null, now]);
      this.upsert(chunk.length).run(...values);
    }
  }

  private upsert(n: number): SqlStatement {
    let stmt = this.ups.get(n);
    if (!stmt) {
      stmt = this.db.prepare(
        `INSERT INTO gpu_state (node, gpu, xid_last, xid_count, updated_at) VALUES ${Array(n).fill('(?, ?, ?, ?, ?)').join(', ')}
         ON CONFLICT (node, gpu) DO UPDATE SET xid_last = excluded.xid_last, xid_count = excluded.xid_count,
         updated_at = excluded.updated_at`,
      );
      this.ups.set(n, stmt);
    }
    return stmt;
  }

  deleteNode(node: string): void {
    this.del.run(node);
  }
}
