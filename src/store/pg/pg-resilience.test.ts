/**
 * What another process or the server does to a running connection: a table altered under a cached prepared
 * statement, an aborted transaction committed, the backend terminated mid-statement, the migration lock
 * held for longer than the statement timeout. Each against the real server.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, POSTGRES_HOOK_TIMEOUT, type TestDatabase } from '../../../test/support/postgres.js';
import { waitFor } from '../../../test/support/wait.js';
import { StoreError } from '../store-error.js';
import { openPostgresStore } from './open-pg.js';
import { PgSqlDatabase } from './pg-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase('pgres');
}, POSTGRES_HOOK_TIMEOUT);

/**
 * Another process that waits until a backend runs a statement containing `marker`, then runs `action` on it
 * (`$1` is its pid). A process, because this thread is blocked in the store's call meanwhile.
 */
function onStatement(marker: string, action: string) {
  const script = `
    const pg = require(${JSON.stringify(createRequire(import.meta.url).resolve('pg'))});
    (async () => {
      const c = new pg.Client({ connectionString: ${JSON.stringify(db.url)} });
      await c.connect();
      for (;;) {
        const r = await c.query(
          "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND strpos(query, $1) > 0",
          [${JSON.stringify(marker)}],
        );
        if (r.rows.length > 0) {
          await c.query(${JSON.stringify(action)}, [r.rows[0].pid]);
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await c.end();
    })().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  const exited = new Promise<string>((resolve) =>
    child.on('exit', (code) => resolve(code === 0 ? 'ok' : `exit ${code}: ${stderr}`)),
  );
  return { child, exited };
}

describe('a table altered by another process', () => {
  it('a cached SELECT * is prepared again instead of failing forever', () => {
    const a = new PgSqlDatabase({ url: db.url });
    const b = new PgSqlDatabase({ url: db.url });
    try {
      a.exec('CREATE TABLE altered (id INT PRIMARY KEY)');
      a.prepare('INSERT INTO altered (id) VALUES (?)').run(1);
      const select = a.prepare<Record<string, unknown>>('SELECT * FROM altered WHERE id = ?');
      expect(select.all(1)).toEqual([{ id: 1 }]);
      b.exec('ALTER TABLE altered ADD COLUMN note TEXT');
      expect(select.all(1)).toEqual([{ id: 1, note: null }]);
      expect(select.all(1)).toEqual([{ id: 1, note: null }]);
      expect(a.available()).toBe(true);
    } finally {
      a.close();
      b.close();
    }
  });

  it('inside a transaction the error reaches the caller, and the next call after it succeeds', () => {
    const a = new PgSqlDatabase({ url: db.url });
    const b = new PgSqlDatabase({ url: db.url });
    try {
      a.exec('CREATE TABLE altered_tx (id INT PRIMARY KEY)');
      a.prepare('INSERT INTO altered_tx (id) VALUES (?)').run(1);
      const select = a.prepare<Record<string, unknown>>('SELECT * FROM altered_tx WHERE id = ?');
      expect(select.all(1)).toEqual([{ id: 1 }]);
      b.exec('ALTER TABLE altered_tx ADD COLUMN note TEXT');
      expect(() => a.transaction(() => select.all(1))).toThrow(/cached plan/);
      expect(a.transaction(() => select.all(1))).toEqual([{ id: 1, note: null }]);
    } finally {
      a.close();
      b.close();
    }
  });
});

describe('a transaction whose statement failed', () => {
  it('a COMMIT after an error the caller caught throws instead of losing every write silently', () => {
    const a = new PgSqlDatabase({ url: db.url });
    try {
      a.exec('CREATE TABLE aborted (id INT PRIMARY KEY)');
      const insert = a.prepare('INSERT INTO aborted (id) VALUES (?)');
      let caught: unknown;
      const commit = () =>
        a.transaction(() => {
          insert.run(1);
          try {
            insert.run(1);
          } catch (err) {
            caught = err;
          }
        });
      expect(commit).toThrow(
        expect.objectContaining({
          code: '25P02',
          message: 'the transaction was rolled back by an earlier error; nothing was written',
        }),
      );
      expect((caught as { code?: string }).code).toBe('23505');
      expect(a.prepare('SELECT COUNT(*) AS n FROM aborted').get()).toEqual({ n: 0 });
      // The connection is usable afterwards: a clean transaction commits.
      a.transaction(() => insert.run(2));
      expect(a.prepare('SELECT id FROM aborted').all()).toEqual([{ id: 2 }]);
    } finally {
      a.close();
    }
  });

  it('a savepoint that cannot be rolled back to is an error of its own, not the inner one', () => {
    const a = new PgSqlDatabase({ url: db.url });
    try {
      a.exec('CREATE TABLE unsaved (id INT PRIMARY KEY)');
      const insert = a.prepare('INSERT INTO unsaved (id) VALUES (?)');
      let inner: unknown;
      expect(() =>
        a.transaction(() => {
          insert.run(1);
          try {
            a.transaction(() => {
              // The savepoint the store made for this level is gone, so rolling back to it fails.
              a.exec('RELEASE SAVEPOINT gm_sp1');
              throw new Error('inner failure');
            });
          } catch (err) {
            inner = err;
          }
        }),
      ).toThrow(/rolled back by an earlier error/);
      expect(inner).toMatchObject({ code: '25P02' });
      expect((inner as Error).message).toContain('inner failure');
      expect((inner as Error).message).toContain('ROLLBACK TO SAVEPOINT');
      expect(a.prepare('SELECT COUNT(*) AS n FROM unsaved').get()).toEqual({ n: 0 });
    } finally {
      a.close();
    }
  });
});

describe('the server ends the connection during a statement', () => {
  it('a terminated backend (57P01, FATAL) is STORE_UNAVAILABLE, and the store reconnects by itself', async () => {
    const a = new PgSqlDatabase({ url: db.url, reconnect: { baseMs: 20, capMs: 200 } });
    const killer = onStatement('gm-terminate-me', 'SELECT pg_terminate_backend($1)');
    try {
      let err: unknown;
      try {
        a.prepare("SELECT pg_sleep(10), 'gm-terminate-me' AS marker").get();
      } catch (e) {
        err = e;
      }
      expect(await killer.exited).toBe('ok');
      expect(err).toBeInstanceOf(StoreError);
      expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE' });
      expect((err as Error).message).toContain('terminating connection');
      await waitFor('the store to reconnect', () => a.available());
      expect(a.outages()).toBe(1);
      expect(a.prepare('SELECT 1 AS one').get()).toEqual({ one: 1 });
    } finally {
      killer.child.kill();
      a.close();
    }
  });
});

describe('another process holding the migration lock', () => {
  it('a start-up waits for it longer than the statement timeout, then opens', async () => {
    // The lock every gpu-medic process takes to migrate, held by "another process" until the opener below
    // has waited for it for well over its 300 ms statement timeout.
    const script = `
      const pg = require(${JSON.stringify(createRequire(import.meta.url).resolve('pg'))});
      (async () => {
        const c = new pg.Client({ connectionString: ${JSON.stringify(db.url)} });
        await c.connect();
        await c.query('SELECT pg_advisory_lock(7314650122)');
        process.stdout.write('locked\\n');
        for (;;) {
          const r = await c.query(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'gpu-medic' AND strpos(query, 'advisory') > 0 " +
              "AND backend_start < now() - interval '1500 milliseconds'",
          );
          if (r.rows.length > 0) break;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await c.query('SELECT pg_advisory_unlock(7314650122)');
        await c.end();
      })().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
    `;
    const holder = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout?.once('data', () => resolve());
        holder.once('exit', (code) => reject(new Error(`the lock holder exited (${code}) before locking`)));
      });
      const s = openPostgresStore(db.url, 'locked-out', { connection: { statementTimeoutMs: 300 } });
      try {
        s.kv.set('opened', true);
        expect(s.kv.get('opened')).toBe(true);
      } finally {
        s.close();
      }
    } finally {
      holder.kill();
    }
  });
});
