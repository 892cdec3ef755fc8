/**
 * The test run's PostgreSQL server, in a process of its own: started by the first test that needs a database
 * (test/support/postgres.ts), stopped by the run's teardown (postgres-server.ts) with SIGTERM — or by itself
 * when the vitest process that owns the run is gone. Writes into the run directory: `pid` at once, then
 * `info.json` (host, port, user, password) once the server accepts connections, or `failed` with the reason.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEmbeddedPostgres } from '../../src/bench/embedded-postgres.js';

const [runDir, ownerText] = process.argv.slice(2);
if (!runDir || !ownerText) throw new Error('usage: postgres-server-process.ts RUN_DIR OWNER_PID');
const owner = Number(ownerText);
writeFileSync(join(runDir, 'pid'), String(process.pid));

const server = await startEmbeddedPostgres();
// embedded-postgres stops the server itself on SIGTERM and exits before our handler is done: the teardown
// removes this directory once the process is gone.
writeFileSync(join(runDir, 'datadir'), server.dir);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  clearInterval(watchdog);
  await server.stop();
  writeFileSync(join(runDir, 'stopped'), 'stopped');
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
// A run killed before its teardown must not leave a server behind.
const watchdog = setInterval(() => {
  try {
    process.kill(owner, 0);
  } catch {
    void stop();
  }
}, 2000);

try {
  await server.ready;
  const { host, port, user, password } = server;
  writeFileSync(join(runDir, 'info.json.tmp'), JSON.stringify({ host, port, user, password }));
  // Renamed into place, so a reader never sees half a file.
  const { renameSync } = await import('node:fs');
  renameSync(join(runDir, 'info.json.tmp'), join(runDir, 'info.json'));
} catch (err) {
  writeFileSync(join(runDir, 'failed'), (err as Error).message);
  await stop();
}
