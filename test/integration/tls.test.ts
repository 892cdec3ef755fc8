/**
 * Issue 11, item 8 (TLS): the simulated API server speaks HTTPS with its own CA, which the kubeconfig
 * carries (certificate-authority-data), as on EKS. The real runtime scans every node through the pod proxy
 * over that connection; the same scrape with a kubeconfig trusting another CA fails on the certificate,
 * reaches nothing, and is reported as unreachable — never as a healthy node.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/app/runtime.js';
import { CollectError } from '../../src/collect/collector.js';
import { loadConfig } from '../../src/config/config.js';
import type { GpuNode } from '../../src/domain/node.js';
import { createExporterSource } from '../../src/k8s/exporter-source.js';
import { RawHttpClient } from '../../src/k8s/raw-http.js';
import { silentLogger } from '../../src/log/logger.js';
import { type Simulator, startSimulator } from '../../src/sim/index.js';
import type { K8sRecordedRequest } from '../../src/sim/k8s-server.js';
import { kubeconfigFor } from '../../src/sim/kubeconfig.js';
import { SIM_TLS_OTHER_CA } from '../../src/sim/tls-fixture.js';
import { restoreEnv } from '../support/sim-runtime.js';

const savedEnv = { ...process.env };
let dir: string;
let sim: Simulator;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-tls-'));
  sim = await startSimulator({ nodes: 3, tls: true, slack: false, controlPort: false });
  Object.assign(process.env, sim.env);
});

afterAll(async () => {
  await sim?.close();
  restoreEnv(savedEnv);
  rmSync(dir, { recursive: true, force: true });
});

const gpuNodes = () =>
  sim.cluster
    .listNodes()
    .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
    .map((n) => n.metadata.name);

const proxies = () =>
  sim.log.requests.filter((r) => r.service === 'k8s' && (r as K8sRecordedRequest).subresource === 'proxy');

describe('the scrape path over TLS', () => {
  it('the runtime scans every node through the HTTPS pod proxy, trusting the kubeconfig CA', async () => {
    expect(sim.k8s.url).toMatch(/^https:/);
    const config = loadConfig({
      ...sim.env,
      DB_PATH: join(dir, 'tls.db'),
      MONITOR_INTERVAL: '1',
      CLASSIFIER: 'rules',
      LOG_LEVEL: 'silent',
      DCGM_SOURCE: 'exporter',
      DRY_RUN: 'true',
    });
    let rt: Runtime | undefined;
    try {
      rt = await createRuntime(config, { logger: silentLogger() });
      await rt.start();
      const live = rt;
      const end = Date.now() + 20_000;
      while (!gpuNodes().every((n) => live.lastScan.has(n)) && Date.now() < end)
        await new Promise((r) => setTimeout(r, 100));
      for (const n of gpuNodes()) {
        const scan = live.lastScan.get(n);
        expect(scan?.snapshot.error, n).toBeUndefined();
        expect(scan?.snapshot.gpus.length, n).toBe(8);
      }
      expect(proxies().filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(gpuNodes().length);
    } finally {
      await rt?.stop();
    }
    sim.assertNoUnexpected();
  }, 60_000);

  it('a kubeconfig trusting another CA fails the scrape on the certificate: unreachable, nothing served', async () => {
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfigFor(sim.k8s.url, { caPem: SIM_TLS_OTHER_CA }));
    const target = gpuNodes()[0] ?? '';
    const pod = sim.cluster.exporterPod(target);
    if (!pod) throw new Error(`no exporter on ${target}`);
    const http = new RawHttpClient(kc);
    const source = createExporterSource({
      pods: {
        forNode: () => ({
          namespace: pod.metadata.namespace ?? 'gpu-operator',
          name: pod.metadata.name,
          node: target,
          ready: true,
        }),
      },
      http,
      access: 'proxy',
      port: 9400,
      timeoutMs: 5_000,
      maxBytes: 1 << 20,
    });
    const before = proxies().length;
    try {
      const err = await source
        .fetch({ name: target } as GpuNode, new AbortController().signal)
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CollectError);
      expect(err).toMatchObject({ kind: 'unreachable' });
      expect((err as Error).message).toMatch(/certificate|self.signed|verify/i);
      expect(proxies().length).toBe(before);

      // The same scrape with the kubeconfig's own CA goes through: the CA made the difference.
      const good = new KubeConfig();
      good.loadFromFile(sim.kubeconfigPath);
      const goodHttp = new RawHttpClient(good);
      const ok = createExporterSource({
        pods: {
          forNode: () => ({
            namespace: pod.metadata.namespace ?? 'gpu-operator',
            name: pod.metadata.name,
            node: target,
            ready: true,
          }),
        },
        http: goodHttp,
        access: 'proxy',
        port: 9400,
        timeoutMs: 5_000,
        maxBytes: 1 << 20,
      });
      await expect(ok.fetch({ name: target } as GpuNode, new AbortController().signal)).resolves.toContain(
        'DCGM_FI_DEV_XID_ERRORS',
      );
      goodHttp.close();
    } finally {
      http.close();
    }
  });
});
