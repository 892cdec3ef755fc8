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
  it('tags an instance (CreateTags); the tags show in DescribeInstances; an unknown instance is a clear error', async () => {
    const { info } = managedNode();
    await cloud.tagInstance(info.instanceId, {
      'gpu-medic:incident': 'inc-1',
      'gpu-medic:gpu-uuid': 'GPU-x',
    });
    const [instance] = cluster.describeInstances([info.instanceId]);
    expect(instance?.tags).toMatchObject({ 'gpu-medic:incident': 'inc-1', 'gpu-medic:gpu-uuid': 'GPU-x' });
    const err = await cloud.tagInstance('i-0000000000000dead', { k: 'v' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CloudApiError);
    expect(err).toMatchObject({ code: 'InvalidInstanceID.NotFound', retryable: false });
  });

  it('names ec2:CreateTags when tagging is denied', async () => {
    const { info } = managedNode();
    aws.faults.add('ec2', { operation: 'CreateTags', status: 403, code: 'UnauthorizedOperation' });
    const err = await cloud.tagInstance(info.instanceId, { k: 'v' }).catch((e: unknown) => e);
    expect((err as Error).message).toContain('ec2:CreateTags');
  });

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
    expect((err as Error).message).toBe(
      `EC2 kept throttling gpu-medic (RequestLimitExceeded, HTTP 503) on RebootInstances ${info.instanceId}, after retries with backoff`,
    );
    expect(ready(node.metadata.name)).toBe(true);
  });

  it('rebooting an unknown instance fails with InvalidInstanceID.NotFound: "no longer exists", not retryable', async () => {
    const err = await cloud.rebootInstance('i-0000000000000dead').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'InvalidInstanceID.NotFound', retryable: false });
    expect((err as Error).message).toBe(
      'instance i-0000000000000dead no longer exists (InvalidInstanceID.NotFound from RebootInstances)',
    );
  });
});

/** The SDK's own retry (3 attempts, backoff) is on, as in production: count what the simulator served. */
describe('CloudPort retries only where retrying can help', () => {
  let retrying: CloudPort;
  beforeEach(() => {
    retrying = createCloudPort({ region: 'us-east-1', endpoint: aws.url, credentials: CREDENTIALS });
  });
  const reboots = () => aws.log.find('RebootInstances').map((r) => r.status);

  it('UnauthorizedOperation: one call, not retried, and the error names the IAM action to grant', async () => {
    const { node, info } = managedNode();
    aws.faults.set('ec2', { status: 403, operation: 'RebootInstances' });
    const err = await retrying.rebootInstance(info.instanceId).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UnauthorizedOperation', status: 403, retryable: false });
    expect((err as Error).message).toMatch(
      /^gpu-medic's IAM role may not ec2:RebootInstances \(UnauthorizedOperation, HTTP 403\)/,
    );
    expect(reboots()).toEqual([403]);
    expect(ready(node.metadata.name)).toBe(true);
  });

  it('AccessDenied from Auto Scaling: one call, names autoscaling:TerminateInstanceInAutoScalingGroup', async () => {
    const { info } = managedNode();
    aws.faults.set('autoscaling', { status: 403, operation: 'TerminateInstanceInAutoScalingGroup' });
    const err = await retrying.terminateInAutoScalingGroup(info.instanceId).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'AccessDenied', retryable: false });
    expect((err as Error).message).toContain(
      "gpu-medic's IAM role may not autoscaling:TerminateInstanceInAutoScalingGroup",
    );
    expect(aws.log.find('TerminateInstanceInAutoScalingGroup').map((r) => r.status)).toEqual([403]);
  });

  it('InvalidInstanceID.NotFound: one call, not retried', async () => {
    await expect(retrying.rebootInstance('i-0000000000000dead')).rejects.toMatchObject({
      retryable: false,
    });
    expect(reboots()).toEqual([400]);
  });

  it('RequestLimitExceeded twice: retried with backoff, the third call reboots', async () => {
    const { node, info } = managedNode();
    aws.faults.set('ec2', { status: 503, operation: 'RebootInstances', times: 2 });
    await retrying.rebootInstance(info.instanceId);
    expect(reboots()).toEqual([503, 503, 200]);
    expect(ready(node.metadata.name)).toBe(false);
  });

  it('a 500 InternalError that persists: retried a bounded number of times, then a clear retryable error', async () => {
    const { info } = managedNode();
    aws.faults.set('ec2', { status: 500, operation: 'RebootInstances' });
    const err = await retrying.rebootInstance(info.instanceId).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'InternalError', status: 500, retryable: true });
    expect((err as Error).message).toBe(
      `EC2 had an internal error (InternalError, HTTP 500) on RebootInstances ${info.instanceId}`,
    );
    expect(reboots()).toEqual([500, 500, 500]);
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
