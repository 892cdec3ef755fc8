import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CloudPort } from '../remediate/ports.js';
import { type SimAws, startSimAws } from '../sim/aws-server.js';
import { SimCluster } from '../sim/cluster.js';
import { ManualClock } from '../sim/sim-clock.js';
import { CloudApiError, createCloudPort } from './cloud-port.js';

const CREDENTIALS = { accessKeyId: 'AKIDSIM', secretAccessKey: 'sim' };
const REBOOT_MS = 200;
const REPLACE_MS = 300;
const TERMINATE_MS = 100;

let clock: ManualClock;
let cluster: SimCluster;
let aws: SimAws;
let cloud: CloudPort;

beforeEach(async () => {
  clock = new ManualClock();
  cluster = new SimCluster({
    nodes: 4,
    karpenterNodes: 1,
    clock,
    rebootDelayMs: REBOOT_MS,
    replaceDelayMs: REPLACE_MS,
    terminateDelayMs: TERMINATE_MS,
    // A joining node advertises its GPUs once its device plugin registers: at once here (not under test).
    devicePluginDelayMs: 0,
    exporterReadyDelayMs: 0,
  });
  aws = await startSimAws(cluster);
  cloud = createCloudPort({
    region: 'us-east-1',
    endpoint: aws.url,
    maxAttempts: 1,
    credentials: CREDENTIALS,
  });
});

afterEach(async () => {
  await aws.close();
  cluster.close();
  aws.log.assertNoUnexpected();
});

function gpuNodes() {
  return cluster.listNodes().filter((n) => Number(n.status.capacity['nvidia.com/gpu'] ?? 0) > 0);
}

function managedNode() {
  const node = gpuNodes().find((n) => n.metadata.labels?.['eks.amazonaws.com/nodegroup']);
  const info = node ? cluster.nodeInfo(node.metadata.name) : undefined;
  if (!node || !info) throw new Error('no managed GPU node');
  return { node, info };
}

const ready = (name: string) =>
  cluster.getNode(name)?.status.conditions.find((c) => c.type === 'Ready')?.status === 'True';

describe('CloudPort against the simulated AWS endpoint', () => {
  it('reboots an instance: the node goes NotReady and comes back with a new bootID', async () => {
    const { node, info } = managedNode();
    const bootBefore = node.status.nodeInfo.bootID;
    await cloud.rebootInstance(info.instanceId);
    expect(aws.log.find('RebootInstances').map((r) => r.status)).toEqual([200]);
    expect(ready(node.metadata.name)).toBe(false);
    clock.advance(REBOOT_MS);
    expect(ready(node.metadata.name)).toBe(true);
    expect(cluster.getNode(node.metadata.name)?.status.nodeInfo.bootID).not.toBe(bootBefore);
  });

  it('terminates in the Auto Scaling group without shrinking it: a replacement node joins', async () => {
    const { node, info } = managedNode();
    const group = node.metadata.labels?.['eks.amazonaws.com/nodegroup'];
    const asg = await cloud.autoScalingGroupOf(info.instanceId);
    expect(asg).toBe(info.autoScalingGroup);
    const before = new Set(gpuNodes().map((n) => n.metadata.name));

    await cloud.terminateInAutoScalingGroup(info.instanceId);
    const call = aws.log.find('TerminateInstanceInAutoScalingGroup')[0];
    expect(call?.body).toContain('ShouldDecrementDesiredCapacity=false');
    expect(call?.body).toContain(`InstanceId=${info.instanceId}`);
    expect(await cloud.describeInstance(info.instanceId)).toEqual({ state: 'shutting-down' });

    clock.advance(REPLACE_MS);
    expect(cluster.getNode(node.metadata.name)).toBeUndefined();
    expect(await cloud.describeInstance(info.instanceId)).toEqual({ state: 'terminated' });
    const fresh = gpuNodes().filter((n) => !before.has(n.metadata.name));
    expect(fresh).toHaveLength(1);
    expect(fresh[0]?.metadata.labels?.['eks.amazonaws.com/nodegroup']).toBe(group);
    expect(ready(fresh[0]?.metadata.name ?? '')).toBe(true);

    // Repeated after a crash: the group no longer manages it, and that is fine because it is gone.
    await expect(cloud.terminateInAutoScalingGroup(info.instanceId)).resolves.toBeUndefined();
  });

  it('a Karpenter instance has no Auto Scaling group; ASG terminate of it fails with the AWS code', async () => {
    const karpenter = gpuNodes().find((n) => n.metadata.labels?.['karpenter.sh/nodepool']);
    const info = karpenter ? cluster.nodeInfo(karpenter.metadata.name) : undefined;
    if (!info) throw new Error('no Karpenter node');
    expect(await cloud.autoScalingGroupOf(info.instanceId)).toBeUndefined();
    const err = await cloud.terminateInAutoScalingGroup(info.instanceId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CloudApiError);
    expect(err).toMatchObject({ code: 'ValidationError', operation: 'TerminateInstanceInAutoScalingGroup' });
    expect(await cloud.describeInstance(info.instanceId)).toEqual({ state: 'running' });
  });

  it('terminates a standalone instance with EC2 and is idempotent', async () => {
    const { info } = managedNode();
    await cloud.terminateInstance(info.instanceId);
    clock.advance(TERMINATE_MS);
    expect(await cloud.describeInstance(info.instanceId)).toEqual({ state: 'terminated' });
    await expect(cloud.terminateInstance(info.instanceId)).resolves.toBeUndefined();
    // Long gone (EC2 forgot it): NotFound is treated as done.
    await expect(cloud.terminateInstance('i-0000000000000dead')).resolves.toBeUndefined();
    expect(aws.log.find('TerminateInstances').map((r) => r.status)).toEqual([200, 200, 400]);
  });

  it('describes an unknown instance as undefined', async () => {
    expect(await cloud.describeInstance('i-0000000000000dead')).toBeUndefined();
    expect(await cloud.autoScalingGroupOf('i-0000000000000dead')).toBeUndefined();
  });

  it('a 503 from EC2 is a clear error carrying the AWS code, and nothing is rebooted', async () => {
    const { node, info } = managedNode();
    aws.faults.set('ec2', { status: 503, times: 1 });
    const err = await cloud.rebootInstance(info.instanceId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CloudApiError);
    expect(err).toMatchObject({
      code: 'RequestLimitExceeded',
      status: 503,
      retryable: true,
      operation: 'RebootInstances',
      instanceId: info.instanceId,
    });
    expect((err as Error).message).toContain(
      `RebootInstances ${info.instanceId} failed: RequestLimitExceeded (HTTP 503)`,
    );
    expect(ready(node.metadata.name)).toBe(true);
  });

  it('rebooting an unknown instance fails with InvalidInstanceID.NotFound', async () => {
    await expect(cloud.rebootInstance('i-0000000000000dead')).rejects.toMatchObject({
      code: 'InvalidInstanceID.NotFound',
      retryable: false,
    });
  });

  it('a hung endpoint becomes a timeout error instead of a stuck call', async () => {
    const { info } = managedNode();
    const impatient = createCloudPort({
      region: 'us-east-1',
      endpoint: aws.url,
      maxAttempts: 1,
      requestTimeoutMs: 100,
      credentials: CREDENTIALS,
    });
    aws.faults.set('ec2', { delayMs: 5_000, times: 1 });
    const err = await impatient.describeInstance(info.instanceId).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CloudApiError);
    expect(err).toMatchObject({ code: 'TimeoutError', retryable: true });
  });
});
