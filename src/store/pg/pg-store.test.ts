import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  freshDatabase,
  POSTGRES_HOOK_TIMEOUT,
  type TestDatabase,
  urlFor,
} from '../../../test/support/postgres.js';
import { startTcpProxy, type TcpProxy } from '../../../test/support/tcp-proxy.js';
import { waitFor } from '../../../test/support/wait.js';
import { openStoreFor } from '../open-store.js';
import type { Store } from '../store.js';
import { StoreError } from '../store-error.js';
import { hashedSchemaFor, openPostgresStore, schemaFor } from './open-pg.js';
import { rewriteParams } from './pg-database.js';
import { latestPgSchemaVersion } from './pg-migrations.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase('pgstore');
}, POSTGRES_HOOK_TIMEOUT);

function storeError(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (err) {
    if (err instanceof StoreError) return err;
    throw err;
  }
  throw new Error('expected a StoreError');
}

describe('rewriteParams', () => {
  it('numbers ? and @name outside quotes, one number per name', () => {
    expect(rewriteParams("SELECT * FROM t WHERE a = ? AND b = '?' AND c = ?::text[]")).toEqual({
      text: "SELECT * FROM t WHERE a = $1 AND b = '?' AND c = $2::text[]",
    });
    expect(rewriteParams("UPDATE t SET a = @x, b = '@y' WHERE id = @id AND c = @x")).toEqual({
      text: "UPDATE t SET a = $1, b = '@y' WHERE id = $2 AND c = $1",
      names: ['x', 'id'],
    });
  });
});

