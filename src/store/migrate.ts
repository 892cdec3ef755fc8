import type { Database } from 'better-sqlite3';
import type { Logger } from 'pino';
import { migrations as allMigrations, type Migration } from './migrations.js';
import type { SqlDatabase } from './sql.js';
import { StoreError } from './store-error.js';

/** Checks that a migration list is strictly increasing from 1 with no gaps: a broken list must not ship. */
export function validateMigrations(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(
        `migration #${i} has version ${m.version}, expected ${i + 1} (versions must be 1, 2, 3 …)`,
      );
    }
  });
}

/** The schema version of an open store's database (either dialect: the table has the same shape). */
export function schemaVersionOf(db: SqlDatabase): number {
  const row = db.prepare<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations').get();
  return row?.v ?? 0;
}

export function currentVersion(db: Database): number {
  const row = db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null };
  return row.v ?? 0;
}

/**
 * Applies every migration the database lacks, each in its own IMMEDIATE transaction (a second process
 * opening the same file waits on busy_timeout instead of migrating twice). Returns the versions applied.
 */
export function migrate(
  db: Database,
  path: string,
  options: { migrations?: readonly Migration[]; logger?: Logger; now?: () => number } = {},
): number[] {
  const list = options.migrations ?? allMigrations;
  validateMigrations(list);
  const latest = list.at(-1)?.version ?? 0;
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
  );
  const found = currentVersion(db);
  if (found > latest) {
    throw new StoreError(
      'STORE_TOO_NEW',
      path,
      `database ${path} has schema version ${found}, but this gpu-medic knows only up to ${latest}: ` +
        'it was written by a newer release. Run that release (or newer), or restore a backup made by this one.',
    );
  }
  const applied: number[] = [];
  const now = options.now ?? Date.now;
  for (const m of list) {
    const apply = db.transaction(() => {
      // Re-read inside the lock: another process may have applied it while we waited.
      if (currentVersion(db) >= m.version) return false;
      db.exec(m.up);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        m.version,
        m.name,
        now(),
      );
      db.pragma(`user_version = ${m.version}`);
      return true;
    });
    try {
      if (apply.immediate()) {
        applied.push(m.version);
        options.logger?.info({ version: m.version, name: m.name }, 'store migration applied');
      }
    } catch (err) {
      throw new StoreError(
        'STORE_MIGRATION_FAILED',
        path,
        `database ${path}: migration ${m.version} (${m.name}) failed and was rolled back: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  return applied;
}
