import { randomBytes } from 'node:crypto';
import { type Incident, type IncidentState, TerminalStates } from '../domain/incident.js';
import { type Clock, fromJson, opt, toJson } from './json.js';
import {
  forUpdate,
  inList,
  isUniqueViolation,
  listParam,
  type SqlDatabase,
  type SqlStatement,
} from './sql.js';

/** What a scan knows about a fault when it opens (or touches) its incident. */
export type IncidentInput = Omit<
  Incident,
  'id' | 'state' | 'firstSeen' | 'lastSeen' | 'count' | 'updatedAt' | 'closedAt' | 'stateReason'
> & {
  /** Default 'detected'. */
  state?: IncidentState;
  id?: string;
};

/** Fields a caller may change without a state transition. */
export type IncidentPatch = Partial<
  Omit<Incident, 'id' | 'node' | 'faultKey' | 'state' | 'firstSeen' | 'updatedAt' | 'closedAt'>
>;

export interface OpenOrTouchResult {
  incident: Incident;
  /** true: a new incident was opened; false: the open one was touched (lastSeen, count, evidence). */
  created: boolean;
}

export interface IncidentRepo {
  findOpen(node: string, faultKey: string): Incident | undefined;
  /** Atomically: touch the open incident for (node, faultKey), or open a new one. */
  openOrTouch(input: IncidentInput, now?: number): OpenOrTouchResult;
  get(id: string): Incident | undefined;
  listOpen(): Incident[];
  /** Newest first. */
  listByNode(node: string, limit?: number): Incident[];
  /** Oldest first (by first sighting, then creation), narrowed by every filter given. */
  list(filter?: IncidentFilter): Incident[];
  /**
   * Fault key and state of every non-terminal incident on the node, from the open-incident index and
   * without decoding the incidents: what the monitor needs on every node of every scan.
   */
  openFaultStates(node: string): OpenFaultState[];
  /**
   * Compare-and-set: moves the incident to `to` only if its current state is one of `from`. Returns false
   * (and changes nothing) otherwise — two clicks cannot both start a remediation.
   */
  transition(
    id: string,
    from: readonly IncidentState[],
    to: IncidentState,
    reason?: string,
    now?: number,
  ): boolean;
  /** Changes descriptive fields; returns the updated incident, or undefined if there is none with that id. */
  update(id: string, patch: IncidentPatch, now?: number): Incident | undefined;
}

export interface IncidentFilter {
  node?: string;
  /** true: only non-terminal incidents; false: only terminal ones. */
  open?: boolean;
  /** Only incidents updated at or after this time. */
  updatedSince?: number;
}

export interface OpenFaultState {
  faultKey: string;
  state: IncidentState;
}

interface Row {
  id: string;
  node: string;
  fault_key: string;
  state: IncidentState;
  instance_id: string | null;
  instance_type: string | null;
  node_group: string | null;
  category: string;
  severity: Incident['severity'];
  recommended_action: Incident['recommendedAction'];
  planned_action: Incident['plannedAction'];
  mode: Incident['mode'];
  xid: number | null;
  gpu: number | null;
  explanation: string;
  source: Incident['source'];
  evidence: string;
  preexisting: number;
  first_seen: number;
  last_seen: number;
  count: number;
  updated_at: number;
  closed_at: number | null;
  state_reason: string | null;
}

function map(r: Row): Incident {
  const i: Incident = {
    id: r.id,
    node: r.node,
    faultKey: r.fault_key,
    category: r.category,
    severity: r.severity,
    recommendedAction: r.recommended_action,
    plannedAction: r.planned_action,
    mode: r.mode,
    explanation: r.explanation,
    source: r.source,
    evidence: fromJson<string[]>(r.evidence, []),
    state: r.state,
    preexisting: r.preexisting === 1,
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
    count: r.count,
    updatedAt: r.updated_at,
  };
  // Only set optional fields that exist, so `toEqual` against an Incident literal holds.
  const optional = {
    instanceId: opt(r.instance_id),
    instanceType: opt(r.instance_type),
    nodeGroup: opt(r.node_group),
    xid: opt(r.xid),
    gpu: opt(r.gpu),
    closedAt: opt(r.closed_at),
    stateReason: opt(r.state_reason),
  };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) Object.assign(i, { [k]: v });
  return i;
}

const terminalList = [...TerminalStates].map((s) => `'${s}'`).join(',');