describe('schema per cluster', () => {
  it('names the schema from CLUSTER_NAME', () => {
    expect(schemaFor('Prod-EU.west/1')).toBe('gpu_medic_prod_eu_west_1');
    // Too long for PostgreSQL, or the fleet's own: only the hashed name will do.
    expect(schemaFor('x'.repeat(54))).toBeUndefined();
    expect(schemaFor('fleet')).toBeUndefined();
    expect(hashedSchemaFor('fleet')).toMatch(/^gpu_medic_fleet_[0-9a-f]{6}$/);
    const long = hashedSchemaFor(`${'x'.repeat(80)}-a`);
    expect(long).toHaveLength(63);
    expect(long).not.toBe(hashedSchemaFor(`${'x'.repeat(80)}-b`));
  });

  it('two clusters whose names map to one schema never share it: the second gets a name of its own, every time', () => {
    const schemaOf = (s: Store) => s.path.slice(s.path.indexOf('#') + 1);
    const first = openPostgresStore(db.url, 'team-x');
    const second = openPostgresStore(db.url, 'team_x');
    const fleet = openPostgresStore(db.url, 'fleet');
    const longA = openPostgresStore(db.url, `${'y'.repeat(60)}-a`);
    const longB = openPostgresStore(db.url, `${'y'.repeat(60)}-b`);
    try {
      expect(schemaOf(first)).toBe('gpu_medic_team_x');
      expect(schemaOf(second)).toBe(hashedSchemaFor('team_x'));
      expect(schemaOf(fleet)).toBe(hashedSchemaFor('fleet'));
      expect(schemaOf(longA)).not.toBe(schemaOf(longB));
      first.kv.set('k', 'team-x');
      expect(second.kv.get('k')).toBeUndefined();
      expect(fleet.kv.get('k')).toBeUndefined();
      const owner = first.db
        .prepare<{ tag: string | null }>(
          "SELECT obj_description(oid, 'pg_namespace') AS tag FROM pg_namespace WHERE nspname = 'gpu_medic_team_x'",
        )
        .get();
      expect(owner?.tag).toBe('gpu-medic cluster team-x');
    } finally {
      for (const s of [first, second, fleet, longA, longB]) s.close();
    }
    // Re-opened in the other order, each finds its own.
    const again = [openPostgresStore(db.url, 'team_x'), openPostgresStore(db.url, 'team-x')];
    try {
      expect(again.map(schemaOf)).toEqual([hashedSchemaFor('team_x'), 'gpu_medic_team_x']);
      expect(again[1]?.kv.get('k')).toBe('team-x');
    } finally {
      for (const s of again) s.close();
    }
  });

  it('migrates a fresh database, keeps clusters apart, and re-opens without migrating again', () => {
    const a = openStoreFor({ dbPath: 'unused', databaseUrl: db.url, cluster: 'prod-a' });
    const b = openStoreFor({ dbPath: 'unused', databaseUrl: db.url, cluster: 'prod-b' });
    try {
      expect(a.dialect).toBe('postgres');
      expect(a.path).toBe(`postgres://127.0.0.1:${db.info.port}/${db.name}#gpu_medic_prod_a`);
      expect(a.path).not.toContain(db.info.password);
      expect(a.schemaVersion()).toBe(latestPgSchemaVersion);
      a.kv.set('k', 'from a');
      expect(b.kv.get('k')).toBeUndefined();
      const tables = a.db
        .prepare<{ schema: string; name: string }>(
          `SELECT table_schema AS schema, table_name AS name FROM information_schema.tables
           WHERE table_schema IN ('gpu_medic_prod_a', 'gpu_medic_fleet') ORDER BY 1, 2`,
        )
        .all();
      expect(tables.filter((t) => t.schema === 'gpu_medic_fleet').map((t) => t.name)).toEqual([
        'fleet_clusters',
        'fleet_nodes',
        'fleet_requests',
      ]);
      expect(tables.filter((t) => t.schema === 'gpu_medic_prod_a').map((t) => t.name)).toContain('incidents');
      // The fleet tables are shared: one cluster's row is every cluster's.
      a.db.prepare("INSERT INTO fleet_nodes (cluster, node) VALUES ('prod-a', 'n1')").run();
      expect(b.db.prepare('SELECT cluster, node FROM fleet_nodes').all()).toEqual([
        { cluster: 'prod-a', node: 'n1' },
      ]);
    } finally {
      a.close();
      b.close();
    }
    const again = openPostgresStore(db.url, 'prod-a');
    try {
      expect(again.kv.get('k')).toBe('from a');
      expect(again.db.prepare('SELECT version FROM schema_migrations ORDER BY version').all()).toEqual(
        Array.from({ length: latestPgSchemaVersion }, (_, i) => ({ version: i + 1 })),
      );
    } finally {
      again.close();
    }
  });

  it('refuses a schema written by a newer release, and changes nothing', () => {
    const s = openPostgresStore(db.url, 'from-the-future');
    s.db.prepare("INSERT INTO schema_migrations VALUES (99, 'later', 0)").run();
    s.close();
    const err = storeError(() => openPostgresStore(db.url, 'from-the-future'));
    expect(err.code).toBe('STORE_TOO_NEW');
    expect(err.message).toMatch(/schema version 99, but this gpu-medic knows only up to 3/);
  });

  it('processes starting together migrate once, one after the other', async () => {
    const here = dirname(fileURLToPath(import.meta.url));
    const opener = join(here, '../../../test/support/pg-opener.ts');
    const run = (cluster: string) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', opener, db.url, cluster], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
        });
        child.stderr.on('data', (d) => {
          out += d;
        });
        child.on('error', reject);
        child.on('exit', (code) =>
          code === 0 ? resolve(out.trim()) : reject(new Error(`exit ${code}: ${out}`)),
        );
      });
    const outs = await Promise.all(['race-1', 'race-1', 'race-2', 'race-2'].map(run));
    expect(outs).toEqual(Array(4).fill(`opened ${latestPgSchemaVersion}`));
    const s = openPostgresStore(db.url, 'race-1');
    try {
      expect(s.db.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get()).toEqual({
        n: latestPgSchemaVersion,
      });
    } finally {
      s.close();
    }
  }, 60_000);
});

describe('two processes on one cluster schema', () => {
  it('an outbox batch taken by one is skipped by the other, without waiting for it', () => {
    const a = openPostgresStore(db.url, 'claims');
    const b = openPostgresStore(db.url, 'claims');
    try {
      const m1 = a.outbox.enqueue('sns', 'k1', { n: 1 }, { now: 0 }).id;
      const m2 = a.outbox.enqueue('sns', 'k2', { n: 2 }, { now: 0 }).id;
      // While a's claim is still uncommitted (its rows locked), b takes what is left and does not block.
      const seenByB = a.transaction(() => {
        expect(a.outbox.claimBatch('sns', 1, 1, 100).map((m) => m.id)).toEqual([m1]);
        return b.outbox.claimBatch('sns', 1, 10, 100).map((m) => m.id);
      });
      expect(seenByB).toEqual([m2]);
      expect(b.outbox.claimBatch('sns', 2, 10, 100)).toEqual([]);
    } finally {
      a.close();
      b.close();
    }
  });
});

