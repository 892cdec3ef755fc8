/**
 * Issue 6, "Done when", through the real monitor and sensing (createSensing → hybrid classifier → real
 * Bedrock Runtime SDK client) against the simulator's Converse fake:
 *   - 200 nodes with the same unknown fault → exactly one model call; every node's incident carries
 *     the model's category; a restart (new store connection, new sensing, same database) asks nothing.
 *     (200, not the issue's 1,000: 1,000 nodes scanned three times take ~15 s alone on 2 cores and starve
 *     the integration test running beside it; src/aws/bedrock-classifier.test.ts proves 1,000 nodes →
 *     one call at the classifier level, with the same real SDK client and fake.)
 *   - a model that has not answered yet never holds up the scan: the rules' verdicts are recorded first,
 *     the refinement updates the incidents when the answer lands;
 *   - CLASSIFIER=rules → no request reaches Bedrock.
 * Bedrock counts are read from what the fake received, not from our own bookkeeping.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSensing, initialPlan, type Sensing } from '../../src/app/sensing.js';
import { classifyToolName } from '../../src/aws/bedrock.js';
import { type Config, loadConfig } from '../../src/config/config.js';
import type { Incident } from '../../src/domain/incident.js';
import { silentLogger } from '../../src/log/logger.js';
import { Monitor } from '../../src/monitor/monitor.js';
import type { BedrockAnswer } from '../../src/sim/aws-server.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { restoreEnv } from '../support/sim-runtime.js';
import { waitFor } from '../support/wait.js';

const POLICY = `categories:
  - name: FABRIC_MANAGER_DOWN
    description: nvidia-fabricmanager is not running, so the NVLink/NVSwitch fabric is unavailable
    severity: critical
    action: reboot
`;
const UNKNOWN_XID = 999;
const XID_TEXT = 'fabric manager reported the NVSwitch fabric unavailable';

/** What a careful model answers for the unknown XID: the operator's category, no action of its own. */
const fabricAnswer: BedrockAnswer = {
  toolUse: {
    name: classifyToolName,
    input: {
      category: 'FABRIC_MANAGER_DOWN',
      severity: 'critical',
      gpu: null,
      xid: UNKNOWN_XID,
      confidence: 0.9,
      explanation: 'The fabric manager is down; the NVSwitch fabric is unavailable.',
    },
  },
};

interface Running {
  store: Store;
  sensing: Sensing;
  monitor: Monitor;
  events: string[];
  close(): Promise<void>;
}

/** One gpu-medic "process": its own store connection, sensing (watches + classifier) and monitor. */
async function startMonitor(config: Config): Promise<Running> {
  const store = openStore(config.store.dbPath);
  const logger = silentLogger();
  const sensing = createSensing(config, { llmCache: store.llmCache, logger });
  await sensing.start();
  const events: string[] = [];
  const monitor = new Monitor({
    listNodes: () => sensing.watcher.list(),
    collector: sensing.collector,
    classifier: sensing.classifier,
    store,
    plan: initialPlan(config),
    onIncident: (i) => events.push(`incident ${i.node} ${i.category} ${i.source}`),
    intervalMs: 60_000,
    concurrency: config.monitor.scanConcurrency,
    nodeTimeoutMs: config.monitor.scanTimeoutSeconds * 1000,
  });
  return {
    store,
    sensing,
    monitor,
    events,
    async close() {
      await monitor.stop();
      await sensing.stop();
      store.close();
    },
  };
}

const gpuNodes = (sim: Simulator) =>
  sim.cluster
    .listNodes()
    .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
    .map((n) => n.metadata?.name ?? '');

const summary = (incidents: Incident[]) =>
  incidents.map((i) => `${i.category} ${i.severity} ${i.recommendedAction} ${i.faultKey}`);

