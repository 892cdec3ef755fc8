import { describe, expect, it } from 'vitest';
import type { GpuNode } from '../domain/node.js';
import { CollectError } from './collector.js';
import {
  abnormalQueries,
  coverageQuery,
  decodeCoverage,
  GPU_UNIT,
  gpuIndexQuery,
  joinKey,
} from './prometheus-queries.js';
import {
  createPrometheusCollector,
  gpusOf,
  joinFleet,
  type PromQueryPort,
  type PromVectorSample,
} from './prometheus-source.js';

const thresholds = { sbeStormThreshold: 1000, nvlinkErrorThreshold: 100, thermalWarningC: 87 };

const node = (name: string, expectedGpus?: number): GpuNode => ({
  name,
  gpuResources: { 'nvidia.com/gpu': 8 },
  unschedulable: false,
  ready: true,
  labels: {},
  conditions: [],
  ...(expectedGpus !== undefined ? { expectedGpus, allocatableGpus: expectedGpus } : {}),
});

const xid = (
  host: string,
  gpu: number,
  value: number,
  extra: Record<string, string> = {},
): PromVectorSample => ({
  metric: {
    __name__: 'DCGM_FI_DEV_XID_ERRORS',
    gpu: String(gpu),
    UUID: `GPU-${host}-${gpu}`,
    Hostname: host,
    ...extra,
  },
  value,
});
/** xid + row_remap + thermal, 8 GPUs: a stock exporter. */
const STOCK = 8 * GPU_UNIT + 1 + 16 + 128;

/** A Prometheus answering by query text, recording what was asked; an unknown query fails the test. */
function fakePort(answers: (q: string) => PromVectorSample[] | Error): PromQueryPort & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async query(q) {
      asked.push(q);
      const a = answers(q);
      if (a instanceof Error) throw a;
      return a;
    },
  };
}

const fromRead = (c: ReturnType<typeof createPrometheusCollector>, name: string) => {
  const s = c.fromScanRead(node(name, 8));
  if (!s) throw new Error(`no snapshot of ${name} from the read`);
  return s;
};

