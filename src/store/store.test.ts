import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { validateMigrations } from './migrate.js';
import { latestSchemaVersion, type Migration, migrations } from './migrations.js';
import { sqliteOf } from './sql.js';
import { openStore, type Store } from './store.js';
import { StoreError } from './store-error.js';

const root = mkdtempSync(join(tmpdir(), 'gpu-medic-store-'));
let n = 0;
const fresh = (name = 'db.sqlite') => join(root, `t${n++}`, name);
const opened: Store[] = [];
const open = (path: string, opts: Parameters<typeof openStore>[1] = {}) => {
  const s = openStore(path, opts);
  opened.push(s);
  return s;
};

afterEach(() => {
  for (const s of opened.splice(0)) s.close();
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function storeError(fn: () => unknown): StoreError {
  try {
    fn();
  } catch (err) {
    if (err instanceof StoreError) return err;
    throw err;
  }
  throw new Error('expected a StoreError');
}

describe('openStore', () => {
  it('creates the parent directory, WAL mode, foreign keys, and the latest schema', () => {
    const path = fresh('nested/deeper/gpu-medic.db');
    const s = open(path);
    expect(existsSync(path)).toBe(true);
    expect(sqliteOf(s.db).pragma('journal_mode', { simple: true })).toBe('wal');
    expect(sqliteOf(s.db).pragma('foreign_keys', { simple: true })).toBe(1);
    expect(sqliteOf(s.db).pragma('synchronous', { simple: true })).toBe(1); // NORMAL
    expect(sqliteOf(s.db).pragma('busy_timeout', { simple: true })).toBe(5000);
    expect(s.schemaVersion()).toBe(latestSchemaVersion);
    const tables = (
      s.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]
    )
      .map((t) => t.name)
      .sort();
    expect(tables).toEqual(
      expect.arrayContaining([
        'audit_log',
        'exclusions',
        'gpu_state',
        'incident_steps',
        'incidents',
        'kv',
        'llm_cache',
        'node_state',
        'outbox',
        'schema_migrations',
        'slack_refs',
      ]),
    );
  });

  it('is idempotent on re-open and keeps the data', () => {
    const path = fresh();
    const a = openStore(path);
    a.kv.set('paused', true);
    a.close();
    const b = open(path);
    expect(b.kv.get('paused')).toBe(true);
    const rows = b.db.prepare('SELECT version FROM schema_migrations').all();
    expect(rows).toHaveLength(migrations.length);
  });

  it('applies only the missing migrations, each recorded', () => {
    const path = fresh();
    const extra: Migration[] = [
      ...migrations,
      {
        version: latestSchemaVersion + 1,
        name: 'add notes',
        up: 'CREATE TABLE notes (id INTEGER PRIMARY KEY)',
      },
    ];
    openStore(path).close();
    const s = open(path, { migrations: extra });
    expect(s.schemaVersion()).toBe(latestSchemaVersion + 1);
    expect(sqliteOf(s.db).pragma('user_version', { simple: true })).toBe(latestSchemaVersion + 1);
  });

  it('rolls back a failing migration and names it', () => {
    const path = fresh();
    openStore(path).close();
    const broken: Migration[] = [
      ...migrations,
      {
        version: latestSchemaVersion + 1,
        name: 'broken',
        up: 'CREATE TABLE half (id INTEGER); SELECT nope FROM nowhere;',
      },
    ];
    const err = storeError(() => openStore(path, { migrations: broken }));
    expect(err.code).toBe('STORE_MIGRATION_FAILED');
    expect(err.message).toContain(`migration ${latestSchemaVersion + 1} (broken)`);
    const s = open(path);
    expect(s.schemaVersion()).toBe(latestSchemaVersion);
    expect(s.db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get()).toBeUndefined();
  });

  it('refuses a database written by a newer release', () => {
    const path = fresh();
    openStore(path).close();
    const raw = new Database(path);
    raw
      .prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)')
      .run(99, 'future', 0);
    raw.close();
    const err = storeError(() => openStore(path));
    expect(err.code).toBe('STORE_TOO_NEW');
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/schema version 99, but this gpu-medic knows only up to \d+/);
  });

  it('rejects a migration list with gaps', () => {
    expect(() =>
      validateMigrations([
        { version: 1, name: 'a', up: '' },
        { version: 3, name: 'b', up: '' },
      ]),
    ).toThrow(/version 3, expected 2/);
    expect(() => validateMigrations(migrations)).not.toThrow();
  });

  it('supports :memory:', () => {
    const s = open(':memory:');
    expect(s.schemaVersion()).toBe(latestSchemaVersion);
  });
});

