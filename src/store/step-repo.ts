import { type Clock, opt, toJson } from './json.js';
import { forUpdate, type SqlDatabase, type SqlStatement } from './sql.js';

export const StepStatuses = ['started', 'done', 'failed', 'skipped'] as const;
export type StepStatus = (typeof StepStatuses)[number];

/**
 * One step of a remediation: written `started` BEFORE its external effect and finished AFTER it, so a
 * process restarted in between knows the effect may have happened and checks the real state first.
 */
export interface StepRecord {
  /** The row's own id, stable for its life: what a caller holding only the row finishes it by. */
  id: number;
  incidentId: string;
  seq: number;
  /** cordon, drain, reboot, replace, verify, uncordon … */
  step: string;
  status: StepStatus;
  startedAt: number;
  finishedAt?: number;
  detail?: Record<string, unknown>;
  /** The stored detail when it is not a JSON object (a hand edit): kept as it is, for the reader to report. */
  unreadableDetail?: string;
  /** What the outside world calls the effect: instance id, activity id, replacement node … */
  externalRef?: string;
}

export interface StepFinish {
  detail?: Record<string, unknown>;
  externalRef?: string;
  now?: number;
}

export interface StepRepo {
  begin(incidentId: string, step: string, detail?: Record<string, unknown>, now?: number): StepRecord;
  /** Finishes a started step; false if it is not (or no longer) `started`. Detail is merged. */
  finish(
    incidentId: string,
    seq: number,
    status: Exclude<StepStatus, 'started'>,
    finish?: StepFinish,
  ): boolean;
  /** `finish` for the row with that id; throws when no row has it (a caller's bug, not a race). */
  finishById(id: number, status: Exclude<StepStatus, 'started'>, finish?: StepFinish): boolean;
  list(incidentId: string): StepRecord[];
  /** The latest row for that step of that incident. */
  lastOf(incidentId: string, step: string): StepRecord | undefined;
}

interface Row {
  id: number;
  incident_id: string;
  seq: number;
  step: string;
  status: StepStatus;
  started_at: number;
  finished_at: number | null;
  detail: string | null;
  external_ref: string | null;
}

/** The stored detail as an object, or undefined when it is not JSON or not an object. */
function detailObject(text: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? Object.fromEntries(Object.entries(value))
    : undefined;
}

/**
 * The detail after a finish: the stored one with `patch` merged in. A stored detail that is not a JSON
 * object is kept whole under `unreadableDetail`, so finishing the step loses nothing of it.
 */
function mergedDetail(stored: string | null, patch: Record<string, unknown>): Record<string, unknown> {
  if (stored === null) return { ...patch };
  const before = detailObject(stored);
  return before ? { ...before, ...patch } : { unreadableDetail: stored, ...patch };
}

function map(r: Row): StepRecord {
  const s: StepRecord = {
    id: r.id,
    incidentId: r.incident_id,
    seq: r.seq,
    step: r.step,
    status: r.status,
    startedAt: r.started_at,
  };
  const finishedAt = opt(r.finished_at);
  if (finishedAt !== undefined) s.finishedAt = finishedAt;
  if (r.detail !== null) {
    const detail = detailObject(r.detail);
    if (detail) s.detail = detail;
    else s.unreadableDetail = r.detail;
  }
  const ref = opt(r.external_ref);
  if (ref !== undefined) s.externalRef = ref;
  return s;
}

export class SqliteStepRepo implements StepRepo {
  private readonly ins: SqlStatement<Row>;
  private readonly sel: SqlStatement<Row>;
  private readonly key: SqlStatement<{ incident_id: string; seq: number }>;
  private readonly fin: SqlStatement;
  private readonly all: SqlStatement<Row>;
  private readonly last: SqlStatement<Row>;
  private readonly lockIncident: SqlStatement | undefined;

  constructor(
    private readonly db: SqlDatabase,
    private readonly clock: Clock,
  ) {
    this.ins = db.prepare(
      `INSERT INTO incident_steps (incident_id, seq, step, status, started_at, detail)
       VALUES (@id, (SELECT COALESCE(MAX(seq), 0) + 1 FROM incident_steps WHERE incident_id = @id), @step, @status, @now, @detail)
       RETURNING rowid AS id, *`,
    );
    // The rowid is the row's id: stable for the row's life (rows are never moved or reused). Implicit in
    // SQLite; an explicit serial column of that name in PostgreSQL.
    this.sel = db.prepare(
      `SELECT rowid AS id, * FROM incident_steps WHERE incident_id = ? AND seq = ?${forUpdate(db)}`,
    );
    // PostgreSQL: two writers of one incident's journal take turns on its incident row, so both cannot
    // compute the same next seq (SQLite's IMMEDIATE transaction already serialises them).
    this.lockIncident =
      db.dialect === 'postgres' ? db.prepare('SELECT id FROM incidents WHERE id = ? FOR UPDATE') : undefined;
    this.key = db.prepare('SELECT incident_id, seq FROM incident_steps WHERE rowid = ?');
    this.fin = db.prepare(
      `UPDATE incident_steps SET status = @status, finished_at = @now, detail = @detail, external_ref = COALESCE(@ref, external_ref)
       WHERE incident_id = @id AND seq = @seq AND status = 'started'`,
    );
    this.all = db.prepare('SELECT rowid AS id, * FROM incident_steps WHERE incident_id = ? ORDER BY seq');
    this.last = db.prepare(
      'SELECT rowid AS id, * FROM incident_steps WHERE incident_id = ? AND step = ? ORDER BY seq DESC LIMIT 1',
    );
  }

  private beginOnce(id: string, step: string, detail: string | null, now: number): StepRecord {
    this.lockIncident?.get(id);
    const row = this.ins.get({ id, step, status: 'started', now, detail });
    if (!row) throw new Error('step row vanished inside its own transaction');
    return map(row);
  }

  private finishOnce(id: string, seq: number, status: string, f: StepFinish, now: number): boolean {
    const row = this.sel.get(id, seq);
    if (!row || row.status !== 'started') return false;
    const detail = f.detail ? toJson(mergedDetail(row.detail, f.detail)) : row.detail;
    return this.fin.run({ id, seq, detail, ref: f.externalRef ?? null, status, now }).changes === 1;
  }

  begin(incidentId: string, step: string, detail?: Record<string, unknown>, now = this.clock()): StepRecord {
    const text = detail === undefined ? null : toJson(detail);
    return this.db.transaction(() => this.beginOnce(incidentId, step, text, now));
  }

  finish(
    incidentId: string,
    seq: number,
    status: Exclude<StepStatus, 'started'>,
    finish: StepFinish = {},
  ): boolean {
    const now = finish.now ?? this.clock();
    return this.db.transaction(() => this.finishOnce(incidentId, seq, status, finish, now));
  }

  finishById(id: number, status: Exclude<StepStatus, 'started'>, finish: StepFinish = {}): boolean {
    const k = this.key.get(id);
    if (!k) throw new Error(`no remediation step row ${id}`);
    return this.finish(k.incident_id, k.seq, status, finish);
  }

  list(incidentId: string): StepRecord[] {
    return this.all.all(incidentId).map(map);
  }

  lastOf(incidentId: string, step: string): StepRecord | undefined {
    const r = this.last.get(incidentId, step);
    return r ? map(r) : undefined;
  }
}
