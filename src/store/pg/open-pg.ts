/**
 * Opening the PostgreSQL store: connect (one clear StoreError if the server cannot be used), create the
 * cluster's schema and the shared fleet schema, and apply the missing migrations — all under one
 * session advisory lock, so processes starting together (replicas, or several clusters on one database)
 * migrate one after the other instead of racing.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../json.js';
import { validateMigrations } from '../migrate.js';
import type { Migration } from '../migrations.js';
import { createStore, type Store } from '../store.js';
import { StoreError } from '../store-error.js';
import { describeUrl, type PgConnectOptions, PgSqlDatabase } from './pg-database.js';
import { FLEET_SCHEMA, pgMigrations } from './pg-migrations.js';

/** Any fixed 64-bit key: the lock every gpu-medic process takes to migrate. */
const MIGRATION_LOCK = 7_314_650_122;

/**
 * How long a start-up waits for another process's migration: well beyond any migration of ours, and the
 * statement timeout does not cut the wait short (the lock is tried, not waited for in one statement).
 */
const LOCK_WAIT_MS = 5 * 60_000;
const LOCK_RETRY_MS = 250;

/** PostgreSQL's longest identifier, in bytes (our names are ASCII). */
const MAX_IDENTIFIER = 63;

/** `gpu_medic_<cluster>`: lower-cased, anything outside [a-z0-9_] → `_`; undefined when that is too long. */
export function schemaFor(cluster: string): string | undefined {
  const name = `gpu_medic_${cluster.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
  return name.length <= MAX_IDENTIFIER && name !== FLEET_SCHEMA ? name : undefined;
}

/**
 * The schema a cluster uses when its plain name is taken by another cluster (`prod-a` and `prod_a` map to one
 * name), too long, or the fleet's: the plain name cut short, and six hex digits of the exact cluster name.
 */
export function hashedSchemaFor(cluster: string): string {
  const digest = createHash('sha256').update(cluster).digest('hex').slice(0, 6);
  const stem = `gpu_medic_${cluster.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
  return `${stem.slice(0, MAX_IDENTIFIER - 7)}_${digest}`;
}

/** What a cluster writes on the schema it owns (COMMENT ON SCHEMA), so no other cluster takes it. */
const ownerTag = (cluster: string) => `gpu-medic cluster ${cluster}`;

export interface OpenPgStoreOptions {
  logger?: Logger;
  now?: Clock;
  migrations?: readonly Migration[];
  /** Connection tuning (timeouts, reconnect backoff); the URL and search path come from the arguments. */
  connection?: Omit<PgConnectOptions, 'url' | 'searchPath'>;
}

export function openPostgresStore(url: string, cluster: string, options: OpenPgStoreOptions = {}): Store {
  const schema = claimSchema(url, cluster, options);
  const where = `${describeUrl(url)} (schema ${schema})`;
  const db = new PgSqlDatabase({ ...options.connection, url, searchPath: `${schema}, ${FLEET_SCHEMA}` });
  try {
    const applied = migratePg(db, schema, where, options);
    options.logger?.info({ database: where, applied, schemaVersion: current(db) }, 'store opened');
  } catch (err) {
    db.close();
    throw err;
  }
  return createStore(db, `postgres://${describeUrl(url)}#${schema}`, options.now ?? Date.now, () =>
    db.close(),
  );
}

/**
 * The cluster's schema, created and marked as its own: `schemaFor(cluster)` unless another cluster owns it (or
 * it is too long, or the fleet's), then `hashedSchemaFor(cluster)`. Under the migration lock, on a connection of
 * its own (the store's connection names the schema in its search path from the start, and again on reconnect).
 * A schema created by an earlier release carries no mark: the first cluster to open it claims it.
 */
function claimSchema(url: string, cluster: string, options: OpenPgStoreOptions): string {
  const db = new PgSqlDatabase({ ...options.connection, url });
  const candidates = [schemaFor(cluster), hashedSchemaFor(cluster)].filter((s) => s !== undefined);
  const tag = ownerTag(cluster);
  try {
    lockMigrations(db, describeUrl(url));
    for (const schema of candidates) {
      const where = `${describeUrl(url)} (schema ${schema})`;
      createSchema(db, `CREATE SCHEMA IF NOT EXISTS ${schema}`, where);
      const owner = db
        .prepare<{ tag: string | null }>(
          `SELECT obj_description(oid, 'pg_namespace') AS tag FROM pg_namespace WHERE nspname = ?`,
        )
        .get(schema)?.tag;
      if (owner === tag) return schema;
      if (owner) {
        options.logger?.warn(
          { schema, owner, cluster },
          'the schema this cluster name maps to belongs to another cluster; using a name of its own',
        );
        continue;
      }
      try {
        db.exec(`COMMENT ON SCHEMA ${schema} IS '${tag.replace(/'/g, "''")}'`);
      } catch (err) {
        if (err instanceof StoreError) throw err;
        // A schema created for gpu-medic by someone else: usable, but another cluster could take it too.
        options.logger?.warn(
          { schema, err: (err as Error).message },
          "cannot mark the schema as this cluster's (not its owner); a cluster whose name maps to it would share it",
        );
      }
      return schema;
    }
    throw new StoreError(
      'STORE_OPEN_FAILED',
      describeUrl(url),
      `PostgreSQL at ${describeUrl(url)}: the schemas ${candidates.join(' and ')} belong to other clusters; ` +
        'CLUSTER_NAME must name this cluster.',
    );
  } finally {
    if (db.available()) db.prepare('SELECT pg_advisory_unlock(?::bigint)').get(MIGRATION_LOCK);
    db.close();
  }
}

/**
 * Takes the migration lock, waiting up to LOCK_WAIT_MS for a process that holds it (one migrating): a clear
 * StoreError naming that process when it still holds it then.
 */
function lockMigrations(db: PgSqlDatabase, where: string): void {
  const deadline = Date.now() + LOCK_WAIT_MS;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const attempt = db.prepare<{ ok: boolean }>('SELECT pg_try_advisory_lock(?::bigint) AS ok');
  for (;;) {
    if (attempt.get(MIGRATION_LOCK)?.ok) return;
    if (Date.now() >= deadline) break;
    // Start-up is synchronous: nothing else of this process runs meanwhile.
    Atomics.wait(pause, 0, 0, LOCK_RETRY_MS);
  }
  const holder = db
    .prepare<{ pid: number; app: string | null; addr: string | null; since: string | null }>(
      `SELECT a.pid, a.application_name AS app, host(a.client_addr) AS addr, a.backend_start::text AS since
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.classid::bigint * 4294967296 + l.objid::bigint = ?::bigint`,
    )
    .get(MIGRATION_LOCK);
  const who = holder
    ? `server process ${holder.pid} (application ${holder.app || 'unnamed'}, from ${holder.addr ?? 'a local socket'}, connected since ${holder.since})`
    : 'another process';
  throw new StoreError(
    'STORE_OPEN_FAILED',
    where,
    `PostgreSQL at ${where}: ${who} has held the gpu-medic migration lock (advisory lock ${MIGRATION_LOCK}) for ` +
      `more than ${LOCK_WAIT_MS / 60_000} minutes. If it is another gpu-medic still migrating, wait for it; ` +
      'if it is stuck, end it (SELECT pg_terminate_backend(<pid>)) and start again.',
  );
}

/** Runs `ddl` (schemas, the version table); a refusal says which privilege the database user lacks. */
function createSchema(db: PgSqlDatabase, ddl: string, where: string): void {
  try {
    db.exec(ddl);
  } catch (err) {
    if (err instanceof StoreError) throw err;
    throw new StoreError(
      'STORE_UNWRITABLE',
      where,
      `PostgreSQL at ${where}: cannot create the schema (${(err as Error).message}); the database user needs ` +
        'CREATE on the database (or create the schemas gpu_medic_<cluster> and gpu_medic_fleet for it).',
      { cause: err },
    );
  }
}

function current(db: PgSqlDatabase): number {
  return db.prepare<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations').get()?.v ?? 0;
}

function migratePg(
  db: PgSqlDatabase,
  schema: string,
  where: string,
  options: Pick<OpenPgStoreOptions, 'migrations' | 'logger' | 'now'>,
): number[] {
  const list = options.migrations ?? pgMigrations;
  validateMigrations(list);
  const latest = list.at(-1)?.version ?? 0;
  const now = options.now ?? Date.now;
  lockMigrations(db, where);
  try {
    createSchema(
      db,
      `CREATE SCHEMA IF NOT EXISTS ${schema}; CREATE SCHEMA IF NOT EXISTS ${FLEET_SCHEMA};
       CREATE TABLE IF NOT EXISTS ${schema}.schema_migrations
         (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`,
      where,
    );
    const found = current(db);
    if (found > latest) {
      throw new StoreError(
        'STORE_TOO_NEW',
        where,
        `PostgreSQL at ${where} has schema version ${found}, but this gpu-medic knows only up to ${latest}: ` +
          'it was written by a newer release. Run that release (or newer), or restore a backup made by this one.',
      );
    }
    const applied: number[] = [];
    for (const m of list) {
      if (m.version <= found) continue;
      try {
        db.transaction(() => {
          db.exec(m.up);
          db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
            m.version,
            m.name,
            now(),
          );
        });
      } catch (err) {
        if (err instanceof StoreError) throw err;
        throw new StoreError(
          'STORE_MIGRATION_FAILED',
          where,
          `PostgreSQL at ${where}: migration ${m.version} (${m.name}) failed and was rolled back: ${(err as Error).message}`,
          { cause: err },
        );
      }
      applied.push(m.version);
      options.logger?.info({ version: m.version, name: m.name, schema }, 'store migration applied');
    }
    return applied;
  } finally {
    if (db.available()) db.prepare('SELECT pg_advisory_unlock(?::bigint)').get(MIGRATION_LOCK);
  }
}
