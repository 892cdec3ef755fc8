/**
 * The Prometheus client against the simulated Prometheus: answers validated, every kind of failure a clear
 * CollectError (never an empty "healthy" vector), SigV4 for an AMP workspace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApsSigner } from '../aws/aps-signer.js';
import { SIM_AWS_CREDENTIALS, type Simulator, startSimulator } from '../sim/index.js';
import { createPrometheusClient, decodeVector } from './prometheus-client.js';
import { coverageQuery } from './prometheus-queries.js';

let sim: Simulator;
let url: string;

beforeAll(async () => {
  sim = await startSimulator({
    nodes: 2,
    slack: false,
    controlPort: false,
    workloads: true,
    prometheus: true,
  });
  url = sim.env.PROMETHEUS_URL ?? '';
});
afterAll(async () => {
  await sim?.close();
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: Error & { kind?: string }) => ({ name: e.name, kind: e.kind, message: e.message }),
  );

describe('the Prometheus client', () => {
  it('reads an instant vector and counts the bytes it read', async () => {
    const client = createPrometheusClient({ baseUrl: `${url}/` });
    const cov = await client.query(coverageQuery());
    expect(cov).toHaveLength(2);
    expect(cov[0]?.metric.Hostname).toMatch(/\.ec2\.internal$/);
    expect(client.bytesRead()).toBeGreaterThan(100);
  });

  it.each([
    ['unavailable', 'http', /^query failed \(HTTP 503\)|^HTTP 503 from/],
    [
      'execution',
      'http',
      /query failed \(HTTP 422, execution\): query processing would load too many samples/,
    ],
    ['warnings', 'http', /^partial answer \(warnings: remote read of store/],
    ['matrix', 'parse', /^expected an instant vector, got resultType matrix$/],
  ] as const)('%s → a %s error', async (fault, kind, message) => {
    sim.prometheus?.setFault(fault);
    try {
      const e = await failure(createPrometheusClient({ baseUrl: url }).query('up > 0'));
      expect(e).toMatchObject({ name: 'CollectError', kind });
      expect(e.message).toMatch(message);
    } finally {
      sim.prometheus?.setFault('none');
    }
  });

  it('a hanging server → timeout', async () => {
    sim.prometheus?.setFault('hang');
    try {
      const e = await failure(
        createPrometheusClient({ baseUrl: url }).query('up > 0', AbortSignal.timeout(200)),
      );
      expect(e).toMatchObject({ kind: 'timeout', message: expect.stringContaining('timed out') });
    } finally {
      sim.prometheus?.setFault('none');
    }
  });

  it('a query the server refuses → its bad_data message', async () => {
    const e = await failure(createPrometheusClient({ baseUrl: url }).query('rate(up[5m])'));
    expect(e).toMatchObject({ kind: 'http' });
    expect(e.message).toMatch(/^query failed \(HTTP 400, bad_data\): invalid parameter "query": 1:/);
  });

  it('nothing listening → unreachable; a body that is not the API → parse', async () => {
    const down = await failure(createPrometheusClient({ baseUrl: 'http://127.0.0.1:1' }).query('up > 0'));
    expect(down).toMatchObject({
      kind: 'unreachable',
      message: expect.stringContaining('cannot reach 127.0.0.1:1'),
    });
    // The simulated Kubernetes API answers /api/v1/query with its own JSON, not Prometheus's envelope.
    const k8s = sim.k8s.url;
    const wrong = await failure(createPrometheusClient({ baseUrl: k8s }).query('up > 0'));
    expect(wrong.kind === 'http' || wrong.kind === 'parse').toBe(true);
  });
});

describe('SigV4 for Amazon Managed Prometheus', () => {
  let amp: Simulator;
  beforeAll(async () => {
    amp = await startSimulator({
      nodes: 1,
      slack: false,
      controlPort: false,
      prometheus: { sigv4Region: 'eu-west-1' },
    });
  });
  afterAll(async () => {
    await amp?.close();
  });

  it('signed for aps in the workspace region: answered; unsigned or another region: refused', async () => {
    const baseUrl = amp.env.PROMETHEUS_URL ?? '';
    const signed = createPrometheusClient({
      baseUrl,
      sign: createApsSigner({ region: 'eu-west-1', credentials: SIM_AWS_CREDENTIALS }),
    });
    expect(await signed.query('up > 0')).toHaveLength(1);
    const unsigned = await failure(createPrometheusClient({ baseUrl }).query('up > 0'));
    expect(unsigned).toMatchObject({ kind: 'http', message: expect.stringContaining('HTTP 403') });
    const elsewhere = createPrometheusClient({
      baseUrl,
      sign: createApsSigner({ region: 'us-east-1', credentials: SIM_AWS_CREDENTIALS }),
    });
    expect((await failure(elsewhere.query('up > 0'))).message).toContain('HTTP 403');
    const auth = String(amp.log.requests.filter((r) => r.service === 'prometheus')[0]?.headers.authorization);
    expect(auth).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDSIMULATOR\/\d{8}\/eu-west-1\/aps\/aws4_request, SignedHeaders=.*host.*x-amz-date/,
    );
  });
});

describe('the instant vector check', () => {
  it('keeps label sets, reads Go-formatted values, and names the first malformed element', () => {
    const v = decodeVector([
      { metric: { __name__: 'up', Hostname: 'a' }, value: [1700000000.5, '3'] },
      { metric: {}, value: [1, 'NaN'] },
      { metric: { gpu: '0' }, value: [1, '+Inf'] },
    ]);
    expect(v[0]).toEqual({ metric: { __name__: 'up', Hostname: 'a' }, value: 3 });
    expect(Number.isNaN(v[1]?.value)).toBe(true);
    expect(v[2]?.value).toBe(Number.POSITIVE_INFINITY);
    const fails = (result: unknown) => {
      try {
        decodeVector(result);
      } catch (e) {
        return { kind: (e as { kind?: string }).kind, message: (e as Error).message };
      }
      throw new Error('expected a failure');
    };
    expect(fails({})).toEqual({ kind: 'parse', message: 'malformed vector: the result is not an array' });
    const ok = { metric: { a: 'b' }, value: [1, '1'] };
    expect(fails([ok, null]).message).toBe('malformed vector: element 1 is not an object');
    expect(fails([ok, { value: [1, '1'] }]).message).toBe(
      'malformed vector: element 1: metric is not an object of labels',
    );
    expect(fails([{ metric: { gpu: 0 }, value: [1, '1'] }]).message).toBe(
      'malformed vector: element 0: label gpu is not a string',
    );
    expect(fails([{ metric: {}, value: [1, 1] }]).message).toBe(
      'malformed vector: element 0: value is not [time, "number"]',
    );
    expect(fails([{ metric: {}, values: [[1, '1']] }]).message).toMatch(/element 0: value is not/);
  });
});
