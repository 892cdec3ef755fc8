/**
 * Test-only, in-memory implementations of the store ports, with the semantics the SQLite store must have:
 * compare-and-set transitions, step rows begun and finished, expiring exclusions. Each returns copies, so a
 * caller holding an object never sees it change behind its back (as with rows read from SQLite).
 */
import type { Incident, IncidentState } from '../../src/domain/incident.js';
import { isOpen } from '../../src/domain/incident.js';
import type { AuditEntry, AuditLog, Exclusion } from '../../src/domain/ports.js';
import {
  type JournalDetail,
  type JournalDetailOf,
  type JournalStep,
  readDetail,
} from '../../src/remediate/journal.js';
import type {
  ExclusionStore,
  IncidentPatch,
  IncidentStore,
  KvStore,
  NewIncident,
  StepRow,
  StepStatus,
  StepStore,
} from '../../src/remediate/ports.js';
import { Power } from './power.js';

const clone = <T>(v: T): T => structuredClone(v);

export class MemoryIncidentStore implements IncidentStore {
  private readonly rows = new Map<string, Incident>();
  private seq = 0;
  constructor(
    private readonly power = new Power(),
    private readonly now: () => number = Date.now,
  ) {}

  get(id: string): Incident | undefined {
    this.power.check();
    const row = this.rows.get(id);
    return row ? clone(row) : undefined;
  }

  list(filter: { node?: string; open?: boolean; updatedSince?: number } = {}): Incident[] {
    this.power.check();
    return [...this.rows.values()]
      .filter(
        (i) =>
          (filter.node === undefined || i.node === filter.node) &&
          (filter.open === undefined || isOpen(i.state) === filter.open) &&
          (filter.updatedSince === undefined || i.updatedAt >= filter.updatedSince),
      )
      .map(clone);
  }

  create(input: NewIncident): Incident {
    return this.power.write(() => {
      // As the SQLite store: one open incident per node and fault; a repeat touches it instead.
      const open = [...this.rows.values()].find(
        (i) => i.node === input.node && i.faultKey === input.faultKey && isOpen(i.state),
      );
      if (open) {
        open.lastSeen = Math.max(open.lastSeen, input.firstSeen);
        open.count += 1;
        open.evidence = clone(input.evidence);
        open.updatedAt = this.now();
        return clone(open);
      }
      const incident: Incident = { ...clone(input), id: `inc-${++this.seq}`, updatedAt: this.now() };
      this.rows.set(incident.id, incident);
      return clone(incident);
    });
  }

  transition(id: string, from: readonly IncidentState[], to: IncidentState, reason?: string): boolean {
    return this.power.write(() => {
      const row = this.rows.get(id);
      if (!row || !from.includes(row.state)) return false;
      row.state = to;
      row.updatedAt = this.now();
      // As the SQLite store: the reason is the transition's own (none clears it); only a terminal state is closed.
      if (reason !== undefined) row.stateReason = reason;
      else delete row.stateReason;
      if (!isOpen(to)) row.closedAt = this.now();
      else delete row.closedAt;
      return true;
    });
  }

  update(id: string, patch: IncidentPatch): void {
    this.power.write(() => {
      const row = this.rows.get(id);
      if (row) Object.assign(row, patch, { updatedAt: this.now() });
    });
  }
}

export class MemoryStepStore implements StepStore {
  private readonly rows: StepRow[] = [];
  constructor(private readonly power = new Power()) {}

  begin<S extends JournalStep>(incidentId: string, step: S, detail: JournalDetailOf<S>, at: number): StepRow {
    return this.power.write(() => {
      const row: StepRow = {
        id: this.rows.length + 1,
        incidentId,
        step,
        status: 'started',
        startedAt: at,
        detail: clone(detail),
      };
      this.rows.push(row);
      return clone(row);
    });
  }

  finish(stepId: number, status: Exclude<StepStatus, 'started'>, detail: JournalDetail, at: number): void {
    this.power.write(() => {
      const row = this.rows[stepId - 1];
      if (!row) throw new Error(`no step row ${stepId}`);
      row.status = status;
      row.finishedAt = at;
      row.detail = { ...row.detail, ...clone(detail) };
    });
  }

  list(incidentId: string): StepRow[] {
    this.power.check();
    return this.rows.filter((r) => r.incidentId === incidentId).map(checked);
  }

  lastOf(incidentId: string, step: JournalStep): StepRow | undefined {
    this.power.check();
    const row = this.rows.findLast((r) => r.incidentId === incidentId && r.step === step);
    return row ? checked(row) : undefined;
  }
}

/**
 * The row as the SQLite journal would read it back, and a refusal when it would not read back the same: a
 * writer that records a field of the wrong type, or one its step's schema does not have, fails the test.
 */
function checked(row: StepRow): StepRow {
  const stored = clone(row);
  const where = { incidentId: row.incidentId, seq: row.id, step: row.step };
  const detail = readDetail({ ...where, detail: stored.detail }, (p) => {
    throw new Error(p.message);
  });
  const dropped = Object.entries(stored.detail).filter(([k, v]) => v !== undefined && !(k in detail));
  if (dropped.length > 0) {
    const keys = dropped.map(([k]) => k).join(', ');
    throw new Error(
      `journal row ${row.incidentId}#${row.id} (${row.step}) records ${keys}, not in its step's schema`,
    );
  }
  return { ...stored, detail };
}

export class MemoryExclusionStore implements ExclusionStore {
  private readonly rows = new Map<string, Exclusion>();
  constructor(private readonly power = new Power()) {}

  get(node: string, now: number): Exclusion | undefined {
    this.power.check();
    const row = this.rows.get(node);
    return row && (row.expiresAt === undefined || row.expiresAt > now) ? clone(row) : undefined;
  }

  put(exclusion: Exclusion): void {
    this.power.write(() => this.rows.set(exclusion.node, clone(exclusion)));
  }

  remove(node: string): boolean {
    return this.power.write(() => this.rows.delete(node));
  }

  list(now: number): Exclusion[] {
    this.power.check();
    return [...this.rows.values()].filter((r) => r.expiresAt === undefined || r.expiresAt > now).map(clone);
  }
}

export class MemoryKvStore implements KvStore {
  private readonly rows = new Map<string, string>();
  constructor(private readonly power = new Power()) {}

  get(key: string): string | undefined {
    this.power.check();
    return this.rows.get(key);
  }

  set(key: string, value: string): void {
    this.power.write(() => this.rows.set(key, value));
  }

  delete(key: string): void {
    this.power.write(() => this.rows.delete(key));
  }
}

export class MemoryAuditLog implements AuditLog {
  readonly entries: AuditEntry[] = [];
  constructor(private readonly power = new Power()) {}

  append(entry: AuditEntry): void {
    this.power.write(() => this.entries.push(clone(entry)));
  }

  list(filter: { node?: string; incidentId?: string; limit?: number } = {}): AuditEntry[] {
    this.power.check();
    const rows = this.entries.filter(
      (e) =>
        (filter.node === undefined || e.node === filter.node) &&
        (filter.incidentId === undefined || e.incidentId === filter.incidentId),
    );
    return (filter.limit !== undefined ? rows.slice(-filter.limit) : rows).map(clone);
  }
}
