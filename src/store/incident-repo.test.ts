import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from './store.js';

let s: Store;
beforeEach(() => {
  s = openStore(':memory:', { now: () => 1_000 });
});
afterEach(() => s.close());

describe('IncidentRepo.openFaultStates (SQLite plan)', () => {
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
