/** The simulated Karpenter's NodeClaims (karpenter.sh/v1), read and deleted with the real client. */
import { CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimCluster } from './cluster.js';
import { type SimK8sServer, startSimK8s } from './k8s-server.js';
import { kubeconfigFor } from './kubeconfig.js';
import { ManualClock } from './sim-clock.js';

let clock: ManualClock;
let cluster: SimCluster;
let sim: SimK8sServer;
let custom: CustomObjectsApi;

beforeEach(async () => {
  clock = new ManualClock();
  cluster = new SimCluster({
    nodes: 4,
    karpenterNodes: 1,
    autoModeNodes: 1,
    clock,
    workloads: false,
    terminateDelayMs: 1000,
  });
  sim = await startSimK8s(cluster);
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(sim.url));
  custom = kc.makeApiClient(CustomObjectsApi);
});
afterEach(async () => {
  await sim.close();
  cluster.close();
  sim.log.assertNoUnexpected();
});

const nodeOf = (pool: string) =>
  cluster.listNodes().find((n) => n.metadata.labels?.['karpenter.sh/nodepool'] === pool)?.metadata.name ?? '';

describe('NodeClaims', () => {
  it('one per Karpenter and Auto Mode node, naming its node; node-group nodes have none', async () => {
    const list = (await custom.listClusterCustomObject({
      group: 'karpenter.sh',
      version: 'v1',
      plural: 'nodeclaims',
    })) as {
      items: {
        metadata: { name: string; labels: Record<string, string> };
        status: { nodeName: string };
        spec: { nodeClassRef: { kind: string } };
      }[];
    };
    expect(list.items.map((c) => c.status.nodeName).sort()).toEqual(
      [nodeOf('gpu'), nodeOf('gpu-auto')].sort(),
    );
    const auto = list.items.find((c) => c.status.nodeName === nodeOf('gpu-auto'));
    expect(auto?.spec.nodeClassRef.kind).toBe('NodeClass');
    expect(auto?.metadata.labels['eks.amazonaws.com/compute-type']).toBe('auto');
    const karpenter = cluster.nodeClaimOf(nodeOf('gpu'));
    expect(karpenter?.spec.nodeClassRef.kind).toBe('EC2NodeClass');
    expect(karpenter?.status.conditions.map((c) => `${c.type}=${c.status}`)).toEqual([
      'Launched=True',
      'Registered=True',
      'Initialized=True',
      'Ready=True',
    ]);
    // The instance carries the same claim name as its tag.
    const id = cluster.nodeInfo(nodeOf('gpu'))?.instanceId ?? '';
    expect(cluster.describeInstances([id])[0]?.tags['karpenter.sh/nodeclaim']).toBe(karpenter?.metadata.name);
  });

  it('deleting the NodeClaim deletes its Node and instance; deleting the Node removes the claim', async () => {
    const node = nodeOf('gpu');
    const claim = cluster.nodeClaimOf(node)?.metadata.name ?? '';
    await custom.deleteClusterCustomObject({
      group: 'karpenter.sh',
      version: 'v1',
      plural: 'nodeclaims',
      name: claim,
    });
    expect(cluster.getNode(node)?.metadata.deletionTimestamp).toBeDefined();
    clock.advance(1000);
    expect(cluster.getNode(node)).toBeUndefined();
    expect(cluster.nodeClaimOf(node)).toBeUndefined();
    const auto = nodeOf('gpu-auto');
    cluster.deleteNodeFromApi(auto);
    clock.advance(1000);
    expect(cluster.nodeClaimOf(auto)).toBeUndefined();
    const left = (await custom.listClusterCustomObject({
      group: 'karpenter.sh',
      version: 'v1',
      plural: 'nodeclaims',
    })) as {
      items: unknown[];
    };
    expect(left.items).toEqual([]);
  });
});
