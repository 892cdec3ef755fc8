import { describe, expect, it } from 'vitest';
import { detachStrings } from '../collect/exporter.js';
import { main } from '../commands/bench.js';
import { CliError } from '../commands/cli-error.js';
import { runLlmBench } from './llm.js';
import { checkTargets, formatTerminal, machineInfo, median, renderMarkdown } from './report.js';
import { extraChecks } from './report-extra.js';
import { runBenchSize, type ScanMeasurement, type SizeResult } from './run.js';

describe('runBenchSize against a simulator process', () => {
  it('scans every node, counts the API requests, and turns an injected XID 79 into an incident', async () => {
    const lines: string[] = [];
    const result = await runBenchSize({
      nodes: 5,
      gpusPerNode: 8,
      warmups: 1,
      scans: 1,
      intervalSeconds: 1,
      faultTrials: 1,
      pushTrials: 1,
      progress: (l) => lines.push(l),
    });
    expect(result.nodesSeen).toBe(5);
    expect(result.scans.map((s) => s.warmup)).toEqual([true, false]);
    for (const s of result.scans) {
      expect(s.nodes).toBe(5);
      expect(s.failures).toBe(0);
      // One pod-proxy scrape per node, served by the simulator's API server.
      expect(s.requests).toBeGreaterThanOrEqual(5);
      expect(s.cpuMs).toBeGreaterThan(0);
      expect(s.peakRssBytes).toBeGreaterThan(0);
    }
    expect(result.payload?.families).toBeGreaterThan(10);
    expect(result.faults).toHaveLength(1);
    expect(result.faults[0]?.category).toBe('XID_CRITICAL_79');
    expect(result.faults[0]?.latencyMs).toBeDefined();
    expect(lines.some((l) => l.includes('XID 79'))).toBe(true);
    // The Alertmanager push: the incident came from the push's own scan, before the POST was answered.
    expect(result.pushes).toHaveLength(1);
    const push = result.pushes?.[0];
    expect(push?.status).toBe(200);
    expect(push?.postToIncidentMs).toBeDefined();
    expect(push?.postToIncidentMs).toBeLessThanOrEqual(push?.postToResponseMs ?? 0);
    expect(result.faults[0]?.node).not.toBe(undefined);

    const report = {
      date: '2026-01-01T00:00:00.000Z',
      command: 'gpu-medic bench --sizes 5',
      machine: machineInfo(),
      runtime: 'vitest',
      sizes: [result],
    };
    const md = renderMarkdown(report);
    expect(md).toContain('## Targets (issue 3)');
    expect(md).toContain('fault → incident ≤ interval (1 s) + 1 s');
    expect(md).toContain('## Fault → incident: scan vs Alertmanager push');
    expect(md).toContain('5 nodes: Alertmanager push → incident ≤ 1 s after the POST');
    expect(formatTerminal(report)).toContain('5 nodes (5 seen)');
  }, 60_000);
});