describe('openStore refuses a bad file and changes nothing', () => {
  function goodDbBytes(): Buffer {
    const path = fresh();
    const s = openStore(path);
    s.transaction(() => {
      for (let i = 0; i < 1500; i++)
        s.audit.append({ at: i, actor: 'a', action: 'b', result: 'c'.repeat(200) });
    });
    s.close();
    return readFileSync(path);
  }
  const good = goodDbBytes();
  const garbageMiddle = Buffer.from(good);
  randomBytes(4096).copy(garbageMiddle, 4096 * 3);

  it.each([
    ['a text file', Buffer.from('DB_PATH=/data/gpu-medic.db\nthis is not a database\n'), 'STORE_NOT_SQLITE'],
    ['random bytes', randomBytes(16384), 'STORE_NOT_SQLITE'],
    ['a truncated SQLite header (50 bytes)', good.subarray(0, 50), 'STORE_CORRUPT'],
    ['only the first page', good.subarray(0, 4096), 'STORE_CORRUPT'],
    ['a file cut in half', good.subarray(0, Math.floor(good.length / 2)), 'STORE_CORRUPT'],
    ['a page overwritten with garbage', garbageMiddle, 'STORE_CORRUPT'],
  ])('%s', (_name, bytes, code) => {
    const path = fresh();
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, bytes);
    const err = storeError(() => openStore(path));
    expect(err.code).toBe(code);
    expect(err.path).toBe(path);
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/move it aside .* never resets/);
    expect(readFileSync(path).equals(bytes)).toBe(true);
  });

  it('a path under a regular file', () => {
    const file = fresh('x.txt');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, 'a file, not a directory');
    const err = storeError(() => openStore(join(file, 'db.sqlite')));
    expect(err.code).toBe('STORE_UNWRITABLE');
    expect(err.message).toMatch(/cannot create the directory .*x\.txt .*is a file, not a directory/);
    expect(err.message).toContain('DB_PATH');
  });

  it('a directory where the file should be', () => {
    const dir = fresh('gpu-medic.db');
    mkdirSync(dir, { recursive: true });
    const err = storeError(() => openStore(dir));
    expect(err.code).toBe('STORE_UNWRITABLE');
    expect(err.message).toContain(`database path ${dir} is a directory`);
  });
});

describe('a process killed mid-write', () => {
  const fixture = join(
    dirname(fileURLToPath(import.meta.url)),
    '..',
    '..',
    'test',
    'support',
    'kill-writer.ts',
  );
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  it('leaves a database that passes integrity_check and holds every committed transaction whole', async () => {
    const path = fresh();
    child = spawn(process.execPath, ['--import', 'tsx', fixture, path], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let lastCommitted = -1;
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += String(d);
    });
    const exited = new Promise<void>((resolveExit) => child?.once('exit', () => resolveExit()));
    await new Promise<void>((resolveKill, reject) => {
      let buf = '';
      child?.stdout?.on('data', (d) => {
        buf += String(d);
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const l of lines) lastCommitted = Number(l);
        if (lastCommitted >= 300) {
          child?.kill('SIGKILL');
          resolveKill();
        }
      });
      child?.once('exit', (code, signal) => {
        if (signal !== 'SIGKILL') reject(new Error(`writer exited early (${code}): ${stderr}`));
      });
    });
    await exited;
    expect(child.signalCode).toBe('SIGKILL');

    const s = open(path);
    expect(sqliteOf(s.db).pragma('integrity_check', { simple: true })).toBe('ok');
    const audit = s.db
      .prepare("SELECT action, json_extract(details, '$.i') AS i FROM audit_log ORDER BY id")
      .all() as {
      action: string;
      i: number;
    }[];
    const outbox = s.db.prepare("SELECT json_extract(payload, '$.i') AS i FROM outbox ORDER BY id").all() as {
      i: number;
    }[];
    const txCount = outbox.length;
    // Every transaction the child saw commit is there (it printed after commit) …
    expect(txCount).toBeGreaterThanOrEqual(lastCommitted + 1);
    // … and it is a prefix 0..k of whole transactions: 2 audit rows + 1 outbox row each, never a part of one.
    expect(outbox.map((r) => r.i)).toEqual(Array.from({ length: txCount }, (_, i) => i));
    expect(audit).toHaveLength(2 * txCount);
    audit.forEach((r, idx) => {
      expect(r.i).toBe(Math.floor(idx / 2));
      expect(r.action).toBe(idx % 2 === 0 ? 'first' : 'second');
    });
    // And the store keeps working after the crash.
    s.audit.append({ at: 1, actor: 'test', action: 'after-crash', result: 'ok' });
    expect(s.audit.list({ limit: 1 })[0]?.action).toBe('after-crash');
  });
});
