/**
 * The remediation engine's store ports (src/remediate/ports.ts) over the SQLite repositories.
 * Everything is synchronous, so the services can check and compare-and-set without an await between.
 * Each port method is one repository call: the queries live in the repositories.
 */
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

export function incidentStore(store: Pick<Store, 'incidents'>): IncidentStore {
  return {
    get: (id) => store.incidents.get(id),
    list: (filter = {}) => store.incidents.list(filter),
    create(input: NewIncident) {
      const { firstSeen, lastSeen, count, stateReason, ...rest } = input;
      const { incident } = store.incidents.openOrTouch(rest, firstSeen);
      if (!stateReason) return incident;
      return store.incidents.update(incident.id, { stateReason }) ?? incident;
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
export function stepStore(store: Pick<Store, 'steps'>, report: ReportJournalProblem = warn): StepStore {
  const toRow = (r: StepRecord, step: JournalStep): StepRow => ({
    id: r.id,
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
      store.steps.finishById(stepId, status, { detail, now: at });
    },
    list: (incidentId) => store.steps.list(incidentId).flatMap(known),
    lastOf(incidentId, step) {
      const r = store.steps.lastOf(incidentId, step);
      return r ? toRow(r, step) : undefined;
    },
  };
}

export function exclusionStore(store: Pick<Store, 'exclusions'>): ExclusionStore {
  return {
    get: (node, now) => store.exclusions.get(node, now),
    put: (e) => store.exclusions.add(e),
    remove: (node) => store.exclusions.remove(node),
    list: (now) => store.exclusions.list(now),
  };
}

export function kvStore(store: Pick<Store, 'kv'>): KvStore {
  return {
    get: (key) => store.kv.get<string>(key),
    set: (key, value) => store.kv.set(key, value),
    delete: (key) => {
      store.kv.delete(key);
    },
  };
}
