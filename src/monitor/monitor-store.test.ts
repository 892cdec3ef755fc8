import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { baseSnapshot } from '../collect/collector.js';
import type { Finding, Verdict } from '../domain/finding.js';
import type { GpuNode } from '../domain/node.js';
import { openStore, type Store } from '../store/index.js';
import { Monitor } from './monitor.js';
import type { MonitorStore } from './ports.js';

const node: GpuNode = {
  name: 'n1',
  expectedGpus: 8,
  allocatableGpus: 8,
  gpuResources: { 'nvidia.com/gpu': 8 },
  unschedulable: false,
  ready: true,
  labels: {},
  conditions: [],
};

const ecc: Finding = {
  kind: 'ecc_dbe',
  category: 'ECC_DBE',
  severity: 'critical',
  action: 'reboot',
  gpu: 0,
  evidence: ['DCGM_FI_DEV_ECC_DBE_VOL_TOTAL{gpu="0"} 1'],
  explanation: 'Uncorrectable ECC error.',
  source: 'rules',
  key: 'ecc_dbe:gpu0',
};

const verdict = (findings: Finding[]): Verdict => ({
  node: 'n1',
  category: findings[0]?.category ?? 'HEALTHY',
  severity: findings[0]?.severity ?? 'healthy',
  action: findings[0]?.action ?? 'none',
  explanation: findings[0]?.explanation ?? 'No GPU fault found.',
  source: 'rules',
  findings,
});

/**
 * Exactly the port's methods, delegating to a SQLite store: the monitor needs nothing else of a store, so
 * another store that implements the port serves it.
 */
function portOf(s: Store): MonitorStore {
  return {
    incidents: {
      findOpen: (n, k) => s.incidents.findOpen(n, k),
      openOrTouch: (i, now) => s.incidents.openOrTouch(i, now),
      openFaultStates: (n) => s.incidents.openFaultStates(n),
      update: (id, p, now) => s.incidents.update(id, p, now),
    },
    gpuState: {
      get: (n) => s.gpuState.get(n),
      upsertMany: (n, rows, now) => s.gpuState.upsertMany(n, rows, now),
    },
    nodeState: {
      has: (n) => s.nodeState.has(n),
      upsert: (r, now) => s.nodeState.upsert(r, now),
      touchMany: (nodes, at, now) => s.nodeState.touchMany(nodes, at, now),
    },
    kv: {
      get: <T>(key: string) => s.kv.get<T>(key),
      set: (k, v, now) => s.kv.set(k, v, now),
    },
    exclusions: { get: (n, now) => s.exclusions.get(n, now) },
    transaction: (fn) => s.transaction(fn),
  };
}

