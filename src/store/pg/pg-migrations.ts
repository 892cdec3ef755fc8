/**
 * The PostgreSQL schema, as an ordered list of migrations with the same versions and meaning as the SQLite
 * ones (src/store/migrations.ts). Never edit an applied migration: add a new one.
 *
 * Differences from SQLite, all of representation: INTEGER → BIGINT (epoch ms do not fit 32 bits);
 * AUTOINCREMENT → BIGSERIAL; the tables whose SQLite queries use the implicit `rowid` (incidents for
 * creation order, incident_steps for the step row's id) get an explicit serial column named `rowid`, so the
 * repositories' SQL is the same in both; the audit log's append-only triggers call a plpgsql function.
 *
 * Tables are created unqualified: they land in the cluster's schema, first on the search_path. The fleet
 * tables (v3) live in the shared schema `gpu_medic_fleet`, created once by whichever cluster gets there
 * first (IF NOT EXISTS, under the migration advisory lock). They have no version of their own: each cluster's
 * migration runs against them, and clusters upgrade one at a time, so a later change to a fleet table must be
 * idempotent (IF NOT EXISTS / IF EXISTS) and leave them usable by a cluster still on the release before.
 */
import type { Migration } from '../migrations.js';

const terminal = "('resolved','escalated','failed','cancelled','dismissed')";

export const FLEET_SCHEMA = 'gpu_medic_fleet';

export const pgMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    up: `
CREATE TABLE gpu_state (
  node TEXT NOT NULL,
  gpu BIGINT NOT NULL,
  xid_last BIGINT,
  xid_count BIGINT,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (node, gpu)
);

CREATE TABLE node_state (
  node TEXT PRIMARY KEY,
  verdict TEXT,
  last_scan_at BIGINT,
  boot_id TEXT,
  updated_at BIGINT NOT NULL
);

CREATE TABLE incidents (
  id TEXT PRIMARY KEY,
  rowid BIGSERIAL NOT NULL UNIQUE,
  node TEXT NOT NULL,
  fault_key TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('detected','awaiting_approval','cordoned','draining','drained',
    'rebooting','replacing','verifying','resolved','escalated','failed','cancelled','dismissed')),
  instance_id TEXT,
  instance_type TEXT,
  node_group TEXT,
  category TEXT NOT NULL,
  severity TEXT NOT NULL,
  recommended_action TEXT NOT NULL,
  planned_action TEXT NOT NULL,
  mode TEXT NOT NULL,
  xid BIGINT,
  gpu BIGINT,
  explanation TEXT NOT NULL,
  source TEXT NOT NULL,
  evidence TEXT NOT NULL DEFAULT '[]',
  preexisting BIGINT NOT NULL DEFAULT 0,
  first_seen BIGINT NOT NULL,
  last_seen BIGINT NOT NULL,
  count BIGINT NOT NULL DEFAULT 1,
  updated_at BIGINT NOT NULL,
  closed_at BIGINT,
  state_reason TEXT
);
-- One open incident per (node, fault): the database, not the caller, guarantees deduplication.
CREATE UNIQUE INDEX incidents_one_open ON incidents (node, fault_key) WHERE state NOT IN ${terminal};
CREATE INDEX incidents_by_node ON incidents (node, first_seen DESC);
CREATE INDEX incidents_open ON incidents (state) WHERE state NOT IN ${terminal};

CREATE TABLE incident_steps (
  incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
  seq BIGINT NOT NULL,
  rowid BIGSERIAL NOT NULL UNIQUE,
  step TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('started','done','failed','skipped')),
  started_at BIGINT NOT NULL,
  finished_at BIGINT,
  detail TEXT,
  external_ref TEXT,
  PRIMARY KEY (incident_id, seq)
);
CREATE INDEX incident_steps_by_step ON incident_steps (incident_id, step, seq DESC);

CREATE TABLE exclusions (
  node TEXT PRIMARY KEY,
  reason TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT
);

CREATE TABLE audit_log (
  id BIGSERIAL PRIMARY KEY,
  at BIGINT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  node TEXT,
  incident_id TEXT,
  reason TEXT,
  result TEXT NOT NULL,
  details TEXT
);
CREATE INDEX audit_log_by_node ON audit_log (node, id DESC);
CREATE INDEX audit_log_by_incident ON audit_log (incident_id, id DESC);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only';
END
$fn$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE outbox (
  id BIGSERIAL PRIMARY KEY,
  sink TEXT NOT NULL,
  ordering_key TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','delivered','dead')),
  attempts BIGINT NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  last_error TEXT,
  created_at BIGINT NOT NULL,
  delivered_at BIGINT,
  result TEXT,
  dedupe_key TEXT UNIQUE
);
CREATE INDEX outbox_pending ON outbox (sink, ordering_key, id) WHERE status = 'pending';

CREATE TABLE slack_refs (
  incident_id TEXT PRIMARY KEY,
  channel TEXT NOT NULL,
  ts TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);

CREATE TABLE llm_cache (
  signature TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  expires_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  hits BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX llm_cache_expiry ON llm_cache (expires_at);

CREATE TABLE kv (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at BIGINT NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'repair records (RMA evidence)',
    up: `
