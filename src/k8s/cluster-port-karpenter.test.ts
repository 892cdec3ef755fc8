/** ClusterPort's Karpenter-facing calls against the simulated API server, with the real client. */
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimCluster } from '../sim/cluster.js';
import type { K8sRecordedRequest, SimK8sServer } from '../sim/k8s-server.js';
import { startSimK8s } from '../sim/k8s-server.js';
import { kubeconfigFor } from '../sim/kubeconfig.js';
import { ManualClock } from '../sim/sim-clock.js';
import { TRAINING_JOB_NAME, TRAINING_NAMESPACE } from '../sim/workloads.js';
import { createClusterPort } from './cluster-port.js';

describe('ClusterPort: do-not-disrupt and pending GPU pods', () => {
  let clock: ManualClock;
  let cluster: SimCluster;
  let sim: SimK8sServer;
  let port: ReturnType<typeof createClusterPort>;

  beforeEach(async () => {
    clock = new ManualClock();
    cluster = new SimCluster({
      nodes: 4,
      karpenterNodes: 0,
      clock,
      terminateDelayMs: 1000,
      rescheduleDelayMs: 500,
    });
    sim = await startSimK8s(cluster);
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfigFor(sim.url));
    port = createClusterPort(kc, { retryDelayMs: 10 });
  });

  afterEach(async () => {
    await sim.close();
    cluster.close();
    sim.log.assertNoUnexpected();
  });

  it('sets and removes karpenter.sh/do-not-disrupt with a merge patch touching only that key', async () => {
    const name = cluster.listNodes()[0]?.metadata.name ?? '';
    const before = cluster.getNode(name)?.metadata.annotations ?? {};
    expect(await port.hasDoNotDisrupt(name)).toBe(false);
    expect(await port.setDoNotDisrupt(name, true)).toBe('done');
    expect(cluster.getNode(name)?.metadata.annotations).toEqual({
      ...before,
      'karpenter.sh/do-not-disrupt': 'true',
    });
    expect(await port.hasDoNotDisrupt(name)).toBe(true);
    expect(await port.setDoNotDisrupt(name, false)).toBe('done');
    expect(cluster.getNode(name)?.metadata.annotations).toEqual(before);
    // Removing it twice is harmless; a node that is gone answers 'gone' / undefined.
    expect(await port.setDoNotDisrupt(name, false)).toBe('done');
    expect(await port.setDoNotDisrupt('no-such-node', false)).toBe('gone');
    expect(await port.hasDoNotDisrupt('no-such-node')).toBeUndefined();
    const patches = sim.log.find('patchNode') as K8sRecordedRequest[];
    expect(patches.map((r) => r.headers['content-type'])).toContain('application/merge-patch+json');
    expect(JSON.parse(patches[0]?.body ?? '{}')).toEqual({
      metadata: { annotations: { 'karpenter.sh/do-not-disrupt': 'true' } },
    });
  });

  it('lists the GPU pods bound to no node (spec.nodeName=, status.phase=Pending), and only those', async () => {
    expect(await port.listPendingGpuPods()).toEqual([]);
    // Every other GPU node cordoned: the job pod of a lost node has nowhere to go (no Karpenter here).
    const master = `${TRAINING_JOB_NAME}-master-0`;
    const host = cluster.getPod(TRAINING_NAMESPACE, master)?.spec.nodeName ?? '';
    for (const n of cluster.listNodes()) {
      if (n.metadata.name !== host)
        cluster.updateNodeFromApi(
          n.metadata.name,
          { ...n, spec: { ...n.spec, unschedulable: true } },
          undefined,
        );
    }
    cluster.terminateInstance(cluster.nodeInfo(host)?.instanceId ?? '', { decrementDesiredCapacity: true });
    clock.advance(2000);
    const pending = await port.listPendingGpuPods();
    expect(pending.map((p) => `${p.namespace}/${p.name}`)).toEqual([`${TRAINING_NAMESPACE}/${master}`]);
    const list = (sim.log.find('listPods') as K8sRecordedRequest[]).at(-1);
    expect(list?.query.fieldSelector).toBe('status.phase=Pending,spec.nodeName=');
  });
});
