/**
 * Fleet read models, written by each cluster's leader and read by every process: the cluster's summary
 * (once per scan) and its node names (when they change). Portable SQL: the same statements run on SQLite
 * and PostgreSQL.
 */
import { ClusterSummary, type FleetCluster } from '../fleet/summary.js';
import { fromJson, toJson } from './json.js';
import type { SqlDatabase } from './sql.js';

interface ClusterRow {
  cluster: string;
  leader: string | null;
  heartbeat_at: number;
  summary: string;
}

/** Rows per INSERT when a node set is replaced: 2 parameters each, far under every driver's limit. */
const nodeBatch = 500;

export interface FleetRepo {
  /** The cluster's summary, who leads it and when it was written (an upsert). */
  publish(cluster: string, leader: string | undefined, summary: ClusterSummary, now: number): void;
  get(cluster: string): FleetCluster | undefined;
  /** Every cluster, by name. */
  list(): FleetCluster[];
  /** The cluster's node names become exactly `nodes`, in one transaction. */
  replaceNodes(cluster: string, nodes: readonly string[]): void;
  /** The clusters that have a node of this name, by name. */
  clustersHavingNode(node: string): string[];
}

function clusterOf(r: ClusterRow): FleetCluster {
  const parsed = ClusterSummary.safeParse(fromJson<unknown>(r.summary, undefined));
  return {
    cluster: r.cluster,
    ...(r.leader !== null ? { leader: r.leader } : {}),
    heartbeatAt: Number(r.heartbeat_at),
    ...(parsed.success ? { summary: parsed.data } : {}),
  };
}

export function createFleetRepo(sql: SqlDatabase): FleetRepo {
  const upsert = sql.prepare(
    `INSERT INTO fleet_clusters (cluster, leader, heartbeat_at, summary) VALUES (?, ?, ?, ?)
     ON CONFLICT (cluster) DO UPDATE SET leader = excluded.leader, heartbeat_at = excluded.heartbeat_at,
       summary = excluded.summary`,
  );
  const one = sql.prepare(
    'SELECT cluster, leader, heartbeat_at, summary FROM fleet_clusters WHERE cluster = ?',
  );
  const all = sql.prepare(
    'SELECT cluster, leader, heartbeat_at, summary FROM fleet_clusters ORDER BY cluster',
  );
  const clear = sql.prepare('DELETE FROM fleet_nodes WHERE cluster = ?');
  const having = sql.prepare('SELECT cluster FROM fleet_nodes WHERE node = ? ORDER BY cluster');
  const inserts = new Map<number, ReturnType<SqlDatabase['prepare']>>();
  const insertOf = (rows: number) => {
    let s = inserts.get(rows);
    if (!s) {
      const values = Array.from({ length: rows }, () => '(?, ?)').join(', ');
      s = sql.prepare(`INSERT INTO fleet_nodes (cluster, node) VALUES ${values} ON CONFLICT DO NOTHING`);
      inserts.set(rows, s);
    }
    return s;
  };
  return {
    publish(cluster, leader, summary, now) {
      upsert.run(cluster, leader ?? null, now, toJson(summary));
    },
    get(cluster) {
      const r = one.get(cluster) as ClusterRow | undefined;
      return r ? clusterOf(r) : undefined;
    },
    list: () => (all.all() as ClusterRow[]).map(clusterOf),
    replaceNodes(cluster, nodes) {
      const unique = [...new Set(nodes)];
      sql.transaction(() => {
        clear.run(cluster);
        for (let i = 0; i < unique.length; i += nodeBatch) {
          const chunk = unique.slice(i, i + nodeBatch);
          insertOf(chunk.length).run(...chunk.flatMap((node) => [cluster, node]));
        }
      });
    },
    clustersHavingNode: (node) => (having.all(node) as { cluster: string }[]).map((r) => r.cluster),
  };
}
