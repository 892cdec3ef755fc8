/**
 * Issue 10, item 6, through the real monitor and sensing (createSensing → hybrid classifier → real Bedrock
 * Runtime SDK client) against the simulator's Bedrock, which refuses retired models like the real service:
 * with BEDROCK_MODEL_ID still on Claude 3.7 Sonnet (end of life 2026-04-28) the refusal is reported once
 * (stats for /gpu status, the gpu_medic_llm_model_unavailable metric), no second request is sent, and the
 * rules' incidents stand.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSensing, initialPlan } from '../../src/app/sensing.js';
import { type Config, loadConfig } from '../../src/config/config.js';
import { silentLogger } from '../../src/log/logger.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { Monitor } from '../../src/monitor/monitor.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { openStore } from '../../src/store/index.js';
import { restoreEnv } from '../support/sim-runtime.js';
import { waitFor } from '../support/wait.js';

const RETIRED = 'us.anthropic.claude-3-7-sonnet-20250219-v1:0';

let sim: Simulator;
let dir: string;
let config: Config;
let savedEnv: NodeJS.ProcessEnv;

beforeAll(async () => {
  sim = await startSimulator({ nodes: 3, slack: false });
  // The SDK finds the simulated endpoint and credentials in the environment, as in production.
  savedEnv = { ...process.env };
  Object.assign(process.env, sim.env);
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-bedrock-model-'));
  config = loadConfig({
    ...sim.env,
    DB_PATH: join(dir, 'gpu-medic.db'),
    CLASSIFIER: 'hybrid',
    BEDROCK_MODEL_ID: RETIRED,
    SCAN_TIMEOUT: '5',
    LOG_LEVEL: 'silent',
  });
});

afterAll(async () => {
  restoreEnv(savedEnv);
  await sim?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a retired BEDROCK_MODEL_ID', () => {
  it('is reported once, never called again, and the rules classify alone', async () => {
    const store = openStore(config.store.dbPath);
    const metrics = createMetrics(undefined, { defaultMetrics: false });
    const sensing = createSensing(config, { llmCache: store.llmCache, logger: silentLogger(), metrics });
    await sensing.start();
    const monitor = new Monitor({
      listNodes: () => sensing.watcher.list(),
      collector: sensing.collector,
      classifier: sensing.classifier,
      store,
      plan: initialPlan(config),
      intervalMs: 60_000,
      concurrency: config.monitor.scanConcurrency,
      nodeTimeoutMs: config.monitor.scanTimeoutSeconds * 1000,
    });
    try {
      const nodes = sim.cluster
        .listNodes()
        .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
        .map((n) => n.metadata?.name ?? '');
      // XIDs not in NVIDIA's catalog: ambiguous, so hybrid mode asks the model — two distinct signatures.
      sim.cluster.injectXid(nodes[0] ?? '', 1, 998);
      await monitor.scanOnce();
      await waitFor('the refusal', () => sensing.llmStats.modelUnavailable, { timeoutMs: 30_000 });
      sim.cluster.injectXid(nodes[1] ?? '', 4, 997);
      await monitor.scanOnce();
      await monitor.scanOnce();
      await waitFor(
        'the second fallback',
        () => ((sensing.llmStats.fallbacks.model_unavailable ?? 0) >= 2 ? true : undefined),
        { timeoutMs: 30_000 },
      );

      expect(sim.aws.log.find('Converse')).toHaveLength(1);
      expect(sim.aws.bedrock.calls).toEqual([]);
      expect(sensing.llmStats.modelUnavailable).toMatchObject({ modelId: RETIRED });
      expect(sensing.llmStats.modelUnavailable?.reason).toMatch(/The provided model identifier is invalid/);
      expect(await metrics.registry.getSingleMetricAsString('gpu_medic_llm_model_unavailable')).toMatch(
        /gpu_medic_llm_model_unavailable 1$/m,
      );
      const open = store.incidents.listOpen();
      expect(open.map((i) => [i.node, i.xid, i.source]).sort()).toEqual(
        [
          [nodes[0], 998, 'rules'],
          [nodes[1], 997, 'rules'],
        ].sort(),
      );
    } finally {
      await monitor.stop();
      await sensing.stop();
      store.close();
    }
  });
});
