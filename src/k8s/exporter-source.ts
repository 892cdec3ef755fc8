import { CollectError } from '../collect/collector.js';
import type { MetricsSource } from '../collect/exporter.js';
import type { GpuNode } from '../domain/node.js';
import type { PodIndex } from './pod-index.js';
import { HttpError, type RawHttpClient, TimeoutError } from './raw-http.js';

export interface ExporterSourceOptions {
  pods: Pick<PodIndex, 'forNode'>;
  http: RawHttpClient;
  /** `proxy` (through the API server, default) or `direct` (the pod IP: needs network reach to pods). */
  access: 'proxy' | 'direct';
  port: number;
  timeoutMs: number;
  maxBytes: number;
}

/**
 * Scrapes a node's dcgm-exporter, found by the pod index, through the API-server pod proxy or directly.
 * `stream` hands the body over in chunks as it arrives (the collector parses it on the fly); `fetch`
 * returns it whole.
 */
export function createExporterSource(opts: ExporterSourceOptions): MetricsSource {
  async function scrape(node: GpuNode, signal: AbortSignal, onChunk?: (chunk: Buffer) => void) {
    const pod = opts.pods.forNode(node.name);
    if (!pod) throw new CollectError('no-exporter', `no dcgm-exporter pod on ${node.name}`);
    if (signal.aborted) throw new CollectError('timeout', 'scan deadline passed before the scrape started');
    const get = { timeoutMs: opts.timeoutMs, maxBytes: opts.maxBytes };
    try {
      if (opts.access === 'direct') {
        if (!pod.podIP)
          throw new CollectError(
            'unreachable',
            `dcgm-exporter pod ${pod.namespace}/${pod.name} has no IP yet`,
          );
        const url = `http://${pod.podIP}:${opts.port}/metrics`;
        if (onChunk) {
          await opts.http.streamDirect(url, get, onChunk);
          return '';
        }
        return await opts.http.getDirect(url, get);
      }
      const path = `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(`${pod.name}:${opts.port}`)}/proxy/metrics`;
      if (onChunk) {
        await opts.http.streamApi(path, get, onChunk);
        return '';
      }
      return await opts.http.getApi(path, get);
    } catch (error) {
      if (error instanceof CollectError) throw error;
      if (error instanceof TimeoutError)
        throw new CollectError('timeout', `dcgm-exporter on ${node.name}: ${error.message}`);
      if (error instanceof HttpError) {
        throw new CollectError(
          'http',
          `dcgm-exporter ${pod.namespace}/${pod.name} on ${node.name}: ${error.message}`,
        );
      }
      throw new CollectError('unreachable', `dcgm-exporter on ${node.name}: ${(error as Error).message}`);
    }
  }
  return {
    fetch: (node, signal) => scrape(node, signal),
    async stream(node, signal, onChunk) {
      await scrape(node, signal, onChunk);
    },
  };
}