CREATE TABLE repair_records (
  incident_id TEXT NOT NULL,
  gpu_key BIGINT NOT NULL,
  action TEXT NOT NULL,
  node TEXT NOT NULL,
  instance_id TEXT,
  instance_type TEXT,
  zone TEXT,
  gpu_index BIGINT,
  gpu_uuid TEXT,
  gpu_serial TEXT,
  pci_bus_id TEXT,
  xids TEXT NOT NULL,
  faulty BIGINT NOT NULL,
  fault_key TEXT NOT NULL,
  category TEXT NOT NULL,
  diag_level TEXT,
  diag TEXT NOT NULL,
  detected_at BIGINT NOT NULL,
  started_at BIGINT NOT NULL,
  ended_at BIGINT NOT NULL,
  outcome TEXT NOT NULL,
  reason TEXT,
  PRIMARY KEY (incident_id, gpu_key)
);
CREATE INDEX repair_records_by_end ON repair_records (ended_at);
CREATE INDEX repair_records_by_uuid ON repair_records (gpu_uuid);
`,
  },
  {
    version: 3,
    name: 'fleet: cluster summaries, node names, requests to a leader',
    up: `
CREATE TABLE IF NOT EXISTS ${FLEET_SCHEMA}.fleet_clusters (
  cluster      TEXT PRIMARY KEY,
  leader       TEXT,
  heartbeat_at BIGINT NOT NULL,
  summary      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ${FLEET_SCHEMA}.fleet_nodes (
  cluster TEXT NOT NULL,
  node    TEXT NOT NULL,
  PRIMARY KEY (cluster, node)
);
CREATE INDEX IF NOT EXISTS fleet_nodes_by_node ON ${FLEET_SCHEMA}.fleet_nodes (node);
CREATE TABLE IF NOT EXISTS ${FLEET_SCHEMA}.fleet_requests (
  id           BIGSERIAL PRIMARY KEY,
  cluster      TEXT NOT NULL,
  kind         TEXT NOT NULL,
  payload      TEXT NOT NULL,
  requested_by TEXT NOT NULL,
  status       TEXT NOT NULL,
  claimed_by   TEXT,
  claimed_at   BIGINT,
  created_at   BIGINT NOT NULL,
  finished_at  BIGINT,
  result       TEXT,
  error        TEXT
);
CREATE INDEX IF NOT EXISTS fleet_requests_due ON ${FLEET_SCHEMA}.fleet_requests (cluster, status, id);
`,
  },
];

export const latestPgSchemaVersion: number = pgMigrations.at(-1)?.version ?? 0;
