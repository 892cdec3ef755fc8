/**
 * The SQLite store: one file, WAL journal, versioned migrations, repositories over cached prepared statements.
 *
 * Durability: journal_mode=WAL with synchronous=NORMAL. A committed transaction is in the WAL file (the OS
 * page cache) when `commit` returns, so it survives the process being killed at any point (SIGKILL, OOM,
 * a pod eviction) — the crash we must survive for exactly-once remediation. Only a power loss or kernel
 * crash of the machine can lose the last transactions, and even then the database stays consistent
 * (rolls back to an earlier commit, never a torn one). FULL would fsync every commit, which a scan of
 * thousands of nodes cannot afford, and the engine re-checks the real world before repeating an effect.
 *
 * A file that is not a SQLite database, is corrupt, cannot be written or comes from a newer release is a
 * StoreError at start-up. The store never deletes or recreates an existing file by itself.
 */
import { closeSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database, { type Database as Db } from 'better-sqlite3';
import type { Logger } from 'pino';
import type { AuditLog, SignatureCache } from '../domain/ports.js';
import { SqliteAuditLog } from './audit-log.js';
import { type ExclusionRepo, SqliteExclusionRepo } from './exclusion-repo.js';
import { createFleetRepo, type FleetRepo } from './fleet-repo.js';
import { type GpuStateRepo, SqliteGpuStateRepo } from './gpu-state-repo.js';
import { type IncidentRepo, SqliteIncidentRepo } from './incident-repo.js';
import type { Clock } from './json.js';
import { type KvRepo, SqliteKvRepo } from './kv-repo.js';
import { SqliteSignatureCache } from './llm-cache.js';
import { currentVersion, migrate, schemaVersionOf } from './migrate.js';
import type { Migration } from './migrations.js';
import { type NodeStateRepo, SqliteNodeStateRepo } from './node-state-repo.js';
import { type OutboxRepo, SqliteOutboxRepo } from './outbox-repo.js';
import { type RepairRecordRepo, SqliteRepairRecordRepo } from './repair-record-repo.js';
import { createRequestRepo, type RequestRepo } from './request-repo.js';
import { type SlackRefRepo, SqliteSlackRefRepo } from './slack-ref-repo.js';
import { type SqlDatabase, type SqlDialect, SqliteSqlDatabase } from './sql.js';
import { SqliteStepRepo, type StepRepo } from './step-repo.js';
import { StoreError } from './store-error.js';

export interface Store {
  /** The resolved file path, or ':memory:'; for PostgreSQL `postgres://host:port/database#schema` (no password). */
  readonly path: string;
  readonly dialect: SqlDialect;
  /** The connection, for tests and diagnostics; application code uses the repositories. */
  readonly db: SqlDatabase;
  readonly gpuState: GpuStateRepo;
  readonly nodeState: NodeStateRepo;
  readonly incidents: IncidentRepo;
  readonly steps: StepRepo;
  readonly exclusions: ExclusionRepo;
  readonly audit: AuditLog;
  readonly outbox: OutboxRepo;
  readonly slackRefs: SlackRefRepo;
  readonly llmCache: SignatureCache & { purgeExpired(now: number): number; size(now: number): number };
  readonly kv: KvRepo;
  /** RMA evidence: one row per GPU and repair. */
  readonly repairs: RepairRecordRepo;
  /** The fleet's read models: cluster summaries and node names, written by each cluster's leader. */
  readonly fleet: FleetRepo;
  /** Slack clicks and commands waiting for a cluster's leader. */
  readonly requests: RequestRepo;
  schemaVersion(): number;
  /** Runs `fn` in one IMMEDIATE transaction: all its repository writes commit together or not at all. */
  transaction<T>(fn: () => T): T;
  /**
   * False while the database cannot be reached (PostgreSQL gone away; it reconnects by itself): every call
   * then fails at once with a StoreError STORE_UNAVAILABLE. Always true for SQLite.
   */
  available(): boolean;
  /** How many times the database went away so far (always 0 for SQLite). */
  outages(): number;
  close(): void;
}

export interface OpenStoreOptions {
  logger?: Logger;
  /** Default clock for writes that are not given a time (the simulator passes its own). */
  now?: Clock;
  /** For tests of the migration mechanism. */
  migrations?: readonly Migration[];
  /** Files up to this size get a full integrity_check at start-up, larger ones quick_check. Default 64 MiB. */
  fullCheckMaxBytes?: number;
}

const sqliteMagic = Buffer.from('SQLite format 3\0', 'latin1');

const moveAside = (path: string) =>
  `Restore it from a backup, or move it aside (mv '${path}' '${path}.bad') to start with an empty store; ` +
  'gpu-medic never resets a database by itself.';

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Checks the path before SQLite sees it, to turn ENOTDIR/EISDIR/EACCES into sentences. */
function preflight(path: string): void {
  const dir = dirname(path);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    const code = errnoOf(err);
    const why =
      code === 'EEXIST' || code === 'ENOTDIR'
        ? 'it or one of its parents is a file, not a directory'
        : (code ?? String(err));
    throw new StoreError(
      'STORE_UNWRITABLE',
      path,
      `cannot create the directory ${dir} for database ${path} (${why}): ` +
        'set DB_PATH to a writable location (in Kubernetes, the mounted volume).',
      { cause: err },
    );
  }
  let size: number;
  try {
    const st = statSync(path);
    if (st.isDirectory()) {
      throw new StoreError(
        'STORE_UNWRITABLE',
        path,
        `database path ${path} is a directory: set DB_PATH to a file path such as ${resolve(path, 'gpu-medic.db')}.`,
      );
    }
    size = st.size;
  } catch (err) {
    if (err instanceof StoreError) throw err;
    if (errnoOf(err) === 'ENOENT') return; // a new database
    throw new StoreError(
      'STORE_UNWRITABLE',
      path,
      `cannot stat database ${path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (size === 0) return; // SQLite treats an empty file as an empty database
  const head = Buffer.alloc(sqliteMagic.length);
  let read = 0;
  try {
    const fd = openSync(path, 'r');
    try {
      read = readSync(fd, head, 0, head.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw new StoreError(
      'STORE_UNWRITABLE',
      path,
      `cannot read database ${path}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  if (read < head.length || !head.equals(sqliteMagic)) {
    throw new StoreError(
      'STORE_NOT_SQLITE',
      path,
      `${path} is not a SQLite database (its header is wrong or truncated; ${size} bytes). ${moveAside(path)}`,
    );
  }
}

function classify(err: unknown, path: string, what: string): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: string }).code ?? '';
  const msg = (err as Error).message ?? String(err);
  if (code.startsWith('SQLITE_NOTADB')) {
    return new StoreError(
      'STORE_NOT_SQLITE',
      path,
      `${path} is not a SQLite database (${msg}). ${moveAside(path)}`,
      {
        cause: err,
      },
    );
  }
  if (code.startsWith('SQLITE_CORRUPT')) {
    return new StoreError('STORE_CORRUPT', path, `database ${path} is corrupt (${msg}). ${moveAside(path)}`, {
      cause: err,
    });
  }
  if (
    code.startsWith('SQLITE_READONLY') ||
    code.startsWith('SQLITE_CANTOPEN') ||
    code.startsWith('SQLITE_PERM')
  ) {
    return new StoreError(
      'STORE_UNWRITABLE',
      path,
      `database ${path} cannot be opened for writing (${msg}): check the file, its directory and their permissions, ` +
        'or set DB_PATH to a writable location.',
      { cause: err },
    );
  }
  return new StoreError('STORE_OPEN_FAILED', path, `database ${path}: ${what} failed: ${msg}`, {
    cause: err,
  });
}

