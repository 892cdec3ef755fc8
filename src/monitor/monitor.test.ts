import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { baseSnapshot, type Collector } from '../collect/collector.js';
import type { Verdict } from '../domain/finding.js';
import type { GpuNode } from '../domain/node.js';
import { Monitor, type ScanHooks } from './monitor.js';

const node = (name: string): GpuNode => ({
  name,
  expectedGpus: 8,
  allocatableGpus: 8,
  gpuResources: { 'nvidia.com/gpu': 8 },
  unschedulable: false,
  ready: true,
  labels: {},
  conditions: [],
});

const healthy: Verdict = {
  node: 'n',
  category: 'HEALTHY',
  severity: 'healthy',
  action: 'none',
  explanation: 'No GPU fault found.',
  source: 'rules',
  findings: [],
};

/** A collector whose every collect takes `scanMs` of (fake) time; it records what happened when. */
function slowCollector(scanMs: () => number, events: string[]): Collector & ScanHooks {
  let inFlight = 0;
  return {
    source: 'exporter',
    async beforeScan() {
      events.push(`before@${Date.now()}`);
    },
    async collect(n, _signal) {
      inFlight++;
      if (inFlight > 1) events.push('OVERLAP');
      events.push(`collect@${Date.now()}`);
      await new Promise((r) => setTimeout(r, scanMs()));
      inFlight--;
      return baseSnapshot(n, 'exporter', Date.now());
    },
  };
}

function monitor(collector: Collector & ScanHooks, intervalMs: number) {
  return new Monitor({
    listNodes: () => [node('n1')],
    collector,
    classifier: { rules: () => healthy },
    plan: () => ({ plannedAction: 'none', mode: 'off' }),
    readOnly: true,
    intervalMs,
    concurrency: 1,
    nodeTimeoutMs: 60_000,
    jitter: 0,
  });
}

/** stop() waits for the scan in flight, whose timers are fake: let them run. */
async function stopAndDrain(m: Monitor): Promise<void> {
  const stopped = m.stop();
  await vi.advanceTimersByTimeAsync(10_000);
  await stopped;
}

describe('Monitor scheduling', () => {
  beforeEach(() => {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate', 'Date', 'performance'],
    });
    vi.setSystemTime(0);
  });
  afterEach(() => vi.useRealTimers());

  it('starts each scan one interval after the previous START, calling beforeScan first', async () => {
    const events: string[] = [];
    const m = monitor(
      slowCollector(() => 3_000, events),
      5_000,
    );
    m.start();
    await vi.advanceTimersByTimeAsync(16_000);
    await stopAndDrain(m);
    // Scans take 3 s: with "interval after the end" they would start at 0, 8, 16 s.
    expect(events.filter((e) => e.startsWith('collect'))).toEqual([
      'collect@0',
      'collect@5000',
      'collect@10000',
      'collect@15000',
    ]);
    expect(events.slice(0, 2)).toEqual(['before@0', 'collect@0']);
    expect(events.filter((e) => e.startsWith('before'))).toHaveLength(4);
  });

  it('follows an overrunning scan at once, never two at a time', async () => {
    const events: string[] = [];
    const durations = [7_000, 1_000, 1_000];
    const m = monitor(
      slowCollector(() => durations.shift() ?? 1_000, events),
      5_000,
    );
    m.start();
    await vi.advanceTimersByTimeAsync(12_500);
    await stopAndDrain(m);
    expect(events).not.toContain('OVERLAP');
    // 0–7 s overran the 5 s period: the next starts as soon as it ended (a timer tick later), and the
    // one after that one interval after ITS start.
    const starts = events.filter((e) => e.startsWith('collect')).map((e) => Number(e.split('@')[1]));
    expect(starts).toHaveLength(3);
    expect(starts[0]).toBe(0);
    expect(starts[1]).toBeGreaterThanOrEqual(7_000);
    expect(starts[1]).toBeLessThan(7_050);
    expect((starts[2] ?? 0) - (starts[1] ?? 0)).toBe(5_000);
  });

  it('keeps scanning when beforeScan fails', async () => {
    const events: string[] = [];
    const collector = slowCollector(() => 10, events);
    collector.beforeScan = () => Promise.reject(new Error('token refresh failed'));
    const scan = monitor(collector, 5_000).scanOnce();
    await vi.advanceTimersByTimeAsync(100);
    const report = await scan;
    expect(report.results).toHaveLength(1);
    expect(events).toEqual(['collect@0']);
  });
});

