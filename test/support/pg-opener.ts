/**
 * Child process for src/store/pg/pg-store.test.ts: opens (and so migrates) the PostgreSQL store of one
 * cluster, prints `opened <schema version>` and closes. Several started together race for the migration.
 */
import { openPostgresStore } from '../../src/store/pg/open-pg.js';

const [url, cluster] = process.argv.slice(2);
if (!url || !cluster) throw new Error('usage: pg-opener.ts DATABASE_URL CLUSTER');
const store = openPostgresStore(url, cluster);
process.stdout.write(`opened ${store.schemaVersion()}\n`);
store.close();