describe('a statement that runs too long', () => {
  it('is cancelled by the server after the statement timeout; the connection stays usable', () => {
    const s = openPostgresStore(db.url, 'slow', { connection: { statementTimeoutMs: 300 } });
    try {
      expect(() => s.db.prepare('SELECT pg_sleep(5)').get()).toThrow(/statement timeout/);
      expect(s.available()).toBe(true);
      s.kv.set('still', 'works');
      expect(s.kv.get('still')).toBe('works');
    } finally {
      s.close();
    }
  });
});

describe('a database that cannot be used at start-up', () => {
  it('an unreachable server is one sentence naming host:port/database, never the password', async () => {
    const proxy = await startTcpProxy('127.0.0.1', db.info.port);
    await proxy.close();
    const url = urlFor({ ...db.info, port: proxy.port }, db.name);
    const err = storeError(() => openPostgresStore(url, 'x', { connection: { connectTimeoutMs: 2000 } }));
    expect(err.code).toBe('STORE_OPEN_FAILED');
    expect(err.message).toBe(
      `cannot connect to PostgreSQL at 127.0.0.1:${proxy.port}/${db.name}: connection refused (no server listening there). ` +
        'Check DATABASE_URL, that the server is running and reachable from here, and its user, password and database.',
    );
  });

  it('a server that never answers is a timeout, not a hang', async () => {
    // A listening socket that accepts and never speaks: what a black-holing firewall looks like to a client.
    const { createServer } = await import('node:net');
    const held: import('node:net').Socket[] = [];
    const silent = createServer((sock) => {
      held.push(sock);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      // The store blocks this thread while it waits, so the silent server must not need it: it only accepts.
      const err = storeError(() =>
        openPostgresStore(urlFor({ ...db.info, port }, db.name), 'x', {
          connection: { connectTimeoutMs: 500 },
        }),
      );
      expect(err.message).toBe(
        `cannot connect to PostgreSQL at 127.0.0.1:${port}/${db.name}: no answer within 0.5 s (a firewall or security group dropping the connection?). ` +
          'Check DATABASE_URL, that the server is running and reachable from here, and its user, password and database.',
      );
    } finally {
      for (const sock of held) sock.destroy();
      silent.close();
    }
  });

  it('a wrong password and a missing database say so', () => {
    const wrong = urlFor({ ...db.info, password: 'not-the-password' }, db.name);
    const bad = storeError(() => openPostgresStore(wrong, 'x'));
    expect(bad.message).toMatch(
      /^cannot connect to PostgreSQL at 127\.0\.0\.1:\d+\/gm_|password authentication failed/,
    );
    expect(bad.message).toContain('password authentication failed');
    expect(bad.message).not.toContain('not-the-password');
    const missing = storeError(() => openPostgresStore(urlFor(db.info, 'no_such_db'), 'x'));
    expect(missing.message).toContain(`127.0.0.1:${db.info.port}/no_such_db: the database does not exist`);
    expect(missing.message).not.toContain(db.info.password);
  });
});

describe('a database that goes away while running', () => {
  let proxy: TcpProxy;
  let s: Store;
  beforeAll(async () => {
    proxy = await startTcpProxy('127.0.0.1', db.info.port);
    s = openPostgresStore(urlFor({ ...db.info, port: proxy.port }, db.name), 'outage', {
      connection: { reconnect: { baseMs: 20, capMs: 200 } },
    });
  });
  afterAll(async () => {
    s?.close();
    await proxy?.close();
  });

  it('fails fast with STORE_UNAVAILABLE, reports it, and comes back by itself', async () => {
    s.kv.set('before', 1);
    expect(s.available()).toBe(true);
    await proxy.cut();
    await waitFor('the store to notice the lost connection', () => !s.available());
    const err = storeError(() => s.kv.get('before'));
    expect(err.code).toBe('STORE_UNAVAILABLE');
    expect(err.message).toContain(`PostgreSQL at 127.0.0.1:${proxy.port}/${db.name}`);
    // A transaction cannot start either: nothing half-written.
    expect(storeError(() => s.transaction(() => s.kv.set('during', 1))).code).toBe('STORE_UNAVAILABLE');
    await proxy.restore();
    await waitFor('the store to reconnect', () => s.available(), { timeoutMs: 20_000 });
    expect(s.kv.get('before')).toBe(1);
    expect(s.kv.get('during')).toBeUndefined();
  });
});