describe('runLlmBench against a simulator process', () => {
  it('makes one Bedrock call for the same unknown fault on every node, refines them all, then serves the cache', async () => {
    const endpointBefore = process.env.AWS_ENDPOINT_URL;
    const lines: string[] = [];
    const r = await runLlmBench({ nodes: 5, progress: (l) => lines.push(l) });
    expect(r.fakeCalls).toBe(1);
    expect(r.stats.calls).toBe(1);
    expect(r.stats.accepted).toBe(1);
    expect(r.stats.rejections).toEqual({});
    expect(r.stats.fallbacks).toEqual({});
    expect(r.stats.inputTokens).toBe(r.usagePerCall.inputTokens);
    expect(r.incidents).toBe(5);
    expect(r.refined).toBe(5);
    expect(r.allRefinedMs).toBeDefined();
    // The four other nodes of scan 1 waited on the in-flight call or read its cached answer.
    expect(r.stats.coalesced + r.stats.cacheHits - r.scan2Stats.cacheHits).toBe(4);
    expect(r.scan2.fakeCalls).toBe(0);
    expect(r.scan2Stats).toEqual({ calls: 0, cacheHits: 5, coalesced: 0 });
    expect(r.scan1.failures + r.scan2.failures).toBe(0);
    // The simulator's AWS endpoint was put into process.env for the run only.
    expect(process.env.AWS_ENDPOINT_URL).toBe(endpointBefore);
    expect(lines.some((l) => l.includes('refined'))).toBe(true);

    const report = {
      date: '2026-01-01T00:00:00.000Z',
      command: 'gpu-medic bench --sizes 5',
      machine: machineInfo(),
      runtime: 'vitest',
      sizes: [],
      llm: r,
    };
    const md = renderMarkdown(report);
    expect(md).toContain('## LLM classification (hybrid, Bedrock fake)');
    expect(md).toContain('latency is scripted (800 ms per call)');
    expect(md).toContain('| Bedrock calls (fake received / llmStats.calls) | 1 / 1 |');
    expect(formatTerminal(report)).toContain('LLM classification (hybrid, Bedrock fake), 5 nodes:');
    expect(formatTerminal({ ...report, llm: undefined })).not.toContain('LLM classification');
  }, 60_000);
});

const scan = (over: Partial<ScanMeasurement>): ScanMeasurement => ({
  index: 2,
  warmup: false,
  nodes: 1000,
  wallMs: 1000,
  cpuMs: 500,
  cpuUserMs: 400,
  cpuSystemMs: 100,
  peakRssBytes: 100e6,
  requests: 1000,
  failures: 0,
  simCpuMs: 10,
  ...over,
});

const size = (nodes: number, scans: ScanMeasurement[], over: Partial<SizeResult> = {}): SizeResult => ({
  nodes,
  gpusPerNode: 8,
  concurrency: 32,
  intervalSeconds: 5,
  jitter: 0.1,
  simStartMs: 1,
  syncMs: 1,
  nodesSeen: nodes,
  scans,
  faults: [
    { node: 'n1', gpu: 0, injectedAfterMs: 10, latencyMs: 3000, category: 'XID_CRITICAL_79', waitedMs: 3000 },
  ],
  processMaxRssBytes: 150e6,
  simRssBytes: 1,
  ...over,
});

describe('checkTargets', () => {
  it('judges the worst measured scan and ignores the warm-up', () => {
    const checks = checkTargets([
      size(1000, [
        scan({ warmup: true, index: 1, wallMs: 9000, cpuMs: 9000 }),
        scan({ wallMs: 1900, cpuMs: 1200 }),
      ]),
    ]);
    const byTarget = Object.fromEntries(checks.map((c) => [c.target, c.status]));
    expect(byTarget['1,000 nodes × 8 GPUs: full scan wall time < 2 s']).toBe('met');
    expect(byTarget['1,000 nodes × 8 GPUs: full scan CPU time < 1 CPU-s']).toBe('NOT met');
    expect(byTarget['5,000 nodes × 8 GPUs: full scan wall time < 10 s']).toBe('not measured');
    expect(byTarget['1,000 nodes: RSS < 250 MB']).toBe('met');
    expect(byTarget['1,000 nodes: fault → incident ≤ interval (5 s) + 1 s']).toBe('met');
  });

  it.each([
    [
      'RSS over the limit in a scan sample',
      { processMaxRssBytes: 100e6 },
      [scan({ peakRssBytes: 260e6 })],
      'RSS',
      'NOT met',
    ],
    [
      'a fault that never became an incident',
      { faults: [{ node: 'n', gpu: 1, injectedAfterMs: 0, waitedMs: 20_000 }] },
      [scan({})],
      'fault',
      'NOT met',
    ],
    [
      'a fault slower than interval + 1 s',
      { faults: [{ node: 'n', gpu: 1, injectedAfterMs: 0, latencyMs: 6001, waitedMs: 6001 }] },
      [scan({})],
      'fault',
      'NOT met',
    ],
    ['no fault trials', { faults: [] }, [scan({})], 'fault', 'not measured'],
  ] as const)('%s', (_name, over, scans, needle, expected) => {
    const checks = checkTargets([size(1000, [...scans], over as Partial<SizeResult>)]);
    expect(checks.find((c) => c.target.includes(needle))?.status).toBe(expected);
  });

  it('takes the median of an even count as the mean of the middle two', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(Number.isNaN(median([]))).toBe(true);
  });
});

