import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { type MetricFamily, parsePrometheus } from '../collect/parse/prometheus.js';
import {
  createMetrics,
  type Metrics,
  renderMetrics,
  SCAN_DURATION_BUCKETS,
  setNodeVerdicts,
  setOpenIncidents,
} from './metrics.js';

async function scrape(metrics: Metrics) {
  const { body, contentType } = await renderMetrics(metrics);
  const parsed = parsePrometheus(body);
  return { body, contentType, parsed };
}

function family(families: Map<string, MetricFamily>, name: string): MetricFamily {
  const f = families.get(name);
  if (!f) throw new Error(`metric family ${name} missing from the exposition`);
  return f;
}

function sampleValue(
  f: MetricFamily,
  labels: Record<string, string>,
  sampleName = f.name,
): number | undefined {
  const hit = f.samples.find(
    (s) =>
      s.name === sampleName &&
      Object.keys(labels).length === Object.keys(s.labels).length &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  return hit?.value;
}

describe('createMetrics', () => {
  it.each([
    ['gpu_medic_scans_total', 'counter', ['result']],
    ['gpu_medic_scan_duration_seconds', 'histogram', []],
    ['gpu_medic_nodes', 'gauge', ['verdict']],
    ['gpu_medic_open_incidents', 'gauge', ['severity']],
    ['gpu_medic_remediations_total', 'counter', ['action', 'outcome']],
    ['gpu_medic_breaker_open', 'gauge', []],
    ['gpu_medic_llm_calls_total', 'counter', ['outcome']],
    ['gpu_medic_llm_cache_hits_total', 'counter', []],
    ['gpu_medic_outbox_depth', 'gauge', ['sink']],
    ['gpu_medic_slack_delivery_failures_total', 'counter', []],
    ['gpu_medic_notification_deliveries_total', 'counter', ['sink', 'outcome']],
  ] as const)('exposes %s as a %s with labels %j', async (name, type, labelNames) => {
    const m = createMetrics(new Registry(), { defaultMetrics: false });
    // Give labelled metrics one series so their label names show up.
    m.remediations.inc({ action: 'reboot', outcome: 'succeeded' });
    m.outboxDepth.set({ sink: 'slack' }, 1);
    m.notificationDeliveries.inc({ sink: 'sns', outcome: 'ok' });
    m.scanDuration.observe(1);

    const { parsed } = await scrape(m);
    expect(parsed.errors).toEqual([]);
    const f = family(parsed.families, name);
    expect(f.type).toBe(type);
    expect(f.help).toBeTruthy();
    const seen = new Set(f.samples.flatMap((s) => Object.keys(s.labels)).filter((l) => l !== 'le'));
    expect([...seen].sort()).toEqual([...labelNames].sort());
  });

  it('renders recorded values that parse back to the same numbers', async () => {
    const m = createMetrics(new Registry(), { defaultMetrics: false });
    m.scans.inc({ result: 'ok' });
    m.scans.inc({ result: 'ok' });
    m.scans.inc({ result: 'error' });
    m.scanDuration.observe(0.07);
    m.scanDuration.observe(3);
    m.scanDuration.observe(45);
    setNodeVerdicts(m, { healthy: 6, critical: 1, warning: 1 });
    setOpenIncidents(m, { critical: 1, warning: 2 });
    m.remediations.inc({ action: 'reboot', outcome: 'succeeded' });
    m.remediations.inc({ action: 'replace', outcome: 'failed' }, 2);
    m.breakerOpen.set(1);
    m.llmCalls.inc({ outcome: 'ok' });
    m.llmCacheHits.inc(4);
    m.outboxDepth.set({ sink: 'webhook' }, 7);
    m.slackDeliveryFailures.inc();
    m.notificationDeliveries.inc({ sink: 'cloudwatch', outcome: 'ok' }, 3);

    const { parsed, contentType } = await scrape(m);
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(parsed.errors).toEqual([]);
    const f = (n: string) => family(parsed.families, n);

    expect(sampleValue(f('gpu_medic_scans_total'), { result: 'ok' })).toBe(2);
    expect(sampleValue(f('gpu_medic_scans_total'), { result: 'error' })).toBe(1);

    const hist = f('gpu_medic_scan_duration_seconds');
    expect(sampleValue(hist, {}, 'gpu_medic_scan_duration_seconds_count')).toBe(3);
    expect(sampleValue(hist, {}, 'gpu_medic_scan_duration_seconds_sum')).toBeCloseTo(48.07, 6);
    expect(sampleValue(hist, { le: '0.05' }, 'gpu_medic_scan_duration_seconds_bucket')).toBe(0);
    expect(sampleValue(hist, { le: '0.1' }, 'gpu_medic_scan_duration_seconds_bucket')).toBe(1);
    expect(sampleValue(hist, { le: '5' }, 'gpu_medic_scan_duration_seconds_bucket')).toBe(2);
    expect(sampleValue(hist, { le: '30' }, 'gpu_medic_scan_duration_seconds_bucket')).toBe(2);
    expect(sampleValue(hist, { le: '+Inf' }, 'gpu_medic_scan_duration_seconds_bucket')).toBe(3);
    const les = hist.samples.filter((s) => s.name.endsWith('_bucket')).map((s) => s.labels.le);
    expect(les).toEqual([...SCAN_DURATION_BUCKETS.map(String), '+Inf']);

    expect(sampleValue(f('gpu_medic_nodes'), { verdict: 'healthy' })).toBe(6);
    expect(sampleValue(f('gpu_medic_nodes'), { verdict: 'critical' })).toBe(1);
    expect(sampleValue(f('gpu_medic_nodes'), { verdict: 'unknown' })).toBe(0);
    expect(sampleValue(f('gpu_medic_open_incidents'), { severity: 'warning' })).toBe(2);
    expect(sampleValue(f('gpu_medic_open_incidents'), { severity: 'info' })).toBe(0);
    expect(sampleValue(f('gpu_medic_remediations_total'), { action: 'replace', outcome: 'failed' })).toBe(2);
    expect(sampleValue(f('gpu_medic_breaker_open'), {})).toBe(1);
    expect(sampleValue(f('gpu_medic_llm_calls_total'), { outcome: 'ok' })).toBe(1);
    expect(sampleValue(f('gpu_medic_llm_cache_hits_total'), {})).toBe(4);
    expect(sampleValue(f('gpu_medic_outbox_depth'), { sink: 'webhook' })).toBe(7);
    expect(sampleValue(f('gpu_medic_slack_delivery_failures_total'), {})).toBe(1);
    expect(
      sampleValue(f('gpu_medic_notification_deliveries_total'), { sink: 'cloudwatch', outcome: 'ok' }),
    ).toBe(3);
  });

  it('zeroes verdicts that emptied out instead of keeping their last value', async () => {
    const m = createMetrics(new Registry(), { defaultMetrics: false });
    setNodeVerdicts(m, { healthy: 7, critical: 1 });
    setNodeVerdicts(m, { healthy: 8 });
    const { parsed } = await scrape(m);
    expect(sampleValue(family(parsed.families, 'gpu_medic_nodes'), { verdict: 'critical' })).toBe(0);
    expect(sampleValue(family(parsed.families, 'gpu_medic_nodes'), { verdict: 'healthy' })).toBe(8);
  });

  it('exposes zero-valued series for known label values before anything happens', async () => {
    const m = createMetrics(new Registry(), { defaultMetrics: false });
    const { parsed } = await scrape(m);
    expect(sampleValue(family(parsed.families, 'gpu_medic_scans_total'), { result: 'error' })).toBe(0);
    expect(sampleValue(family(parsed.families, 'gpu_medic_breaker_open'), {})).toBe(0);
  });

  it('adds prefixed Node.js process metrics by default, in valid exposition', async () => {
    const m = createMetrics();
    const { parsed } = await scrape(m);
    expect(parsed.errors).toEqual([]);
    expect(family(parsed.families, 'gpu_medic_process_cpu_user_seconds_total').type).toBe('counter');
    expect(family(parsed.families, 'gpu_medic_nodejs_heap_size_used_bytes').type).toBe('gauge');
    for (const name of parsed.families.keys()) expect(name).toMatch(/^gpu_medic_/);
  });

  it('keeps registries isolated, so two instances never share counts', async () => {
    const a = createMetrics(new Registry(), { defaultMetrics: false });
    const b = createMetrics(new Registry(), { defaultMetrics: false });
    a.llmCacheHits.inc(5);
    const { parsed } = await scrape(b);
    expect(sampleValue(family(parsed.families, 'gpu_medic_llm_cache_hits_total'), {})).toBe(0);
  });

  it('refuses to register the metrics twice on one registry', () => {
    const registry = new Registry();
    createMetrics(registry, { defaultMetrics: false });
    expect(() => createMetrics(registry, { defaultMetrics: false })).toThrow(/already been registered/);
  });
});
