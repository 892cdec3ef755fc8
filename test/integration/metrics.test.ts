/**
 * Issue 7, "Done when": `/metrics` of a running gpu-medic, fetched over HTTP and parsed back with the
 * project's own exposition parser. The runtime scans a small simulated cluster (one node faulted, so
 * verdicts differ) with the ops server on a free port; `/healthz` and `/readyz` answer 200.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/app/runtime.js';
import {
  type MetricFamily,
  type ParsedExposition,
  parsePrometheus,
} from '../../src/collect/parse/prometheus.js';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/log/logger.js';
import { NodeVerdicts, SCAN_DURATION_BUCKETS } from '../../src/metrics/metrics.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import { restoreEnv } from '../support/sim-runtime.js';
import { waitFor } from '../support/wait.js';

const savedEnv = { ...process.env };
let dir: string;
let sim: Simulator;
let rt: Runtime;
let base: string;
let gpuNodes: string[];
/** The two scrapes: after the first scans, and after more scans with a faulted node. */
let first: ParsedExposition;
let second: ParsedExposition;
/** After the incident's notification reached the SNS fake. */
let third: ParsedExposition;
let contentType: string | null;
/** Every JSON log line the runtime wrote. */
const logLines: string[] = [];

async function freePort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function scrape(): Promise<ParsedExposition> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  contentType = res.headers.get('content-type');
  return parsePrometheus(await res.text());
}

function family(p: ParsedExposition, name: string): MetricFamily {
  const f = p.families.get(name);
  if (!f)
    throw new Error(`no metric family ${name} in /metrics (have: ${[...p.families.keys()].join(', ')})`);
  return f;
}

function value(p: ParsedExposition, name: string, labels: Record<string, string> = {}): number {
  const hit = p.samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (!hit) throw new Error(`no sample ${name}${JSON.stringify(labels)}`);
  return hit.value;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-metrics-'));
  // The faulted node's DBE is read from the ECC counters: opt into the full counter set (stock has none).
  sim = await startSimulator({ nodes: 3, slack: false, controlPort: false, counters: 'full' });
  Object.assign(process.env, sim.env);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const config = loadConfig({
    ...sim.env,
    DB_PATH: join(dir, 'gpu-medic.db'),
    MONITOR_INTERVAL: '1',
    CLASSIFIER: 'rules',
    POD_NAMESPACE: 'gpu-medic',
    PORT: String(port),
    SNS_TOPIC_ARN: 'arn:aws:sns:us-east-1:111122223333:gpu-medic-alerts',
    // Alert only: the faulted node stays faulted, so the verdict counts are stable between scrapes.
    DRY_RUN: 'true',
    LOG_LEVEL: 'silent',
  });
  rt = await createRuntime(config, {
    logger: createLogger({ level: 'debug', destination: { write: (line: string) => logLines.push(line) } }),
    engine: { pollMs: 200 },
    leaderElection: true,
    opsServer: true,
  });
  gpuNodes = sim.cluster
    .listNodes()
    .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
    .map((n) => n.metadata?.name ?? '');
  await rt.start();

  await waitFor('a first scan in /metrics', async () => {
    const p = await scrape();
    return value(p, 'gpu_medic_scans_total', { result: 'ok' }) >= 1 ? true : undefined;
  });
  first = await scrape();

  sim.cluster.injectEcc(gpuNodes[0] ?? '', 1, { dbe: 2 });
  second = await waitFor('a scan that saw the faulted node', async () => {
    const p = await scrape();
    return value(p, 'gpu_medic_nodes', { verdict: 'critical' }) === 1 ? p : undefined;
  });
  third = await waitFor('an SNS delivery counted', async () => {
    const p = await scrape();
    const delivered = p.samples.find(
      (s) =>
        s.name === 'gpu_medic_notification_deliveries_total' &&
        s.labels.sink === 'sns' &&
        s.labels.outcome === 'delivered',
    );
    return delivered && delivered.value >= 1 ? p : undefined;
  });
}, 40_000);

afterAll(async () => {
  await rt?.stop();
  await sim?.close();
  restoreEnv(savedEnv);
  rmSync(dir, { recursive: true, force: true });
});

