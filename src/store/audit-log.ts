import type { AuditEntry, AuditLog } from '../domain/ports.js';
import { fromJson, opt, toJson } from './json.js';
import type { SqlDatabase, SqlStatement } from './sql.js';

interface Row {
  id: number;
  at: number;
  actor: string;
  action: string;
  node: string | null;
  incident_id: string | null;
  reason: string | null;
  result: string;
  details: string | null;
}

function map(r: Row): AuditEntry {
  const e: AuditEntry = { at: r.at, actor: r.actor, action: r.action, result: r.result };
  const extra = {
    node: opt(r.node),
    incidentId: opt(r.incident_id),
    reason: opt(r.reason),
    details: r.details === null ? undefined : fromJson<Record<string, unknown>>(r.details, {}),
  };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) Object.assign(e, { [k]: v });
  return e;
}

/** Append-only in the schema too: triggers refuse UPDATE and DELETE on audit_log. */
export class SqliteAuditLog implements AuditLog {
  private readonly ins: SqlStatement;
  private readonly db: SqlDatabase;
  private readonly lists = new Map<string, SqlStatement<Row>>();

  constructor(db: SqlDatabase) {
    this.db = db;
    this.ins = db.prepare(
      'INSERT INTO audit_log (at, actor, action, node, incident_id, reason, result, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
  }

  append(e: AuditEntry): void {
    this.ins.run(
      e.at,
      e.actor,
      e.action,
      e.node ?? null,
      e.incidentId ?? null,
      e.reason ?? null,
      e.result,
      e.details === undefined ? null : toJson(e.details),
    );
  }

  /** Newest first; default limit 100. */
  list(filter: { node?: string; incidentId?: string; limit?: number } = {}): AuditEntry[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.node !== undefined) {
      where.push('node = ?');
      args.push(filter.node);
    }
    if (filter.incidentId !== undefined) {
      where.push('incident_id = ?');
      args.push(filter.incidentId);
    }
    const sql = `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    let stmt = this.lists.get(sql);
    if (!stmt) {
      stmt = this.db.prepare<Row>(sql);
      this.lists.set(sql, stmt);
    }
    return stmt.all(...args, filter.limit ?? 100).map(map);
  }
}
