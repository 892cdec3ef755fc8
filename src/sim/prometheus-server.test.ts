/**
 * The simulated Prometheus is as stubborn as the real one: scrapes, not live state; staleness when an
 * exporter stops or a series changes labels; the 5-minute lookback; the real envelope; only the PromQL
 * gpu-medic sends, anything else `bad_data`; unknown paths recorded as unexpected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Simulator, startSimulator } from './index.js';
import { evaluate, PromqlParseError, parsePromql, type SimSeries } from './promql.js';

let sim: Simulator;
let url: string;
let t: number;
let nodes: string[];

beforeAll(async () => {
  t = Date.parse('2026-12-03T12:00:00Z');
  sim = await startSimulator({
    nodes: 2,
    slack: false,
    controlPort: false,
    prometheus: { scrapeIntervalMs: 3_600_000, now: () => t },
  });
  url = sim.env.PROMETHEUS_URL ?? '';
  nodes = sim.cluster
    .listNodes()
    .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
    .map((n) => n.metadata?.name ?? '');
});
afterAll(async () => {
  await sim?.close();
});

interface ApiSample {
  metric: Record<string, string>;
  value: [number, string];
}
interface ApiBody {
  status: string;
  errorType?: string;
  error?: string;
  data: { resultType: string; result: ApiSample[] };
}

async function query(q: string, method: 'GET' | 'POST' = 'POST') {
  const res =
    method === 'GET'
      ? await fetch(`${url}/api/v1/query?${new URLSearchParams({ query: q })}`)
      : await fetch(`${url}/api/v1/query`, { method, body: new URLSearchParams({ query: q }) });
  return { status: res.status, body: (await res.json()) as ApiBody };
}

describe('the simulated Prometheus', () => {
  it('answers with the real envelope: metric with __name__ on filters, [seconds, "string"] values', async () => {
    const { status, body } = await query('DCGM_FI_DEV_GPU_TEMP >= 0', 'GET');
    expect(status).toBe(200);
    expect(body.status).toBe('success');
    expect(body.data.resultType).toBe('vector');
    expect(body.data.result).toHaveLength(16);
    const s = body.data.result[0];
    expect(s?.metric).toMatchObject({ __name__: 'DCGM_FI_DEV_GPU_TEMP', gpu: '0', job: 'gpu-metrics' });
    expect(s?.metric.instance).toMatch(/:9400$/);
    expect(s?.value).toEqual([t / 1000, expect.stringMatching(/^\d+$/)]);
  });

  it('reads scrapes, not live state: a fault shows after the next scrape', async () => {
    const a = nodes[0] ?? '';
    sim.cluster.injectXid(a, 1, 79);
    expect((await query('DCGM_FI_DEV_XID_ERRORS > 0')).body.data.result).toEqual([]);
    sim.prometheus?.scrapeNow();
    const r = (await query('DCGM_FI_DEV_XID_ERRORS > 0')).body.data.result;
    expect(r.map((s) => [s.metric.Hostname, s.metric.gpu, s.metric.err_code, s.value[1]])).toEqual([
      [a, '1', '79', '79'],
    ]);
    // The old err_code="0" series of that GPU is stale: one XID series per GPU, not two.
    expect((await query('DCGM_FI_DEV_XID_ERRORS >= 0')).body.data.result).toHaveLength(16);
  });

  it('an exporter that stops: its series go stale at once, `up` is 0', async () => {
    const b = nodes[1] ?? '';
    sim.cluster.setExporter(b, 'error');
    sim.prometheus?.scrapeNow();
    const temps = (await query('DCGM_FI_DEV_GPU_TEMP >= 0')).body.data.result;
    expect(new Set(temps.map((s) => s.metric.Hostname))).toEqual(new Set([nodes[0]]));
    const up = (await query('up >= 0')).body.data.result.map((s) => s.value[1]).sort();
    expect(up).toEqual(['0', '1']);
    sim.cluster.setExporter(b, 'ok');
    sim.prometheus?.scrapeNow();
    expect((await query('DCGM_FI_DEV_GPU_TEMP >= 0')).body.data.result).toHaveLength(16);
  });

  it('a target not scraped for 5 minutes is out of the lookback', async () => {
    t += 5 * 60_000 + 1;
    expect((await query('up >= 0')).body.data.result).toEqual([]);
    sim.prometheus?.scrapeNow();
    expect((await query('up >= 0')).body.data.result).toHaveLength(2);
  });

  it('evaluates aggregations, label_replace, * and or as Prometheus does', async () => {
    const q =
      'sum by (Hostname) (label_replace(group by (Hostname) ({__name__=~"DCGM_FI_DEV_XID_ERRORS"}), "family", "xid", "", "") * 1 or label_replace(count by (Hostname) (count by (Hostname, gpu) ({__name__=~"DCGM_FI_DEV_GPU_TEMP|DCGM_FI_DEV_XID_ERRORS"})), "family", "gpus", "", "") * 256)';
    const r = (await query(q)).body.data.result;
    expect(r.map((s) => [Object.keys(s.metric), s.value[1]])).toEqual([
      [['Hostname'], '2049'],
      [['Hostname'], '2049'],
    ]);
    // `*` drops the name, so two metrics of one GPU collide, as in Prometheus.
    const dup = await query('{__name__=~"DCGM_FI_DEV_GPU_TEMP|DCGM_FI_DEV_MEMORY_TEMP"} * 1');
    expect(dup).toMatchObject({
      status: 422,
      body: { errorType: 'execution', error: expect.stringContaining('same labelset') },
    });
  });

  it('refuses what gpu-medic does not send with bad_data, and unknown paths as unexpected', async () => {
    for (const q of ['rate(up[5m])', 'up > bool 0', 'max by (gpu) (up)', 'up + up', '{job=~".*"}', '']) {
      const r = await query(q);
      expect(r.status, q).toBe(400);
      expect(r.body).toMatchObject({ status: 'error', errorType: 'bad_data' });
    }
    const res = await fetch(`${url}/api/v1/query_range`, { method: 'POST', body: 'query=up' });
    expect(res.status).toBe(404);
    expect(() => sim.assertNoUnexpected()).toThrow(/prometheus: POST \/api\/v1\/query_range/);
    sim.log.clear();
  });
});

describe('the PromQL subset', () => {
  const series: SimSeries[] = [
    { name: 'a', labels: { gpu: '0', Hostname: 'h1' }, value: 3 },
    { name: 'a', labels: { gpu: '1', Hostname: 'h1' }, value: 0 },
    { name: 'b', labels: { gpu: '0', Hostname: 'h1' }, value: 5 },
  ];
  const src = {
    names: () => ['a', 'b'],
    series: (n: string) => series.filter((s) => s.name === n),
  };
  const run = (q: string) => evaluate(parsePromql(q), src);

  it('or keeps the left side on equal labels, whatever the names', () => {
    expect(run('a > 0 or b > 0').map((s) => s.name)).toEqual(['a']);
    expect(run('{__name__=~"a|b"} > 0').map((s) => s.name)).toEqual(['a', 'b']);
  });

  it('label_replace with an empty regex sets the label; a non-matching regex leaves the series alone', () => {
    expect(run('label_replace(a > 0, "f", "x", "", "")')[0]?.labels).toMatchObject({ f: 'x' });
    expect(run('label_replace(a > 0, "f", "$1", "Hostname", "h(.*)")')[0]?.labels).toMatchObject({ f: '1' });
    expect(run('label_replace(a > 0, "f", "x", "Hostname", "zz")')[0]?.labels).not.toHaveProperty('f');
  });

  it('parse errors are PromqlParseError', () => {
    expect(() => parsePromql('sum(a)')).toThrow(PromqlParseError);
    expect(() => parsePromql('a{b="c"')).toThrow(PromqlParseError);
  });
});
