/** CloudWatch PutMetricData, SNS Publish and Lambda Invoke against the simulated AWS endpoint. */
import {
  CloudWatchClient,
  PutMetricDataCommand,
  type PutMetricDataCommandInput,
} from '@aws-sdk/client-cloudwatch';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { awsClientConfig } from '../../test/support/aws.js';
import { RecordingEffects, resetSimAws } from '../../test/support/sim-aws-effects.js';
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
