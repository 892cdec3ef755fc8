import {
  AutoScalingClient,
  DescribeAutoScalingInstancesCommand,
  TerminateInstanceInAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import { BedrockRuntimeClient, ConverseCommand } from '@aws-sdk/client-bedrock-runtime';
import {
  CloudWatchClient,
  PutMetricDataCommand,
  type PutMetricDataCommandInput,
} from '@aws-sdk/client-cloudwatch';
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
import { type SimAws, startSimAws } from './aws-server.js';
import type { CloudEffects, InstanceState, SimInstance } from './cloud-effects.js';

/** A tiny CloudEffects that keeps instances in a map and records every call. */
class RecordingEffects implements CloudEffects {
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

const NODE_A = 'i-0123456789abcdef0';
const NODE_B = 'i-0fedcba9876543210';
const STANDALONE = 'i-0aaaaaaaaaaaaaaaa';

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

describe('CloudWatch PutMetricData (JSON 1.0, as the 3.11xx client sends it)', () => {
  const cw = () => new CloudWatchClient(awsClientConfig(aws.url));

  it('stores datapoints with dimensions; the request is JSON 1.0 with the Granite target', async () => {
    await cw().send(
      new PutMetricDataCommand({
        Namespace: 'GpuMedic',
        MetricData: [
          {
            MetricName: 'UnhealthyGpus',
            Dimensions: [
              { Name: 'ClusterName', Value: 'sim' },
              { Name: 'NodeName', Value: 'ip-10-0-1-17' },
            ],
            Value: 2,
            Unit: 'Count',
            Timestamp: new Date('2025-06-01T12:00:00Z'),
          },
        ],
      }),
    );
    expect(aws.state.cloudwatch).toEqual([
      {
        namespace: 'GpuMedic',
        datum: expect.objectContaining({
          MetricName: 'UnhealthyGpus',
          Value: 2,
          Unit: 'Count',
          Dimensions: [
            { Name: 'ClusterName', Value: 'sim' },
            { Name: 'NodeName', Value: 'ip-10-0-1-17' },
          ],
        }),
      },
    ]);
    const req = aws.log.find('PutMetricData')[0];
    expect(req?.service).toBe('cloudwatch');
    expect(req?.headers['x-amz-target']).toBe('GraniteServiceVersion20100801.PutMetricData');
    expect(req?.headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(JSON.parse(req?.body ?? '')).toMatchObject({ Namespace: 'GpuMedic' });
  });

  it('accepts 1000 datums in one call (gzip-compressed by the SDK) and refuses 1001', async () => {
    const datum = (n: number) => ({
      MetricName: 'GpuTemp',
      Dimensions: [{ Name: 'Gpu', Value: String(n) }],
      Value: n,
    });
    await cw().send(
      new PutMetricDataCommand({
        Namespace: 'GpuMedic',
        MetricData: Array.from({ length: 1000 }, (_, n) => datum(n)),
      }),
    );
    expect(aws.state.cloudwatch).toHaveLength(1000);
    expect(aws.log.find('PutMetricData')[0]?.headers['content-encoding']).toBe('gzip');
    const err = await cw()
      .send(
        new PutMetricDataCommand({
          Namespace: 'GpuMedic',
          MetricData: Array.from({ length: 1001 }, (_, n) => datum(n)),
        }),
      )
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'InvalidParameterValueException', $metadata: { httpStatusCode: 400 } });
    expect(aws.state.cloudwatch).toHaveLength(1000);
  });

  it.each<[string, Partial<PutMetricDataCommandInput>, string]>([
    ['no namespace', { MetricData: [{ MetricName: 'x', Value: 1 }] }, 'MissingRequiredParameterException'],
    [
      'an AWS/ namespace',
      { Namespace: 'AWS/EC2', MetricData: [{ MetricName: 'x', Value: 1 }] },
      'InvalidParameterValueException',
    ],
    [
      '31 dimensions',
      {
        Namespace: 'GpuMedic',
        MetricData: [
          {
            MetricName: 'x',
            Value: 1,
            Dimensions: Array.from({ length: 31 }, (_, n) => ({ Name: `d${n}`, Value: 'v' })),
          },
        ],
      },
      'InvalidParameterValueException',
    ],
    [
      'Value with Values',
      { Namespace: 'GpuMedic', MetricData: [{ MetricName: 'x', Value: 1, Values: [1, 2] }] },
      'InvalidParameterCombinationException',
    ],
  ])('rejects %s', async (_label, input, name) => {
    const err = await cw()
      // Deliberately invalid input: the SDK does not validate, the service does.
      .send(new PutMetricDataCommand(input as PutMetricDataCommandInput))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name, $metadata: { httpStatusCode: 400 } });
    expect(aws.state.cloudwatch).toEqual([]);
  });
});

