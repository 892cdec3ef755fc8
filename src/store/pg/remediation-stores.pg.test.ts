/**
 * The remediation engine's incident port over the PostgreSQL store passes the same IncidentStore contract as
 * the SQLite adapter and the in-memory fake.
 */
import { afterAll, beforeAll } from 'vitest';
import { describeIncidentStoreContract } from '../../../test/support/incident-store-contract.js';
import { freshDatabase, POSTGRES_HOOK_TIMEOUT } from '../../../test/support/postgres.js';
import { incidentStore } from '../remediation-stores.js';
import { createStore, type Store } from '../store.js';
import { openPostgresStore } from './open-pg.js';

let base: Store | undefined;
beforeAll(async () => {
  base = openPostgresStore((await freshDatabase('ports')).url, 'ports');
}, POSTGRES_HOOK_TIMEOUT);
afterAll(() => base?.close());

describeIncidentStoreContract('PostgreSQL (incidentStore over openPostgresStore)', (now) => {
  if (!base) throw new Error('the PostgreSQL store is not open');
  // Every case from empty tables, over the one migrated connection (triggers off to empty the audit log).
  base.db.exec(
    `SET session_replication_role = replica; TRUNCATE incidents, incident_steps, audit_log RESTART IDENTITY CASCADE;
     SET session_replication_role = DEFAULT`,
  );
  return incidentStore(createStore(base.db, base.path, now, () => undefined));
});
