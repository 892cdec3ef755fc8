/**
 * The integration suites' common ground: a temporary directory per suite with process.env put back afterwards
 * (a runtime's AWS SDK clients read the simulator's endpoints and credentials from process.env), and a fresh
 * simulator with a gpu-medic runtime on its own database around one test.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { createRuntime, type Runtime } from '../../src/app/runtime.js';
import { loadConfig } from '../../src/config/config.js';
import type { ProgressEvent } from '../../src/domain/events.js';
import { silentLogger } from '../../src/log/logger.js';
import { type Simulator, type SimulatorOptions, startSimulator } from '../../src/sim/index.js';
import { waitFor } from './wait.js';

export interface SuiteSandbox {
  /** A path inside the suite's temporary directory (valid from the first test on). */
  path(name: string): string;
  /** A fresh database path, numbered: one per runtime. */
  dbPath(name?: string): string;
}

/** Registers the suite's beforeAll/afterAll: a temporary directory, and process.env restored at the end. */
export function suiteSandbox(prefix: string): SuiteSandbox {
  const savedEnv = { ...process.env };
  let dir = '';
  let dbCounter = 0;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(() => {
    restoreEnv(savedEnv);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    path: (name) => join(dir, name),
    dbPath: (name = 'gpu-medic') => join(dir, `${name}-${++dbCounter}.db`),
  };
}

/** process.env exactly as `saved`: keys added since are removed, changed ones put back. */
export function restoreEnv(saved: NodeJS.ProcessEnv): void {
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  Object.assign(process.env, saved);
}

export interface SimRuntime {
  sim: Simulator;
  rt: Runtime;
  /** GPU nodes at the start (those `gpuNodes` kept). */
  gpuNodes: string[];
  /** Every progress event the runtime published. */
  events: ProgressEvent[];
}

export interface SimRuntimeOptions {
  sim: SimulatorOptions;
  /** Over a remediating default: one-second scans, rules only, 50 remediations an hour, silent logs. */
  env?: Record<string, string>;
  dbPath: string;
  /** Which GPU nodes the test works on; every node with `nvidia.com/gpu` capacity unless told. */
  gpuNodes?: (sim: Simulator, node: string) => boolean;
  /** Start the runtime and wait for its first scan of every GPU node before `fn`. */
  scanFirst?: boolean;
  /** Who may act through the services (the Slack app's admins in production); the monitor and the CLI unless told. */
  authorize?: (actor: string) => boolean;
}

/**
 * A fresh simulator and runtime; `fn` runs between start and stop, and then the simulator must have seen no
 * unexpected call. The engine polls every 200 ms.
 */
export async function withSimRuntime(
  options: SimRuntimeOptions,
  fn: (h: SimRuntime) => Promise<void>,
): Promise<void> {
  const sim = await startSimulator(options.sim);
  let rt: Runtime | undefined;
  try {
    Object.assign(process.env, sim.env);
    const config = loadConfig({
      ...sim.env,
      DB_PATH: options.dbPath,
      MONITOR_INTERVAL: '1',
      CLASSIFIER: 'rules',
      REMEDIATIONS_PER_HOUR: '50',
      LOG_LEVEL: 'silent',
      ...options.env,
    });
    rt = await createRuntime(config, {
      logger: silentLogger(),
      engine: { pollMs: 200 },
      ...(options.authorize ? { authorize: options.authorize } : {}),
    });
    const events: ProgressEvent[] = [];
    rt.bus.subscribe((e) => events.push(e));
    const keep = options.gpuNodes;
    const gpuNodes = sim.cluster
      .listNodes()
      .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
      .map((n) => n.metadata?.name ?? '')
      .filter((n) => !keep || keep(sim, n));
    if (options.scanFirst) await startAndScan(rt, gpuNodes);
    await fn({ sim, rt, gpuNodes, events });
    sim.assertNoUnexpected();
  } finally {
    await rt?.stop();
    await sim.close();
  }
}

/** Starts gpu-medic and waits for its first full scan, so a fault injected next is new, not pre-existing. */
export async function startAndScan(rt: Runtime, gpuNodes: string[], timeoutMs = 25_000): Promise<void> {
  await rt.start();
  await waitFor('the first scan of every GPU node', () => gpuNodes.every((n) => rt.lastScan.has(n)), {
    timeoutMs,
  });
}
