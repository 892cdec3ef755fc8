/** The DescribeNodegroup adapter with the real @aws-sdk/client-eks against the simulated AWS endpoint. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type SimAws, startSimAws } from '../sim/aws-server.js';
import { SimCluster } from '../sim/cluster.js';
import { ManualClock } from '../sim/sim-clock.js';
import { createEksAutoRepairPort, EksApiError } from './eks.js';

let cluster: SimCluster;
let aws: SimAws;
let now: number;

beforeEach(async () => {
  cluster = new SimCluster({ nodes: 4, clock: new ManualClock() });
  aws = await startSimAws(cluster);
  now = 1_000_000;
});
afterEach(async () => {
  cluster.close();
  await aws.close();
});

const port = (clusterName = 'sim-cluster') =>
  createEksAutoRepairPort({
    region: 'us-east-1',
    clusterName,
    endpoint: aws.url,
    maxAttempts: 1,
    credentials: { accessKeyId: 'AKIDSIM', secretAccessKey: 'sim' },
    ttlMs: 60_000,
    failureTtlMs: 10_000,
    now: () => now,
  });

describe('EKS node auto repair setting (DescribeNodegroup)', () => {
  it('reads nodeRepairConfig once per node group, concurrent asks included, until the TTL passes', async () => {
    cluster.setNodeRepair('gpu-ng-1', { enabled: true });
    const p = port();
    const answers = await Promise.all([p.nodeRepairOf('gpu-ng-1'), p.nodeRepairOf('gpu-ng-1')]);
    expect(answers).toEqual([{ enabled: true }, { enabled: true }]);
    expect(await p.nodeRepairOf('gpu-ng-1')).toEqual({ enabled: true });
    expect(aws.log.find('DescribeNodegroup')).toHaveLength(1);
    // Another group is its own call; absent nodeRepairConfig means off (the API default).
    expect(await p.nodeRepairOf('system-ng')).toEqual({ enabled: false });
    expect(aws.log.find('DescribeNodegroup')).toHaveLength(2);
    cluster.setNodeRepair('gpu-ng-1', { enabled: false });
    now += 61_000;
    expect(await p.nodeRepairOf('gpu-ng-1')).toEqual({ enabled: false });
    expect(aws.log.find('DescribeNodegroup')).toHaveLength(3);
  });

  it('a group EKS does not know (self-managed, wearing the label) has no auto repair', async () => {
    expect(await port().nodeRepairOf('self-managed-gpus')).toBeUndefined();
  });

  it('AccessDenied is an EksApiError, remembered for the failure TTL (one call, not one per fault)', async () => {
    aws.faults.set('eks', { status: 403, code: 'AccessDeniedException', message: 'not authorized' });
    const p = port();
    await expect(p.nodeRepairOf('gpu-ng-1')).rejects.toBeInstanceOf(EksApiError);
    await expect(p.nodeRepairOf('gpu-ng-1')).rejects.toMatchObject({ code: 'AccessDeniedException' });
    expect(aws.log.requests.filter((r) => r.service === 'eks')).toHaveLength(1);
    aws.faults.clear();
    now += 11_000;
    expect(await p.nodeRepairOf('gpu-ng-1')).toEqual({ enabled: false });
  });
});
