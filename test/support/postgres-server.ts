/**
 * Vitest global setup for the run's one PostgreSQL server. It starts nothing: it makes the run directory and
 * hands it to the tests. The first test that asks for a database starts the server in a process of its own
 * (postgres-server-process.ts via test/support/postgres.ts), so a run without PostgreSQL tests pays nothing.
 * Teardown stops the server if one was started, and removes the directory.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

/** Where the run's server listens (test/support/postgres.ts `postgresServer()` answers it). */
export interface PostgresServerInfo {
  host: string;
  port: number;
  user: string;
  password: string;
}

export interface PostgresRun {
  /** Where the server process writes `pid`, `info.json` or `failed`; `lock` marks that it was started. */
  runDir: string;
  /** The vitest process that owns the run: the server stops by itself once it is gone. */
  ownerPid: number;
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgresRun: PostgresRun;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export default function setup(project: TestProject): (() => Promise<void>) | undefined {
  // The projects inherit this file from the root config; the root's provided values reach every project.
  if (!project.isRootProject()) return undefined;
  const runDir = mkdtempSync(join(tmpdir(), 'gpu-medic-pg-run-'));
  project.provide('postgresRun', { runDir, ownerPid: process.pid });
  return async () => {
    const pidFile = join(runDir, 'pid');
    if (existsSync(join(runDir, 'lock'))) {
      // Started: wait for its pid (it writes it first thing), then stop it and wait until it has.
      for (let i = 0; i < 100 && !existsSync(pidFile); i++) await sleep(100);
      const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
      if (pid > 0 && alive(pid)) {
        process.kill(pid, 'SIGTERM');
        for (let i = 0; i < 300 && alive(pid); i++) await sleep(100);
      }
      const dataDir = join(runDir, 'datadir');
      if (existsSync(dataDir)) rmSync(readFileSync(dataDir, 'utf8'), { recursive: true, force: true });
    }
    rmSync(runDir, { recursive: true, force: true });
  };
}
