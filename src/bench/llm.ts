/**
 * The LLM part of the benchmark: the hybrid classifier against the simulator's Bedrock fake, with the
 * SAME unknown fault (XID 999, not in NVIDIA's catalog) on every node. The fake answers after a
 * scripted delay, so what is measured is our pipeline — one model call per signature, the signature
 * cache, coalescing of identical in-flight requests, the model kept off the scan's critical path —
 * never the model. Measures only; rendering is report.ts's job.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSensing, type Sensing } from '../app/sensing.js';
import type { LlmStats } from '../classify/llm/stats.js';
import { loadConfig } from '../config/config.js';
import { silentLogger } from '../log/logger.js';
import { Monitor } from '../monitor/monitor.js';
import { type SimulatorProcess, startSimulatorProcess } from '../sim/process.js';
import { openStore, type Store } from '../store/index.js';
import { benchMonitorOptions } from './monitor-options.js';

export const LLM_CATEGORY = 'FABRIC_MANAGER_DOWN';
/** The fake's scripted answer time: the figures measure our pipeline, not a model. */
export const FAKE_LATENCY_MS = 800;
/** Scripted token usage the fake reports per call (not a tokenizer's count of our prompt). */
export const FAKE_USAGE = { inputTokens: 1500, outputTokens: 90 };
const UNKNOWN_XID = 999;
const INJECT_CONCURRENCY = 16;
const POLL_MS = 25;

const POLICY_YAML = `categories:
  - name: ${LLM_CATEGORY}
    description: nvidia-fabricmanager is not running, so the NVLink/NVSwitch fabric is unavailable and multi-GPU jobs fail to start
    severity: critical
    action: reboot
`;

export interface LlmBenchOptions {
  /** Default 1,000. */
  nodes?: number;
  gpusPerNode?: number;
  /** How long to wait for every incident to carry the model's category. Default 60 s. */
  refineTimeoutMs?: number;
  progress?: (line: string) => void;
}

export interface LlmScan {
  wallMs: number;
  /** Our process's CPU (user + system) during the scan. */
  cpuMs: number;
  failures: number;
  /** Bedrock requests the fake received while the scan ran. */
  fakeCalls: number;
}

export interface LlmBenchResult {
  nodes: number;
  gpusPerNode: number;
  fakeLatencyMs: number;
  usagePerCall: { inputTokens: number; outputTokens: number };
  /** First sight of every node, before any fault: so scan 1 is not also the first-sight scan. */
  warmupWallMs: number;
  scan1: LlmScan;
  /** Scan 1's start → every open incident carries the model's category; undefined if not within the wait. */
  allRefinedMs?: number;
  refined: number;
  incidents: number;
  waitedMs: number;
  scan2: LlmScan;
  /** Calls the Bedrock fake received in all (its own count). */
  fakeCalls: number;
  /** The classifier's counters at the end (`sensing.llmStats`). */
  stats: LlmStats;
  /** Counters that changed during scan 2 (after every node was refined). */
  scan2Stats: { calls: number; cacheHits: number; coalesced: number };
}

async function postJson(url: string, body: unknown): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json' },
  });
  if (!res.ok) throw new Error(`POST ${url}: ${res.status} ${await res.text()}`);
}