describe('SNS Publish (query protocol)', () => {
  const sns = () => new SNSClient(awsClientConfig(aws.url));
  const topicArn = 'arn:aws:sns:us-east-1:123456789012:gpu-medic';

  it('stores the message with its attributes and answers a MessageId', async () => {
    const out = await sns().send(
      new PublishCommand({
        TopicArn: topicArn,
        Subject: 'GPU node ip-10-0-1-17 cordoned',
        Message: 'XID 79 on GPU 3',
        MessageAttributes: {
          severity: { DataType: 'String', StringValue: 'critical' },
          xid: { DataType: 'Number', StringValue: '79' },
        },
      }),
    );
    expect(out.MessageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(aws.state.sns).toEqual([
      {
        topicArn,
        subject: 'GPU node ip-10-0-1-17 cordoned',
        message: 'XID 79 on GPU 3',
        attributes: {
          severity: { dataType: 'String', stringValue: 'critical' },
          xid: { dataType: 'Number', stringValue: '79' },
        },
        messageId: out.MessageId,
      },
    ]);
    expect(lastBody()).toContain('MessageAttributes.entry.1.Name=severity');
    expect(lastBody()).toContain('Version=2010-03-31');
  });

  it('refuses a subject over 100 characters with InvalidParameter', async () => {
    const err = await sns()
      .send(new PublishCommand({ TopicArn: topicArn, Subject: 's'.repeat(101), Message: 'm' }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'InvalidParameterException', $metadata: { httpStatusCode: 400 } });
    expect(aws.state.sns).toEqual([]);
  });
});

describe('Lambda Invoke (REST-JSON)', () => {
  const lambda = () => new LambdaClient(awsClientConfig(aws.url));

  it('accepts an Event invocation with 202 and stores the payload', async () => {
    const out = await lambda().send(
      new InvokeCommand({
        FunctionName: 'gpu-medic-hook',
        InvocationType: 'Event',
        Payload: Buffer.from(JSON.stringify({ node: 'ip-10-0-1-17' })),
      }),
    );
    expect(out.StatusCode).toBe(202);
    expect(aws.state.lambda).toEqual([
      {
        functionName: 'gpu-medic-hook',
        qualifier: undefined,
        invocationType: 'Event',
        payload: '{"node":"ip-10-0-1-17"}',
      },
    ]);
    expect(aws.log.find('Invoke')[0]?.path).toBe('/2015-03-31/functions/gpu-medic-hook/invocations');
  });

  it('answers a RequestResponse invocation with the scripted payload', async () => {
    aws.lambda.respond((inv) => ({ echoed: JSON.parse(inv.payload) }));
    const out = await lambda().send(
      new InvokeCommand({ FunctionName: 'fn', Payload: Buffer.from('{"a":1}') }),
    );
    expect(out.StatusCode).toBe(200);
    expect(JSON.parse(Buffer.from(out.Payload ?? []).toString())).toEqual({ echoed: { a: 1 } });
    aws.lambda.respond(undefined);
  });
});

describe('Bedrock Runtime Converse (REST-JSON, scriptable)', () => {
  const modelId = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
  const bedrock = (requestTimeout?: number) =>
    new BedrockRuntimeClient(awsClientConfig(aws.url, { requestTimeout }));
  const classify = () =>
    new ConverseCommand({
      modelId,
      system: [{ text: 'Classify GPU faults.' }],
      messages: [{ role: 'user', content: [{ text: 'Xid 48 on GPU 2' }] }],
      inferenceConfig: { maxTokens: 512, temperature: 0 },
      toolConfig: {
        tools: [
          {
            toolSpec: {
              name: 'report_finding',
              inputSchema: { json: { type: 'object', properties: { severity: { type: 'string' } } } },
            },
          },
        ],
        toolChoice: { tool: { name: 'report_finding' } },
      },
    });

  it('returns a scripted toolUse in the real Converse shape; the model id is URL-encoded in the path', async () => {
    aws.bedrock.script((req) => ({
      toolUse: { name: 'report_finding', input: { severity: 'critical', seen: req.modelId } },
    }));
    const out = await bedrock().send(classify());
    expect(out.stopReason).toBe('tool_use');
    expect(out.output?.message?.role).toBe('assistant');
    const toolUse = out.output?.message?.content?.[0]?.toolUse;
    expect(toolUse?.name).toBe('report_finding');
    expect(toolUse?.input).toEqual({ severity: 'critical', seen: modelId });
    expect(toolUse?.toolUseId).toMatch(/^tooluse_/);
    expect(out.usage?.totalTokens).toBe((out.usage?.inputTokens ?? 0) + (out.usage?.outputTokens ?? 0));
    expect(aws.bedrock.calls[0]).toMatchObject({
      modelId,
      system: [{ text: 'Classify GPU faults.' }],
      inferenceConfig: { maxTokens: 512, temperature: 0 },
    });
    const raw = aws.log.find('Converse')[0];
    expect(raw?.service).toBe('bedrock');
    expect(raw?.path).toBe('/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse');
    expect(JSON.parse(raw?.body ?? '')).not.toHaveProperty('modelId');
  });

  it('decodes an inference-profile ARN (with a slash) from the path', async () => {
    const arn = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-6';
    aws.bedrock.enqueue({ text: 'ok' });
    await bedrock().send(
      new ConverseCommand({ modelId: arn, messages: [{ role: 'user', content: [{ text: 'hi' }] }] }),
    );
    expect(aws.bedrock.calls.map((c) => c.modelId)).toEqual([arn]);
    expect(aws.log.find('Converse')[0]?.path).toContain('inference-profile%2F');
  });

  // Reality first: Bedrock refuses a model id it does not serve, before any model runs (real-clusters.md,
  // "Amazon Bedrock models"). The fake's scripts never see such a call.
  it.each([
    [
      'Claude 3.7 Sonnet, end of life 2026-04-28',
      'us.anthropic.claude-3-7-sonnet-20250219-v1:0',
      400,
      'ValidationException',
      /model identifier is invalid/,
    ],
    [
      'Claude 3.7 Sonnet, bare id',
      'anthropic.claude-3-7-sonnet-20250219-v1:0',
      400,
      'ValidationException',
      /model identifier is invalid/,
    ],
    [
      'Claude 3.5 Sonnet, end of life',
      'anthropic.claude-3-5-sonnet-20240620-v1:0',
      404,
      'ResourceNotFoundException',
      /end of its life/,
    ],
    [
      'an id Bedrock never had',
      'us.anthropic.claude-nonexistent-v9',
      400,
      'ValidationException',
      /model identifier is invalid/,
    ],
    [
      'a geography without a profile of the model',
      'apac.anthropic.claude-sonnet-4-6',
      400,
      'ValidationException',
      /model identifier is invalid/,
    ],
    [
      'a profile-only model called on demand',
      'anthropic.claude-sonnet-4-6',
      400,
      'ValidationException',
      /on-demand throughput isn.t supported/,
    ],
  ])('refuses %s', async (_, id, status, name, message) => {
    aws.bedrock.enqueue({ text: 'never served' });
    const err = await bedrock()
      .send(new ConverseCommand({ modelId: id, messages: [{ role: 'user', content: [{ text: 'hi' }] }] }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name, $metadata: { httpStatusCode: status } });
    expect((err as Error).message).toMatch(message);
    expect(aws.bedrock.calls).toEqual([]);
    expect(aws.bedrock.pending).toBe(1);
    aws.bedrock.reset();
  });

  it.each([
    ['us.anthropic.claude-sonnet-4-6'],
    ['eu.anthropic.claude-sonnet-4-6'],
    ['jp.anthropic.claude-sonnet-4-6'],
    ['global.anthropic.claude-sonnet-4-6'],
    ['apac.anthropic.claude-opus-4-6-v1'],
    ['arn:aws:bedrock:eu-west-1:123456789012:application-inference-profile/abc123'],
  ])('serves the active model id %s', async (id) => {
    aws.bedrock.enqueue({ text: 'ok' });
    const out = await bedrock().send(
      new ConverseCommand({ modelId: id, messages: [{ role: 'user', content: [{ text: 'hi' }] }] }),
    );
    expect(out.output?.message?.content).toEqual([{ text: 'ok' }]);
  });

  it('serves queued answers in order before the script, text answers end the turn', async () => {
    aws.bedrock.enqueue({ text: 'first' }, { text: 'second' });
    const a = await bedrock().send(classify());
    const b = await bedrock().send(classify());
    expect(a.output?.message?.content).toEqual([{ text: 'first' }]);
    expect(a.stopReason).toBe('end_turn');
    expect(b.output?.message?.content).toEqual([{ text: 'second' }]);
    expect(aws.bedrock.pending).toBe(0);
  });

  it('surfaces a scripted ThrottlingException by name with status 429', async () => {
    aws.bedrock.enqueue({ error: 'ThrottlingException', message: 'Too many requests' });
    const err = await bedrock()
      .send(classify())
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ThrottlingException', $metadata: { httpStatusCode: 429 } });
    expect((err as Error).message).toBe('Too many requests');
  });

  it('answers late, so a client requestTimeout fires first', async () => {
    aws.bedrock.enqueue({ text: 'too late', delayMs: 2000 });
    const err = await bedrock(100)
      .send(classify())
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TimeoutError' });
  });

  it('fails loudly on a Converse call nobody scripted', async () => {
    const err = await bedrock()
      .send(classify())
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ $metadata: { httpStatusCode: 500 } });
    expect(aws.log.unexpected.map((r) => r.operation)).toEqual(['Converse']);
    aws.log.clear();
  });

  it('refuses a scripted toolUse for a tool the request did not declare', async () => {
    aws.bedrock.enqueue({ toolUse: { name: 'reboot_everything', input: {} } });
    const err = await bedrock()
      .send(classify())
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ $metadata: { httpStatusCode: 500 } });
    expect(aws.log.unexpected).toHaveLength(1);
    aws.log.clear();
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
