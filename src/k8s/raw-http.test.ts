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
