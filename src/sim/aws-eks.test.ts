/**
 * What the simulator knows of EKS beyond EC2: DescribeNodegroup (REST-JSON) with `nodeRepairConfig`, and
 * EKS Auto Mode instances, which EC2 refuses to reboot or terminate for the account (EC2 managed instances).
 * Real SDK clients (@aws-sdk/client-eks, client-ec2) against the simulated endpoint.
 */
import {
  DescribeInstancesCommand,
  EC2Client,
  RebootInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { DescribeNodegroupCommand, EKSClient, ListNodegroupsCommand } from '@aws-sdk/client-eks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { awsClientConfig } from '../../test/support/aws.js';
import { type SimAws, startSimAws } from './aws-server.js';
import { SimCluster } from './cluster.js';
import { ManualClock } from './sim-clock.js';

let cluster: SimCluster;
let aws: SimAws;

beforeEach(async () => {
  cluster = new SimCluster({ nodes: 4, karpenterNodes: 0, autoModeNodes: 1, clock: new ManualClock() });
  aws = await startSimAws(cluster);
});
afterEach(async () => {
  cluster.close();
  await aws.close();
});

const eks = () => new EKSClient(awsClientConfig(aws.url));
const ec2 = () => new EC2Client(awsClientConfig(aws.url));

describe('EKS DescribeNodegroup', () => {
  it('answers the node group, without nodeRepairConfig until it was set, then with it', async () => {
    const before = await eks().send(
      new DescribeNodegroupCommand({ clusterName: 'sim-cluster', nodegroupName: 'gpu-ng-1' }),
    );
    expect(before.nodegroup).toMatchObject({
      nodegroupName: 'gpu-ng-1',
      clusterName: 'sim-cluster',
      status: 'ACTIVE',
      instanceTypes: ['p5.48xlarge'],
      amiType: 'AL2023_x86_64_NVIDIA',
    });
    expect(before.nodegroup?.createdAt).toBeInstanceOf(Date);
    expect(before.nodegroup?.nodeRepairConfig).toBeUndefined();
    cluster.setNodeRepair('gpu-ng-1', { enabled: true });
    const after = await eks().send(
      new DescribeNodegroupCommand({ clusterName: 'sim-cluster', nodegroupName: 'gpu-ng-1' }),
    );
    expect(after.nodegroup?.nodeRepairConfig).toEqual({ enabled: true });
    const req = aws.log.find('DescribeNodegroup')[0];
    expect(req?.method).toBe('GET');
    expect(req?.path).toBe('/clusters/sim-cluster/node-groups/gpu-ng-1');
  });

  it('an unknown node group or cluster is ResourceNotFoundException', async () => {
    await expect(
      eks().send(new DescribeNodegroupCommand({ clusterName: 'sim-cluster', nodegroupName: 'nope' })),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 404 } });
    await expect(
      eks().send(new DescribeNodegroupCommand({ clusterName: 'other', nodegroupName: 'gpu-ng-1' })),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });

  it('refuses (and records as unexpected) an EKS call gpu-medic never makes', async () => {
    await expect(eks().send(new ListNodegroupsCommand({ clusterName: 'sim-cluster' }))).rejects.toThrow();
    expect(aws.log.unexpected).toHaveLength(1);
    aws.log.clear();
  });
});

describe('EKS Auto Mode instances through EC2', () => {
  const autoInstance = () => {
    const node = cluster
      .listNodes()
      .find((n) => n.metadata.labels?.['eks.amazonaws.com/compute-type'] === 'auto');
    return cluster.nodeInfo(node?.metadata.name ?? '')?.instanceId ?? '';
  };

  it('RebootInstances and TerminateInstances are UnauthorizedOperation, and nothing happens', async () => {
    const id = autoInstance();
    expect(id).toMatch(/^i-/);
    await expect(ec2().send(new RebootInstancesCommand({ InstanceIds: [id] }))).rejects.toMatchObject({
      name: 'UnauthorizedOperation',
      $metadata: { httpStatusCode: 403 },
    });
    await expect(ec2().send(new TerminateInstancesCommand({ InstanceIds: [id] }))).rejects.toMatchObject({
      name: 'UnauthorizedOperation',
    });
    await expect(
      ec2().send(new TerminateInstancesCommand({ InstanceIds: [id], DryRun: true })),
    ).rejects.toMatchObject({ name: 'UnauthorizedOperation' });
    expect(cluster.describeInstances([id])[0]?.state).toBe('running');
    expect(cluster.nodeInfo(cluster.nodeByInstanceId(id)?.metadata.name ?? '')?.rebooting).toBe(false);
  });

  it('DescribeInstances names EKS as the instance operator', async () => {
    const id = autoInstance();
    const out = await ec2().send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    const instance = out.Reservations?.[0]?.Instances?.[0];
    expect(instance?.InstanceId).toBe(id);
    expect(instance?.Operator).toEqual({ Managed: true, Principal: 'eks.amazonaws.com' });
  });
});
