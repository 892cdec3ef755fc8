/**
 * What another process or the server does to a running connection: a table altered under a cached prepared
 * statement, an aborted transaction committed, the backend terminated mid-statement, the migration lock
 * held for longer than the statement timeout. Each against the real server.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, POSTGRES_HOOK_TIMEOUT, type TestDatabase } from '../../../test/support/postgres.js';
import { PgSqlDatabase } from './pg-database.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase('pgres');
}, POSTGRES_HOOK_TIMEOUT);

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
