/**
 * The simulated AWS endpoint in the EC2 and Auto Scaling query protocols, with injected faults and requests it
 * does not know. CloudWatch, SNS and Lambda: aws-server-notify.test.ts; Bedrock: aws-server-bedrock.test.ts.
 */
import {
  AutoScalingClient,
  DescribeAutoScalingInstancesCommand,
  TerminateInstanceInAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import {
  DescribeInstancesCommand,
  EC2Client,
  RebootInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { awsClientConfig } from '../../test/support/aws.js';
import {
  NODE_A,
  NODE_B,
  RecordingEffects,
  resetSimAws,
  STANDALONE,
} from '../../test/support/sim-aws-effects.js';
import { type SimAws, startSimAws } from './aws-server.js';

let effects: RecordingEffects;
let aws: SimAws;

beforeAll(async () => {
  effects = new RecordingEffects();
  aws = await startSimAws(effects);
});
afterAll(async () => {
  await aws.close();
});
beforeEach(() => {
  resetSimAws(aws, effects);
});
afterEach(() => {
  aws.log.assertNoUnexpected();
});

function lastBody(): string {
  return aws.log.requests.at(-1)?.body ?? '';
}

describe('EC2 (query protocol, XML answers)', () => {
  const ec2 = () => new EC2Client(awsClientConfig(aws.url));

  it('reboots an instance through the effects, sent as a form body', async () => {
    const out = await ec2().send(new RebootInstancesCommand({ InstanceIds: [NODE_A] }));
    expect(out.$metadata.httpStatusCode).toBe(200);
    expect(effects.calls).toContain(`reboot ${NODE_A}`);
    const req = aws.log.find('RebootInstances')[0];
    expect(req?.service).toBe('ec2');
    expect(req?.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    expect(req?.body).toContain('Action=RebootInstances');
    expect(req?.body).toContain('Version=2016-11-15');
    expect(req?.body).toContain(`InstanceId.1=${NODE_A}`);
  });

  it('answers InvalidInstanceID.NotFound in EC2 error XML and reboots nothing', async () => {
    const err = await ec2()
      .send(new RebootInstancesCommand({ InstanceIds: [NODE_A, 'i-0000000000000dead'] }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'InvalidInstanceID.NotFound', $metadata: { httpStatusCode: 400 } });
    expect((err as Error).message).toContain('i-0000000000000dead');
    expect(effects.calls.filter((c) => c.startsWith('reboot'))).toEqual([]);
    expect(aws.log.requests.at(-1)?.status).toBe(400);
  });

  it('rejects a malformed instance id as InvalidInstanceID.Malformed', async () => {
    const err = await ec2()
      .send(new RebootInstancesCommand({ InstanceIds: ['node-1'] }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'InvalidInstanceID.Malformed' });
  });

  it('honours DryRun with the DryRunOperation error and no effect', async () => {
    const err = await ec2()
      .send(new RebootInstancesCommand({ InstanceIds: [NODE_A], DryRun: true }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'DryRunOperation', $metadata: { httpStatusCode: 412 } });
    expect(effects.calls.filter((c) => c.startsWith('reboot'))).toEqual([]);
  });

  it('terminates and reports previous and current state', async () => {
    const out = await ec2().send(new TerminateInstancesCommand({ InstanceIds: [NODE_A] }));
    expect(out.TerminatingInstances).toEqual([
      {
        InstanceId: NODE_A,
        PreviousState: { Code: 16, Name: 'running' },
        CurrentState: { Code: 32, Name: 'shutting-down' },
      },
    ]);
    expect(effects.calls).toContain(`terminate ${NODE_A} decrement=false`);
  });

  it('describes instances filtered by InstanceId.N with placement, state, DNS and tags', async () => {
    const out = await ec2().send(new DescribeInstancesCommand({ InstanceIds: [NODE_B] }));
    const instances = out.Reservations?.flatMap((r) => r.Instances ?? []) ?? [];
    expect(instances).toHaveLength(1);
    expect(instances[0]).toMatchObject({
      InstanceId: NODE_B,
      InstanceType: 'p5.48xlarge',
      Placement: { AvailabilityZone: 'us-east-1b' },
      State: { Code: 16, Name: 'running' },
      PrivateDnsName: 'ip-10-0-1-17.ec2.internal',
      PrivateIpAddress: '10.0.1.17',
      Tags: [{ Key: 'team', Value: 'ml' }],
    });
    expect(instances[0]?.LaunchTime).toEqual(new Date('2025-01-01T00:00:00.000Z'));
    expect(lastBody()).toContain(`InstanceId.1=${NODE_B}`);
  });

  it('describes by Filter (tag and state) and rejects an unknown filter name', async () => {
    const out = await ec2().send(
      new DescribeInstancesCommand({ Filters: [{ Name: 'tag:karpenter.sh/nodepool', Values: ['gpu'] }] }),
    );
    expect(out.Reservations?.flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId)).toEqual([
      STANDALONE,
    ]);
    const err = await ec2()
      .send(new DescribeInstancesCommand({ Filters: [{ Name: 'colour', Values: ['red'] }] }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'InvalidParameterValue' });
  });

  it('answers NotFound when describing an unknown id', async () => {
    const err = await ec2()
      .send(new DescribeInstancesCommand({ InstanceIds: ['i-0000000000000beef'] }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'InvalidInstanceID.NotFound' });
  });
});

describe('Auto Scaling (query protocol)', () => {
  const asg = () => new AutoScalingClient(awsClientConfig(aws.url));

  it('terminates in the group, passing ShouldDecrementDesiredCapacity, and returns an Activity', async () => {
    const out = await asg().send(
      new TerminateInstanceInAutoScalingGroupCommand({
        InstanceId: NODE_A,
        ShouldDecrementDesiredCapacity: false,
      }),
    );
    expect(out.Activity).toMatchObject({
      AutoScalingGroupName: 'eks-gpu-p5-ng',
      Description: `Terminating EC2 instance: ${NODE_A}`,
      StatusCode: 'InProgress',
    });
    expect(out.Activity?.ActivityId).toMatch(/^[0-9a-f-]{36}$/);
    expect(effects.calls).toContain(`terminate ${NODE_A} decrement=false`);
    expect(lastBody()).toContain('Version=2011-01-01');
    expect(lastBody()).toContain('ShouldDecrementDesiredCapacity=false');
  });

  it('refuses an instance outside any group with a query-protocol ValidationError', async () => {
    const err = await asg()
      .send(
        new TerminateInstanceInAutoScalingGroupCommand({
          InstanceId: STANDALONE,
          ShouldDecrementDesiredCapacity: true,
        }),
      )
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ValidationError', $metadata: { httpStatusCode: 400 } });
    expect((err as Error).message).toContain('No managed instance found');
    expect(effects.calls.filter((c) => c.startsWith('terminate'))).toEqual([]);
  });

  it('describes group membership and lifecycle state', async () => {
    effects.terminateInstance(NODE_B, { decrementDesiredCapacity: false });
    const out = await asg().send(
      new DescribeAutoScalingInstancesCommand({ InstanceIds: [NODE_A, NODE_B, STANDALONE] }),
    );
    expect(out.AutoScalingInstances).toEqual([
      expect.objectContaining({
        InstanceId: NODE_A,
        AutoScalingGroupName: 'eks-gpu-p5-ng',
        AvailabilityZone: 'us-east-1a',
        LifecycleState: 'InService',
        HealthStatus: 'HEALTHY',
      }),
      expect.objectContaining({ InstanceId: NODE_B, LifecycleState: 'Terminating' }),
    ]);
    expect(lastBody()).toContain(`InstanceIds.member.1=${NODE_A}`);
  });
});

describe('fault injection', () => {
  it('answers an injected error N times in the service protocol, then serves normally', async () => {
    aws.faults.set('ec2', { status: 503, times: 2 });
    const ec2 = new EC2Client(awsClientConfig(aws.url));
    const reboot = () =>
      ec2.send(new RebootInstancesCommand({ InstanceIds: [NODE_A] })).catch((e: unknown) => e);
    expect(await reboot()).toMatchObject({
      name: 'RequestLimitExceeded',
      $metadata: { httpStatusCode: 503 },
    });
    expect(await reboot()).toMatchObject({ name: 'RequestLimitExceeded' });
    expect(await reboot()).toMatchObject({ $metadata: { httpStatusCode: 200 } });
    expect(effects.calls.filter((c) => c.startsWith('reboot'))).toEqual([`reboot ${NODE_A}`]);
  });

  it.each([
    [403, undefined, 'UnauthorizedOperation', /not authorized to perform: ec2:RebootInstances/],
    [400, 'InvalidInstanceID.NotFound', 'InvalidInstanceID.NotFound', /InvalidInstanceID\.NotFound/],
    [503, undefined, 'RequestLimitExceeded', /^Request limit exceeded\.$/],
    [500, undefined, 'InternalError', /^An internal error has occurred$/],
  ] as const)('EC2 answers an injected %i as %s in EC2 error XML, for that operation only', async (status, code, name, message) => {
    aws.faults.set('ec2', { status, ...(code ? { code } : {}), operation: 'RebootInstances', times: 2 });
    const ec2 = new EC2Client(awsClientConfig(aws.url));
    // A fault for RebootInstances leaves the other actions alone.
    await expect(ec2.send(new DescribeInstancesCommand({ InstanceIds: [NODE_A] }))).resolves.toBeDefined();
    // On the wire: EC2's own error document (not the ErrorResponse of the other query services).
    const raw = await fetch(aws.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
        authorization:
          'AWS4-HMAC-SHA256 Credential=AKIDSIM/20250101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00',
      },
      body: `Action=RebootInstances&Version=2016-11-15&InstanceId.1=${NODE_A}`,
    });
    expect(raw.status).toBe(status);
    expect(await raw.text()).toMatch(
      new RegExp(
        `<Response><Errors><Error><Code>${name.replace('.', '\\.')}</Code><Message>[^<]+</Message></Error></Errors><RequestID>[0-9a-f-]{36}</RequestID></Response>$`,
      ),
    );
    const err = await ec2
      .send(new RebootInstancesCommand({ InstanceIds: [NODE_A] }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name, $metadata: { httpStatusCode: status } });
    expect((err as Error).message).toMatch(message);
    expect(effects.calls.filter((c) => c.startsWith('reboot'))).toEqual([]);
    // Used up: the next reboot is served.
    await expect(ec2.send(new RebootInstancesCommand({ InstanceIds: [NODE_A] }))).resolves.toBeDefined();
  });

  it('queues several faults per service; the first that matches the operation answers', async () => {
    aws.faults.set('ec2', { status: 503, operation: 'RebootInstances', times: 1 });
    aws.faults.add('ec2', { status: 500, times: 1 });
    const ec2 = new EC2Client(awsClientConfig(aws.url));
    const describe = () =>
      ec2.send(new DescribeInstancesCommand({ InstanceIds: [NODE_A] })).catch((e: unknown) => e);
    const reboot = () =>
      ec2.send(new RebootInstancesCommand({ InstanceIds: [NODE_A] })).catch((e: unknown) => e);
    expect(await describe()).toMatchObject({ name: 'InternalError' });
    expect(await reboot()).toMatchObject({ name: 'RequestLimitExceeded' });
    expect(await reboot()).toMatchObject({ $metadata: { httpStatusCode: 200 } });
    expect(await describe()).toMatchObject({ $metadata: { httpStatusCode: 200 } });
  });

  it.each([
    ['sns', 500, 'InternalErrorException'],
    ['cloudwatch', 500, 'InternalServiceFault'],
    ['lambda', 429, 'TooManyRequestsException'],
  ] as const)('%s fault %i surfaces as %s', async (service, status, name) => {
    aws.faults.set(service, { status, times: 1 });
    const send = {
      sns: () =>
        new SNSClient(awsClientConfig(aws.url)).send(
          new PublishCommand({ TopicArn: 'arn:aws:sns:us-east-1:123456789012:t', Message: 'm' }),
        ),
      cloudwatch: () =>
        new CloudWatchClient(awsClientConfig(aws.url)).send(
          new PutMetricDataCommand({ Namespace: 'GpuMedic', MetricData: [{ MetricName: 'x', Value: 1 }] }),
        ),
      lambda: () =>
        new LambdaClient(awsClientConfig(aws.url)).send(
          new InvokeCommand({ FunctionName: 'f', InvocationType: 'Event' }),
        ),
    }[service];
    const err = await send().catch((e: unknown) => e);
    expect(err).toMatchObject({ name, $metadata: { httpStatusCode: status } });
    await expect(send()).resolves.toBeDefined();
  });
});