describe('Monitor over its store port', () => {
  let store: Store;
  beforeEach(() => {
    store = openStore(':memory:');
  });
  afterEach(() => store.close());

  it('opens an incident once, touches it on the next scan and remembers the node, through the port alone', async () => {
    let findings: Finding[] = [ecc];
    let now = 1_000;
    const m = new Monitor({
      listNodes: () => [node],
      collector: { source: 'exporter', collect: async (n) => baseSnapshot(n, 'exporter', now) },
      classifier: { rules: () => verdict(findings) },
      store: portOf(store),
      plan: () => ({ plannedAction: 'reboot', mode: 'auto' }),
      intervalMs: 60_000,
      concurrency: 1,
      nodeTimeoutMs: 5_000,
      now: () => now,
    });
    const first = await m.scanOnce();
    expect(first.opened.map((i) => [i.faultKey, i.plannedAction, i.firstSeen])).toEqual([
      ['ecc_dbe:gpu0', 'reboot', 1_000],
    ]);
    now = 2_000;
    expect((await m.scanOnce()).opened).toEqual([]);
    expect(store.incidents.listOpen()).toMatchObject([
      { faultKey: 'ecc_dbe:gpu0', count: 2, lastSeen: 2_000 },
    ]);
    expect(store.nodeState.get('n1')).toMatchObject({ lastScanAt: 2_000, verdict: { category: 'ECC_DBE' } });

    // Healthy again, then the same fault: its incident is still open, so it is touched, not reopened.
    findings = [];
    now = 3_000;
    await m.scanOnce();
    findings = [ecc];
    now = 4_000;
    expect((await m.scanOnce()).opened).toEqual([]);
    expect(store.incidents.listOpen()).toMatchObject([
      { faultKey: 'ecc_dbe:gpu0', count: 3, lastSeen: 4_000 },
    ]);
  });

  it('records an unchanged healthy node again with one batched touch, and in full once anything changes', async () => {
    let findings: Finding[] = [];
    let now = 1_000;
    let bootId = 'boot-a';
    const calls: string[] = [];
    const port = portOf(store);
    /** Records the call's name, then delegates. */
    const spy =
      <A extends unknown[], R>(name: (...args: NoInfer<A>) => string, fn: (...args: A) => R) =>
      (...args: A): R => {
        calls.push(name(...args));
        return fn(...args);
      };
    const counted: MonitorStore = {
      ...port,
      gpuState: {
        get: spy(() => 'gpuState.get', port.gpuState.get),
        upsertMany: spy(() => 'gpuState.upsertMany', port.gpuState.upsertMany),
      },
      nodeState: {
        has: port.nodeState.has,
        upsert: spy(() => 'nodeState.upsert', port.nodeState.upsert),
        touchMany: spy((...args) => `touchMany:${args[0].join()}`, port.nodeState.touchMany),
      },
    };
    const m = new Monitor({
      listNodes: () => [{ ...node, bootId }],
      collector: { source: 'exporter', collect: async (n) => baseSnapshot(n, 'exporter', now) },
      classifier: { rules: () => verdict(findings) },
      store: counted,
      plan: () => ({ plannedAction: 'reboot', mode: 'auto' }),
      intervalMs: 60_000,
      concurrency: 1,
      nodeTimeoutMs: 5_000,
      // Every scan writes the quiet node's time here (the stagger has its own test).
      quietTouchEvery: 1,
      now: () => now,
    });
    await m.scanOnce();
    expect(calls).toEqual(['gpuState.get', 'nodeState.upsert']);

    // Unchanged: no read, no per-node write, the scan time moves.
    calls.length = 0;
    now = 2_000;
    await m.scanOnce();
    expect(calls).toEqual(['touchMany:n1']);
    expect(store.nodeState.get('n1')).toMatchObject({ lastScanAt: 2_000, bootId: 'boot-a' });

    // A new boot is recorded in full.
    calls.length = 0;
    now = 3_000;
    bootId = 'boot-b';
    await m.scanOnce();
    expect(calls).toEqual(['gpuState.get', 'nodeState.upsert']);
    expect(store.nodeState.get('n1')).toMatchObject({ lastScanAt: 3_000, bootId: 'boot-b' });

    // A fault on a quiet node opens its incident as before.
    calls.length = 0;
    now = 4_000;
    findings = [ecc];
    const report = await m.scanOnce();
    expect(report.opened.map((i) => i.faultKey)).toEqual(['ecc_dbe:gpu0']);
    expect(calls).toContain('nodeState.upsert');

    // Healthy again while its incident is open: recorded in full, never quiet while anything is open.
    for (const t of [5_000, 6_000]) {
      calls.length = 0;
      now = t;
      findings = [];
      await m.scanOnce();
      expect(calls).toEqual(['gpuState.get', 'nodeState.upsert']);
    }
  });

  it("writes unchanged quiet nodes' scan times once every quietTouchEvery scans, staggered by name", async () => {
    const nodes = Array.from({ length: 30 }, (_, i) => ({ ...node, name: `n${i}` }));
    const touched: string[][] = [];
    const port = portOf(store);
    let now = 1_000;
    const m = new Monitor({
      listNodes: () => nodes,
      collector: { source: 'exporter', collect: async (n) => baseSnapshot(n, 'exporter', now) },
      classifier: { rules: () => verdict([]) },
      store: {
        ...port,
        nodeState: {
          ...port.nodeState,
          touchMany: (names, at, t) => {
            touched.push([...names]);
            port.nodeState.touchMany(names, at, t);
          },
        },
      },
      plan: () => ({ plannedAction: 'reboot', mode: 'auto' }),
      intervalMs: 60_000,
      concurrency: 4,
      nodeTimeoutMs: 5_000,
      quietTouchEvery: 3,
      now: () => now,
    });
    await m.scanOnce(); // every node recorded in full
    expect(touched).toEqual([]);
    for (let i = 0; i < 6; i++) {
      now += 1_000;
      await m.scanOnce();
    }
    // Six scans: each node written exactly twice, in scans three apart, and no scan writes them all.
    const byNode = new Map<string, number>();
    for (const names of touched) for (const n of names) byNode.set(n, (byNode.get(n) ?? 0) + 1);
    expect([...byNode.keys()].sort()).toEqual(nodes.map((n) => n.name).sort());
    expect(new Set(byNode.values())).toEqual(new Set([2]));
    expect(Math.max(...touched.map((t) => t.length))).toBeLessThan(nodes.length);
    expect(touched.slice(0, 3).flat().sort()).toEqual(touched.slice(3).flat().sort());
    // The store is at most three scans behind; this process's scan results have every scan's time.
    for (const n of nodes)
      expect(store.nodeState.get(n.name)?.lastScanAt).toBeGreaterThanOrEqual(now - 2_000);
  });

  it('takes a quiet node read the same again (same node object, same readKey) without its rules or store', async () => {
    let current: GpuNode = { ...node, bootId: 'boot-a' };
    let readKey: string | undefined = 'cov:2049';
    let findings: Finding[] = [];
    let rulesRuns = 0;
    let now = 1_000;
    const port = portOf(store);
    const reads: string[] = [];
    const m = new Monitor({
      listNodes: () => [current],
      collector: {
        source: 'prometheus',
        collect: async (n) => ({ ...baseSnapshot(n, 'prometheus', now), ...(readKey ? { readKey } : {}) }),
      },
      classifier: {
        rules: () => {
          rulesRuns++;
          return verdict(findings);
        },
      },
      store: {
        ...port,
        gpuState: {
          ...port.gpuState,
          get: (n) => {
            reads.push(n);
            return port.gpuState.get(n);
          },
        },
      },
      plan: () => ({ plannedAction: 'reboot', mode: 'auto' }),
      intervalMs: 60_000,
      concurrency: 1,
      nodeTimeoutMs: 5_000,
      quietTouchEvery: 1,
      now: () => now,
    });
    const scan = async () => {
      now += 1_000;
      rulesRuns = 0;
      reads.length = 0;
      return m.scanOnce();
    };
    await scan();
    expect([rulesRuns, reads.length]).toEqual([1, 1]);

    // Same object, same key: the recorded verdict, no rules, no store read; the scan time still moves.
    const same = await scan();
    expect([rulesRuns, reads.length]).toEqual([0, 0]);
    expect(same.summaries.map((r) => [r.node.name, r.verdict.category, r.opened])).toEqual([
      ['n1', 'HEALTHY', []],
    ]);
    expect([same.unchanged, same.coverage.nodes]).toEqual([1, 1]);
    expect(store.nodeState.get('n1')?.lastScanAt).toBe(now);

    // An equal node in a new object: the rules run (no store read: the digest matches), then the short way again.
    current = { ...current };
    await scan();
    expect([rulesRuns, reads.length]).toEqual([1, 0]);
    await scan();
    expect(rulesRuns).toBe(0);

    // Leading again (started after a stop): another replica may have written the node's records meanwhile.
    m.start();
    await m.stop();
    await scan();
    expect([rulesRuns, reads.length]).toEqual([1, 1]);

    // A different key: the rules run again.
    readKey = 'cov:2050';
    await scan();
    expect(rulesRuns).toBe(1);

    // A source that gives no key never takes the short way; a fault there opens its incident.
    readKey = undefined;
    await scan();
    expect(rulesRuns).toBe(1);
    findings = [ecc];
    const faulty = await scan();
    expect(faulty.opened.map((i) => i.faultKey)).toEqual(['ecc_dbe:gpu0']);

    // A fault under an unchanged key (no real source does this, but the record says not quiet): full path.
    readKey = 'cov:2050';
    await scan();
    expect([rulesRuns, reads.length]).toEqual([1, 1]);
  });
});
