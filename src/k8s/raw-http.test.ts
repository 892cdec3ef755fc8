import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawHttpClient } from './raw-http.js';

let server: http.Server;
let url = '';
const seen: (string | undefined)[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push(req.headers.authorization);
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});

function kubeConfig(token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: url, skipTLSVerify: true }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

describe('RawHttpClient credentials', () => {
  it('authorises the first requests without an explicit refresh, and picks up a rotated token on refreshAuth', async () => {
    seen.length = 0;
    const kc = kubeConfig('first-token');
    const client = new RawHttpClient(kc, 4);
    const get = () =>
      client.getApi('/api/v1/namespaces/x/pods/p:9400/proxy/metrics', { timeoutMs: 5000, maxBytes: 1024 });
    try {
      expect(await Promise.all([get(), get()])).toEqual(['ok', 'ok']);
      const user = kc.getCurrentUser() as { token?: string };
      user.token = 'rotated-token';
      await get();
      await client.refreshAuth();
      await get();
    } finally {
      client.close();
    }
    expect(seen).toEqual([
      'Bearer first-token',
      'Bearer first-token',
      // Until the next scan's refresh, the loaded credentials are used.
      'Bearer first-token',
      'Bearer rotated-token',
    ]);
  });
});

describe('RawHttpClient streaming', () => {
  let body: http.Server;
  let base = '';
  beforeAll(async () => {
    body = http.createServer((req, res) => {
      if (req.url === '/fail') {
        res.writeHead(503).end('exporter not ready');
        return;
      }
      // Three writes: the client sees the body in pieces, never more than it allows.
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('m{a="1"} 1\n');
      setImmediate(() => {
        res.write('m{a="2"} 2\n'.repeat(Number(req.url?.slice(1)) || 1));
        setImmediate(() => res.end('m{a="3"} 3\n'));
      });
    });
    await new Promise<void>((r) => body.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(body.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => body.close(r));
  });

  it('hands a successful body over chunk by chunk, collects an error body for the message, enforces maxBytes', async () => {
    const client = new RawHttpClient(undefined);
    const chunks: string[] = [];
    await client.streamDirect(`${base}/1`, { timeoutMs: 5000, maxBytes: 1024 }, (c) =>
      chunks.push(c.toString()),
    );
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.join('')).toBe('m{a="1"} 1\nm{a="2"} 2\nm{a="3"} 3\n');

    const none: Buffer[] = [];
    await expect(
      client.streamDirect(`${base}/fail`, { timeoutMs: 5000, maxBytes: 1024 }, (c) => none.push(c)),
    ).rejects.toThrow('HTTP 503: exporter not ready');
    expect(none).toEqual([]);

    await expect(
      client.streamDirect(`${base}/500`, { timeoutMs: 5000, maxBytes: 1024 }, () => undefined),
    ).rejects.toThrow('response larger than 1024 bytes');
  });
});
