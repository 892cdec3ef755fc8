/**
 * The incident and journal part of the repository contract (store-contract.ts runs it for each store).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { IncidentInput } from '../../src/store/incident-repo.js';
import type { SqlDialect } from '../../src/store/sql.js';
import type { Store } from '../../src/store/store.js';

/** How each dialect words the constraint violations the schema must raise. */
const errors: Record<SqlDialect, { unique: RegExp; foreignKey: RegExp }> = {
  sqlite: { unique: /UNIQUE constraint failed/, foreignKey: /FOREIGN KEY/ },
  postgres: {
    unique: /duplicate key value violates unique constraint "incidents_one_open"/,
    foreignKey: /violates foreign key constraint/,
  },
};

export const xid79 = (node = 'ip-10-0-0-1', faultKey = 'xid:79:gpu3'): IncidentInput => ({
  node,
  faultKey,
  instanceId: 'i-0123456789abcdef0',
  category: 'XID_CRITICAL_79',
  severity: 'critical',
  recommendedAction: 'replace',
  plannedAction: 'replace',
  mode: 'auto',
  xid: 79,
  gpu: 3,
  explanation: 'GPU has fallen off the bus.',
  source: 'rules',
  evidence: ['DCGM_FI_DEV_XID_ERRORS{gpu="3"} 79'],
  preexisting: false,
});

