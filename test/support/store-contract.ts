/**
 * The repository contract: the SAME cases against every store implementation (SQLite, PostgreSQL), so a
 * repository behaves alike in both. src/store/store-contract.test.ts runs it for each.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CachedClassification } from '../../src/domain/ports.js';
import type { RepairRecord } from '../../src/domain/repair-record.js';
import type { SqlDialect } from '../../src/store/sql.js';
import type { Store } from '../../src/store/store.js';
import { incidentContract, xid79 } from './store-contract-incidents.js';

export interface StoreFactory {
  readonly dialect: SqlDialect;
  /** A new, empty store with this clock (its own file, or its own PostgreSQL schema). */
  open(now: () => number): Store;
  /** Two stores over one new, empty database: two processes sharing it. */
  openTwo(): [Store, Store];
}

export function describeStoreContract(
  name: string,
  makeFactory: () => StoreFactory | Promise<StoreFactory>,
  setupTimeoutMs?: number,
): void {
  describe(name, () => {
    let made: StoreFactory | undefined;
    const factory = (): StoreFactory => {
      if (!made) throw new Error('the store factory is not ready');
      return made;
    };
    beforeAll(async () => {
      made = await makeFactory();
    }, setupTimeoutMs);

    let s: Store;
    let clock = 1_000_000;
    beforeEach(() => {
      clock = 1_000_000;
      s = factory().open(() => clock);
    });
    afterEach(() => s.close());

    incidentContract(
      () => s,
      () => factory().dialect,
    );

    describe('ExclusionRepo', () => {
      it('returns only unexpired exclusions', () => {
        s.exclusions.add({ node: 'a', reason: 'maintenance', createdBy: 'U1', createdAt: 0, expiresAt: 100 });
        s.exclusions.add({ node: 'b', reason: 'forever', createdBy: 'U2', createdAt: 0 });
        expect(s.exclusions.get('a', 99)).toEqual({
          node: 'a',
          reason: 'maintenance',
          createdBy: 'U1',
          createdAt: 0,
          expiresAt: 100,
        });
        expect(s.exclusions.get('a', 100)).toBeUndefined();
        expect(s.exclusions.list(50).map((e) => e.node)).toEqual(['a', 'b']);
        expect(s.exclusions.list(150).map((e) => e.node)).toEqual(['b']);
        expect(s.exclusions.remove('a', 150)).toBe(false);
        expect(s.exclusions.purgeExpired(150)).toBe(1);
        expect(s.exclusions.remove('b')).toBe(true);
        expect(s.exclusions.list(0)).toEqual([]);
      });

      it('a second add replaces the first', () => {
        s.exclusions.add({ node: 'a', reason: 'x', createdBy: 'U1', createdAt: 0, expiresAt: 10 });
        s.exclusions.add({ node: 'a', reason: 'y', createdBy: 'U2', createdAt: 5 });
        expect(s.exclusions.get('a', 1000)?.reason).toBe('y');
      });
    });

    describe('AuditLog', () => {
      it('appends and lists newest first, filtered', () => {
        s.audit.append({ at: 1, actor: 'monitor', action: 'detect', node: 'a', result: 'ok' });
        s.audit.append({
          at: 2,
          actor: 'U1',
          action: 'reboot',
          node: 'b',
          incidentId: 'inc-1',
          reason: 'xid',
          result: 'denied',
          details: { why: 'not admin' },
        });
        s.audit.append({ at: 3, actor: 'engine', action: 'cordon', node: 'a', result: 'ok' });
        expect(s.audit.list().map((e) => e.at)).toEqual([3, 2, 1]);
        expect(s.audit.list({ node: 'a' }).map((e) => e.at)).toEqual([3, 1]);
        expect(s.audit.list({ incidentId: 'inc-1' })).toEqual([
          {
            at: 2,
            actor: 'U1',
            action: 'reboot',
            node: 'b',
            incidentId: 'inc-1',
            reason: 'xid',
            result: 'denied',
            details: { why: 'not admin' },
          },
        ]);
        expect(s.audit.list({ limit: 1 })).toHaveLength(1);
      });

      it('is append-only in the schema', () => {
        s.audit.append({ at: 1, actor: 'a', action: 'b', result: 'c' });
        expect(() => s.db.prepare('UPDATE audit_log SET result = ?').run('forged')).toThrow(/append-only/);
        expect(() => s.db.prepare('DELETE FROM audit_log').run()).toThrow(/append-only/);
      });
    });

    describe('OutboxRepo', () => {
      it('delivers per ordering key oldest first, keys independently', () => {
        const t1 = s.outbox.enqueue('slack', 'thread-1', { n: 1 }, { now: 0 }).id;
        const t2 = s.outbox.enqueue('slack', 'thread-1', { n: 2 }, { now: 0 }).id;
        const u1 = s.outbox.enqueue('slack', 'thread-2', { n: 3 }, { now: 0 }).id;
        s.outbox.enqueue('sns', 'topic', { n: 4 }, { now: 0 });
        expect(s.outbox.nextBatch('slack', 0, 10).map((m) => m.id)).toEqual([t1, u1]);
        // thread-1's head fails and waits: its second message must not overtake it.
        expect(s.outbox.markRetry(t1, 'ratelimited', 100)).toBe(true);
        expect(s.outbox.nextBatch('slack', 50, 10).map((m) => m.id)).toEqual([u1]);
        expect(s.outbox.nextBatch('slack', 100, 10).map((m) => m.id)).toEqual([t1, u1]);
        expect(s.outbox.markDelivered(t1, { ts: '1700000000.000100' }, 101)).toBe(true);
        expect(s.outbox.markDelivered(t1)).toBe(false);
        expect(s.outbox.nextBatch('slack', 101, 10).map((m) => m.id)).toEqual([t2, u1]);
        expect(s.outbox.get(t1)).toMatchObject({
          status: 'delivered',
          attempts: 2,
          result: { ts: '1700000000.000100' },
          deliveredAt: 101,
        });
        expect(s.outbox.nextBatch('slack', 101, 1)).toHaveLength(1);
        expect(s.outbox.depth('slack')).toBe(2);
        expect(s.outbox.depth()).toBe(3);
      });

      it('claimBatch takes the due heads until their lease ends; the taker then settles them', () => {
        const t1 = s.outbox.enqueue('slack', 'thread-1', { n: 1 }, { now: 0 }).id;
        const t2 = s.outbox.enqueue('slack', 'thread-1', { n: 2 }, { now: 0 }).id;
        const u1 = s.outbox.enqueue('slack', 'thread-2', { n: 3 }, { now: 0 }).id;
        expect(s.outbox.claimBatch('slack', 10, 10, 70).map((m) => m.id)).toEqual([t1, u1]);
        // Taken: neither they nor the messages queued behind them are due for anyone else until the lease ends.
        expect(s.outbox.claimBatch('slack', 20, 10, 80)).toEqual([]);
        expect(s.outbox.nextBatch('slack', 69, 10)).toEqual([]);
        expect(s.outbox.markDelivered(t1, undefined, 30)).toBe(true);
        expect(s.outbox.claimBatch('slack', 31, 10, 90).map((m) => m.id)).toEqual([t2]);
        // A taker that died: its message is due again once the lease has run out, attempts untouched.
        expect(s.outbox.claimBatch('slack', 70, 10, 130)).toEqual([
          expect.objectContaining({ id: u1, attempts: 0, payload: { n: 3 } }),
        ]);
        expect(s.outbox.claimBatch('slack', 200, 1, 260)).toHaveLength(1);
      });

      it('defer gives a taken message back, due at the given time, without counting an attempt', () => {
        const a = s.outbox.enqueue('slack', 'thread-1', { n: 1 }, { now: 0 }).id;
        expect(s.outbox.claimBatch('slack', 10, 10, 10_000)).toHaveLength(1);
        expect(s.outbox.defer(a, 15)).toBe(true);
        expect(s.outbox.claimBatch('slack', 14, 10, 10_000)).toEqual([]);
        expect(s.outbox.claimBatch('slack', 15, 10, 10_000)).toEqual([
          expect.objectContaining({ id: a, attempts: 0 }),
        ]);
        expect(s.outbox.markDelivered(a, undefined, 16)).toBe(true);
        // A settled message is not made pending again.
        expect(s.outbox.defer(a, 20)).toBe(false);
      });

      it('a dead message lets the next of its key proceed', () => {
        const a = s.outbox.enqueue('webhook', 'k', { n: 1 }, { now: 0 }).id;
        const b = s.outbox.enqueue('webhook', 'k', { n: 2 }, { now: 0 }).id;
        expect(s.outbox.markDead(a, '400 bad request', 5)).toBe(true);
        expect(s.outbox.get(a)).toMatchObject({ status: 'dead', lastError: '400 bad request', attempts: 1 });
        expect(s.outbox.nextBatch<{ n: number }>('webhook', 5, 10)).toEqual([
          expect.objectContaining({ id: b, payload: { n: 2 } }),
        ]);
      });

      it('deduplicates by dedupe key', () => {
        const first = s.outbox.enqueue('slack', 'c', { alert: 1 }, { dedupeKey: 'alert:inc-1' });
        const again = s.outbox.enqueue('slack', 'c', { alert: 2 }, { dedupeKey: 'alert:inc-1' });
        expect(first.duplicate).toBe(false);
        expect(again).toEqual({ id: first.id, duplicate: true });
        expect(s.outbox.depth('slack')).toBe(1);
        expect(s.outbox.getByDedupeKey('alert:inc-1')?.payload).toEqual({ alert: 1 });
        s.outbox.enqueue('slack', 'c', { x: 1 });
        s.outbox.enqueue('slack', 'c', { x: 2 });
        expect(s.outbox.depth('slack')).toBe(3);
      });

      it('prunes finished messages only', () => {
        const a = s.outbox.enqueue('sns', 'k', {}, { now: 0 }).id;
        s.outbox.enqueue('sns', 'k2', {}, { now: 0 });
        s.outbox.markDelivered(a, undefined, 1);
        expect(s.outbox.prune(10)).toBe(1);
        expect(s.outbox.depth()).toBe(1);
      });
    });

    describe('SignatureCache', () => {
      const value: CachedClassification = {
        category: 'FABRIC_MANAGER_DOWN',
        severity: 'critical',
        confidence: 0.9,
        explanation: 'fabric manager down',
        source: 'llm',
      };

      it('returns an entry until it expires, and counts hits', () => {
        s.llmCache.put('sig-1', value, 1000);
        expect(s.llmCache.get('sig-1', 999)).toEqual(value);
        expect(s.llmCache.get('sig-1', 999)).toEqual(value);
        expect(s.db.prepare('SELECT hits FROM llm_cache').get()).toEqual({ hits: 2 });
        expect(s.llmCache.get('sig-1', 1000)).toBeUndefined();
        expect(s.llmCache.get('sig-2', 0)).toBeUndefined();
        expect(s.llmCache.size(0)).toBe(1);
        expect(s.llmCache.purgeExpired(1000)).toBe(1);
      });

      it('treats an unreadable row as a miss', () => {
        s.db.prepare("INSERT INTO llm_cache VALUES ('bad', '{not json', 100, 0, 0)").run();
        expect(s.llmCache.get('bad', 0)).toBeUndefined();
      });
    });

    describe('state repositories', () => {
      it('GpuStateRepo keeps the last XID per GPU', () => {
        s.gpuState.upsertMany('n1', [
          { gpu: 0, xidLast: 0 },
          { gpu: 3, xidLast: 79, xidCount: 2 },
        ]);
        s.gpuState.upsertMany('n1', [{ gpu: 3, xidLast: 48 }], 5);
        expect(s.gpuState.get('n1')).toEqual([
          { gpu: 0, xidLast: 0, updatedAt: 1_000_000 },
          { gpu: 3, xidLast: 48, updatedAt: 5 },
        ]);
        s.gpuState.deleteNode('n1');
        expect(s.gpuState.get('n1')).toEqual([]);
      });

      it('GpuStateRepo writes many GPUs at once: the last row of a GPU wins, any number of GPUs', () => {
        s.gpuState.upsertMany('n1', [
          { gpu: 1, xidLast: 13 },
          { gpu: 1, xidLast: 79, xidCount: 1 },
        ]);
        expect(s.gpuState.get('n1')).toEqual([{ gpu: 1, xidLast: 79, xidCount: 1, updatedAt: 1_000_000 }]);
        const many = Array.from({ length: 130 }, (_, gpu) => ({ gpu, xidLast: gpu }));
        s.gpuState.upsertMany('n2', many, 7);
        expect(s.gpuState.get('n2')).toEqual(many.map((r) => ({ ...r, xidCount: undefined, updatedAt: 7 })));
      });

      it('NodeStateRepo keeps verdict and boot id, merging partial updates', () => {
        s.nodeState.upsert({ node: 'n1', bootId: 'boot-1', lastScanAt: 1 });
        s.nodeState.upsert({
          node: 'n1',
          lastScanAt: 2,
          verdict: {
            node: 'n1',
            category: 'HEALTHY',
            severity: 'healthy',
            action: 'none',
            explanation: 'ok',
            source: 'rules',
            findings: [],
          },
        });
        expect(s.nodeState.get('n1')).toMatchObject({
          node: 'n1',
          bootId: 'boot-1',
          lastScanAt: 2,
          verdict: { category: 'HEALTHY' },
        });
        expect(s.nodeState.list()).toHaveLength(1);
        expect(s.nodeState.has('n1')).toBe(true);
        expect(s.nodeState.has('n2')).toBe(false);
        s.nodeState.delete('n1');
        expect(s.nodeState.get('n1')).toBeUndefined();
        expect(s.nodeState.has('n1')).toBe(false);
      });

      it('NodeStateRepo moves the scan time of many recorded nodes at once, and only theirs', () => {
        s.nodeState.upsert({ node: 'n1', bootId: 'boot-1', lastScanAt: 1 }, 1);
        s.nodeState.upsert({ node: 'n2', lastScanAt: 1 }, 1);
        s.nodeState.upsert({ node: 'n3', lastScanAt: 1 }, 1);
        s.nodeState.touchMany(['n1', 'n3', 'never-recorded', "quote'd"], 7, 8);
        expect(s.nodeState.list().map((r) => [r.node, r.lastScanAt, r.updatedAt, r.bootId])).toEqual([
          ['n1', 7, 8, 'boot-1'],
          ['n2', 1, 1, undefined],
          ['n3', 7, 8, undefined],
        ]);
        s.nodeState.touchMany([], 9, 9);
        expect(s.nodeState.get('n2')?.lastScanAt).toBe(1);
      });

      it('KvRepo stores JSON values', () => {
        s.kv.set('breaker', { open: true, reason: '40% unhealthy' });
        expect(s.kv.get('breaker')).toEqual({ open: true, reason: '40% unhealthy' });
        expect(s.kv.delete('breaker')).toBe(true);
        expect(s.kv.get('breaker')).toBeUndefined();
      });

      it('SlackRefRepo remembers the alert ts of an incident', () => {
        s.slackRefs.set('inc-1', 'C1', '1700000000.000100');
        expect(s.slackRefs.get('inc-1')).toMatchObject({ channel: 'C1', ts: '1700000000.000100' });
        s.slackRefs.delete('inc-1');
        expect(s.slackRefs.get('inc-1')).toBeUndefined();
      });

      it('store.transaction commits all or nothing', () => {
        expect(() =>
          s.transaction(() => {
            s.kv.set('a', 1);
            s.audit.append({ at: 1, actor: 'x', action: 'y', result: 'z' });
            throw new Error('boom');
          }),
        ).toThrow('boom');
        expect(s.kv.get('a')).toBeUndefined();
        expect(s.audit.list()).toEqual([]);
      });

      it('a nested transaction is a savepoint: its failure undoes only its own writes', () => {
        s.transaction(() => {
          s.kv.set('outer', 1);
          expect(() =>
            s.transaction(() => {
              s.kv.set('inner', 1);
              throw new Error('inner failed');
            }),
          ).toThrow('inner failed');
          // The connection is usable after the inner failure, inside the same outer transaction.
          s.kv.set('after', 1);
        });
        expect([s.kv.get('outer'), s.kv.get('inner'), s.kv.get('after')]).toEqual([1, undefined, 1]);
      });
    });

    const record = (over: Partial<RepairRecord> = {}): RepairRecord => ({
      incidentId: 'inc-1',
      action: 'replace',
      node: 'gpu-0',
      instanceId: 'i-0abc',
      instanceType: 'p5.48xlarge',
      zone: 'us-east-1a',
      gpuIndex: 3,
      gpuUuid: 'GPU-3333',
      pciBusId: '00000000:53:00.0',
      xids: [79],
      faulty: true,
      faultKey: 'xid:79:gpu3',
      category: 'XID_CRITICAL_79',
      diag: [{ test: 'memory', status: 'fail', info: 'bad' }],
      diagLevel: '1',
      detectedAt: 1_000,
      startedAt: 2_000,
      endedAt: 10_000,
      outcome: 'resolved',
      ...over,
    });

    describe('repair records (migration 2)', () => {
      it('stores and reads back every field; the same incident written again replaces its rows', () => {
        s.repairs.save([record(), record({ gpuIndex: 1, gpuUuid: 'GPU-1111', faulty: false, diag: [] })]);
        expect(s.repairs.listSince(0)).toEqual([
          record(),
          record({ gpuIndex: 1, gpuUuid: 'GPU-1111', faulty: false, diag: [] }),
        ]);
        s.repairs.save([record({ outcome: 'escalated', reason: 'diag failed' })]);
        expect(s.repairs.listSince(0)).toEqual([record({ outcome: 'escalated', reason: 'diag failed' })]);
      });

      it('lists by end time and by GPU UUID; a node-level record has no GPU', () => {
        s.repairs.save([record({ incidentId: 'old', endedAt: 5_000 })]);
        s.repairs.save([record({ incidentId: 'new', endedAt: 20_000 })]);
        const { gpuIndex: _, gpuUuid: __, pciBusId: ___, ...nodeLevel } = record({ incidentId: 'node' });
        s.repairs.save([{ ...nodeLevel, endedAt: 30_000 }]);
        expect(s.repairs.listSince(10_000).map((r) => r.incidentId)).toEqual(['new', 'node']);
        expect(s.repairs.listSince(25_000)[0]?.gpuIndex).toBeUndefined();
        expect(s.repairs.listByUuid('GPU-3333').map((r) => r.incidentId)).toEqual(['old', 'new']);
      });
    });

    describe('two connections to one database', () => {
      it('the unique index keeps one open incident even across connections', () => {
        const [a, b] = factory().openTwo();
        try {
          const x = a.incidents.openOrTouch(xid79(), 1);
          const y = b.incidents.openOrTouch(xid79(), 2);
          expect(y).toMatchObject({ created: false, incident: { id: x.incident.id, count: 2 } });
          expect(b.incidents.transition(x.incident.id, ['detected'], 'cordoned')).toBe(true);
          expect(a.incidents.transition(x.incident.id, ['detected'], 'cordoned')).toBe(false);
        } finally {
          a.close();
          b.close();
        }
      });
    });
  });
}
