/**
 * The two dialects' schemas are written by hand (migrations.ts, pg-migrations.ts): this test keeps them from
 * drifting. Every table and column SQLite has, PostgreSQL has, and the other way round — except the explicit
 * `rowid` columns PostgreSQL needs for SQLite's implicit one, and the migration bookkeeping table.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freshDatabase, POSTGRES_HOOK_TIMEOUT } from '../../../test/support/postgres.js';
import { latestSchemaVersion } from '../migrations.js';
import { openStore, type Store } from '../store.js';
import { openPostgresStore, schemaFor } from './open-pg.js';
import { FLEET_SCHEMA, latestPgSchemaVersion } from './pg-migrations.js';

let pg: Store;
let sqlite: Store;
beforeAll(async () => {
  pg = openPostgresStore((await freshDatabase('parity')).url, 'parity');
  sqlite = openStore(':memory:');
}, POSTGRES_HOOK_TIMEOUT);
afterAll(() => {
  pg?.close();
  sqlite?.close();
});

type Columns = Record<string, string[]>;

function sqliteColumns(): Columns {
  const tables = sqlite.db
    .prepare<{ name: string }>(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'schema_migrations'",
    )
    .all()
    .map((t) => t.name);
  const out: Columns = {};
  for (const t of tables) {
    out[t] = sqlite.db
      .prepare<{ name: string }>('SELECT name FROM pragma_table_info(?)')
      .all(t)
      .map((c) => c.name)
      .sort();
  }
  return out;
}

function pgColumns(): Columns {
  const rows = pg.db
    .prepare<{ table_name: string; column_name: string }>(
      `SELECT table_name, column_name FROM information_schema.columns
       WHERE table_schema IN (?, ?) AND table_name <> 'schema_migrations'`,
    )
    .all(schemaFor('parity'), FLEET_SCHEMA);
  const out: Columns = {};
  for (const r of rows) {
    if (r.column_name === 'rowid') continue;
    const columns = out[r.table_name] ?? [];
    columns.push(r.column_name);
    out[r.table_name] = columns;
  }
  for (const cols of Object.values(out)) cols.sort();
  return out;
}

it('SQLite and PostgreSQL have the same tables and columns at the same schema version', () => {
  expect(latestPgSchemaVersion).toBe(latestSchemaVersion);
  const lite = sqliteColumns();
  expect(Object.keys(lite).length).toBeGreaterThan(10);
  expect(pgColumns()).toEqual(lite);
});
