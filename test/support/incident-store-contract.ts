/**
 * The IncidentStore contract: the checks the SQLite adapter (src/store/remediation-stores.ts) and the in-memory
 * fake (memory-stores.ts) both pass, so a test that runs the engine on the fake proves something about the
 * real store. `make` gets the clock the store must stamp `updatedAt` and `closedAt` with.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { IncidentStore, NewIncident } from '../../src/remediate/ports.js';
import { newIncident as anIncident, T0 } from './fixtures.js';

/** One sighting at T0, as a store opens it (SQLite sets lastSeen and count itself). */
const newIncident = (over: Partial<NewIncident> = {}): NewIncident =>
  anIncident({ lastSeen: T0, count: 1, ...over });

export function describeIncidentStoreContract(
  name: string,
  make: (now: () => number) => IncidentStore & { close?(): void },
): void {
  describe(`IncidentStore contract: ${name}`, () => {
    let now = T0;
    let store: IncidentStore & { close?(): void };
    beforeEach(() => {
      now = T0;
      store = make(() => now);
      return () => store.close?.();
    });

    it('creates an incident with an id, the given fields and updatedAt, and reads it back', () => {
      const created = store.create(newIncident());
      expect(created.id).toEqual(expect.any(String));
      expect(created).toMatchObject({ ...newIncident(), updatedAt: T0 });
      expect(created.closedAt).toBeUndefined();
      expect(store.get(created.id)).toEqual(created);
      expect(store.get('no-such-incident')).toBeUndefined();
    });

    it('hands out copies: changing a returned incident changes nothing stored', () => {
      const created = store.create(newIncident());
      created.state = 'resolved';
      created.evidence.push('tampered');
      const read = store.get(created.id);
      expect(read?.state).toBe('detected');
      expect(read?.evidence).toEqual(newIncident().evidence);
    });

    it('gives each fault its own incident, and the same fault a new one once the first is closed', () => {
      const a = store.create(newIncident());
      const b = store.create(newIncident({ faultKey: 'ecc_dbe:gpu0', category: 'ECC_ERROR' }));
      const c = store.create(newIncident({ node: 'ip-10-0-1-24.ec2.internal' }));
      expect(new Set([a.id, b.id, c.id]).size).toBe(3);
      expect(store.transition(a.id, ['detected'], 'resolved')).toBe(true);
      const again = store.create(newIncident({ firstSeen: T0 + 1_000, lastSeen: T0 + 1_000 }));
      expect(again.id).not.toBe(a.id);
      expect(again.state).toBe('detected');
    });

    it('a fault still open on the node is not opened twice: create returns the open incident', () => {
      const first = store.create(newIncident());
      const second = store.create(newIncident({ firstSeen: T0 + 1_000, lastSeen: T0 + 1_000 }));
      expect(second.id).toBe(first.id);
      expect(store.list({ node: first.node, open: true }).map((i) => i.id)).toEqual([first.id]);
    });

    it('lists by node, open or closed, and updated since', () => {
      const a = store.create(newIncident());
      const b = store.create(newIncident({ faultKey: 'ecc_dbe:gpu0', category: 'ECC_ERROR' }));
      const c = store.create(newIncident({ node: 'ip-10-0-1-24.ec2.internal' }));
      now = T0 + 60_000;
      store.transition(b.id, ['detected'], 'dismissed', 'not ours');
      const ids = (list: { id: string }[]) => list.map((i) => i.id).sort();
      expect(ids(store.list())).toEqual([a.id, b.id, c.id].sort());
      expect(ids(store.list({ node: 'ip-10-0-1-23.ec2.internal' }))).toEqual([a.id, b.id].sort());
      expect(ids(store.list({ open: true }))).toEqual([a.id, c.id].sort());
      expect(ids(store.list({ open: false }))).toEqual([b.id]);
      expect(ids(store.list({ updatedSince: T0 + 1 }))).toEqual([b.id]);
      expect(ids(store.list({ node: 'ip-10-0-1-23.ec2.internal', open: true }))).toEqual([a.id]);
      expect(store.list({ node: 'ip-10-0-9-9.ec2.internal' })).toEqual([]);
    });

    it('transition is a compare-and-set: it moves only from one of the given states', () => {
      const { id } = store.create(newIncident());
      now = T0 + 5_000;
      expect(store.transition(id, ['awaiting_approval'], 'cordoned', 'approved')).toBe(false);
      expect(store.get(id)).toMatchObject({ state: 'detected', updatedAt: T0 });
      expect(store.transition(id, ['detected', 'awaiting_approval'], 'cordoned', 'approved')).toBe(true);
      expect(store.get(id)).toMatchObject({
        state: 'cordoned',
        stateReason: 'approved',
        updatedAt: T0 + 5_000,
      });
      expect(store.get(id)?.closedAt).toBeUndefined();
      // The second of two racing claims loses.
      expect(store.transition(id, ['detected', 'awaiting_approval'], 'cordoned', 'approved again')).toBe(
        false,
      );
      expect(store.transition(id, [], 'failed')).toBe(false);
      expect(store.transition('no-such-incident', ['detected'], 'failed')).toBe(false);
    });

    it('a terminal state sets closedAt; a transition without a reason clears the old one', () => {
      const { id } = store.create(newIncident());
      now = T0 + 1_000;
      store.transition(id, ['detected'], 'cordoned', 'auto');
      now = T0 + 9_000;
      expect(store.transition(id, ['cordoned'], 'resolved')).toBe(true);
      const closed = store.get(id);
      expect(closed).toMatchObject({ state: 'resolved', closedAt: T0 + 9_000, updatedAt: T0 + 9_000 });
      expect(closed?.stateReason).toBeUndefined();
    });

    it('update changes the planned action, mode and reason, and stamps updatedAt', () => {
      const { id } = store.create(newIncident());
      now = T0 + 2_000;
      store.update(id, { plannedAction: 'reboot', mode: 'approve', stateReason: 'policy rule' });
      expect(store.get(id)).toMatchObject({
        plannedAction: 'reboot',
        mode: 'approve',
        stateReason: 'policy rule',
        state: 'detected',
        updatedAt: T0 + 2_000,
      });
      expect(() => store.update('no-such-incident', { mode: 'off' })).not.toThrow();
      expect(store.get('no-such-incident')).toBeUndefined();
    });
  });
}
