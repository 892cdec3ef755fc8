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

export class SqliteGpuStateRepo implements GpuStateRepo {
  private readonly sel: SqlStatement<Row>;
  private readonly ups: SqlStatement;
  private readonly del: SqlStatement;

  constructor(
    private readonly db: SqlDatabase,
    private readonly clock: Clock,
  ) {
    this.sel = db.prepare(
      'SELECT gpu, xid_last, xid_count, updated_at FROM gpu_state WHERE node = ? ORDER BY gpu',
    );
    this.ups = db.prepare(
      `INSERT INTO gpu_state (node, gpu, xid_last, xid_count, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (node, gpu) DO UPDATE SET xid_last = excluded.xid_last, xid_count = excluded.xid_count,
       updated_at = excluded.updated_at`,
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
    this.db.transaction(() => {
      for (const r of rows) this.ups.run(node, r.gpu, r.xidLast ?? null, r.xidCount ?? null, now);
    });
  }

  deleteNode(node: string): void {
    this.del.run(node);
  }
}
