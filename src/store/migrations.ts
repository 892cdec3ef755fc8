/**
 * The schema, as an ordered list of migrations. Never edit an applied migration: add a new one. Each runs
 * in its own transaction, and `schema_migrations` records it, so a crash mid-migration leaves the previous
 * version intact. Times are epoch milliseconds; JSON columns hold JSON text.
 */
export interface Migration {
  version: number;
  name: string;
  up: string;
}

const terminal = "('resolved','escalated','failed','cancelled','dismissed')";

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    up: `
CREATE TABLE gpu_state (
  node TEXT NOT NULL,
  gpu INTEGER NOT NULL,
  xid_last INTEGER,
  xid_count INTEGER,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (node, gpu)
) WITHOUT ROWID;

CREATE TABLE node_state (
  node TEXT PRIMARY KEY,
  verdict TEXT,
  last_scan_at INTEGER,
  boot_id TEXT,
  updated_at INTEGER NOT NULL
);

CREATE TABLE incidents (
  id TEXT PRIMARY KEY,
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
  xid INTEGER,
  gpu INTEGER,
  explanation TEXT NOT NULL,
  source TEXT NOT NULL,
  evidence TEXT NOT NULL DEFAULT '[]',
  preexisting INTEGER NOT NULL DEFAULT 0,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  count INTEGER NOT NULL DEFAULT 1,
  updated_at INTEGER NOT NULL,
  closed_at INTEGER,
  state_reason TEXT
);
-- One open incident per (node, fault): the database, not the caller, guarantees deduplication.
CREATE UNIQUE INDEX incidents_one_open ON incidents (node, fault_key) WHERE state NOT IN ${terminal};
CREATE INDEX incidents_by_node ON incidents (node, first_seen DESC);
CREATE INDEX incidents_open ON incidents (state) WHERE state NOT IN ${terminal};

CREATE TABLE incident_steps (
  incident_id TEXT NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  step TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('started','done','failed','skipped')),
  started_at INTEGER NOT NULL,
  finished_at INTEGER,
  detail TEXT,
  external_ref TEXT,
  PRIMARY KEY (incident_id, seq)
);
CREATE INDEX incident_steps_by_step ON incident_steps (incident_id, step, seq DESC);

CREATE TABLE exclusions (
  node TEXT PRIMARY KEY,
  reason TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER
);

CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
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
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE outbox (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sink TEXT NOT NULL,
  ordering_key TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','delivered','dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_error TEXT,
  created_at INTEGER NOT NULL,
  delivered_at INTEGER,
  result TEXT,
  dedupe_key TEXT UNIQUE
);
CREATE INDEX outbox_pending ON outbox (sink, ordering_key, id) WHERE status = 'pending';

CREATE TABLE slack_refs (
  incident_id TEXT PRIMARY KEY,
  channel TEXT NOT NULL,
  ts TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE llm_cache (
  signature TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  hits INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX llm_cache_expiry ON llm_cache (expires_at);

CREATE TABLE kv (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'repair records (RMA evidence)',
    up: `
CREATE TABLE repair_records (
  incident_id TEXT NOT NULL,
  gpu_key INTEGER NOT NULL,
  action TEXT NOT NULL,
  node TEXT NOT NULL,
  instance_id TEXT,
  instance_type TEXT,
  zone TEXT,
  gpu_index INTEGER,
  gpu_uuid TEXT,
  gpu_serial TEXT,
  pci_bus_id TEXT,
  xids TEXT NOT NULL,
  faulty INTEGER NOT NULL,
  fault_key TEXT NOT NULL,
  category TEXT NOT NULL,
  diag_level TEXT,
  diag TEXT NOT NULL,
  detected_at INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER NOT NULL,
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
    name: 'fleet: cluster summaries, node names, requests to a cluster leader',
    up: `
CREATE TABLE fleet_clusters (
  cluster      TEXT PRIMARY KEY,
  leader       TEXT,
  heartbeat_at INTEGER NOT NULL,
  summary      TEXT NOT NULL
);
CREATE TABLE fleet_nodes (
  cluster TEXT NOT NULL,
  node    TEXT NOT NULL,
  PRIMARY KEY (cluster, node)
);
CREATE INDEX fleet_nodes_by_node ON fleet_nodes (node);
CREATE TABLE fleet_requests (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  cluster      TEXT NOT NULL,
  kind         TEXT NOT NULL,
  payload      TEXT NOT NULL,
  requested_by TEXT NOT NULL,
  status       TEXT NOT NULL,
  claimed_by   TEXT,
  claimed_at   INTEGER,
  created_at   INTEGER NOT NULL,
  finished_at  INTEGER,
  result       TEXT,
  error        TEXT
);
CREATE INDEX fleet_requests_due ON fleet_requests (cluster, status, id);
`,
  },
];

export const latestSchemaVersion: number = migrations.at(-1)?.version ?? 0;
