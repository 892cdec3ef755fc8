import type { Clock } from './json.js';
import type { SqlDatabase, SqlStatement } from './sql.js';

/** Where an incident's alert lives in Slack: thread replies and chat.update need its channel and ts. */
export interface SlackRef {
  incidentId: string;
  channel: string;
  ts: string;
  updatedAt: number;
}

export interface SlackRefRepo {
  get(incidentId: string): SlackRef | undefined;
  set(incidentId: string, channel: string, ts: string, now?: number): void;
  delete(incidentId: string): void;
}

interface Row {
  incident_id: string;
  channel: string;
  ts: string;
  updated_at: number;
}

export class SqliteSlackRefRepo implements SlackRefRepo {
  private readonly sel: SqlStatement<Row>;
  private readonly ups: SqlStatement;
  private readonly del: SqlStatement;

  constructor(
    db: SqlDatabase,
    private readonly clock: Clock,
  ) {
    this.sel = db.prepare('SELECT * FROM slack_refs WHERE incident_id = ?');
    this.ups = db.prepare(
      `INSERT INTO slack_refs (incident_id, channel, ts, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (incident_id) DO UPDATE SET channel = excluded.channel, ts = excluded.ts, updated_at = excluded.updated_at`,
    );
    this.del = db.prepare('DELETE FROM slack_refs WHERE incident_id = ?');
  }

  get(incidentId: string): SlackRef | undefined {
    const r = this.sel.get(incidentId);
    return r
      ? { incidentId: r.incident_id, channel: r.channel, ts: r.ts, updatedAt: r.updated_at }
      : undefined;
  }

  set(incidentId: string, channel: string, ts: string, now = this.clock()): void {
    this.ups.run(incidentId, channel, ts, now);
  }

  delete(incidentId: string): void {
    this.del.run(incidentId);
  }
}
