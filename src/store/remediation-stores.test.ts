import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeIncidentStoreContract } from '../../test/support/incident-store-contract.js';
import type { NewIncident } from '../remediate/ports.js';
import { incidentStore, stepStore } from './remediation-stores.js';
import { openStore, type Store } from './store.js';

let s: Store;
beforeEach(() => {
  s = openStore(':memory:', { now: () => 1_000 });
});
afterEach(() => s.close());

const newIncident = (node: string, firstSeen: number, extra: Partial<NewIncident> = {}): NewIncident => ({
  node,
  faultKey: 'xid:79:gpu3',
  category: 'XID_CRITICAL_79',
  severity: 'critical',
  recommendedAction: 'replace',
  plannedAction: 'replace',
  mode: 'auto',
  explanation: 'GPU has fallen off the bus.',
  source: 'rules',
  evidence: [],
  state: 'detected',
  preexisting: false,
  firstSeen,
  lastSeen: firstSeen,
  count: 1,
  ...extra,
});

describe('the remediation store ports over SQLite', () => {
  it('creates incidents with their reason and lists them through the repository filters', () => {
    const incidents = incidentStore(s);
    const a = incidents.create(newIncident('n1', 10, { stateReason: 'manual request' }));
    expect(a).toMatchObject({ node: 'n1', firstSeen: 10, stateReason: 'manual request' });
    const b = incidents.create(newIncident('n2', 5));
    expect(b.stateReason).toBeUndefined();
    expect(incidents.transition(a.id, ['detected'], 'resolved', 'cured')).toBe(true);
    expect(incidents.list().map((i) => i.id)).toEqual([b.id, a.id]);
    expect(incidents.list({ open: true }).map((i) => i.id)).toEqual([b.id]);
    expect(incidents.list({ node: 'n1' })).toEqual([incidents.get(a.id)]);
  });

  it('finishes a step by the id its row was begun with, merging the detail', () => {
    const { id } = incidentStore(s).create(newIncident('n1', 10));
    const steps = stepStore(s);
    const cordon = steps.begin(id, 'cordon', { cordonedByUs: true }, 20);
    const drain = steps.begin(id, 'drain', {}, 21);
    steps.finish(cordon.id, 'done', { alreadyCordoned: false }, 22);
    expect(steps.list(id)).toEqual([
      {
        id: cordon.id,
        incidentId: id,
        step: 'cordon',
        status: 'done',
        startedAt: 20,
        finishedAt: 22,
        detail: { cordonedByUs: true, alreadyCordoned: false },
      },
      {
        id: drain.id,
        incidentId: id,
        step: 'drain',
        status: 'started',
        startedAt: 21,
        finishedAt: undefined,
        detail: {},
      },
    ]);
    expect(steps.lastOf(id, 'drain')?.id).toBe(drain.id);
    expect(() => steps.finish(drain.id + 100, 'done', {}, 23)).toThrow(/no remediation step row/);
  });
});

describeIncidentStoreContract('SQLite (incidentStore over openStore)', (now) => {
  const store = openStore(':memory:', { now });
  return Object.assign(incidentStore(store), { close: () => store.close() });
});
