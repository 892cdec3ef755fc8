/**
 * Requests addressed to a cluster's leader: any process enqueues a Slack click or command it may not act
 * on; the target cluster's leader claims it, executes it, and marks it done or failed. A claim whose
 * leader died (older than the given age, the lease duration) is claimable again. Portable SQL, except the
 * claim's row lock (`skipLocked`).
 */

import { fromJson, toJson } from './json.js';
import { type SqlDatabase, skipLocked } from './sql.js';

export type FleetRequestKind = 'action' | 'command';
export type FleetRequestStatus = 'pending' | 'claimed' | 'done' | 'failed';

export interface FleetRequest {
  id: number;
  cluster: string;
  kind: FleetRequestKind;
  /** As enqueued: the executing leader validates it. */
  payload: unknown;
  requestedBy: string;
  status: FleetRequestStatus;
  claimedBy?: string;
  claimedAt?: number;
  createdAt: number;
  finishedAt?: number;
  result?: unknown;
  error?: string;
}

export interface NewFleetRequest {
  cluster: string;
  kind: FleetRequestKind;
  payload: unknown;
  requestedBy: string;
}

export interface RequestRepo {
  /** Returns the new request's id. */
  enqueue(request: NewFleetRequest, now: number): number;
  /**
   * Claims up to `limit` requests of `cluster` for `owner`, oldest first: pending ones, and those another
   * owner claimed more than `staleAfterMs` ago (their claimer died). Never its own: a request `owner` is
   * still executing (a level-3 diagnostic takes half an hour) is not started twice.
   */
  claim(cluster: string, owner: string, now: number, staleAfterMs: number, limit?: number): FleetRequest[];
  /**
   * Keeps `owner`'s claim fresh while it executes (a claim is stale `staleAfterMs` after its last renewal), so
   * a new leader re-runs only what a dead one left, never what a live one is still doing. False when `owner`
   * no longer holds it.
   */
  renew(id: number, owner: string, now: number): boolean;
  /** False when `owner` no longer holds the claim (it went stale and another leader took it). */
  complete(id: number, owner: string, result: unknown, now: number): boolean;
  fail(id: number, owner: string, error: string, now: number): boolean;
  get(id: number): FleetRequest | undefined;
  /** Newest first; of one cluster when given. */
  listRecent(limit: number, cluster?: string): FleetRequest[];
  /** Deletes `cluster`'s finished requests (done or failed) that finished before `before`; returns how many. */
  prune(cluster: string, before: number): number;
}

interface RequestRow {
  id: number;
  cluster: string;
  kind: string;
  payload: string;
  requested_by: string;
  status: string;
  claimed_by: string | null;
  claimed_at: number | null;
  created_at: number;
  finished_at: number | null;
  result: string | null;
  error: string | null;
}

const columns =
  'id, cluster, kind, payload, requested_by, status, claimed_by, claimed_at, created_at, finished_at, result, error';

function requestOf(r: RequestRow): FleetRequest {
  return {
    id: Number(r.id),
    cluster: r.cluster,
    kind: r.kind as FleetRequestKind,
    // Unparseable text stays visible to the validator as the raw string, never dropped.
    payload: fromJson<unknown>(r.payload, r.payload),
    requestedBy: r.requested_by,
    status: r.status as FleetRequestStatus,
    ...(r.claimed_by !== null ? { claimedBy: r.claimed_by } : {}),
    ...(r.claimed_at !== null ? { claimedAt: Number(r.claimed_at) } : {}),
    createdAt: Number(r.created_at),
    ...(r.finished_at !== null ? { finishedAt: Number(r.finished_at) } : {}),
    ...(r.result !== null ? { result: fromJson<unknown>(r.result, r.result) } : {}),
    ...(r.error !== null ? { error: r.error } : {}),
  };
}

export function createRequestRepo(sql: SqlDatabase): RequestRepo {
  const insert = sql.prepare(
    `INSERT INTO fleet_requests (cluster, kind, payload, requested_by, status, created_at)
     VALUES (?, ?, ?, ?, 'pending', ?) RETURNING id`,
  );
  const claim = sql.prepare(
    `UPDATE fleet_requests SET status = 'claimed', claimed_by = @owner, claimed_at = @now
     WHERE id IN (
       SELECT id FROM fleet_requests
       WHERE cluster = @cluster
         AND (status = 'pending'
           OR (status = 'claimed' AND claimed_at < @staleBefore AND claimed_by <> @owner))
       ORDER BY id LIMIT @limit${skipLocked(sql)}
     )
     RETURNING ${columns}`,
  );
  const finish = sql.prepare(
    `UPDATE fleet_requests SET status = @status, finished_at = @now, result = @result, error = @error
     WHERE id = @id AND claimed_by = @owner AND status = 'claimed'`,
  );
  const renew = sql.prepare(
    `UPDATE fleet_requests SET claimed_at = ? WHERE id = ? AND claimed_by = ? AND status = 'claimed'`,
  );
  const one = sql.prepare(`SELECT ${columns} FROM fleet_requests WHERE id = ?`);
  const recent = sql.prepare(`SELECT ${columns} FROM fleet_requests ORDER BY id DESC LIMIT ?`);
  const recentOf = sql.prepare(
    `SELECT ${columns} FROM fleet_requests WHERE cluster = ? ORDER BY id DESC LIMIT ?`,
  );
  const purge = sql.prepare(
    `DELETE FROM fleet_requests WHERE cluster = ? AND status IN ('done', 'failed') AND finished_at < ?`,
  );
  const end = (
    id: number,
    owner: string,
    status: 'done' | 'failed',
    result: string | null,
    error: string | null,
    now: number,
  ) => finish.run({ id, owner, status, result, error, now }).changes > 0;
  return {
    enqueue(r, now) {
      const row = insert.get(r.cluster, r.kind, toJson(r.payload), r.requestedBy, now) as { id: number };
      return Number(row.id);
    },
    claim(cluster, owner, now, staleAfterMs, limit = 10) {
      const rows = sql.transaction(
        () => claim.all({ cluster, owner, now, staleBefore: now - staleAfterMs, limit }) as RequestRow[],
      );
      return rows.map(requestOf).sort((a, b) => a.id - b.id);
    },
    renew: (id, owner, now) => renew.run(now, id, owner).changes > 0,
    complete: (id, owner, result, now) => end(id, owner, 'done', toJson(result), null, now),
    fail: (id, owner, error, now) => end(id, owner, 'failed', null, error.slice(0, 2000), now),
    get(id) {
      const r = one.get(id) as RequestRow | undefined;
      return r ? requestOf(r) : undefined;
    },
    listRecent(limit, cluster) {
      const rows = (cluster === undefined ? recent.all(limit) : recentOf.all(cluster, limit)) as RequestRow[];
      return rows.map(requestOf);
    },
    prune: (cluster, before) => purge.run(cluster, before).changes,
  };
}
