/**
 * Shared ground of the src/sim/aws-server*.test.ts suites: a CloudEffects that records every call, three
 * instances (two in an Auto Scaling group, one standalone Karpenter node) and the reset each test starts from.
 */
import type { SimAws } from '../../src/sim/aws-server.js';
import type { CloudEffects, InstanceState, SimInstance } from '../../src/sim/cloud-effects.js';

/** A tiny CloudEffects that keeps instances in a map and records every call. */
export class RecordingEffects implements CloudEffects {
  readonly calls: string[] = [];
  readonly instances = new Map<string, SimInstance>();

  add(id: string, extra: Partial<SimInstance> = {}): void {
    this.instances.set(id, {
      instanceId: id,
      instanceType: 'p5.48xlarge',
      availabilityZone: 'us-east-1a',
      state: 'running',
      privateDnsName: 'ip-10-0-1-17.ec2.internal',
      launchTime: '2025-01-01T00:00:00.000Z',
      tags: { 'eks:cluster-name': 'sim', Name: id },
      ...extra,
    });
  }

  describeInstances(ids?: string[]): SimInstance[] {
    this.calls.push(`describe ${ids?.join(',') ?? '*'}`);
    const all = [...this.instances.values()];
    return ids ? all.filter((i) => ids.includes(i.instanceId)) : all;
  }

  rebootInstance(id: string): boolean {
    this.calls.push(`reboot ${id}`);
    const i = this.instances.get(id);
    return i !== undefined && i.state !== 'terminated';
  }

  terminateInstance(id: string, opts: { decrementDesiredCapacity: boolean }): InstanceState | undefined {
    this.calls.push(`terminate ${id} decrement=${opts.decrementDesiredCapacity}`);
    const i = this.instances.get(id);
    if (!i) return undefined;
    const previous = i.state;
    i.state = 'shutting-down';
    return previous;
  }
}

export const NODE_A = 'i-0123456789abcdef0';
export const NODE_B = 'i-0fedcba9876543210';
export const STANDALONE = 'i-0aaaaaaaaaaaaaaaa';

/**
 * Puts the three instances back and empties the simulator's log, faults, Bedrock script and stored
 * CloudWatch / SNS / Lambda calls, so each test starts from the same AWS.
 */
export function resetSimAws(aws: SimAws, effects: RecordingEffects): void {
  effects.instances.clear();
  effects.calls.length = 0;
  effects.add(NODE_A, { autoScalingGroup: 'eks-gpu-p5-ng' });
  effects.add(NODE_B, {
    autoScalingGroup: 'eks-gpu-p5-ng',
    availabilityZone: 'us-east-1b',
    tags: { team: 'ml' },
  });
  effects.add(STANDALONE, { instanceType: 'p4d.24xlarge', tags: { 'karpenter.sh/nodepool': 'gpu' } });
  aws.log.clear();
  aws.faults.clear();
  aws.bedrock.reset();
  aws.state.cloudwatch.length = 0;
  aws.state.sns.length = 0;
  aws.state.lambda.length = 0;
}
