import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freshDatabase, POSTGRES_HOOK_TIMEOUT } from '../../test/support/postgres.js';
import type { ClusterSummary } from '../fleet/summary.js';
import { openPostgresStore } from './pg/open-pg.js';
import { openStore, type Store } from './store.js';

// The same cases on both stores: SQLite (a fresh in-memory file per case) and PostgreSQL (one database for
// the file, where the fleet tables live in the shared gpu_medic_fleet schema, emptied before each case).
describe.each(['sqlite', 'postgres'] as const)('fleet repositories on %s', (dialect) => {
  let s: Store;
  let pg: Store | undefined;
  if (dialect === 'postgres') {
    beforeAll(async () => {
      pg = openPostgresStore((await freshDatabase('fleet_repos')).url, 'fleet-repos', { now: () => 1_000 });
    }, POSTGRES_HOOK_TIMEOUT);
    afterAll(() => pg?.close());
  }
  beforeEach(() => {
    if (pg) {
      pg.db.exec('TRUNCATE fleet_clusters, fleet_nodes, fleet_requests RESTART IDENTITY');
      s = pg;
    } else s = openStore(':memory:', { now: () => 1_000 });
  });
  afterEach(() => {
    if (s !== pg) s.close();
  });

  const summary = (over: Partial<ClusterSummary> = {}): ClusterSummary => ({
    gpuNodes: 4,
    healthy: 3,
    warning: 0,
    critical: 1,
    unknown: 0,
    inRemediation: 1,
    excluded: 0,
    breaker: 'closed',
    dryRun: false,
    openIncidents: [{ id: 'inc-1', node: 'gpu-a', severity: 'critical', state: 'draining' }],
    ...over,
  });

  describe('FleetRepo', () => {
    it('publishes one row per cluster, the last write winning, listed by name', () => {
      s.fleet.publish('prod', 'medic-a-1', summary(), 100);
      s.fleet.publish('staging', undefined, summary({ gpuNodes: 1 }), 150);
      s.fleet.publish('prod', 'medic-b-2', summary({ critical: 0, openIncidents: [] }), 200);
      expect(s.fleet.list().map((c) => [c.cluster, c.leader, c.heartbeatAt])).toEqual([
        ['prod', 'medic-b-2', 200],
        ['staging', undefined, 150],
      ]);
      expect(s.fleet.get('prod')?.summary).toEqual(summary({ critical: 0, openIncidents: [] }));
      expect(s.fleet.get('nowhere')).toBeUndefined();
    });

    it('reads a summary it cannot parse as no summary, keeping the row', () => {
      s.db
        .prepare('INSERT INTO fleet_clusters (cluster, leader, heartbeat_at, summary) VALUES (?, ?, ?, ?)')
        .run('odd', null, 5, '{"gpuNodes":"many"}');
      expect(s.fleet.get('odd')).toEqual({ cluster: 'odd', heartbeatAt: 5 });
    });

    it('replaces a cluster node set in batches and finds the clusters having a node', () => {
      const many = Array.from({ length: 1234 }, (_, i) => `node-${i}`);
      s.fleet.replaceNodes('prod', [...many, 'node-1']);
      s.fleet.replaceNodes('staging', ['node-1', 'other']);
      expect(s.db.prepare("SELECT COUNT(*) AS n FROM fleet_nodes WHERE cluster = 'prod'").get()).toEqual({
        n: 1234,
      });
      expect(s.fleet.clustersHavingNode('node-1')).toEqual(['prod', 'staging']);
      expect(s.fleet.clustersHavingNode('node-1233')).toEqual(['prod']);
      s.fleet.replaceNodes('prod', ['node-2']);
      expect(s.fleet.clustersHavingNode('node-1')).toEqual(['staging']);
      expect(s.fleet.clustersHavingNode('node-2')).toEqual(['prod']);
      s.fleet.replaceNodes('staging', []);
      expect(s.fleet.clustersHavingNode('other')).toEqual([]);
    });
  });

  describe('RequestRepo', () => {
    const req = (cluster: string, n: number) => ({
      cluster,
      kind: 'action' as const,
      payload: { n },
      requestedBy: 'U1',
    });

    it('claims the cluster pending requests oldest first, once', () => {
      const a = s.requests.enqueue(req('prod', 1), 10);
      s.requests.enqueue(req('staging', 2), 11);
      const c = s.requests.enqueue(req('prod', 3), 12);
      const claimed = s.requests.claim('prod', 'leader-1', 20, 5_000);
      expect(claimed.map((r) => [r.id, r.payload, r.status, r.claimedBy, r.claimedAt])).toEqual([
        [a, { n: 1 }, 'claimed', 'leader-1', 20],
        [c, { n: 3 }, 'claimed', 'leader-1', 20],
      ]);
      expect(s.requests.claim('prod', 'leader-2', 21, 5_000)).toEqual([]);
      expect(s.requests.claim('prod', 'leader-1', 22, 5_000, 1)).toEqual([]);
    });

    it('respects the limit', () => {
      for (let i = 0; i < 5; i++) s.requests.enqueue(req('prod', i), i);
      expect(s.requests.claim('prod', 'l', 10, 1000, 2).map((r) => r.payload)).toEqual([{ n: 0 }, { n: 1 }]);
      expect(s.requests.claim('prod', 'l', 10, 1000, 10)).toHaveLength(3);
    });

    it('gives a claim older than the stale age to another leader, and only that one may finish it', () => {
      const id = s.requests.enqueue(req('prod', 1), 10);
      s.requests.claim('prod', 'dead', 100, 5_000);
      expect(s.requests.claim('prod', 'alive', 5_100, 5_000)).toEqual([]);
      expect(s.requests.claim('prod', 'alive', 5_101, 5_000).map((r) => r.id)).toEqual([id]);
      expect(s.requests.complete(id, 'dead', { late: true }, 5_200)).toBe(false);
      expect(s.requests.complete(id, 'alive', { answered: 'thread' }, 5_300)).toBe(true);
      expect(s.requests.get(id)).toMatchObject({
        status: 'done',
        claimedBy: 'alive',
        finishedAt: 5_300,
        result: { answered: 'thread' },
      });
      // Done is final: neither claimable nor finishable again.
      expect(s.requests.claim('prod', 'other', 99_999, 1)).toEqual([]);
      expect(s.requests.fail(id, 'alive', 'again', 5_400)).toBe(false);
    });

    it('a renewed claim is not stale: a live leader still executing keeps it; one that stopped renewing loses it', () => {
      const id = s.requests.enqueue(req('prod', 1), 10);
      s.requests.claim('prod', 'busy', 100, 5_000);
      expect(s.requests.renew(id, 'busy', 4_000)).toBe(true);
      expect(s.requests.claim('prod', 'next', 8_000, 5_000)).toEqual([]);
      expect(s.requests.claim('prod', 'next', 9_001, 5_000).map((r) => r.id)).toEqual([id]);
      expect(s.requests.renew(id, 'busy', 9_100)).toBe(false);
      expect(s.requests.complete(id, 'next', null, 9_200)).toBe(true);
      expect(s.requests.renew(id, 'next', 9_300)).toBe(false);
    });

    it('never gives a claimer back its own long-running claim', () => {
      const id = s.requests.enqueue(req('prod', 1), 10);
      s.requests.claim('prod', 'leader', 100, 5_000);
      expect(s.requests.claim('prod', 'leader', 60_000, 5_000)).toEqual([]);
      expect(s.requests.claim('prod', 'successor', 60_000, 5_000).map((r) => r.id)).toEqual([id]);
    });

    it('prunes the cluster finished requests older than a time, never a pending or claimed one', () => {
      const done = s.requests.enqueue(req('prod', 1), 10);
      const claimed = s.requests.enqueue(req('prod', 2), 11);
      const other = s.requests.enqueue(req('staging', 3), 12);
      s.requests.claim('prod', 'l', 20, 1000, 1);
      s.requests.complete(done, 'l', null, 30);
      s.requests.claim('prod', 'l', 40, 1000);
      s.requests.claim('staging', 'l', 40, 1000);
      s.requests.fail(other, 'l', 'x', 30);
      expect(s.requests.prune('prod', 31)).toBe(1);
      expect(s.requests.get(done)).toBeUndefined();
      expect(s.requests.get(claimed)?.status).toBe('claimed');
      expect(s.requests.get(other)?.status).toBe('failed');
    });

    it('records a failure with its error and lists recent requests newest first', () => {
      const a = s.requests.enqueue(req('prod', 1), 10);
      const b = s.requests.enqueue(req('staging', 2), 11);
      s.requests.claim('prod', 'l', 20, 1000);
      expect(s.requests.fail(a, 'l', 'invalid payload: action missing', 30)).toBe(true);
      expect(s.requests.get(a)).toMatchObject({ status: 'failed', error: 'invalid payload: action missing' });
      expect(s.requests.listRecent(10).map((r) => r.id)).toEqual([b, a]);
      expect(s.requests.listRecent(10, 'staging').map((r) => [r.id, r.status])).toEqual([[b, 'pending']]);
      expect(s.requests.get(999)).toBeUndefined();
    });
  });
});
