/**
 * A real PostgreSQL database for a test: the run's one server (started by postgres-server.ts, vitest
 * globalSetup), and a fresh database per call, so test files never see each other's rows.
 *
 *   const db = await freshDatabase();          // { url, name, info }
 *   const store = openPostgresStore(db.url, 'prod-a');
 *   …
 *   spawn(…, { env: { ...process.env, ...postgresEnv(db, 'prod-a') } })   // a gpu-medic child on it
 *   await dropDatabase(db);                    // optional; the server and its data go at teardown
 */

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { inject } from 'vitest';
import type { PostgresServerInfo } from './postgres-server.js';
import { waitFor } from './wait.js';

export type { PostgresServerInfo };

export interface TestDatabase {
  /** postgres://user:password@host:port/name */
  url: string;
  name: string;
  info: PostgresServerInfo;
}

/** For `beforeAll(…, POSTGRES_HOOK_TIMEOUT)`: above the wait for the server's start. */
export const POSTGRES_HOOK_TIMEOUT = 120_000;

/** The run's server, started by the first caller of the run (any worker), once; its address when ready. */
export async function postgresServer(): Promise<PostgresServerInfo> {
  const run = inject('postgresRun');
  if (!run) {
    throw new Error(
      'no PostgreSQL run: vitest.config.ts must list test/support/postgres-server.ts in globalSetup',
    );
  }
  const info = join(run.runDir, 'info.json');
  const failed = join(run.runDir, 'failed');
  if (!existsSync(info) && !existsSync(failed)) {
    let first = false;
    try {
      mkdirSync(join(run.runDir, 'lock'));
      first = true;
    } catch {
      // Another test file of this run is starting it.
    }
    if (first) {
      const script = join(dirname(fileURLToPath(import.meta.url)), 'postgres-server-process.ts');
      const child = spawn(process.execPath, ['--import', 'tsx', script, run.runDir, String(run.ownerPid)], {
        detached: true,
        stdio: 'ignore',
      });
      child.unref();
    }
  }
  // initdb takes a few seconds on a busy 2-core machine; callers give their beforeAll POSTGRES_HOOK_TIMEOUT.
  const status = await waitFor(
    'the test PostgreSQL server to start',
    () =>
      existsSync(info) ? 'ready' : existsSync(failed) ? `failed: ${readFileSync(failed, 'utf8')}` : undefined,
    { timeoutMs: 90_000, intervalMs: 100 },
  );
  if (status !== 'ready') throw new Error(`the test PostgreSQL server did not start: ${status}`);
  return JSON.parse(readFileSync(info, 'utf8')) as PostgresServerInfo;
}

export function urlFor(info: PostgresServerInfo, database: string): string {
  return `postgres://${info.user}:${encodeURIComponent(info.password)}@${info.host}:${info.port}/${database}`;
}

/** Runs one statement on the server's `postgres` database (creating and dropping databases). */
async function admin(info: PostgresServerInfo, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: urlFor(info, 'postgres') });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A new, empty database on the run's server. */
export async function freshDatabase(prefix = 'gm'): Promise<TestDatabase> {
  const info = await postgresServer();
  const name = `${prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_')}_${randomBytes(5).toString('hex')}`;
  await admin(info, `CREATE DATABASE ${name}`);
  return { url: urlFor(info, name), name, info };
}

/** Drops a database made by freshDatabase (every connection to it must be closed first). */
export async function dropDatabase(db: TestDatabase): Promise<void> {
  await admin(db.info, `DROP DATABASE IF EXISTS ${db.name} WITH (FORCE)`);
}

/** The environment a `gpu-medic` child process needs to keep its state in `db`, as cluster `cluster`. */
export function postgresEnv(
  db: TestDatabase,
  cluster: string,
): { DATABASE_URL: string; CLUSTER_NAME: string } {
  return { DATABASE_URL: db.url, CLUSTER_NAME: cluster };
}