/** The same simulator, environment and policy file for a group of tests; restores process.env after. */
function useSimulator(nodes: number) {
  const ctx = {} as { sim: Simulator; dir: string; policyFile: string; savedEnv: NodeJS.ProcessEnv };
  beforeAll(async () => {
    ctx.sim = await startSimulator({ nodes, slack: false, controlPort: false });
    ctx.savedEnv = { ...process.env };
    // The Bedrock SDK client takes its endpoint and credentials from the environment, as in production.
    Object.assign(process.env, ctx.sim.env);
    ctx.dir = mkdtempSync(join(tmpdir(), 'gpu-medic-monitor-llm-'));
    ctx.policyFile = join(ctx.dir, 'policy.yaml');
    writeFileSync(ctx.policyFile, POLICY);
  }, 120_000);
  afterEach(() => {
    ctx.sim.assertNoUnexpected();
    ctx.sim.aws.bedrock.reset();
    ctx.sim.log.clear();
  });
  afterAll(async () => {
    restoreEnv(ctx.savedEnv);
    await ctx.sim?.close();
    if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
  });
  const config = (classifier: 'rules' | 'hybrid', db: string) =>
    loadConfig({
      ...ctx.sim.env,
      DB_PATH: join(ctx.dir, db),
      CLASSIFIER: classifier,
      POLICY_FILE: ctx.policyFile,
      SCAN_TIMEOUT: '10',
      LOG_LEVEL: 'silent',
    });
  return { ctx, config };
}

