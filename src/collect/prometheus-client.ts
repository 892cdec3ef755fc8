/**
 * The Prometheus HTTP API's instant query (`POST /api/v1/query`), as the prometheus source uses it. Every
 * answer is validated: an error envelope, an HTTP error, a timeout, a body that is not the API's JSON, a
 * result that is not an instant vector, or a partial answer (`warnings`: some data could not be read) is a
 * CollectError naming what happened — never an empty, "healthy" vector.
 */
import { z } from 'zod';
import type { RequestSigner } from '../aws/aps-signer.js';
import { CollectError } from './collector.js';
import type { PromQueryPort, PromVectorSample } from './prometheus-source.js';

export interface PrometheusClientOptions {
  /** Base URL: Prometheus (`http://prometheus:9090`) or an AMP workspace (`…/workspaces/ws-…`). */
  baseUrl: string;
  /** SigV4 for Amazon Managed Prometheus (aws/aps-signer.ts). */
  sign?: RequestSigner;
  /** Largest answer accepted, in bytes. Default 32 MiB. */
  maxBytes?: number;
}

export interface PrometheusClient extends PromQueryPort {
  /** Response bytes read since start (the bench reports them per scan). */
  bytesRead(): number;
}

const Envelope = z.object({
  status: z.enum(['success', 'error']),
  data: z.object({ resultType: z.string(), result: z.unknown() }).optional(),
  errorType: z.string().optional(),
  error: z.string().optional(),
  warnings: z.array(z.string()).optional(),
});

/** Prometheus prints sample values as Go formats floats: `NaN`, `+Inf`, `-Inf` included. */
function sampleValue(s: string): number {
  if (s === '+Inf' || s === 'Inf') return Number.POSITIVE_INFINITY;
  if (s === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(s);
}

async function readCapped(res: Response, maxBytes: number): Promise<{ text: string; bytes: number }> {
  if (!res.body) return { text: '', bytes: 0 };
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.byteLength;
    if (bytes > maxBytes) throw new CollectError('parse', `answer larger than ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return { text: Buffer.concat(chunks).toString('utf8'), bytes };
}

/**
 * The instant vector's elements, checked by hand rather than by a schema: the coverage answer has one element
 * per node (5,000 in a large fleet), and a schema pass per element cost more than the rest of the read and
 * copied every label set. Each element must be `{ metric: { label: "value", … }, value: [time, "number"] }`;
 * the first that is not is named in the error. The label sets are kept as parsed.
 */
export function decodeVector(result: unknown): PromVectorSample[] {
  const bad = (why: string) => new CollectError('parse', `malformed vector: ${why}`);
  if (!Array.isArray(result)) throw bad('the result is not an array');
  const out = new Array<PromVectorSample>(result.length);
  for (let i = 0; i < result.length; i++) {
    const e: unknown = result[i];
    if (typeof e !== 'object' || e === null) throw bad(`element ${i} is not an object`);
    const { metric, value } = e as { metric?: unknown; value?: unknown };
    if (typeof metric !== 'object' || metric === null || Array.isArray(metric))
      throw bad(`element ${i}: metric is not an object of labels`);
    for (const label in metric) {
      if (typeof (metric as Record<string, unknown>)[label] !== 'string')
        throw bad(`element ${i}: label ${clip(label)} is not a string`);
    }
    if (
      !Array.isArray(value) ||
      value.length !== 2 ||
      typeof value[0] !== 'number' ||
      typeof value[1] !== 'string'
    )
      throw bad(`element ${i}: value is not [time, "number"]`);
    out[i] = { metric: metric as Record<string, string>, value: sampleValue(value[1]) };
  }
  return out;
}

const clip = (s: string) => (s.length > 300 ? `${s.slice(0, 300)}…` : s);

export function createPrometheusClient(opts: PrometheusClientOptions): PrometheusClient {
  const endpoint = new URL(`${opts.baseUrl.replace(/\/+$/, '')}/api/v1/query`);
  const maxBytes = opts.maxBytes ?? 32 * 1024 * 1024;
  let total = 0;

  async function post(promql: string, signal?: AbortSignal): Promise<{ status: number; text: string }> {
    const body = new URLSearchParams({ query: promql }).toString();
    let headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    };
    if (opts.sign)
      headers = { ...headers, ...(await opts.sign({ method: 'POST', url: endpoint, headers, body })) };
    try {
      const res = await fetch(endpoint, { method: 'POST', headers, body, ...(signal ? { signal } : {}) });
      const { text, bytes } = await readCapped(res, maxBytes);
      total += bytes;
      return { status: res.status, text };
    } catch (error) {
      if (error instanceof CollectError) throw error;
      const e = error as Error & { cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError' || e.name === 'AbortError')
        throw new CollectError('timeout', `query to ${endpoint.host} timed out`);
      const why = e.cause?.code ?? e.cause?.message ?? e.message;
      throw new CollectError('unreachable', `cannot reach ${endpoint.host}: ${why}`);
    }
  }

  return {
    bytesRead: () => total,
    async query(promql, signal): Promise<PromVectorSample[]> {
      const { status, text } = await post(promql, signal);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        if (status >= 400)
          throw new CollectError('http', `HTTP ${status} from ${endpoint.host}: ${clip(text)}`);
        throw new CollectError('parse', `answer from ${endpoint.host} is not JSON: ${clip(text)}`);
      }
      const env = Envelope.safeParse(json);
      if (!env.success) {
        if (status >= 400)
          throw new CollectError('http', `HTTP ${status} from ${endpoint.host}: ${clip(text)}`);
        throw new CollectError(
          'parse',
          `answer from ${endpoint.host} is not a Prometheus API response: ${clip(text)}`,
        );
      }
      const e = env.data;
      if (e.status === 'error' || status >= 400) {
        throw new CollectError(
          'http',
          `query failed (HTTP ${status}${e.errorType ? `, ${e.errorType}` : ''}): ${e.error ?? clip(text)}`,
        );
      }
      if (e.warnings && e.warnings.length > 0) {
        throw new CollectError('http', `partial answer (warnings: ${clip(e.warnings.join('; '))})`);
      }
      if (!e.data) throw new CollectError('parse', 'a success answer without data');
      if (e.data.resultType !== 'vector') {
        throw new CollectError('parse', `expected an instant vector, got resultType ${e.data.resultType}`);
      }
      return decodeVector(e.data.result);
    },
  };
}
