import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeTagsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { awsClientConfig } from '../../test/support/aws.js';
import { type SimAws, startSimAws } from './aws-server.js';
import type { CloudEffects, InstanceState, SimInstance } from './cloud-effects.js';

/** Instances in a map; tags written in place, as the cluster model does. */
class TaggedEffects implements CloudEffects {
  readonly instances = new Map<string, SimInstance>();
  add(id: string, state: InstanceState = 'running'): void {
    this.instances.set(id, {
      instanceId: id,
      instanceType: 'p5.48xlarge',
      availabilityZone: 'us-east-1a',
      state,
      privateDnsName: 'ip-10-0-1-17.ec2.internal',
      launchTime: '2025-01-01T00:00:00.000Z',
      tags: { 'eks:cluster-name': 'sim' },
    });
  }
  describeInstances(ids?: string[]): SimInstance[] {
    const all = [...this.instances.values()];
    return (ids ? all.filter((i) => ids.includes(i.instanceId)) : all).map((i) => structuredClone(i));
  }
  rebootInstance(): boolean {
    return false;
  }
  terminateInstance(): InstanceState | undefined {
    return undefined;
  }
  tagInstance(id: string, tags: Record<string, string>): boolean {
    const i = this.instances.get(id);
    if (!i) return false;
    Object.assign(i.tags, tags);
    return true;
  }
}

const A = 'i-0123456789abcdef0';
const GONE = 'i-0aaaaaaaaaaaaaaaa';
let effects: TaggedEffects;
let aws: SimAws;
const ec2 = () => new EC2Client(awsClientConfig(aws.url));

beforeAll(async () => {
  effects = new TaggedEffects();
  aws = await startSimAws(effects);
});
afterAll(async () => {
  await aws.close();
});
beforeEach(() => {
  effects.instances.clear();
  effects.add(A);
  effects.add(GONE, 'terminated');
  aws.log.clear();
});
afterEach(() => {
  aws.log.assertNoUnexpected();
});

describe('EC2 CreateTags / DescribeTags (query protocol)', () => {
  it('tags an instance; DescribeInstances and DescribeTags show the tags', async () => {
    await ec2().send(
      new CreateTagsCommand({
        Resources: [A],
        Tags: [
          { Key: 'gpu-medic:incident', Value: 'inc-1' },
          { Key: 'gpu-medic:gpu-uuid', Value: 'GPU-abc' },
        ],
      }),
    );
    const req = aws.log.find('CreateTags')[0];
    expect(req?.body).toContain('ResourceId.1=i-0123456789abcdef0');
    expect(req?.body).toContain('Tag.1.Key=gpu-medic%3Aincident');
    const out = await ec2().send(new DescribeInstancesCommand({ InstanceIds: [A] }));
    const tags = out.Reservations?.[0]?.Instances?.[0]?.Tags ?? [];
    expect(tags).toContainEqual({ Key: 'gpu-medic:incident', Value: 'inc-1' });
    const described = await ec2().send(
      new DescribeTagsCommand({
        Filters: [
          { Name: 'resource-id', Values: [A] },
          { Name: 'key', Values: ['gpu-medic:gpu-uuid'] },
        ],
      }),
    );
    expect(described.Tags).toEqual([
      { ResourceId: A, ResourceType: 'instance', Key: 'gpu-medic:gpu-uuid', Value: 'GPU-abc' },
    ]);
  });

  it('refuses an unknown instance with InvalidInstanceID.NotFound and tags nothing (all or nothing)', async () => {
    const err = await ec2()
      .send(
        new CreateTagsCommand({ Resources: [A, 'i-0000000000000dead'], Tags: [{ Key: 'k', Value: 'v' }] }),
      )
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'InvalidInstanceID.NotFound', $metadata: { httpStatusCode: 400 } });
    expect((err as Error).message).toContain('i-0000000000000dead');
    expect(effects.instances.get(A)?.tags.k).toBeUndefined();
  });

  it('tags a terminated instance EC2 still lists', async () => {
    await ec2().send(new CreateTagsCommand({ Resources: [GONE], Tags: [{ Key: 'k', Value: 'v' }] }));
    expect(effects.instances.get(GONE)?.tags.k).toBe('v');
  });

  it('refuses reserved aws: keys, and honours DryRun without tagging', async () => {
    const reserved = await ec2()
      .send(new CreateTagsCommand({ Resources: [A], Tags: [{ Key: 'aws:x', Value: 'v' }] }))
      .catch((e: unknown) => e);
    expect(reserved).toMatchObject({ name: 'InvalidParameterValue' });
    const dry = await ec2()
      .send(new CreateTagsCommand({ DryRun: true, Resources: [A], Tags: [{ Key: 'k', Value: 'v' }] }))
      .catch((e: unknown) => e);
    expect(dry).toMatchObject({ name: 'DryRunOperation' });
    expect(effects.instances.get(A)?.tags.k).toBeUndefined();
  });

  it('refuses more than 50 tags on one instance with TagLimitExceeded', async () => {
    const tags = Array.from({ length: 50 }, (_, n) => ({ Key: `k${n}`, Value: 'v' }));
    const err = await ec2()
      .send(new CreateTagsCommand({ Resources: [A], Tags: tags }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TagLimitExceeded' });
  });
});
