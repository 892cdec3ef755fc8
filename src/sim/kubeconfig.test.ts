import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { kubeconfigFor, writeKubeconfig } from './kubeconfig.js';

describe('kubeconfigFor', () => {
  it('loads in client-node with the server, TLS skip, token and namespace', async () => {
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfigFor('http://127.0.0.1:1234', { namespace: 'gpu-medic' }));
    expect(kc.getCurrentCluster()).toMatchObject({ server: 'http://127.0.0.1:1234', skipTLSVerify: true });
    expect(kc.getCurrentUser()?.token).toBe('sim-token');
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe('gpu-medic');
  });

  it('writes the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubeconfig-'));
    try {
      const path = await writeKubeconfig('http://127.0.0.1:9', join(dir, 'config'));
      expect(await readFile(path, 'utf8')).toContain('server: http://127.0.0.1:9');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
