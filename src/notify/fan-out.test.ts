/**
 * The fan-out end to end: progress bus → outbox (real SQLite) → workers → the real AWS SDK clients against
 * the simulated AWS endpoint, and a webhook receiver on loopback.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { awsClientConfig } from '../../test/support/aws.js';
import { event, incident } from '../../test/support/fixtures.js';
import { CloudWatchMetricPublisher } from '../aws/cloudwatch.js';
import { LambdaFunctionInvoker } from '../aws/lambda.js';
import { SnsTopicPublisher } from '../aws/sns.js';
import { ProgressBus, type ProgressStep } from '../domain/events.js';
import type { Incident } from '../domain/incident.js';
import { type SimAws, startSimAws } from '../sim/aws-server.js';
import type { CloudEffects } from '../sim/cloud-effects.js';
import { openStore, type Store } from '../store/store.js';
import { createNotifier, type Notifier } from './fan-out.js';
import { createSinks, type NotifySinkConfig } from './sinks/create.js';
import { verifyWebhookSignature } from './webhook-signature.js';

const TOPIC = 'arn:aws:sns:us-east-1:123456789012:gpu-medic-alerts';
const FUNCTION = 'gpu-medic-hook';
const SECRET = 'whsec-test';
const noEffects: CloudEffects = {
  describeInstances: () => [],
  rebootInstance: () => false,
  terminateInstance: () => undefined,
};

interface Received {
  headers: Record<string, string | string[] | undefined>;
  body: string;
  status: number;
}

let aws: SimAws;
let hook: Server;
let hookUrl: string;
let received: Received[];
let hookStatuses: number[];
let store: Store;
let bus: ProgressBus;
let incidents: Map<string, Incident>;
let notifier: Notifier | undefined;

beforeAll(async () => {
  aws = await startSimAws(noEffects);
  hook = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = hookStatuses.shift() ?? 200;
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status });
      res.writeHead(status, { 'Content-Type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hooks/gpu`;
});
afterAll(async () => {
  await aws.close();
  await new Promise((r) => hook.close(r));
});
beforeEach(() => {
  aws.log.clear();
  aws.faults.clear();
  aws.state.cloudwatch.length = 0;
  aws.state.sns.length = 0;
  aws.state.lambda.length = 0;
  received = [];
  hookStatuses = [];
  store = openStore(':memory:');
  bus = new ProgressBus();
  incidents = new Map();
});
afterEach(async () => {
  await notifier?.stop();
  notifier = undefined;
  store.close();
  aws.log.assertNoUnexpected();
});

const baseConfig: NotifySinkConfig = {
  snsTopicArn: TOPIC,
  webhookUrl: undefined,
  webhookSecret: SECRET,
  lambdaFunction: FUNCTION,
  cloudwatch: { namespace: 'GPUMedic', perNode: false },
};

function start(config: Partial<NotifySinkConfig> = {}, opts: { snsTimeoutMs?: number } = {}): Notifier {
  const sinks = createSinks(
    { ...baseConfig, webhookUrl: hookUrl, ...config },
    {
      metricPublisher: () => new CloudWatchMetricPublisher(awsClientConfig(aws.url)),
      topicPublisher: () =>
        new SnsTopicPublisher({
          ...awsClientConfig(aws.url),
          ...(opts.snsTimeoutMs ? { requestTimeoutMs: opts.snsTimeoutMs } : {}),
        }),
      functionInvoker: () => new LambdaFunctionInvoker(awsClientConfig(aws.url)),
    },
  );
  notifier = createNotifier({
    outbox: store.outbox,
    sinks,
    bus,
    incidents: (id) => incidents.get(id),
    cluster: 'prod-gpu',
    // Short backoffs: retries happen quickly; nothing is asserted about time.
    worker: { pollIntervalMs: 5, backoff: { baseMs: 2, capMs: 20 } },
  });
  return notifier;
}

function publishLifecycle(id: string, steps: ProgressStep[], over: Partial<Incident> = {}): void {
  incidents.set(id, incident({ id, node: `node-${id}`, ...over }));
  const node = over.node ?? `node-${id}`;
  // Now-ish timestamps: CloudWatch drops datapoints older than two weeks.
  for (const step of steps) bus.publish(event(step, { incidentId: id, node, at: Date.now() }));
}

async function drained(): Promise<void> {
  await vi.waitFor(() => expect(store.outbox.depth()).toBe(0), { timeout: 20_000, interval: 10 });
}

const LIFECYCLE: ProgressStep[] = [
  'detected',
  'cordoned',
  'drain_started',
  'pod_evicted',
  'replace_issued',
  'resolved',
];
const NOTIFIED: ProgressStep[] = ['detected', 'cordoned', 'replace_issued', 'resolved'];

describe('wire content per sink', () => {
  it('SNS: JSON message, short ASCII subject, filter attributes', async () => {
    start({
      lambdaFunction: undefined,
      webhookUrl: undefined,
      cloudwatch: { ...baseConfig.cloudwatch, enabled: false },
    });
    publishLifecycle('inc-a', ['detected'], { node: `ip-10-0-1-23.${'x'.repeat(120)}.internal` });
    await drained();
    expect(aws.state.sns).toHaveLength(1);
    const sent = aws.state.sns[0];
    expect(sent?.topicArn).toBe(TOPIC);
    expect(sent?.subject).toMatch(/^\[gpu-medic\] critical XID_CRITICAL_79 on ip-10-0-1-23\.x+\.\.\.$/);
    expect(sent?.subject?.length).toBeLessThan(100);
    expect(sent?.attributes).toEqual({
      severity: { dataType: 'String', stringValue: 'critical' },
      category: { dataType: 'String', stringValue: 'XID_CRITICAL_79' },
      cluster: { dataType: 'String', stringValue: 'prod-gpu' },
    });
    expect(JSON.parse(sent?.message ?? '')).toMatchObject({
      incident_id: 'inc-a',
      cluster: 'prod-gpu',
      category: 'XID_CRITICAL_79',
      severity: 'critical',
      action: 'replace',
      state: 'detected',
      explanation: 'GPU 3 has fallen off the bus (XID 79).',
      first_seen: expect.any(String),
      last_seen: expect.any(String),
    });
  });

  it("Lambda: an asynchronous invoke with the sample's event field names", async () => {
    start({
      snsTopicArn: undefined,
      webhookUrl: undefined,
      cloudwatch: { ...baseConfig.cloudwatch, enabled: false },
    });
    publishLifecycle('inc-l', ['detected']);
    await drained();
    expect(aws.state.lambda).toHaveLength(1);
    expect(aws.state.lambda[0]).toMatchObject({ functionName: FUNCTION, invocationType: 'Event' });
    const payload = JSON.parse(aws.state.lambda[0]?.payload ?? '');
    expect(Object.keys(payload)).toEqual(
      expect.arrayContaining([
        'timestamp',
        'error_type',
        'node_name',
        'instance_id',
        'error_details',
        'cluster_name',
      ]),
    );
    expect(payload).toMatchObject({
      error_type: 'XID_CRITICAL_79',
      node_name: 'node-inc-l',
      instance_id: 'i-0123456789abcdef0',
      cluster_name: 'prod-gpu',
    });
  });

  it.each([
    [
      false,
      [
        ['ClusterName', 'prod-gpu'],
        ['ErrorType', 'XID_CRITICAL_79'],
      ],
    ],
    [
      true,
      [
        ['NodeName', 'node-inc-c'],
        ['InstanceId', 'i-0123456789abcdef0'],
        ['ErrorType', 'XID_CRITICAL_79'],
      ],
    ],
  ])('CloudWatch (perNode %s): GPUErrorByType and remediation counters in the namespace', async (perNode, dims) => {
    start({
      snsTopicArn: undefined,
      lambdaFunction: undefined,
      webhookUrl: undefined,
      cloudwatch: { namespace: 'GPUMedic', perNode },
    });
    publishLifecycle('inc-c', LIFECYCLE);
    notifier?.publishClusterMetrics({ unhealthyGpuNodes: 2, breakerOpen: false });
    await drained();
    const byName = (n: string) => aws.state.cloudwatch.filter((d) => d.datum.MetricName === n);
    expect(new Set(aws.state.cloudwatch.map((d) => d.namespace))).toEqual(new Set(['GPUMedic']));
    expect(byName('GPUErrorByType').map((d) => [d.datum.Value, d.datum.Unit, d.datum.Dimensions])).toEqual([
      [1, 'Count', dims.map(([Name, Value]) => ({ Name, Value }))],
    ]);
    const actionDims = [
      { Name: 'ClusterName', Value: 'prod-gpu' },
      { Name: 'Action', Value: 'replace' },
    ];
    expect(byName('RemediationsStarted').map((d) => d.datum.Dimensions)).toEqual([actionDims]);
    expect(byName('RemediationsSucceeded').map((d) => d.datum.Dimensions)).toEqual([actionDims]);
    expect(byName('UnhealthyGpuNodes').map((d) => d.datum.Value)).toEqual([2]);
    expect(byName('BreakerOpen').map((d) => d.datum.Value)).toEqual([0]);
  });

  it('CloudWatch: 2,500 queued datapoints go out in 3 PutMetricData calls', async () => {
    start({
      snsTopicArn: undefined,
      lambdaFunction: undefined,
      webhookUrl: undefined,
      cloudwatch: { namespace: 'GPUMedic', perNode: true },
    });
    // Queue them before the worker runs, as after an outage.
    const cw = notifier?.workers.get('cloudwatch');
    await cw?.stop();
    for (let i = 0; i < 2500; i++) publishLifecycle(`inc-${i}`, ['detected']);
    expect(store.outbox.depth('cloudwatch')).toBe(2500);
    while ((await cw?.runOnce()) ?? 0) {
      /* drain */
    }
    expect(aws.log.find('PutMetricData')).toHaveLength(3);
    expect(aws.state.cloudwatch).toHaveLength(2500);
    expect(new Set(aws.state.cloudwatch.map((d) => d.datum.Dimensions?.[0]?.Value)).size).toBe(2500);
  });

  it('webhook: signed JSON POST the receiver can verify; a tampered body fails', async () => {
    start({
      snsTopicArn: undefined,
      lambdaFunction: undefined,
      cloudwatch: { ...baseConfig.cloudwatch, enabled: false },
    });
    publishLifecycle('inc-w', ['detected']);
    await drained();
    expect(received).toHaveLength(1);
    const r = received[0];
    if (!r) throw new Error('no webhook request');
    expect(r.headers['content-type']).toBe('application/json');
    const ts = String(r.headers['x-gpumedic-timestamp']);
    const sig = String(r.headers['x-gpumedic-signature']);
    expect(sig).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(r.headers['x-gpumedic-delivery']).toMatch(/^\d+$/);
    expect(verifyWebhookSignature(SECRET, ts, r.body, sig)).toBe(true);
    const tampered = r.body.replace('"critical"', '"warning"');
    expect(tampered).not.toBe(r.body);
    expect(verifyWebhookSignature(SECRET, ts, tampered, sig)).toBe(false);
    expect(JSON.parse(r.body)).toMatchObject({
      incident_id: 'inc-w',
      step: 'detected',
      error_type: 'XID_CRITICAL_79',
    });
  });
});

