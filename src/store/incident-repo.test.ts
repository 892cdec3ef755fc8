import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IncidentInput } from './incident-repo.js';
import { openStore, type Store } from './store.js';

let s: Store;
beforeEach(() => {
  s = openStore(':memory:', { now: () => 1_000 });
});
afterEach(() => s.close());

const input = (node: string, faultKey: string): IncidentInput => ({
  node,
  faultKey,
  category: 'XID_CRITICAL_79',
  severity: 'critical',
  recommendedAction: 'replace',
  plannedAction: 'replace',
  mode: 'auto',
  explanation: 'GPU has fallen off the bus.',
  source: 'rules',
  evidence: [],
  preexisting: false,
});

describe('IncidentRepo.openFaultStates', () => {
  it('lists fault key and state of the non-terminal incidents of one node only', () => {
    const a = s.incidents.openOrTouch(input('n1', 'xid:79:gpu3'), 100).incident;
    const b = s.incidents.openOrTouch(input('n1', 'ecc_dbe:gpu0'), 100).incident;
    const c = s.incidents.openOrTouch(input('n1', 'thermal:gpu1'), 100).incident;
    s.incidents.openOrTouch(input('n2', 'xid:79:gpu0'), 100);
    expect(s.incidents.transition(b.id, ['detected'], 'cordoned', undefined, 200)).toBe(true);
    expect(s.incidents.transition(c.id, ['detected'], 'resolved', undefined, 200)).toBe(true);
    expect(s.incidents.openFaultStates('n1')).toEqual([
      { faultKey: 'ecc_dbe:gpu0', state: 'cordoned' },
      { faultKey: 'xid:79:gpu3', state: 'detected' },
    ]);
    expect(s.incidents.openFaultStates('n3')).toEqual([]);
    expect(a.state).toBe('detected');
  });

  it('agrees with listByNode filtered to non-terminal states, and sees a reopened fault', () => {
    const a = s.incidents.openOrTouch(input('n1', 'xid:79:gpu3'), 100).incident;
    s.incidents.transition(a.id, ['detected'], 'dismissed', undefined, 150);
    expect(s.incidents.openFaultStates('n1')).toEqual([]);
    s.incidents.openOrTouch(input('n1', 'xid:79:gpu3'), 300);
    const fromList = s.incidents
      .listByNode('n1', 200)
      .filter((i) => !['resolved', 'escalated', 'failed', 'cancelled', 'dismissed'].includes(i.state))
      .map((i) => ({ faultKey: i.faultKey, state: i.state }));
    expect(s.incidents.openFaultStates('n1')).toEqual(fromList);
    expect(fromList).toHaveLength(1);
  });

  it('is served by the open-incident index, not a table scan', () => {
    const plan = s.db
      .prepare(
        `EXPLAIN QUERY PLAN SELECT fault_key, state FROM incidents WHERE node = ?
         AND state NOT IN ('resolved','escalated','failed','cancelled','dismissed') ORDER BY fault_key`,
      )
      .all('n1') as { detail: string }[];
    expect(plan.map((r) => r.detail).join('\n')).toMatch(/USING (COVERING )?INDEX incidents_one_open/);
  });
});
