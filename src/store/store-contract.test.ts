import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { freshDatabase, POSTGRES_HOOK_TIMEOUT } from '../../test/support/postgres.js';
import { describeStoreContract } from '../../test/support/store-contract.js';
import { openPostgresStore } from './pg/open-pg.js';
import { createStore, openStore, type Store } from './store.js';

const dir = mkdtempSync(join(tmpdir(), 'gpu-medic-contract-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

describeStoreContract('SQLite store', () => ({
  dialect: 'sqlite',
  open: (now) => openStore(':memory:', { now }),
  openTwo: () => {
    const path = join(dir, `two-${++files}.db`);
    return [openStore(path), openStore(path)];
  },
}));

// One database and one migrated connection for the file; each case starts from empty tables (emptied with
// triggers off: the audit log refuses TRUNCATE otherwise), which is much faster than a schema per case.
let schemas = 0;
let shared: Store | undefined;
afterAll(() => shared?.close());
const tables =
  'gpu_state, node_state, incidents, incident_steps, exclusions, audit_log, outbox, slack_refs, llm_cache, kv, repair_records';
describeStoreContract(
  'PostgreSQL store',
  async () => {
    const { url } = await freshDatabase('contract');
    const base = openPostgresStore(url, 'contract');
    shared = base;
    return {
      dialect: 'postgres',
      open: (now) => {
        base.db.exec(
          `SET session_replication_role = replica; TRUNCATE ${tables} RESTART IDENTITY CASCADE;
           SET session_replication_role = DEFAULT`,
        );
        return createStore(base.db, base.path, now, () => undefined);
      },
      openTwo: () => {
        const cluster = `two-${++schemas}`;
        return [openPostgresStore(url, cluster), openPostgresStore(url, cluster)];
      },
    };
  },
  POSTGRES_HOOK_TIMEOUT,
);