describe('reliability', () => {
  it('a sink failing for a while delivers everything afterwards, in order per incident, without duplicates', async () => {
    aws.faults.set('sns', { status: 500, times: 20 });
    start({
      lambdaFunction: undefined,
      webhookUrl: undefined,
      cloudwatch: { ...baseConfig.cloudwatch, enabled: false },
    });
    for (const id of ['inc-1', 'inc-2', 'inc-3']) publishLifecycle(id, LIFECYCLE);
    // A replay of the same events (e.g. after a restart) adds nothing.
    for (const id of ['inc-1', 'inc-2', 'inc-3']) publishLifecycle(id, LIFECYCLE);
    await drained();
    expect(aws.log.find('Publish').filter((r) => r.status === 500)).toHaveLength(20);
    expect(aws.state.sns).toHaveLength(12);
    for (const id of ['inc-1', 'inc-2', 'inc-3']) {
      const steps = aws.state.sns
        .map((s) => JSON.parse(s.message) as { incident_id: string; step: string })
        .filter((m) => m.incident_id === id)
        .map((m) => m.step);
      expect(steps).toEqual(NOTIFIED);
    }
  });

  it('one sink down does not delay the others', async () => {
    // SNS hangs past the client's timeout (and would fail anyway) on every call until the fault is cleared.
    aws.faults.set('sns', { delayMs: 2_000, status: 500 });
    const n = start({}, { snsTimeoutMs: 50 });
    publishLifecycle('inc-d', LIFECYCLE);
    await vi.waitFor(
      () => {
        expect(store.outbox.depth('lambda')).toBe(0);
        expect(store.outbox.depth('webhook')).toBe(0);
        expect(store.outbox.depth('cloudwatch')).toBe(0);
      },
      { timeout: 20_000, interval: 10 },
    );
    expect(aws.state.lambda).toHaveLength(4);
    expect(received.map((r) => (JSON.parse(r.body) as { step: string }).step)).toEqual(NOTIFIED);
    expect(aws.state.sns).toHaveLength(0);
    expect(store.outbox.depth('sns')).toBe(4);
    aws.faults.clear('sns');
    await drained();
    expect(aws.state.sns.map((s) => (JSON.parse(s.message) as { step: string }).step)).toEqual(NOTIFIED);
    expect(n.workers.size).toBe(4);
  });

  it('webhook 500s, then success: delivered once, with the same delivery id on every attempt', async () => {
    hookStatuses = [500, 502, 503];
    start({
      snsTopicArn: undefined,
      lambdaFunction: undefined,
      cloudwatch: { ...baseConfig.cloudwatch, enabled: false },
    });
    publishLifecycle('inc-r', ['detected']);
    await drained();
    expect(received.map((r) => r.status)).toEqual([500, 502, 503, 200]);
    expect(new Set(received.map((r) => r.headers['x-gpumedic-delivery'])).size).toBe(1);
    for (const r of received) {
      expect(
        verifyWebhookSignature(
          SECRET,
          String(r.headers['x-gpumedic-timestamp']),
          r.body,
          String(r.headers['x-gpumedic-signature']),
        ),
      ).toBe(true);
    }
  });

  it('webhook 4xx: the message is dead and the next one still goes', async () => {
    hookStatuses = [400];
    start({
      snsTopicArn: undefined,
      lambdaFunction: undefined,
      cloudwatch: { ...baseConfig.cloudwatch, enabled: false },
    });
    publishLifecycle('inc-x', ['detected', 'cordoned']);
    await drained();
    expect(received.map((r) => [r.status, (JSON.parse(r.body) as { step: string }).step])).toEqual([
      [400, 'detected'],
      [200, 'cordoned'],
    ]);
  });

  it('an SNS validation error is permanent; throttling is retried', async () => {
    aws.faults.set('sns', { status: 400, code: 'InvalidParameter', times: 1 });
    start({
      lambdaFunction: undefined,
      webhookUrl: undefined,
      cloudwatch: { ...baseConfig.cloudwatch, enabled: false },
    });
    publishLifecycle('inc-v', ['detected']);
    await drained();
    expect(aws.state.sns).toHaveLength(0);
    aws.faults.set('sns', { status: 429, times: 2 });
    publishLifecycle('inc-t', ['detected']);
    await drained();
    expect(aws.state.sns.map((s) => (JSON.parse(s.message) as { incident_id: string }).incident_id)).toEqual([
      'inc-t',
    ]);
  });
});