async function fakeCallCount(controlUrl: string): Promise<number> {
  const res = await fetch(`${controlUrl}/bedrock/calls`);
  if (!res.ok) throw new Error(`GET ${controlUrl}/bedrock/calls: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { calls: number }).calls;
}

const sumOf = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
const cpuMsOf = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

async function measureScan(monitor: Monitor, controlUrl: string): Promise<LlmScan> {
  const calls0 = await fakeCallCount(controlUrl);
  const cpu0 = process.cpuUsage();
  const report = await monitor.scanOnce();
  const cpuMs = cpuMsOf(process.cpuUsage(cpu0));
  return {
    wallMs: report.durationMs,
    cpuMs,
    failures: report.failures,
    fakeCalls: (await fakeCallCount(controlUrl)) - calls0,
  };
}

/** Counts open incidents and those carrying the model's category, until all are refined or time is up. */
async function waitAllRefined(
  store: Store,
  expected: number,
  since: number,
  timeoutMs: number,
): Promise<{ allRefinedMs?: number; refined: number; incidents: number; waitedMs: number }> {
  for (;;) {
    const open = store.incidents.listOpen();
    const refined = open.filter((i) => i.category === LLM_CATEGORY).length;
    const waitedMs = performance.now() - since;
    if (refined >= expected) return { allRefinedMs: waitedMs, refined, incidents: open.length, waitedMs };
    if (waitedMs > timeoutMs) return { refined, incidents: open.length, waitedMs };
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/**
 * Runs the LLM benchmark at one size. The AWS SDK reads its endpoint and credentials from the
 * environment, so the simulator's env is put into process.env for the run and restored afterwards.
 */
export async function runLlmBench(opts: LlmBenchOptions = {}): Promise<LlmBenchResult> {
  const nodes = opts.nodes ?? 1000;
  const gpusPerNode = opts.gpusPerNode ?? 8;
  const progress = opts.progress ?? (() => undefined);
  const dir = await mkdtemp(join(tmpdir(), 'gpu-medic-bench-llm-'));
  const savedEnv = new Map<string, string | undefined>();
  let sim: SimulatorProcess | undefined;
  let sensing: Sensing | undefined;
  let store: Store | undefined;
  try {
    sim = await startSimulatorProcess({ nodes, gpusPerNode, slack: false, logLimit: 1000 });
    const controlUrl = sim.controlUrl;
    // Loaded here, not at the top: the Bedrock SDK would otherwise sit in the process for the whole bench,
    // while the product loads it only with CLASSIFIER=hybrid (the direct-scrape RSS is measured before this).
    const { classifyToolName } = await import('../aws/bedrock.js');
    await postJson(`${controlUrl}/bedrock/answer`, {
      toolUse: {
        name: classifyToolName,
        input: {
          category: LLM_CATEGORY,
          severity: 'critical',
          gpu: null,
          xid: null,
          confidence: 0.9,
          explanation: 'The unknown XID with fabric errors matches nvidia-fabricmanager not running.',
        },
      },
      usage: FAKE_USAGE,
      delayMs: FAKE_LATENCY_MS,
    });
    for (const [k, v] of Object.entries(sim.env)) {
      if (!savedEnv.has(k)) savedEnv.set(k, process.env[k]);
      process.env[k] = v;
    }
    const policyFile = join(dir, 'policy.yaml');
    await writeFile(policyFile, POLICY_YAML);
    const config = loadConfig(
      {
        ...sim.env,
        DB_PATH: join(dir, 'bench-llm.db'),
        LOG_LEVEL: 'silent',
        POD_NAMESPACE: 'gpu-medic',
        CLASSIFIER: 'hybrid',
        POLICY_FILE: policyFile,
      },
      { namespaceFile: join(dir, 'no-namespace-file') },
    );
    const logger = silentLogger();
    store = openStore(config.store.dbPath);
    sensing = createSensing(config, { logger, llmCache: store.llmCache });
    await sensing.start();
    const monitor = new Monitor(benchMonitorOptions(config, sensing, store, logger));
    const nodeNames = sensing.watcher.list().map((n) => n.name);
    progress(`llm: ${nodes} nodes, CLASSIFIER=hybrid, Bedrock fake answering in ${FAKE_LATENCY_MS} ms`);

    const warmup = await monitor.scanOnce();
    const activeSim = sim;
    const queue = [...nodeNames];
    await Promise.all(
      Array.from({ length: INJECT_CONCURRENCY }, async () => {
        for (let node = queue.shift(); node !== undefined; node = queue.shift()) {
          await activeSim.inject({
            node,
            gpu: 0,
            kind: 'xid',
            xid: UNKNOWN_XID,
            message: 'Ch 00000010, fabric manager heartbeat lost, NVSwitch fabric state UNINITIALIZED',
          });
        }
      }),
    );
    progress(`  XID ${UNKNOWN_XID} injected on ${nodeNames.length} nodes`);

    const t1 = performance.now();
    const scan1 = await measureScan(monitor, controlUrl);
    progress(
      `  scan 1: ${Math.round(scan1.wallMs)} ms wall, ${Math.round(scan1.cpuMs)} ms CPU, ${scan1.fakeCalls} Bedrock call(s) during it`,
    );
    const wait = await waitAllRefined(store, nodeNames.length, t1, opts.refineTimeoutMs ?? 60_000);
    progress(
      wait.allRefinedMs === undefined
        ? `  only ${wait.refined} of ${nodeNames.length} refined within ${Math.round(wait.waitedMs)} ms`
        : `  all ${wait.refined} incidents refined ${Math.round(wait.allRefinedMs)} ms after scan 1 started`,
    );

    const before = structuredClone(sensing.llmStats);
    const scan2 = await measureScan(monitor, controlUrl);
    // Scan 2's refinements resolve after the scan returns; wait until each node's is counted.
    const settled = (s: LlmStats) => s.calls + s.cacheHits + s.coalesced + sumOf(s.fallbacks);
    const deadline = performance.now() + 10_000;
    while (settled(sensing.llmStats) - settled(before) < nodeNames.length && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const stats = structuredClone(sensing.llmStats);
    progress(`  scan 2: ${Math.round(scan2.wallMs)} ms wall, ${scan2.fakeCalls} new Bedrock call(s)`);
    return {
      nodes,
      gpusPerNode,
      fakeLatencyMs: FAKE_LATENCY_MS,
      usagePerCall: FAKE_USAGE,
      warmupWallMs: warmup.durationMs,
      scan1,
      ...wait,
      scan2,
      fakeCalls: await fakeCallCount(controlUrl),
      stats,
      scan2Stats: {
        calls: stats.calls - before.calls,
        cacheHits: stats.cacheHits - before.cacheHits,
        coalesced: stats.coalesced - before.coalesced,
      },
    };
  } finally {
    await sensing?.stop().catch(() => undefined);
    store?.close();
    await sim?.close();
    for (const [k, v] of savedEnv) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await rm(dir, { recursive: true, force: true });
  }
}
