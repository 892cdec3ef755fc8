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
    db.prepare('SELECT pg_advisory_lock(?::bigint)').get(MIGRATION_LOCK);
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
  db.prepare('SELECT pg_advisory_lock(?::bigint)').get(MIGRATION_LOCK);
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
