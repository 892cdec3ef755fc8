import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { freshDatabase, POSTGRES_HOOK_TIMEOUT } from '../../test/support/postgres.js';
import { describeStoreContract } from '../../test/support/store-contract.js';
import { openPostgresStore } from './pg/open-pg.js';
import { openStore } from './store.js';

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

// One database for the file; every case gets its own cluster schema in it, so cases never share rows.
let schemas = 0;
describeStoreContract(
  'PostgreSQL store',
  async () => {
    const { url } = await freshDatabase('contract');
    return {
      dialect: 'postgres',
      open: (now) => openPostgresStore(url, `case-${++schemas}`, { now }),
      openTwo: () => {
        const cluster = `two-${++schemas}`;
        return [openPostgresStore(url, cluster), openPostgresStore(url, cluster)];
      },
    };
  },
  POSTGRES_HOOK_TIMEOUT,
);