describe('the queries', () => {
  it('ask only for abnormal series, one query per threshold, thresholds from the policy', () => {
    const qs = abnormalQueries({ sbeStormThreshold: 500, nvlinkErrorThreshold: 7, thermalWarningC: 90.5 });
    expect(qs).toHaveLength(4);
    expect(qs[0]).toMatch(/^\{__name__=~"DCGM_FI_DEV_XID_ERRORS\|.*DCGM_EXP_GPU_HEALTH_STATUS.*"\} > 0$/);
    expect(qs[1]).toBe('{__name__=~"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL"} >= 500');
    expect(qs[2]).toMatch(/NVLINK_CRC_FLIT.*RECOVERY_ERROR_COUNT_TOTAL"\} >= 7$/);
    expect(qs[3]).toBe('{__name__=~"DCGM_FI_DEV_GPU_TEMP"} >= 90.5');
    // No `or` between abnormal selections: it would drop series whose labels differ only by name.
    for (const q of qs) expect(q).not.toContain(' or ');
  });

  it('coverage: one series per node, a bit per family and the GPU count above them', () => {
    const q = coverageQuery();
    expect(q.startsWith('sum by (node, Hostname, hostname) (')).toBe(true);
    expect(q).toContain('"family", "xid", "", "") * 1 or');
    expect(q).toContain('"family", "thermal", "", "") * 128 or');
    expect(q).toContain('count by (node, Hostname, hostname) (count by (node, Hostname, hostname, gpu) (');
    expect(q.endsWith('"family", "gpus", "", "") * 256)')).toBe(true);
    expect(decodeCoverage(STOCK)).toEqual({ families: ['xid', 'row_remap', 'thermal'], gpus: 8 });
    expect(decodeCoverage(7 * GPU_UNIT + 255)?.families).toHaveLength(8);
    expect(decodeCoverage(1.5)).toBeUndefined();
    expect(decodeCoverage(-1)).toBeUndefined();
  });

  it('the GPU-index query names nodes by the label that matched, regex-escaped', () => {
    expect(gpuIndexQuery('Hostname', ['ip-10-0-1-2.ec2.internal'])).toMatch(
      /^count by \(Hostname, gpu\) \(\{__name__=~"DCGM_FI_DEV_XID_ERRORS\|.*", Hostname=~"ip-10-0-1-2\\\\.ec2\\\\.internal"\}\)$/,
    );
  });

  it('joins by node, else Hostname, else hostname', () => {
    expect(joinKey({ node: 'n1', Hostname: 'h1' })).toEqual({ key: 'n1', label: 'node' });
    expect(joinKey({ Hostname: 'h1', hostname: 'h2' })).toEqual({ key: 'h1', label: 'Hostname' });
    expect(joinKey({ hostname: 'h2' })).toEqual({ key: 'h2', label: 'hostname' });
    expect(joinKey({ instance: '10.0.0.1:9400' })).toBeUndefined();
  });
});

describe('joining and GPUs', () => {
  it('merges two exporters on one node; ignores series naming no node and values it cannot decode', () => {
    const read = joinFleet(
      1,
      [
        { metric: { Hostname: 'a' }, value: 8 * GPU_UNIT + 1 },
        { metric: { hostname: 'a' }, value: 8 * GPU_UNIT + 128 },
        { metric: { instance: 'x:9400' }, value: STOCK },
        { metric: { Hostname: 'b' }, value: 0.5 },
      ],
      [
        [xid('a', 2, 79)],
        [{ metric: { __name__: 'DCGM_FI_DEV_GPU_TEMP', gpu: '1', hostname: 'c' }, value: 91 }],
      ],
    );
    expect([...read.coverage.keys()]).toEqual(['a']);
    expect(read.coverage.get('a')).toMatchObject({ families: ['xid', 'thermal'], gpus: 8 });
    expect([...read.abnormal.keys()]).toEqual(['a', 'c']);
  });

  it('lists every GPU: abnormal ones parsed, the rest with what the carried families prove', () => {
    const gpus = gpusOf(
      [
        xid('a', 2, 79, { err_code: '79', err_msg: 'GPU has fallen off the bus', GPU_I_ID: '1' }),
        xid('a', 2, 0, { GPU_I_ID: '2' }),
      ],
      ['xid', 'health', 'thermal'],
      [0, 1, 2, 3],
    );
    expect(gpus.map((g) => [g.index, g.xidLast, g.health])).toEqual([
      [0, 0, 'pass'],
      [1, 0, 'pass'],
      [2, 79, 'pass'],
      [3, 0, 'pass'],
    ]);
    expect(gpus[2]?.xids).toEqual([{ xid: 79, message: 'GPU has fallen off the bus' }]);
    expect(gpus[2]?.migInstances).toEqual(['1', '2']);
    // Without the XID family nothing is claimed about the last XID.
    expect(gpusOf([], ['thermal'], [0])).toEqual([{ index: 0 }]);
  });
});

describe('the collector', () => {
  const answersFor =
    (coverage: PromVectorSample[], abnormal: PromVectorSample[] = [], indices: PromVectorSample[] = []) =>
    (q: string): PromVectorSample[] | Error => {
      if (q.startsWith('sum by')) return coverage;
      if (q.startsWith('{__name__=~"DCGM_FI_DEV_XID_ERRORS|')) return abnormal;
      if (q.startsWith('{__name__=~')) return [];
      if (q.startsWith('count by')) return indices;
      return new Error(`unexpected query ${q}`);
    };

  it('one fleet read per scan serves every node; a node without coverage is a gap, not healthy', async () => {
    const port = fakePort(
      answersFor([{ metric: { Hostname: 'a.ec2.internal' }, value: STOCK }], [xid('a.ec2.internal', 4, 48)]),
    );
    const c = createPrometheusCollector({ port, thresholds, timeoutMs: 1000, now: () => 1000 });
    await c.beforeScan();
    const signal = new AbortController().signal;
    const a = await c.collect(node('a.ec2.internal', 8), signal);
    const b = await c.collect(node('b.ec2.internal', 8), signal);
    expect(port.asked).toHaveLength(5);
    expect(a).toMatchObject({ source: 'prometheus', signals: ['xid', 'row_remap', 'thermal'] });
    expect(a.error).toBeUndefined();
    expect(a.gpus).toHaveLength(8);
    expect(a.gpus[4]?.xidLast).toBe(48);
    expect(b.error).toMatchObject({ kind: 'no-exporter' });
    expect(b.gpus).toEqual([]);
    expect(b.signals).toBeUndefined();
  });

  it("fromScanRead: what collect gives, from the scan's read, without a query; none before a read or when a node needs its own", async () => {
    const port = fakePort(
      answersFor(
        [
          { metric: { Hostname: 'a' }, value: STOCK },
          { metric: { node: 'short' }, value: 7 * GPU_UNIT + 1 },
        ],
        [xid('a', 4, 48)],
        [0, 1, 2, 4, 5, 6, 7].map((g) => ({ metric: { node: 'short', gpu: String(g) }, value: 3 })),
      ),
    );
    const c = createPrometheusCollector({ port, thresholds, timeoutMs: 1000, now: () => 1000 });
    expect(c.fromScanRead(node('a', 8))).toBeUndefined();
    await c.beforeScan();
    const signal = new AbortController().signal;
    const asked = port.asked.length;
    for (const n of [node('a', 8), node('b', 8)]) {
      const fromRead = c.fromScanRead(n);
      expect(fromRead).toBeDefined();
      expect(fromRead).toEqual(await c.collect(n, signal));
    }
    expect(fromRead(c, 'a').gpus[4]?.xidLast).toBe(48);
    expect(fromRead(c, 'b').error).toMatchObject({ kind: 'no-exporter' });
    expect(port.asked).toHaveLength(asked);
    // Seven of eight GPUs: the indices need a query, so only collect can answer.
    expect(c.fromScanRead(node('short', 8))).toBeUndefined();
    expect((await c.collect(node('short', 8), signal)).gpus).toHaveLength(7);
    expect(port.asked).toHaveLength(asked + 1);
  });

  it('nodes without abnormal series get the GPUs listed one by one, their shared GPU objects refuse writes', async () => {
    const port = fakePort(
      answersFor(
        [
          { metric: { Hostname: 'a' }, value: STOCK },
          { metric: { Hostname: 'b' }, value: STOCK },
          { metric: { Hostname: 'c' }, value: STOCK },
        ],
        [xid('c', 1, 79)],
      ),
    );
    const c = createPrometheusCollector({ port, thresholds, timeoutMs: 1000 });
    await c.beforeScan();
    const [a, b, cc] = ['a', 'b', 'c'].map((n) => fromRead(c, n));
    expect(a?.gpus).toEqual(gpusOf([], ['xid', 'row_remap', 'thermal'], [0, 1, 2, 3, 4, 5, 6, 7]));
    expect(b?.gpus).toEqual(a?.gpus);
    expect(cc?.gpus[1]?.xidLast).toBe(79);
    expect(cc?.gpus[0]?.xidLast).toBe(0);
    expect(() => {
      (a?.gpus[0] as { xidLast?: number }).xidLast = 79;
    }).toThrow(TypeError);
    a?.gpus.push({ index: 8 });
    expect(b?.gpus).toHaveLength(8);
    expect(b?.gpus[0]?.xidLast).toBe(0);
  });

  it('readKey: equal while a node reads the same; none with abnormal series, an error or the device plugin starting', async () => {
    let coverage: PromVectorSample[] = ['a', 'b', 'c'].map((h) => ({
      metric: { Hostname: h },
      value: STOCK,
    }));
    let abnormal: PromVectorSample[] = [xid('c', 1, 79)];
    const port = fakePort((q) => answersFor(coverage, abnormal)(q));
    let now = 1_000_000;
    const c = createPrometheusCollector({ port, thresholds, timeoutMs: 1000, now: () => now });
    await c.beforeScan();
    const first = ['a', 'b', 'c'].map((n) => fromRead(c, n));
    expect(first.map((s) => s.readKey)).toEqual([`prometheus:${STOCK}`, `prometheus:${STOCK}`, undefined]);
    // Rebooted a minute ago and no GPU offered yet: the snapshot depends on the clock, so no key.
    const starting = { ...node('a', 8), gpuResources: { 'nvidia.com/gpu': 0 }, readySince: now - 60_000 };
    expect(c.fromScanRead(starting)?.missingParts).toHaveLength(1);
    expect(c.fromScanRead(starting)?.readKey).toBeUndefined();

    // Next read: a unchanged (same key, equal snapshot apart from the time); b lost a family; c healed.
    now += 60_000;
    coverage = [
      { metric: { Hostname: 'a' }, value: STOCK },
      { metric: { Hostname: 'b' }, value: STOCK - 128 },
      { metric: { Hostname: 'c' }, value: STOCK },
    ];
    abnormal = [];
    await c.beforeScan();
    const [a, b, cc] = ['a', 'b', 'c'].map((n) => fromRead(c, n));
    expect(a?.readKey).toBe(first[0]?.readKey);
    expect({ ...a, takenAt: 0 }).toEqual({ ...first[0], takenAt: 0 });
    expect(b?.readKey).not.toBe(first[1]?.readKey);
    expect(cc?.readKey).toBe(`prometheus:${STOCK}`);
    // A failed read: errors, no keys.
    const failing = createPrometheusCollector({
      port: fakePort(() => new CollectError('http', 'HTTP 503')),
      thresholds,
      timeoutMs: 1000,
    });
    await failing.beforeScan();
    expect(failing.fromScanRead(node('a', 8))).toMatchObject({ error: { kind: 'http' } });
    expect(failing.fromScanRead(node('a', 8))?.readKey).toBeUndefined();
  });

  it('joins a short host name to the node name', async () => {
    const port = fakePort(answersFor([{ metric: { Hostname: 'ip-10-0-1-2' }, value: STOCK }]));
    const c = createPrometheusCollector({ port, thresholds, timeoutMs: 1000 });
    await c.beforeScan();
    const s = await c.collect(node('ip-10-0-1-2.ec2.internal', 8), new AbortController().signal);
    expect(s.error).toBeUndefined();
    expect(s.gpus).toHaveLength(8);
  });

  it('fewer GPUs than expected: asks that node which indices it reports', async () => {
    const port = fakePort(
      answersFor(
        [{ metric: { node: 'a' }, value: 7 * GPU_UNIT + 1 }],
        [],
        [0, 1, 2, 4, 5, 6, 7].map((g) => ({ metric: { node: 'a', gpu: String(g) }, value: 3 })),
      ),
    );
    const c = createPrometheusCollector({ port, thresholds, timeoutMs: 1000 });
    await c.beforeScan();
    const s = await c.collect(node('a', 8), new AbortController().signal);
    expect(s.gpus.map((g) => g.index)).toEqual([0, 1, 2, 4, 5, 6, 7]);
    expect(port.asked.at(-1)).toMatch(/^count by \(node, gpu\) .*node=~"a"\}\)$/);
  });

  it('a failed query fails the scan for every node with the reason, and the next scan reads again', async () => {
    let fail = true;
    const port = fakePort((q) =>
      fail && q.includes('GPU_TEMP"} >=')
        ? new CollectError('http', 'query failed (HTTP 503): down')
        : answersFor([{ metric: { Hostname: 'a' }, value: STOCK }])(q),
    );
    const c = createPrometheusCollector({ port, thresholds, timeoutMs: 1000 });
    await c.beforeScan();
    const s = await c.collect(node('a', 8), new AbortController().signal);
    expect(s.error).toEqual({ kind: 'http', message: 'Prometheus: query failed (HTTP 503): down' });
    expect(s.gpus).toEqual([]);
    fail = false;
    await c.beforeScan();
    expect((await c.collect(node('a', 8), new AbortController().signal)).error).toBeUndefined();
  });

  it('outside a scan: a read younger than freshForMs is reused, an older one is redone', async () => {
    let t = 0;
    const port = fakePort(answersFor([{ metric: { Hostname: 'a' }, value: STOCK }]));
    const c = createPrometheusCollector({
      port,
      thresholds,
      timeoutMs: 1000,
      freshForMs: 5000,
      now: () => t,
    });
    const signal = new AbortController().signal;
    await c.collect(node('a'), signal);
    t = 4000;
    await c.collect(node('a'), signal);
    expect(port.asked).toHaveLength(5);
    t = 9001;
    await c.collect(node('a'), signal);
    expect(port.asked).toHaveLength(10);
  });
});
