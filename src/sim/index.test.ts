import { existsSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { DescribeInstancesCommand, EC2Client, RebootInstancesCommand } from '@aws-sdk/client-ec2';
import {
  CoordinationV1Api,
  CoreV1Api,
  Exec,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { WebClient } from '@slack/web-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { awsClientConfig } from '../../test/support/aws.js';
import { isMutatingRequest, type Simulator, startSimulator } from './index.js';
import { SIM_K8S_TOKEN } from './kubeconfig.js';
import type { RecordedRequest } from './recorder.js';

function kubeFor(sim: Simulator): KubeConfig {
  const kc = new KubeConfig();
  // Through the file named in env, as a gpu-medic process would load it.
  kc.loadFromFile(sim.env.KUBECONFIG ?? '');
  return kc;
}

const gpuNodes = (sim: Simulator): string[] =>
  sim.cluster
    .listNodes()
    .filter((n) => n.status.capacity['nvidia.com/gpu'])
    .map((n) => n.metadata.name);

describe('startSimulator', () => {
  let sim: Simulator;

  beforeEach(async () => {
    sim = await startSimulator({ nodes: 3, rebootDelayMs: 60_000 });
  });

  afterEach(async () => {
    await sim.close();
  });

  it('serves the nodes through the kubeconfig it wrote', async () => {
    const core = kubeFor(sim).makeApiClient(CoreV1Api);
    const list = await core.listNode();
    const names = list.items.map((n) => n.metadata?.name).sort();
    expect(names).toEqual(
      sim.cluster
        .listNodes()
        .map((n) => n.metadata.name)
        .sort(),
    );
    expect(gpuNodes(sim)).toHaveLength(3);
    sim.assertNoUnexpected();
  });

  it('describes the instances behind the nodes to the real EC2 client', async () => {
    const [node = ''] = gpuNodes(sim);
    const instanceId = sim.cluster.nodeInfo(node)?.instanceId ?? '';
    const ec2 = new EC2Client({
      ...awsClientConfig(sim.env.AWS_ENDPOINT_URL ?? '', { region: sim.env.AWS_REGION }),
      credentials: {
        accessKeyId: sim.env.AWS_ACCESS_KEY_ID ?? '',
        secretAccessKey: sim.env.AWS_SECRET_ACCESS_KEY ?? '',
      },
    });
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    const inst = out.Reservations?.[0]?.Instances?.[0];
    expect(inst?.InstanceId).toBe(instanceId);
    expect(inst?.State?.Name).toBe('running');
    ec2.destroy();
    sim.assertNoUnexpected();
  });

  it('answers auth.test through the Slack WebClient with the env it hands out', async () => {
    const web = new WebClient(sim.env.SLACK_BOT_TOKEN, { slackApiUrl: sim.env.SLACK_API_URL });
    const auth = await web.auth.test();
    expect(auth.ok).toBe(true);
    expect(auth.user_id).toBeTruthy();
    expect(sim.log.operations('slack')).toEqual(['auth.test']);
  });

  it('hands out everything a gpu-medic process needs in env', () => {
    expect(Object.keys(sim.env).sort()).toEqual(
      [
        'AWS_ACCESS_KEY_ID',
        'AWS_ENDPOINT_URL',
        'AWS_REGION',
        'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED',
        'AWS_SECRET_ACCESS_KEY',
        'CLUSTER_NAME',
        'KUBECONFIG',
        'SLACK_API_URL',
        'SLACK_BOT_TOKEN',
      ].sort(),
    );
    expect(sim.env.CLUSTER_NAME).toBe(sim.cluster.clusterName);
    expect(existsSync(sim.kubeconfigPath)).toBe(true);
    expect(sim.control?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('records reads in one log but reports only mutations as mutating', async () => {
    const kc = kubeFor(sim);
    const core = kc.makeApiClient(CoreV1Api);
    const [node = ''] = gpuNodes(sim);
    await core.listNode();
    await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` });
    expect(sim.mutatingRequests()).toEqual([]);

    await core.patchNode(
      { name: node, body: { spec: { unschedulable: true } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const ec2 = new EC2Client(awsClientConfig(sim.env.AWS_ENDPOINT_URL ?? ''));
    await ec2.send(
      new RebootInstancesCommand({ InstanceIds: [sim.cluster.nodeInfo(node)?.instanceId ?? ''] }),
    );
    ec2.destroy();

    expect(sim.mutatingRequests().map((r) => r.operation)).toEqual(['patchNode', 'RebootInstances']);
    expect(sim.cluster.getNode(node)?.spec.unschedulable).toBe(true);
  });

  it('leaves lease writes out of mutatingRequests unless asked', async () => {
    const coord = kubeFor(sim).makeApiClient(CoordinationV1Api);
    await coord.createNamespacedLease({
      namespace: 'kube-system',
      body: { metadata: { name: 'gpu-medic-leader' }, spec: { holderIdentity: 'a' } },
    });
    expect(sim.mutatingRequests()).toEqual([]);
    expect(sim.mutatingRequests({ includeLeases: true }).map((r) => r.operation)).toEqual(['createLease']);
  });

  it('fails assertNoUnexpected on a request no fake knows', async () => {
    // Without the kubeconfig's token the API server stops at authentication (401), as a real one does.
    expect((await fetch(`${sim.k8s.url}/api/v1/no-such-resource`)).status).toBe(401);
    const res = await fetch(`${sim.k8s.url}/api/v1/no-such-resource`, {
      headers: { authorization: `Bearer ${SIM_K8S_TOKEN}` },
    });
    expect(res.status).toBe(404);
    expect(() => sim.assertNoUnexpected()).toThrow(/unexpected request/);
  });
});

describe('startSimulator options', () => {
  it('starts without Slack or control API and removes its kubeconfig on close', async () => {
    const sim = await startSimulator({ nodes: 1, slack: false, controlPort: false, workloads: false });
    expect(sim.slack).toBeUndefined();
    expect(sim.control).toBeUndefined();
    expect(sim.env.SLACK_API_URL).toBeUndefined();
    const path = sim.kubeconfigPath;
    expect(existsSync(path)).toBe(true);
    await sim.close();
    await sim.close();
    expect(existsSync(path)).toBe(false);
  });

  it('bounds the shared log but keeps an exact total', async () => {
    const sim = await startSimulator({ nodes: 1, slack: false, controlPort: false, logLimit: 2 });
    try {
      const core = kubeFor(sim).makeApiClient(CoreV1Api);
      for (let i = 0; i < 5; i++) await core.listNode();
      expect(sim.log.requests).toHaveLength(2);
      expect(sim.log.total()).toBe(5);
      expect(sim.log.byService()).toEqual({ k8s: 5 });
    } finally {
      await sim.close();
    }
  });
});

describe('startSimulator with dcgmServer', () => {
  it('serves exec into dcgm-server pods, where an injected XID shows in dmesg (an image with a shell)', async () => {
    const sim = await startSimulator({
      nodes: 1,
      slack: false,
      controlPort: false,
      dcgmServer: { shell: true },
    });
    try {
      expect(sim.exec).toBeDefined();
      const [node = ''] = gpuNodes(sim);
      sim.cluster.injectXid(node, 0, 79);
      const pod = sim.cluster
        .listPods({ namespace: 'kube-system', nodeName: node })
        .find((p) => p.metadata.labels?.['k8s-app'] === 'dcgm-server');
      expect(pod).toBeDefined();
      const stdout = new PassThrough();
      let out = '';
      stdout.on('data', (d: Buffer) => {
        out += d.toString('utf8');
      });
      const status = await new Promise<unknown>((resolve, reject) => {
        new Exec(kubeFor(sim))
          .exec(
            'kube-system',
            pod?.metadata.name ?? '',
            'eks-node-monitoring-agent-dcgm',
            ['sh', '-c', 'dmesg | grep -i xid'],
            stdout,
            null,
            null,
            false,
            resolve,
          )
          .catch(reject);
      });
      expect(status).toMatchObject({ status: 'Success' });
      expect(out).toMatch(/NVRM: Xid \(PCI:[^)]+\): 79,/);
      sim.assertNoUnexpected();
    } finally {
      await sim.close();
    }
  });

  it('does not serve exec without dcgmServer', async () => {
    const sim = await startSimulator({ nodes: 1, slack: false, controlPort: false, workloads: false });
    expect(sim.exec).toBeUndefined();
    await sim.close();
  });
});

describe('isMutatingRequest', () => {
  const req = (r: Partial<RecordedRequest> & { resource?: string }): RecordedRequest => ({
    service: 'k8s',
    method: 'GET',
    path: '/',
    query: {},
    headers: {},
    body: '',
    status: 200,
    at: 0,
    ...r,
  });

  it.each<{ r: RecordedRequest; mutating: boolean }>([
    { r: req({ method: 'PATCH', operation: 'patchNode', resource: 'nodes' }), mutating: true },
    { r: req({ method: 'POST', operation: 'evictPod', resource: 'pods' }), mutating: true },
    { r: req({ method: 'DELETE', operation: 'deletePod', resource: 'pods' }), mutating: true },
    { r: req({ method: 'GET', operation: 'listNodes', resource: 'nodes' }), mutating: false },
    { r: req({ method: 'PUT', operation: 'replaceLease', resource: 'leases' }), mutating: false },
    { r: req({ service: 'ec2', method: 'POST', operation: 'RebootInstances' }), mutating: true },
    { r: req({ service: 'ec2', method: 'POST', operation: 'TerminateInstances' }), mutating: true },
    { r: req({ service: 'ec2', method: 'POST', operation: 'DescribeInstances' }), mutating: false },
    {
      r: req({ service: 'autoscaling', method: 'POST', operation: 'TerminateInstanceInAutoScalingGroup' }),
      mutating: true,
    },
    { r: req({ service: 'sns', method: 'POST', operation: 'Publish' }), mutating: false },
    { r: req({ service: 'slack', method: 'POST', operation: 'chat.postMessage' }), mutating: false },
  ])('$r.service $r.method $r.operation → $mutating', ({ r, mutating }) => {
    expect(isMutatingRequest(r)).toBe(mutating);
  });
});