const faultInput = (node: string, faultKey: string): IncidentInput => ({
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

/** The cases; `store()` is the case's fresh store (opened by the caller's beforeEach). */
export function incidentContract(store: () => Store, dialect: () => SqlDialect): void {
  let s: Store;
  beforeEach(() => {
    s = store();
  });

  describe('IncidentRepo', () => {
    it('opens one incident per (node, fault) and touches it on later scans', () => {
      const a = s.incidents.openOrTouch(xid79(), 100);
      expect(a.created).toBe(true);
      expect(a.incident).toMatchObject({
        state: 'detected',
        firstSeen: 100,
        lastSeen: 100,
        count: 1,
        xid: 79,
        gpu: 3,
      });
      const b = s.incidents.openOrTouch({ ...xid79(), evidence: ['newer'] }, 200);
      expect(b.created).toBe(false);
      expect(b.incident).toMatchObject({
        id: a.incident.id,
        firstSeen: 100,
        lastSeen: 200,
        count: 2,
        evidence: ['newer'],
      });
      expect(s.incidents.findOpen('ip-10-0-0-1', 'xid:79:gpu3')?.id).toBe(a.incident.id);
      expect(s.incidents.openOrTouch(xid79('ip-10-0-0-2'), 300).created).toBe(true);
      expect(s.incidents.openOrTouch(xid79('ip-10-0-0-1', 'ecc_dbe:gpu0'), 300).created).toBe(true);
      expect(s.incidents.listOpen()).toHaveLength(3);
    });

    it('round-trips every field', () => {
      const { incident } = s.incidents.openOrTouch(
        { ...xid79(), nodeGroup: 'gpu-ng', instanceType: 'p5.48xlarge' },
        5,
      );
      expect(s.incidents.get(incident.id)).toEqual({
        ...xid79(),
        nodeGroup: 'gpu-ng',
        instanceType: 'p5.48xlarge',
        id: incident.id,
        state: 'detected',
        firstSeen: 5,
        lastSeen: 5,
        count: 1,
        updatedAt: 5,
      });
      expect(s.incidents.get('nope')).toBeUndefined();
    });

    it('the partial unique index refuses a second open incident for the same (node, fault)', () => {
      s.incidents.openOrTouch(xid79(), 1);
      const insert = () =>
        s.db
          .prepare(
            `INSERT INTO incidents (id, node, fault_key, state, category, severity, recommended_action, planned_action,
           mode, explanation, source, first_seen, last_seen, updated_at)
           VALUES ('dup', 'ip-10-0-0-1', 'xid:79:gpu3', 'cordoned', 'X', 'critical', 'replace', 'replace', 'auto', '', 'rules', 1, 1, 1)`,
          )
          .run();
      expect(insert).toThrow(errors[dialect()].unique);
    });

    it('opens a new incident once the previous one is closed', () => {
      const first = s.incidents.openOrTouch(xid79(), 1).incident;
      expect(s.incidents.transition(first.id, ['detected'], 'resolved', 'healthy scan', 50)).toBe(true);
      expect(s.incidents.get(first.id)).toMatchObject({
        state: 'resolved',
        closedAt: 50,
        stateReason: 'healthy scan',
      });
      expect(s.incidents.findOpen('ip-10-0-0-1', 'xid:79:gpu3')).toBeUndefined();
      const second = s.incidents.openOrTouch(xid79(), 60);
      expect(second.created).toBe(true);
      expect(second.incident.id).not.toBe(first.id);
      expect(s.incidents.listByNode('ip-10-0-0-1').map((i) => i.id)).toEqual([second.incident.id, first.id]);
      expect(s.incidents.listByNode('ip-10-0-0-1', 1)).toHaveLength(1);
    });

    it('transition is a compare-and-set: only one of two racing clicks wins', () => {
      const { incident } = s.incidents.openOrTouch(
        { ...xid79(), mode: 'approve', state: 'awaiting_approval' },
        1,
      );
      const click = () =>
        s.incidents.transition(incident.id, ['awaiting_approval'], 'cordoned', 'approved by U1', 2);
      expect([click(), click()]).toEqual([true, false]);
      expect(s.incidents.get(incident.id)?.state).toBe('cordoned');
      expect(s.incidents.transition(incident.id, [], 'failed')).toBe(false);
      expect(s.incidents.transition('missing', ['detected'], 'failed')).toBe(false);
    });

    it('lists incidents oldest first, narrowed by node, openness and last update', () => {
      const a = s.incidents.openOrTouch(xid79('n1', 'k1'), 10).incident;
      const b = s.incidents.openOrTouch(xid79('n2', 'k1'), 5).incident;
      // Same first sighting as `a`, created after it: creation order breaks the tie.
      const c = s.incidents.openOrTouch(xid79('n1', 'k2'), 10).incident;
      const d = s.incidents.openOrTouch(xid79('n1', 'k3'), 20).incident;
      s.incidents.transition(c.id, ['detected'], 'resolved', 'gone', 30);
      const ids = (f?: Parameters<typeof s.incidents.list>[0]) => s.incidents.list(f).map((i) => i.id);
      expect(ids()).toEqual([b.id, a.id, c.id, d.id]);
      expect(ids({ node: 'n1' })).toEqual([a.id, c.id, d.id]);
      expect(ids({ open: true })).toEqual([b.id, a.id, d.id]);
      expect(ids({ open: false })).toEqual([c.id]);
      expect(ids({ node: 'n1', open: true })).toEqual([a.id, d.id]);
      expect(ids({ updatedSince: 20 })).toEqual([c.id, d.id]);
      expect(ids({ node: 'n1', open: true, updatedSince: 20 })).toEqual([d.id]);
      expect(ids({ node: 'nobody' })).toEqual([]);
      expect(s.incidents.list({ node: 'n2' })).toEqual([s.incidents.get(b.id)]);
    });

    it('update changes descriptive fields, never the state', () => {
      const { incident } = s.incidents.openOrTouch(xid79(), 1);
      const u = s.incidents.update(
        incident.id,
        { plannedAction: 'reboot', mode: 'approve', evidence: ['a', 'b'] },
        9,
      );
      expect(u).toMatchObject({
        plannedAction: 'reboot',
        mode: 'approve',
        evidence: ['a', 'b'],
        state: 'detected',
        updatedAt: 9,
      });
      expect(s.incidents.update('missing', { mode: 'off' })).toBeUndefined();
    });
  });

  describe('StepRepo', () => {
    it('records steps before and after their effect, in order', () => {
      const { incident } = s.incidents.openOrTouch(xid79(), 1);
      const cordon = s.steps.begin(incident.id, 'cordon', undefined, 10);
      expect(cordon).toEqual({
        id: expect.any(Number),
        incidentId: incident.id,
        seq: 1,
        step: 'cordon',
        status: 'started',
        startedAt: 10,
      });
      expect(s.steps.finish(incident.id, cordon.seq, 'done', { now: 11 })).toBe(true);
      expect(s.steps.finish(incident.id, cordon.seq, 'failed')).toBe(false);
      const reboot = s.steps.begin(incident.id, 'reboot', { instanceId: 'i-1' }, 12);
      expect(reboot.seq).toBe(2);
      expect(s.steps.lastOf(incident.id, 'reboot')?.status).toBe('started');
      s.steps.finish(incident.id, reboot.seq, 'done', {
        externalRef: 'i-1',
        detail: { bootId: 'b2' },
        now: 20,
      });
      expect(s.steps.lastOf(incident.id, 'reboot')).toEqual({
        id: reboot.id,
        incidentId: incident.id,
        seq: 2,
        step: 'reboot',
        status: 'done',
        startedAt: 12,
        finishedAt: 20,
        detail: { instanceId: 'i-1', bootId: 'b2' },
        externalRef: 'i-1',
      });
      expect(s.steps.list(incident.id).map((r) => r.step)).toEqual(['cordon', 'reboot']);
      expect(s.steps.lastOf(incident.id, 'drain')).toBeUndefined();
    });

    it('finishes a row by its id, which stays the same in every read', () => {
      const a = s.incidents.openOrTouch(xid79(), 1).incident;
      const b = s.incidents.openOrTouch(xid79('ip-10-0-0-2'), 1).incident;
      const drainA = s.steps.begin(a.id, 'drain', { pods: 2 }, 10);
      const cordonB = s.steps.begin(b.id, 'cordon', undefined, 11);
      expect(drainA.id).not.toBe(cordonB.id);
      expect(s.steps.list(a.id).map((r) => r.id)).toEqual([drainA.id]);
      expect(s.steps.lastOf(b.id, 'cordon')?.id).toBe(cordonB.id);
      expect(s.steps.finishById(drainA.id, 'done', { detail: { evicted: 2 }, now: 12 })).toBe(true);
      expect(s.steps.finishById(drainA.id, 'failed')).toBe(false);
      expect(s.steps.lastOf(a.id, 'drain')).toMatchObject({
        id: drainA.id,
        status: 'done',
        finishedAt: 12,
        detail: { pods: 2, evicted: 2 },
      });
      expect(s.steps.lastOf(b.id, 'cordon')?.status).toBe('started');
      expect(() => s.steps.finishById(9999, 'done')).toThrow(/no remediation step row 9999/);
    });

    it('refuses a step for an incident that does not exist (foreign key)', () => {
      expect(() => s.steps.begin('nope', 'cordon')).toThrow(errors[dialect()].foreignKey);
    });
  });

  describe('IncidentRepo.openFaultStates', () => {
    it('lists fault key and state of the non-terminal incidents of one node only', () => {
      const a = s.incidents.openOrTouch(faultInput('n1', 'xid:79:gpu3'), 100).incident;
      const b = s.incidents.openOrTouch(faultInput('n1', 'ecc_dbe:gpu0'), 100).incident;
      const c = s.incidents.openOrTouch(faultInput('n1', 'thermal:gpu1'), 100).incident;
      s.incidents.openOrTouch(faultInput('n2', 'xid:79:gpu0'), 100);
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
      const a = s.incidents.openOrTouch(faultInput('n1', 'xid:79:gpu3'), 100).incident;
      s.incidents.transition(a.id, ['detected'], 'dismissed', undefined, 150);
      expect(s.incidents.openFaultStates('n1')).toEqual([]);
      s.incidents.openOrTouch(faultInput('n1', 'xid:79:gpu3'), 300);
      const fromList = s.incidents
        .listByNode('n1', 200)
        .filter((i) => !['resolved', 'escalated', 'failed', 'cancelled', 'dismissed'].includes(i.state))
        .map((i) => ({ faultKey: i.faultKey, state: i.state }));
      expect(s.incidents.openFaultStates('n1')).toEqual(fromList);
      expect(fromList).toHaveLength(1);
    });
  });
}
