/**
 * The remediation engine's store ports (src/remediate/ports.ts) over the SQLite repositories.
 * Everything is synchronous, so the services can check and compare-and-set without an await between.
 */
import { type Incident, TerminalStates } from '../domain/incident.js';
import {
  isJournalStep,
  type JournalProblem,
  type JournalStep,
  type ReportJournalProblem,
  readDetail,
} from '../remediate/journal.js';
import type {
  ExclusionStore,
  IncidentStore,
  KvStore,
  NewIncident,
  StepRow,
  StepStore,
} from '../remediate/ports.js';
import type { StepRecord } from './step-repo.js';
import type { Store } from './store.js';

export function incidentStore(store: Store): IncidentStore {
  const ids = {
    all: store.db.prepare<[], { id: string }>('SELECT id FROM incidents ORDER BY first_seen'),
    byNode: store.db.prepare<[string], { id: string }>(
      'SELECT id FROM incidents WHERE node = ? ORDER BY first_seen',
    ),
  };
  return {
    get: (id) => store.incidents.get(id),
    list(filter = {}) {
      const rows = filter.node ? ids.byNode.all(filter.node) : ids.all.all();
      const out: Incident[] = [];
      for (const { id } of rows) {
        const i = store.incidents.get(id);
        if (!i) continue;
        if (filter.open !== undefined && filter.open === TerminalStates.has(i.state)) continue;
        if (filter.updatedSince !== undefined && i.updatedAt < filter.updatedSince) continue;
        out.push(i);
      }
      return out;
    },
    create(input: NewIncident) {
      const { firstSeen, lastSeen, count, stateReason, ...rest } = input;
      const { incident } = store.incidents.openOrTouch(rest, firstSeen);
      if (stateReason) store.incidents.update(incident.id, { stateReason });
      return store.incidents.get(incident.id) ?? incident;
    },
    transition: (id, from, to, reason) => store.incidents.transition(id, from, to, reason),
    update(id, patch) {
      store.incidents.update(id, patch);
    },
  };
}

/** Where a journal row that does not read as its step says is reported when no one else is told. */
function warn(problem: JournalProblem): void {
  process.emitWarning(problem.message, 'JournalWarning');
}

/**
 * The journal over the step rows. Each row's detail is read through its step's schema (journal.ts); a bad
 * row is reported (`report`) and read without its bad fields, a row of an unknown step is reported and
 * left out of `list`. The rows themselves are never rewritten.
 */
export function stepStore(store: Store, report: ReportJournalProblem = warn): StepStore {
  const rowid = store.db.prepare<[string, number], { id: number }>(
    'SELECT rowid AS id FROM incident_steps WHERE incident_id = ? AND seq = ?',
  );
  const byRowid = store.db.prepare<[number], { incident_id: string; seq: number }>(
    'SELECT incident_id, seq FROM incident_steps WHERE rowid = ?',
  );
  const toRow = (r: StepRecord, step: JournalStep): StepRow => ({
    id: rowid.get(r.incidentId, r.seq)?.id ?? -1,
    incidentId: r.incidentId,
    step,
    status: r.status,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    detail: readDetail({ ...r, detail: r.unreadableDetail ?? r.detail }, report),
  });
  const known = (r: StepRecord): StepRow[] => {
    if (isJournalStep(r.step)) return [toRow(r, r.step)];
    report({
      incidentId: r.incidentId,
      seq: r.seq,
      step: r.step,
      message: `journal row ${r.incidentId}#${r.seq}: unknown step ${r.step}; left out`,
    });
    return [];
  };
  return {
    begin: (incidentId, step, detail, at) => toRow(store.steps.begin(incidentId, step, detail, at), step),
    finish(stepId, status, detail, at) {
      const key = byRowid.get(stepId);
      if (!key) throw new Error(`no remediation step row ${stepId}`);
      store.steps.finish(key.incident_id, key.seq, status, { detail, now: at });
    },
    list: (incidentId) => store.steps.list(incidentId).flatMap(known),
    lastOf(incidentId, step) {
      const r = store.steps.lastOf(incidentId, step);
      return r ? toRow(r, step) : undefined;
    },
  };
}

export function exclusionStore(store: Store): ExclusionStore {
  return {
    get: (node, now) => store.exclusions.get(node, now),
    put: (e) => store.exclusions.add(e),
    remove: (node) => store.exclusions.remove(node),
    list: (now) => store.exclusions.list(now),
  };
}

export function kvStore(store: Store): KvStore {
  return {
    get: (key) => store.kv.get<string>(key),
    set: (key, value) => store.kv.set(key, value),
    delete: (key) => {
      store.kv.delete(key);
    },
  };
}
