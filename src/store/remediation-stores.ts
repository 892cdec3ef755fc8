/**
 * The remediation engine's store ports (src/remediate/ports.ts) over the SQLite repositories.
 * Everything is synchronous, so the services can check and compare-and-set without an await between.
 * Each port method is one repository call: the queries live in the repositories.
 */
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

const toRow = (r: StepRecord): StepRow => ({
  id: r.id,
  incidentId: r.incidentId,
  step: r.step,
  status: r.status,
  startedAt: r.startedAt,
  finishedAt: r.finishedAt,
  detail: r.detail ?? {},
});

export function stepStore(store: Pick<Store, 'steps'>): StepStore {
  return {
    begin: (incidentId, step, detail, at) => toRow(store.steps.begin(incidentId, step, detail, at)),
    finish(stepId, status, detail, at) {
      store.steps.finishById(stepId, status, { detail, now: at });
    },
    list: (incidentId) => store.steps.list(incidentId).map(toRow),
    lastOf(incidentId, step) {
      const r = store.steps.lastOf(incidentId, step);
      return r ? toRow(r) : undefined;
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