/** Opens (creating if needed) and migrates the database at `path`; `:memory:` for unit tests. */
export function openStore(path: string, options: OpenStoreOptions = {}): Store {
  const memory = path === ':memory:';
  const file = memory ? path : resolve(path);
  if (!memory) preflight(file);

  let db: Db;
  try {
    db = new Database(file, { fileMustExist: false });
  } catch (err) {
    throw classify(err, file, 'opening');
  }
  try {
    db.pragma('busy_timeout = 5000');
    if (!memory) {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') {
        throw new StoreError(
          'STORE_UNWRITABLE',
          file,
          `database ${file}: cannot switch to WAL mode (got ${String(mode)}).`,
        );
      }
    }
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    if (!memory) checkIntegrity(db, file, options.fullCheckMaxBytes ?? 64 * 1024 * 1024);
    migrate(db, file, { migrations: options.migrations, logger: options.logger, now: options.now });
  } catch (err) {
    db.close();
    throw classify(err, file, 'start-up');
  }
  options.logger?.info({ path: file, schemaVersion: currentVersion(db) }, 'store opened');
  const sql = new SqliteSqlDatabase(db);
  return createStore(sql, file, options.now ?? Date.now, () => {
    // Fold the WAL back into the main file so a copied .db file is complete on its own.
    try {
      if (file !== ':memory:') db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      db.close();
    }
  });
}

function checkIntegrity(db: Db, path: string, fullCheckMaxBytes: number): void {
  const pageCount = db.pragma('page_count', { simple: true }) as number;
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const pragma = pageCount * pageSize <= fullCheckMaxBytes ? 'integrity_check(20)' : 'quick_check(20)';
  const rows = db.pragma(pragma) as Record<string, string>[];
  const messages = rows.map((r) => Object.values(r)[0] ?? '');
  if (messages.length === 1 && messages[0] === 'ok') return;
  throw new StoreError(
    'STORE_CORRUPT',
    path,
    `database ${path} failed its integrity check: ${messages.slice(0, 3).join('; ')}. ${moveAside(path)}`,
  );
}

/** The repositories over an open, migrated connection of either dialect. */
export function createStore(db: SqlDatabase, path: string, clock: Clock, close: () => void): Store {
  let closed = false;
  return {
    path,
    dialect: db.dialect,
    db,
    gpuState: new SqliteGpuStateRepo(db, clock),
    nodeState: new SqliteNodeStateRepo(db, clock),
    incidents: new SqliteIncidentRepo(db, clock),
    steps: new SqliteStepRepo(db, clock),
    exclusions: new SqliteExclusionRepo(db, clock),
    audit: new SqliteAuditLog(db),
    outbox: new SqliteOutboxRepo(db, clock),
    slackRefs: new SqliteSlackRefRepo(db, clock),
    llmCache: new SqliteSignatureCache(db, clock),
    kv: new SqliteKvRepo(db, clock),
    repairs: new SqliteRepairRecordRepo(db),
    fleet: createFleetRepo(db),
    requests: createRequestRepo(db),
    schemaVersion: () => schemaVersionOf(db),
    transaction: <T>(fn: () => T): T => db.transaction(fn),
    available: () => db.available(),
    outages: () => db.outages(),
    close: () => {
      if (closed) return;
      closed = true;
      close();
    },
  };
}