describe('/metrics of a running gpu-medic, parsed back', () => {
  it('is valid text exposition with the Prometheus content type', () => {
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(first.errors).toEqual([]);
    expect(second.errors).toEqual([]);
  });

  it.each([
    ['gpu_medic_scans_total', 'counter'],
    ['gpu_medic_scan_duration_seconds', 'histogram'],
    ['gpu_medic_nodes', 'gauge'],
    ['gpu_medic_open_incidents', 'gauge'],
    ['gpu_medic_remediations_total', 'counter'],
    ['gpu_medic_breaker_open', 'gauge'],
    ['gpu_medic_llm_calls_total', 'counter'],
    ['gpu_medic_llm_cache_hits_total', 'counter'],
    ['gpu_medic_outbox_depth', 'gauge'],
    ['gpu_medic_slack_delivery_failures_total', 'counter'],
    ['gpu_medic_process_cpu_seconds_total', 'counter'],
    ['gpu_medic_process_resident_memory_bytes', 'gauge'],
    ['gpu_medic_nodejs_eventloop_lag_seconds', 'gauge'],
  ])('declares %s as a %s with help text', (name, type) => {
    const f = family(second, name);
    expect(f.type).toBe(type);
    expect(f.help?.length ?? 0).toBeGreaterThan(5);
  });

  it('counts scans: monotonic, no errors, more on the second scrape', () => {
    const a = value(first, 'gpu_medic_scans_total', { result: 'ok' });
    const b = value(second, 'gpu_medic_scans_total', { result: 'ok' });
    expect(a).toBeGreaterThanOrEqual(1);
    expect(b).toBeGreaterThan(a);
    expect(value(second, 'gpu_medic_scans_total', { result: 'error' })).toBe(0);
  });

  it('exposes the scan duration histogram: cumulative buckets up to +Inf, count = scans', () => {
    const f = family(second, 'gpu_medic_scan_duration_seconds');
    const buckets = f.samples.filter((s) => s.name === 'gpu_medic_scan_duration_seconds_bucket');
    expect(buckets.map((b) => b.labels.le)).toEqual([...SCAN_DURATION_BUCKETS.map(String), '+Inf']);
    for (let i = 1; i < buckets.length; i++)
      expect(buckets[i]?.value).toBeGreaterThanOrEqual(buckets[i - 1]?.value ?? 0);
    const count = value(second, 'gpu_medic_scan_duration_seconds_count');
    expect(buckets.at(-1)?.value).toBe(count);
    const scans =
      value(second, 'gpu_medic_scans_total', { result: 'ok' }) +
      value(second, 'gpu_medic_scans_total', { result: 'error' });
    // A scan may finish between the two reads of one scrape's families; never by more than one.
    expect(Math.abs(count - scans)).toBeLessThanOrEqual(1);
    const sum = value(second, 'gpu_medic_scan_duration_seconds_sum');
    expect(sum).toBeGreaterThan(0);
    expect(sum / count).toBeLessThan(30);
  });

  it('counts GPU nodes by verdict: every node once, the faulted one critical', () => {
    const byVerdict = (p: ParsedExposition) =>
      Object.fromEntries(NodeVerdicts.map((v) => [v, value(p, 'gpu_medic_nodes', { verdict: v })]));
    expect(byVerdict(first)).toEqual({ healthy: gpuNodes.length, warning: 0, critical: 0, unknown: 0 });
    expect(byVerdict(second)).toEqual({ healthy: gpuNodes.length - 1, warning: 0, critical: 1, unknown: 0 });
  });

  it('starts the gauges and counters the product pre-initialises at sane values', () => {
    for (const severity of ['critical', 'warning', 'info'])
      expect(value(first, 'gpu_medic_open_incidents', { severity })).toBeGreaterThanOrEqual(0);
    expect([0, 1]).toContain(value(second, 'gpu_medic_breaker_open'));
    for (const outcome of ['ok', 'invalid', 'error', 'timeout'])
      expect(value(second, 'gpu_medic_llm_calls_total', { outcome })).toBe(0);
    expect(value(second, 'gpu_medic_llm_cache_hits_total')).toBe(0);
    expect(value(second, 'gpu_medic_slack_delivery_failures_total')).toBe(0);
  });

  it('tracks the notification outbox: deliveries counted, depth back to zero once delivered', async () => {
    expect(sim.aws.state.sns.length).toBeGreaterThanOrEqual(1);
    expect(family(third, 'gpu_medic_notification_deliveries_total').type).toBe('counter');
    const depth = await waitFor('the SNS outbox to drain', async () => {
      const p = await scrape();
      const d = p.samples.find((s) => s.name === 'gpu_medic_outbox_depth' && s.labels.sink === 'sns');
      return d?.value === 0 ? d : undefined;
    });
    expect(depth.value).toBe(0);
  });

  it('counts remediations by action and outcome (a dry run here), and mirrors the breaker', async () => {
    const p = await waitFor('a counted remediation', async () => {
      const q = await scrape();
      const hit = q.samples.find(
        (s) =>
          s.name === 'gpu_medic_remediations_total' &&
          s.labels.action === 'reboot' &&
          s.labels.outcome === 'dry_run',
      );
      return hit && hit.value >= 1 ? q : undefined;
    });
    expect(value(p, 'gpu_medic_breaker_open')).toBe(0);
    await rt.services.pause('cli:test', 'metrics test');
    const paused = await waitFor('the breaker gauge at 1', async () => {
      const q = await scrape();
      return value(q, 'gpu_medic_breaker_open') === 1 ? q : undefined;
    });
    expect(value(paused, 'gpu_medic_breaker_open')).toBe(1);
    await rt.services.resume('cli:test');
  });

  it('exposes process metrics with plausible values', () => {
    expect(value(second, 'gpu_medic_process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024);
    expect(value(second, 'gpu_medic_process_cpu_seconds_total')).toBeGreaterThan(0);
    const start = value(second, 'gpu_medic_process_start_time_seconds');
    expect(start).toBeGreaterThan(1_600_000_000);
    expect(start).toBeLessThanOrEqual(Date.now() / 1000);
  });

  it('answers /healthz and /readyz with 200 and anything else with 404', async () => {
    for (const path of ['/healthz', '/readyz']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(200);
      expect(await res.text()).toBe('ok\n');
    }
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });
});

describe('the logs of a running gpu-medic', () => {
  it('bind `component` once per logger: every line carries exactly one', () => {
    expect(logLines.length).toBeGreaterThan(0);
    const notOnce = logLines.filter((l) => (l.match(/"component":/g) ?? []).length !== 1);
    expect(notOnce).toEqual([]);
    const components = new Set(logLines.map((l) => (JSON.parse(l) as { component?: string }).component));
    for (const c of ['app', 'store', 'leader', 'monitor']) expect([...components], c).toContain(c);
  });
});