/** Sortable, unique enough for humans to quote in Slack: `inc-lz3k9a-7f3a2c1b`. */
export function newIncidentId(now: number): string {
  return `inc-${now.toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** Columns an IncidentPatch may set, in camelCase → snake_case. */
const patchColumns: Record<keyof IncidentPatch, string> = {
  instanceId: 'instance_id',
  instanceType: 'instance_type',
  nodeGroup: 'node_group',
  category: 'category',
  severity: 'severity',
  recommendedAction: 'recommended_action',
  plannedAction: 'planned_action',
  mode: 'mode',
  xid: 'xid',
  gpu: 'gpu',
  explanation: 'explanation',
  source: 'source',
  evidence: 'evidence',
  preexisting: 'preexisting',
  lastSeen: 'last_seen',
  count: 'count',
  stateReason: 'state_reason',
};

export class SqliteIncidentRepo implements IncidentRepo {
  private readonly selOpen: SqlStatement<Row>;
  /** selOpen, locking the row (PostgreSQL): a sighting is never counted on an incident closed meanwhile. */
  private readonly selOpenLocked: SqlStatement<Row>;
  private readonly selId: SqlStatement<Row>;
  private readonly selAllOpen: SqlStatement<Row>;
  private readonly selNode: SqlStatement<Row>;
  private readonly selOpenStates: SqlStatement<{ fault_key: string; state: IncidentState }>;
  private readonly lists = new Map<string, SqlStatement<Row>>();
  private readonly ins: SqlStatement;
  private readonly touch: SqlStatement;
  private readonly cas: SqlStatement;
  private readonly updates = new Map<string, SqlStatement>();

  constructor(
    private readonly db: SqlDatabase,
    private readonly clock: Clock,
  ) {
    this.selOpen = db.prepare(
      `SELECT * FROM incidents WHERE node = ? AND fault_key = ? AND state NOT IN (${terminalList})`,
    );
    this.selOpenLocked = db.prepare(
      `SELECT * FROM incidents WHERE node = ? AND fault_key = ? AND state NOT IN (${terminalList})${forUpdate(db)}`,
    );
    this.selId = db.prepare('SELECT * FROM incidents WHERE id = ?');
    this.selAllOpen = db.prepare(
      `SELECT * FROM incidents WHERE state NOT IN (${terminalList}) ORDER BY first_seen, id`,
    );
    this.selNode = db.prepare(
      'SELECT * FROM incidents WHERE node = ? ORDER BY first_seen DESC, id DESC LIMIT ?',
    );
    // Served by the partial index incidents_one_open (node, fault_key) WHERE state NOT IN terminal.
    this.selOpenStates = db.prepare(
      `SELECT fault_key, state FROM incidents WHERE node = ? AND state NOT IN (${terminalList}) ORDER BY fault_key`,
    );
    this.ins = db.prepare(
      `INSERT INTO incidents (id, node, fault_key, state, instance_id, instance_type, node_group, category, severity,
        recommended_action, planned_action, mode, xid, gpu, explanation, source, evidence, preexisting, first_seen,
        last_seen, count, updated_at)
       VALUES (@id, @node, @faultKey, @state, @instanceId, @instanceType, @nodeGroup, @category, @severity,
        @recommendedAction, @plannedAction, @mode, @xid, @gpu, @explanation, @source, @evidence, @preexisting,
        @now, @now, 1, @now)`,
    );
    this.touch = db.prepare(
      'UPDATE incidents SET last_seen = ?, count = count + 1, evidence = ?, updated_at = ? WHERE id = ?',
    );
    // In PostgreSQL the WHERE is re-checked on the row once a concurrent writer's lock is released, so two
    // processes cannot both win the same compare-and-set.
    this.cas = db.prepare(
      `UPDATE incidents SET state = ?, state_reason = ?, updated_at = ?, closed_at = ?
       WHERE id = ? AND ${inList(db, 'state')}`,
    );
  }

  private openOrTouchOnce(input: IncidentInput, now: number): OpenOrTouchResult {
    const open = this.selOpenLocked.get(input.node, input.faultKey);
    if (open) {
      this.touch.run(Math.max(now, open.last_seen), toJson(input.evidence), now, open.id);
      return { incident: this.mustGet(open.id), created: false };
    }
    const id = input.id ?? newIncidentId(now);
    this.ins.run({
      id,
      node: input.node,
      faultKey: input.faultKey,
      state: input.state ?? 'detected',
      instanceId: input.instanceId ?? null,
      instanceType: input.instanceType ?? null,
      nodeGroup: input.nodeGroup ?? null,
      category: input.category,
      severity: input.severity,
      recommendedAction: input.recommendedAction,
      plannedAction: input.plannedAction,
      mode: input.mode,
      xid: input.xid ?? null,
      gpu: input.gpu ?? null,
      explanation: input.explanation,
      source: input.source,
      evidence: toJson(input.evidence),
      preexisting: input.preexisting ? 1 : 0,
      now,
    });
    return { incident: this.mustGet(id), created: true };
  }

  private mustGet(id: string): Incident {
    const r = this.selId.get(id);
    if (!r) throw new Error(`incident ${id} vanished inside its own transaction`);
    return map(r);
  }

  findOpen(node: string, faultKey: string): Incident | undefined {
    const r = this.selOpen.get(node, faultKey);
    return r ? map(r) : undefined;
  }

  openOrTouch(input: IncidentInput, now = this.clock()): OpenOrTouchResult {
    // SQLite: IMMEDIATE takes the write lock before reading, so two processes cannot both decide to insert.
    // PostgreSQL: the partial unique index refuses the second insert; its transaction (a savepoint when
    // nested) is undone and the retry finds the other process's incident and touches it.
    try {
      return this.db.transaction(() => this.openOrTouchOnce(input, now));
    } catch (err) {
      if (!isUniqueViolation(err) || input.id !== undefined) throw err;
      return this.db.transaction(() => this.openOrTouchOnce(input, now));
    }
  }

  get(id: string): Incident | undefined {
    const r = this.selId.get(id);
    return r ? map(r) : undefined;
  }

  listOpen(): Incident[] {
    return this.selAllOpen.all().map(map);
  }

  listByNode(node: string, limit = 20): Incident[] {
    return this.selNode.all(node, limit).map(map);
  }

  list(filter: IncidentFilter = {}): Incident[] {
    // One statement per combination of filters (at most eight), each written so SQLite can use the
    // by-node and open-incident indexes. Ties on first_seen keep creation order (rowid: implicit in SQLite,
    // an explicit serial column in PostgreSQL).
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.node !== undefined) {
      where.push('node = ?');
      params.push(filter.node);
    }
    if (filter.open !== undefined) where.push(`state ${filter.open ? 'NOT IN' : 'IN'} (${terminalList})`);
    if (filter.updatedSince !== undefined) {
      where.push('updated_at >= ?');
      params.push(filter.updatedSince);
    }
    const sql = `SELECT * FROM incidents${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY first_seen, rowid`;
    let stmt = this.lists.get(sql);
    if (!stmt) {
      stmt = this.db.prepare<Row>(sql);
      this.lists.set(sql, stmt);
    }
    return stmt.all(...params).map(map);
  }

  openFaultStates(node: string): OpenFaultState[] {
    return this.selOpenStates.all(node).map((r) => ({ faultKey: r.fault_key, state: r.state }));
  }

  transition(
    id: string,
    from: readonly IncidentState[],
    to: IncidentState,
    reason?: string,
    now = this.clock(),
  ): boolean {
    if (from.length === 0) return false;
    const closedAt = TerminalStates.has(to) ? now : null;
    return this.cas.run(to, reason ?? null, now, closedAt, id, listParam(this.db, from)).changes === 1;
  }

  update(id: string, patch: IncidentPatch, now = this.clock()): Incident | undefined {
    const entries = (Object.keys(patchColumns) as (keyof IncidentPatch)[])
      .filter((k) => patch[k] !== undefined)
      .map((k) => [k, patch[k]] as const);
    if (entries.length > 0) {
      const cols = entries.map(([k]) => patchColumns[k]);
      const sql = `UPDATE incidents SET ${cols.map((c) => `${c} = ?`).join(', ')}, updated_at = ? WHERE id = ?`;
      let stmt = this.updates.get(sql);
      if (!stmt) {
        stmt = this.db.prepare(sql);
        this.updates.set(sql, stmt);
      }
      const values = entries.map(([k, v]) =>
        k === 'evidence' ? toJson(v) : k === 'preexisting' ? (v ? 1 : 0) : v,
      );
      stmt.run(...values, now, id);
    }
    return this.get(id);
  }
}