describe('requests the fake does not know', () => {
  it('records an unknown EC2 action as unexpected and answers 400 in EC2 XML', async () => {
    const res = await fetch(aws.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
        authorization:
          'AWS4-HMAC-SHA256 Credential=AKIDSIM/20250101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0',
      },
      body: 'Action=StopInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0',
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('<Response><Errors><Error><Code>InvalidAction</Code>');
    expect(aws.log.unexpected.map((r) => [r.service, r.operation])).toEqual([['ec2', 'StopInstances']]);
    aws.log.clear();
  });

  it.each<[string, Record<string, string>, string, string]>([
    [
      'a malformed JSON body',
      {
        'x-amz-target': 'GraniteServiceVersion20100801.PutMetricData',
        'content-type': 'application/x-amz-json-1.0',
      },
      '{"Namespace":',
      'monitoring',
    ],
    [
      'a service signed for another scope',
      { 'content-type': 'application/x-www-form-urlencoded' },
      'Action=Publish&Version=2010-03-31',
      'ec2',
    ],
    [
      'an unknown JSON target',
      { 'x-amz-target': 'AWSCognitoIdentityService.GetId', 'content-type': 'application/x-amz-json-1.1' },
      '{}',
      'cognito-identity',
    ],
    [
      'an unsigned request',
      { 'content-type': 'application/x-www-form-urlencoded' },
      'Action=DescribeInstances&Version=2016-11-15',
      '',
    ],
  ])('answers 400-class for %s, records it unexpected, and keeps serving', async (_l, headers, body, scope) => {
    const auth: Record<string, string> = scope
      ? {
          authorization: `AWS4-HMAC-SHA256 Credential=AKIDSIM/20250101/us-east-1/${scope}/aws4_request, SignedHeaders=host, Signature=0`,
        }
      : {};
    const res = await fetch(aws.url, { method: 'POST', headers: { ...headers, ...auth }, body });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.headers.get('x-amzn-requestid')).toBeTruthy();
    expect(aws.log.unexpected).toHaveLength(1);
    aws.log.clear();
    const ok = await new EC2Client(awsClientConfig(aws.url)).send(new DescribeInstancesCommand({}));
    expect(ok.Reservations).toHaveLength(3);
  });

  it('lists every action served, by service, for the IAM policy check', async () => {
    await new EC2Client(awsClientConfig(aws.url)).send(new DescribeInstancesCommand({}));
    await new SNSClient(awsClientConfig(aws.url)).send(
      new PublishCommand({ TopicArn: 'arn:aws:sns:us-east-1:123456789012:t', Message: 'm' }),
    );
    expect(aws.log.requests.map((r) => `${r.service}:${r.operation}`)).toEqual([
      'ec2:DescribeInstances',
      'sns:Publish',
    ]);
  });
});