describe('bench command arguments', () => {
  it.each([
    [['--sizes', '100,abc']],
    [['--sizes', '0']],
    [['--concurrency', '1,2']],
    [['--faults', '-1']],
    [['--llm-nodes', '0']],
    [['--no-llm=yes']],
    [['--bogus']],
  ])('rejects %j with a CliError before starting anything', async (argv) => {
    await expect(main(argv)).rejects.toBeInstanceOf(CliError);
  });
});

describe('detachStrings (exporter collector)', () => {
  it('returns an equal deep copy, strings included', () => {
    const text = `x${'U'.repeat(40)}y`;
    const gpus = [{ index: 0, uuid: text.slice(1, 41), model: 'H100', xids: [{ xid: 79, message: text }] }];
    const copy = detachStrings({ gpus, errors: [] });
    expect(copy).toEqual({ gpus, errors: [] });
    expect(copy.gpus[0]).not.toBe(gpus[0]);
  });
});

describe('issue 15 parts of the report (report-extra.ts)', () => {
  it('judges push → incident against 1 s and the 1-CPU scans against the wall-time targets', () => {
    const pushes = [
      { node: 'n2', gpu: 1, postToIncidentMs: 120, postToResponseMs: 130, status: 200 },
      { node: 'n3', gpu: 2, postToIncidentMs: 1100, postToResponseMs: 1110, status: 200 },
    ];
    const ok = size(1000, [scan({})], { pushes: pushes.slice(0, 1) });
    const slow = size(5000, [scan({ nodes: 5000 })], { pushes });
    const missed = size(100, [scan({ nodes: 100 })], {
      pushes: [{ node: 'n4', gpu: 0, postToResponseMs: 50, status: 200 }],
    });
    const oneCpu = [
      {
        nodes: 1000,
        method: 'taskset',
        scans: [scan({ warmup: true, wallMs: 5000 }), scan({ wallMs: 1500 })],
        processMaxRssBytes: 1,
      },
      {
        nodes: 5000,
        method: 'taskset',
        scans: [scan({ nodes: 5000, wallMs: 12_000 })],
        processMaxRssBytes: 1,
      },
    ];
    const checks = Object.fromEntries(
      extraChecks([missed, ok, slow], oneCpu).map((c) => [c.target, `${c.status}: ${c.measured}`]),
    );
    expect(checks).toEqual({
      '100 nodes: Alertmanager push → incident ≤ 1 s after the POST': 'NOT met: worst — of 1, 1 never opened',
      '1,000 nodes: Alertmanager push → incident ≤ 1 s after the POST': 'met: worst 120 ms of 1',
      '5,000 nodes: Alertmanager push → incident ≤ 1 s after the POST': 'NOT met: worst 1,100 ms of 2',
      '1,000 nodes on 1 CPU: full scan wall time < 2 s': 'met: worst 1,500 ms (median 1,500 ms)',
      '5,000 nodes on 1 CPU: full scan wall time < 10 s': 'NOT met: worst 12,000 ms (median 12,000 ms)',
    });
    const md = renderMarkdown({
      date: '2026-01-01T00:00:00.000Z',
      command: 'gpu-medic bench',
      machine: machineInfo(),
      runtime: 'vitest',
      sizes: [ok],
      oneCpu,
    });
    expect(md).toContain('## Full scans on one CPU');
    expect(md).toContain('Method: taskset.');
    expect(md).toContain(
      '| 1,000 | 3,000 ms / 3,000 ms (interval 5 s) | 120 ms / 120 ms | 130 ms | n2 / 1 |',
    );
  });
});
