/**
 * DCGM_ACCESS=direct: the scrape goes to the exporter pod's IP, without the API server. A local HTTP
 * server stands in for the pod; the proxy path is covered against the simulated API server elsewhere.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CollectError } from '../collect/collector.js';
import type { GpuNode } from '../domain/node.js';
import { createExporterSource } from './exporter-source.js';
import type { IndexedPod } from './pod-index.js';
import { RawHttpClient } from './raw-http.js';

const node = (name: string) => ({ name }) as GpuNode;
let server: http.Server;
let port: number;
const seen: string[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} auth=${req.headers.authorization ?? 'none'}`);
    if (req.url === '/metrics' && req.headers.host?.startsWith('127.0.0.1')) {
      if (seen.length === 3) return; // the third request hangs
      if (seen.length === 2) return void res.writeHead(500).end('exporter crashed');
      res
        .writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' })
        .end('DCGM_FI_DEV_GPU_TEMP{gpu="0"} 30\n');
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('direct exporter access', () => {
  const pods: Record<string, IndexedPod> = {
    a: { namespace: 'gpu-operator', name: 'dcgm-a', node: 'a', podIP: '127.0.0.1', ready: true },
    b: { namespace: 'gpu-operator', name: 'dcgm-b', node: 'b', ready: false },
  };
  const source = () =>
    createExporterSource({
      pods: { forNode: (n) => pods[n] },
      http: new RawHttpClient(undefined),
      access: 'direct',
      port,
      timeoutMs: 300,
      maxBytes: 1 << 20,
    });
  const signal = new AbortController().signal;

  it('scrapes http://POD_IP:DCGM_PORT/metrics without API credentials, and maps failures to their kind', async () => {
    const s = source();
    await expect(s.fetch(node('a'), signal)).resolves.toContain('DCGM_FI_DEV_GPU_TEMP');
    expect(seen[0]).toBe('GET /metrics auth=none');
    await expect(s.fetch(node('a'), signal)).rejects.toMatchObject({
      kind: 'http',
    } satisfies Partial<CollectError>);
    await expect(s.fetch(node('a'), signal)).rejects.toMatchObject({ kind: 'timeout' });
    await expect(s.fetch(node('b'), signal)).rejects.toMatchObject({ kind: 'unreachable' });
    await expect(s.fetch(node('c'), signal)).rejects.toMatchObject({ kind: 'no-exporter' });
  });
});
