/**
 * Shared ground of the src/sim/k8s-server*.test.ts suites: a six-GPU-node cluster on a manual clock behind the
 * simulated API server, a real client for it, and the ApiException a refused call throws.
 */
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { SimCluster } from '../../src/sim/cluster.js';
import { type SimK8sServer, startSimK8s } from '../../src/sim/k8s-server.js';
import { kubeconfigFor } from '../../src/sim/kubeconfig.js';
import { ManualClock } from '../../src/sim/sim-clock.js';

export interface SimK8sFixture {
  clock: ManualClock;
  cluster: SimCluster;
  sim: SimK8sServer;
  kc: KubeConfig;
  core: CoreV1Api;
}

/** A fresh cluster (reboot 3 s, replace 5 s, terminate 1 s of simulated time) served over HTTP. */
export async function startSimK8sFixture(): Promise<SimK8sFixture> {
  const clock = new ManualClock();
  const cluster = new SimCluster({
    nodes: 6,
    clock,
    rebootDelayMs: 3000,
    replaceDelayMs: 5000,
    terminateDelayMs: 1000,
  });
  const sim = await startSimK8s(cluster);
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(sim.url));
  const core = kc.makeApiClient(CoreV1Api);
  return { clock, cluster, sim, kc, core };
}

export async function stopSimK8sFixture(fixture: Pick<SimK8sFixture, 'cluster' | 'sim'>): Promise<void> {
  await fixture.sim.close();
  fixture.cluster.close();
}

/** The ApiException `p` rejects with; anything else (or success) fails the test. */
export async function apiError(p: Promise<unknown>): Promise<ApiException<string>> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiException) return e as ApiException<string>;
    throw e;
  }
  throw new Error('expected the call to fail');
}

/** The names of the cluster's GPU nodes (the system node has no nvidia.com/gpu capacity). */
export const gpuNodeNamesOf = (cluster: SimCluster): string[] =>
  cluster
    .listNodes()
    .filter((n) => n.status.capacity['nvidia.com/gpu'])
    .map((n) => n.metadata.name);