describe('monitor + hybrid classifier, many nodes with one unknown fault', () => {
  const N = 200;
  const { ctx, config } = useSimulator(N);

  it('asks the model once, refines every incident, and asks nothing again after a restart', async () => {
    const { sim } = ctx;
    const nodes = gpuNodes(sim);
    expect(nodes).toHaveLength(N);
    nodes.forEach((node, i) => {
      sim.cluster.injectXid(node, i % 8, UNKNOWN_XID, XID_TEXT);
    });
    sim.aws.bedrock.script(() => fabricAnswer);
    const cfg = config('hybrid', 'one-call.db');

    let run = await startMonitor(cfg);
    const report = await run.monitor.scanOnce();
    expect(report.failures).toBe(0);
    expect(report.results).toHaveLength(N);
    // The scan records the rules' verdict: XID 999 is not in the catalog, so it is ambiguous.
    expect(new Set(report.results.map((r) => `${r.verdict.category} ${r.verdict.source}`))).toEqual(
      new Set([`XID_WARNING_${UNKNOWN_XID} rules`]),
    );

    const refined = await waitFor(
      'every incident to carry the model category',
      () => {
        const open = run.store.incidents.listOpen();
        return open.length === N && open.every((i) => i.category === 'FABRIC_MANAGER_DOWN')
          ? open
          : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(sim.aws.bedrock.calls).toHaveLength(1);
    expect(new Set(refined.map((i) => i.node))).toEqual(new Set(nodes));
    expect(new Set(summary(refined).map((s) => s.replace(/gpu\d$/, 'gpuN')))).toEqual(
      new Set([`FABRIC_MANAGER_DOWN critical reboot xid:${UNKNOWN_XID}:gpuN`]),
    );
    // Each incident keeps its own node's GPU: the answer is shared, the rules' facts are not.
    const byNode = new Map(refined.map((i) => [i.node, i]));
    nodes.forEach((node, i) => {
      expect(byNode.get(node)).toMatchObject({ gpu: i % 8, xid: UNKNOWN_XID });
    });
    expect(refined.filter((i) => i.source === 'llm')).toHaveLength(1);
    expect(refined.filter((i) => i.source === 'cache')).toHaveLength(N - 1);
    const stats = run.sensing.llmStats;
    expect(stats).toMatchObject({ calls: 1, accepted: 1 });
    expect(stats.cacheHits + stats.coalesced).toBe(N - 1);

    // A second scan in the same process: served from the cache, the same incidents touched.
    await run.monitor.scanOnce();
    await waitFor(
      'the second refinement',
      () =>
        run.sensing.llmStats.cacheHits + run.sensing.llmStats.coalesced === 2 * N - 1 ? true : undefined,
      { timeoutMs: 60_000 },
    );
    expect(sim.aws.bedrock.calls).toHaveLength(1);
    await run.close();

    // A restart: new store connection, new sensing (an empty in-memory state), the same database.
    run = await startMonitor(cfg);
    await run.monitor.scanOnce();
    await waitFor(
      'the refinement after the restart',
      () => (run.sensing.llmStats.cacheHits === N ? true : undefined),
      { timeoutMs: 60_000 },
    );
    expect(run.sensing.llmStats.calls).toBe(0);
    expect(sim.aws.bedrock.calls).toHaveLength(1);
    const after = run.store.incidents.listOpen();
    expect(after.map((i) => i.id).sort()).toEqual(refined.map((i) => i.id).sort());
    expect(after.every((i) => i.category === 'FABRIC_MANAGER_DOWN' && i.count === 3)).toBe(true);
    await run.close();
  }, 120_000); // many nodes scanned three times on 2 shared cores: a generous deadline, not a target
});

describe('monitor + hybrid classifier, a slow model and the rules-only mode', () => {
  const N = 12;
  const { ctx, config } = useSimulator(N);

  it('records every rules verdict before the model answers, then refines the incidents', async () => {
    const { sim } = ctx;
    const nodes = gpuNodes(sim);
    nodes.forEach((node, i) => {
      sim.cluster.injectXid(node, i % 8, UNKNOWN_XID, XID_TEXT);
    });
    // The model holds its answer until the test releases it (then takes a few seconds more): if the
    // monitor awaited the model on the scan's path, scanOnce could never return before the release.
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let answered = false;
    sim.aws.bedrock.script(async () => {
      await released;
      answered = true;
      return { ...fabricAnswer, delayMs: 1500 };
    });

    const run = await startMonitor(config('hybrid', 'slow.db'));
    try {
      const report = await run.monitor.scanOnce();
      expect(answered).toBe(false);
      run.events.push('scan returned');
      expect(report.results).toHaveLength(N);
      expect(report.results.every((r) => r.verdict.category === `XID_WARNING_${UNKNOWN_XID}`)).toBe(true);
      expect(report.results.every((r) => r.verdict.source === 'rules')).toBe(true);
      const before = run.store.incidents.listOpen();
      expect(before).toHaveLength(N);
      expect(before.every((i) => i.category === `XID_WARNING_${UNKNOWN_XID}` && i.source === 'rules')).toBe(
        true,
      );
      // The one request is at the model, waiting: the scan went on without it.
      expect(sim.aws.bedrock.calls).toHaveLength(1);

      release();
      const refined = await waitFor(
        'the refinement',
        () => {
          const open = run.store.incidents.listOpen();
          return open.every((i) => i.category === 'FABRIC_MANAGER_DOWN') ? open : undefined;
        },
        { timeoutMs: 60_000 },
      );
      expect(refined).toHaveLength(N);
      expect(answered).toBe(true);
      expect(sim.aws.bedrock.calls).toHaveLength(1);
      // The incidents were opened with the rules' category, replanned only after the scan returned.
      const returnedAt = run.events.indexOf('scan returned');
      expect(
        run.events.slice(0, returnedAt).every((e) => e.includes(`XID_WARNING_${UNKNOWN_XID} rules`)),
      ).toBe(true);
      expect(run.events.slice(0, returnedAt)).toHaveLength(N);
      expect(run.events.slice(returnedAt + 1).every((e) => e.includes('FABRIC_MANAGER_DOWN'))).toBe(true);
    } finally {
      await run.close();
    }
  });

  it('CLASSIFIER=rules: no request reaches Bedrock across scans', async () => {
    const { sim } = ctx;
    // Nothing is scripted: any Converse call would also be an unexpected request (assertNoUnexpected).
    const run = await startMonitor(config('rules', 'rules.db'));
    try {
      expect(run.sensing.hybrid).toBeUndefined();
      for (let i = 0; i < 3; i++) await run.monitor.scanOnce();
      const open = run.store.incidents.listOpen();
      expect(open).toHaveLength(N);
      expect(open.every((i) => i.category === `XID_WARNING_${UNKNOWN_XID}` && i.source === 'rules')).toBe(
        true,
      );
      expect(sim.aws.bedrock.calls).toHaveLength(0);
      expect(sim.log.requests.filter((r) => r.service === 'bedrock')).toEqual([]);
      expect(run.sensing.llmStats.calls).toBe(0);
    } finally {
      await run.close();
    }
  });
});
