/** iam/: the IAM policy allows exactly the AWS actions the code calls, each scoped to the cluster. */
import { describe, expect, it } from 'vitest';
import { defaultBedrockModelIdFor } from '../src/config/bedrock-model.js';
import { configData, type Obj, obj } from './support/manifests.js';
import { asList, iamPolicyPath, loadIamActions, loadIamPolicy } from './support/rbac.js';

// ---- IAM ---------------------------------------------------------------------------------------------

const expectedIamActions = [
  'aps:QueryMetrics',
  'autoscaling:DescribeAutoScalingInstances',
  'autoscaling:TerminateInstanceInAutoScalingGroup',
  'bedrock:InvokeModel',
  'cloudwatch:PutMetricData',
  'ec2:CreateTags',
  'ec2:DescribeInstances',
  'ec2:RebootInstances',
  'ec2:TerminateInstances',
  'eks:DescribeNodegroup',
  'lambda:InvokeFunction',
  'sns:Publish',
];

describe('IAM policy', () => {
  const policy = loadIamPolicy();
  const statementsFor = (action: string) => policy.Statement.filter((s) => asList(s.Action).includes(action));

  it('allows exactly the AWS actions the code calls', () => {
    expect(policy.Version).toBe('2012-10-17');
    expect(loadIamActions()).toEqual(expectedIamActions);
    for (const s of policy.Statement) {
      expect(s.Effect).toBe('Allow');
      for (const a of asList(s.Action)) expect(a).not.toContain('*');
    }
  });

  it('reads node groups (EKS node auto repair) only in the one cluster', () => {
    const statements = statementsFor('eks:DescribeNodegroup');
    expect(statements).toHaveLength(1);
    for (const s of statements) {
      expect(asList(s.Resource)).toEqual(['arn:aws:eks:us-east-1:111122223333:nodegroup/my-gpu-cluster/*/*']);
    }
  });

  it('queries (DCGM_SOURCE=prometheus, optional) only one Amazon Managed Prometheus workspace', () => {
    const statements = statementsFor('aps:QueryMetrics');
    expect(statements.map((s) => [s.Sid, asList(s.Action), asList(s.Resource)])).toEqual([
      [
        'QueryTheAmpWorkspace',
        ['aps:QueryMetrics'],
        ['arn:aws:aps:us-east-1:111122223333:workspace/ws-EXAMPLE'],
      ],
    ]);
  });

  it('uses Resource "*" only where AWS has no resource-level permission, or under a condition', () => {
    for (const s of policy.Statement) {
      if (!asList(s.Resource).includes('*')) continue;
      const actions = asList(s.Action);
      const describeOnly = actions.every((a) => /:Describe/.test(a));
      expect(describeOnly || s.Condition !== undefined, s.Sid).toBe(true);
    }
  });

  it.each([
    ['ec2:RebootInstances', 'aws:ResourceTag/'],
    ['ec2:TerminateInstances', 'aws:ResourceTag/'],
    ['ec2:CreateTags', 'aws:ResourceTag/'],
    ['autoscaling:TerminateInstanceInAutoScalingGroup', 'autoscaling:ResourceTag/'],
  ])('scopes %s to the cluster by a %s condition in every statement', (action, keyPrefix) => {
    const statements = statementsFor(action);
    expect(statements.length).toBeGreaterThan(0);
    for (const s of statements) {
      const keys = Object.values(s.Condition ?? {}).flatMap((c) => Object.keys(c));
      expect(
        keys.some((k) => k.startsWith(keyPrefix)),
        s.Sid,
      ).toBe(true);
      expect(
        keys.some((k) => k.includes('eks:cluster-name') || k.includes('kubernetes.io/cluster/')),
        s.Sid,
      ).toBe(true);
    }
  });

  it('lets ec2:CreateTags write only gpu-medic: tag keys (RMA evidence), never another tag', () => {
    const statements = statementsFor('ec2:CreateTags');
    expect(statements).toHaveLength(2);
    for (const s of statements) {
      expect(asList(s.Action), s.Sid).toEqual(['ec2:CreateTags']);
      expect(s.Condition?.['ForAllValues:StringLike']?.['aws:TagKeys'], s.Sid).toEqual(['gpu-medic:*']);
    }
  });

  it('limits PutMetricData to the CloudWatch namespace configured in the ConfigMap', () => {
    const [s] = statementsFor('cloudwatch:PutMetricData');
    expect(s?.Condition?.StringEquals?.['cloudwatch:namespace']).toBe(configData.CLOUDWATCH_NAMESPACE);
  });

  it('names the SNS topic and the Lambda function by ARN', () => {
    for (const r of statementsFor('sns:Publish').flatMap((s) => asList(s.Resource)))
      expect(r).toMatch(/^arn:aws:sns:[a-z0-9-]+:\d{12}:[\w-]+$/);
    for (const r of statementsFor('lambda:InvokeFunction').flatMap((s) => asList(s.Resource)))
      expect(r).toMatch(/^arn:aws:lambda:[a-z0-9-]+:\d{12}:function:[\w-]+(:\*)?$/);
  });

  it('allows the default Bedrock model through its cross-Region profile, in any destination Region', () => {
    const statements = statementsFor('bedrock:InvokeModel');
    const resources = statements.flatMap((s) => asList(s.Resource));
    const profile = `inference-profile/${defaultBedrockModelIdFor('us-east-1')}`;
    expect(profile).toBe('inference-profile/us.anthropic.claude-sonnet-4-6');
    expect(resources.some((r) => r.endsWith(profile))).toBe(true);
    const model = statements.find((s) =>
      asList(s.Resource).includes('arn:aws:bedrock:*::foundation-model/anthropic.claude-sonnet-4-6'),
    );
    expect(
      JSON.stringify(model?.Condition?.StringEquals?.['bedrock:InferenceProfileArn']).endsWith(`${profile}"`),
    ).toBe(true);
  });

  it('ships a Pod Identity trust policy', () => {
    const trust = loadIamPolicy(
      iamPolicyPath.replace('gpu-medic-policy.json', 'trust-policy-pod-identity.json'),
    );
    const [s] = trust.Statement;
    expect(obj((s as unknown as Obj).Principal, 'Principal').Service).toBe('pods.eks.amazonaws.com');
    expect(asList(s?.Action).sort()).toEqual(['sts:AssumeRole', 'sts:TagSession']);
  });
});