describe('Monitor reports', () => {
  const collector: Collector = {
    source: 'exporter',
    async collect(n) {
      if (n.name === 'bad') throw new Error('connection refused');
      return { ...baseSnapshot(n, 'exporter', 1), gpus: [{ index: 0 }] };
    },
  };
  const run = (retainSnapshots: boolean | undefined) => {
    const seen: string[] = [];
    const m = new Monitor({
      listNodes: () => [node('good'), node('bad')],
      collector,
      classifier: { rules: () => healthy },
      plan: () => ({ plannedAction: 'none', mode: 'off' }),
      readOnly: true,
      ...(retainSnapshots === undefined ? {} : { retainSnapshots }),
      onNodeScanned: (r) => seen.push(`${r.node.name}:${r.snapshot.gpus.length}`),
      intervalMs: 0,
      concurrency: 2,
      nodeTimeoutMs: 60_000,
    });
    return { seen, scan: m.scanOnce() };
  };

  it('keeps snapshots in the report by default, and only summaries with retainSnapshots: false', async () => {
    const full = run(undefined);
    const kept = await full.scan;
    expect(kept.results.map((r) => [r.node.name, r.snapshot.gpus.length]).sort()).toEqual([
      ['bad', 0],
      ['good', 1],
    ]);
    const slim = run(false);
    const report = await slim.scan;
    expect(report.results).toEqual([]);
    const byNode = new Map(report.summaries.map((s) => [s.node.name, s]));
    expect(byNode.get('bad')?.error).toMatchObject({ kind: 'unreachable', message: 'connection refused' });
    expect(byNode.get('good')?.error).toBeUndefined();
    expect(byNode.get('good')?.verdict).toBe(healthy);
    expect(Object.keys(byNode.get('good') ?? {})).not.toContain('snapshot');
    expect(report.failures).toBe(1);
    // Listeners still get each full result as it is recorded.
    expect(slim.seen.sort()).toEqual(['bad:0', 'good:1']);
  });

  it('records nodes the source answers from its scan read without collecting them; the rest are collected', async () => {
    const collected: string[] = [];
    const names = Array.from({ length: 150 }, (_, i) => `n${i}`);
    const m = new Monitor({
      listNodes: () => names.map(node),
      collector: {
        source: 'prometheus',
        // Every third node needs I/O of its own (as a node reporting too few GPUs does); n4's read throws.
        fromScanRead: (n) => {
          if (n.name === 'n4') throw new Error('unreadable series');
          return Number(n.name.slice(1)) % 3 === 0
            ? undefined
            : { ...baseSnapshot(n, 'prometheus', 1), gpus: [] };
        },
        async collect(n) {
          collected.push(n.name);
          if (n.name === 'n3') throw new Error('connection refused');
          return { ...baseSnapshot(n, 'prometheus', 1), gpus: [{ index: 0 }] };
        },
      },
      classifier: { rules: () => healthy },
      plan: () => ({ plannedAction: 'none', mode: 'off' }),
      readOnly: true,
      intervalMs: 0,
      concurrency: 4,
      nodeTimeoutMs: 60_000,
    });
    const report = await m.scanOnce();
    expect(collected.sort()).toEqual(names.filter((_, i) => i % 3 === 0 || i === 4).sort());
    expect(report.summaries.map((s) => s.node.name).sort()).toEqual([...names].sort());
    expect(report.results.find((r) => r.node.name === 'n1')?.snapshot.gpus).toEqual([]);
    expect(report.results.find((r) => r.node.name === 'n0')?.snapshot.gpus).toEqual([{ index: 0 }]);
    expect(report.failures).toBe(1);
  });

  it('refuses to open incidents without a store', () => {
    expect(
      () =>
        new Monitor({
          listNodes: () => [],
          collector: {
            source: 'exporter',
            collect: async () => {
              throw new Error('unused');
            },
          },
          classifier: {
            rules: () => {
              throw new Error('unused');
            },
          },
          plan: () => ({ plannedAction: 'none', mode: 'off' }),
          intervalMs: 0,
          concurrency: 1,
          nodeTimeoutMs: 1,
        }),
    ).toThrow(/needs a store/);
  });
});

describe('GPU count source', () => {
  it('says once per instance type that the GPU table does not know it', async () => {
    const lines: { level: number; msg: string; instanceType?: string; source?: string }[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    const nodes: GpuNode[] = [
      { ...node('p5-a'), instanceType: 'p5.48xlarge', gpuCountSource: 'instance-type' },
      { ...node('x-a'), instanceType: 'x9.large', gpuCountSource: 'gfd-label' },
      { ...node('x-b'), instanceType: 'x9.large', gpuCountSource: 'gfd-label' },
      { ...node('y-a'), instanceType: 'y1.large', expectedGpus: undefined, gpuCountSource: 'unknown' },
    ];
    const m = new Monitor({
      listNodes: () => nodes,
      collector: { source: 'exporter', collect: async (n) => baseSnapshot(n, 'exporter', Date.now()) },
      classifier: { rules: () => healthy },
      plan: () => ({ plannedAction: 'none', mode: 'off' }),
      readOnly: true,
      intervalMs: 60_000,
      concurrency: 2,
      nodeTimeoutMs: 5_000,
      logger,
    });
    await m.scanOnce();
    await m.scanOnce();
    const said = lines.filter((l) => l.msg.includes('GPU table'));
    expect(said.map((l) => [l.level, l.instanceType, l.source])).toEqual([
      [30, 'x9.large', 'gfd-label'],
      [40, 'y1.large', 'unknown'],
    ]);
  });
});

describe('Monitor.scanNodes (an Alertmanager push)', () => {
  it('reads only the named nodes, reports unknown names, and is not counted as a scan', async () => {
    const read: string[] = [];
    const m = new Monitor({
      listNodes: () => [node('n1'), node('n2'), node('n3')],
      collector: {
        source: 'exporter',
        async collect(n) {
          read.push(n.name);
          return baseSnapshot(n, 'exporter', Date.now());
        },
      },
      classifier: { rules: () => healthy },
      plan: () => ({ plannedAction: 'none', mode: 'off' }),
      readOnly: true,
      intervalMs: 60_000,
      concurrency: 4,
      nodeTimeoutMs: 5000,
    });
    expect(m.isRunning).toBe(false);
    const { report, unknown } = await m.scanNodes(['n3', 'gone', 'n1']);
    expect(read.sort()).toEqual(['n1', 'n3']);
    expect(report.summaries.map((s) => s.node.name).sort()).toEqual(['n1', 'n3']);
    expect(unknown).toEqual(['gone']);
    expect(m.scanCount).toBe(0);
    const full = await m.scanOnce();
    expect(full.summaries).toHaveLength(3);
    expect(m.scanCount).toBe(1);
  });
});
