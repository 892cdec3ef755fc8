/**
 * What the notifier sends: CloudWatch PutMetricData (JSON 1.0), SNS Publish (query) and Lambda Invoke
 * (REST-JSON), validated against AWS's limits and kept in `state` for assertions.
 */

import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import type { AwsContext } from './aws-context.js';
import {
  AwsError,
  headerString,
  JSON_10,
  JSON_REST,
  queryResponse,
  type Reply,
  unknownAction,
} from './aws-protocol.js';
import { xmlTag } from './http-util.js';

/** AWS's current limits (PutMetricData: 1,000 datums and 30 dimensions since 2023; SNS subject 100). */
export const LIMITS = {
  cloudwatchDatumsPerCall: 1000,
  cloudwatchDimensions: 30,
  cloudwatchValuesPerDatum: 150,
  snsSubjectChars: 100,
  snsMessageBytes: 256 * 1024,
  snsMessageAttributes: 10,
  lambdaEventPayloadBytes: 1024 * 1024,
  lambdaSyncPayloadBytes: 6 * 1024 * 1024,
} as const;

// ─── state kept for assertions ──────────────────────────────────────────────────────────────────

const Dimension = z.object({ Name: z.string(), Value: z.string() });
const StatisticSet = z.object({
  SampleCount: z.number(),
  Sum: z.number(),
  Minimum: z.number(),
  Maximum: z.number(),
});
export const MetricDatum = z.object({
  MetricName: z.string().optional(),
  Dimensions: z.array(Dimension).optional(),
  Timestamp: z.union([z.number(), z.string()]).optional(),
  Value: z.number().optional(),
  StatisticValues: StatisticSet.optional(),
  Values: z.array(z.number()).optional(),
  Counts: z.array(z.number()).optional(),
  Unit: z.string().optional(),
  StorageResolution: z.number().optional(),
});
export type MetricDatum = z.infer<typeof MetricDatum>;

const PutMetricDataInput = z.object({
  Namespace: z.string().optional(),
  MetricData: z.array(MetricDatum).optional(),
  EntityMetricData: z.array(z.object({ MetricData: z.array(MetricDatum).optional() }).loose()).optional(),
  StrictEntityValidation: z.boolean().optional(),
});

const CLOUDWATCH_UNITS = new Set([
  'Seconds',
  'Microseconds',
  'Milliseconds',
  'Bytes',
  'Kilobytes',
  'Megabytes',
  'Gigabytes',
  'Terabytes',
  'Bits',
  'Kilobits',
  'Megabits',
  'Gigabits',
  'Terabits',
  'Percent',
  'Count',
  'Bytes/Second',
  'Kilobytes/Second',
  'Megabytes/Second',
  'Gigabytes/Second',
  'Terabytes/Second',
  'Bits/Second',
  'Kilobits/Second',
  'Megabits/Second',
  'Gigabits/Second',
  'Terabits/Second',
  'Count/Second',
  'None',
]);

export interface SnsMessageAttribute {
  dataType: string;
  stringValue?: string;
  binaryValue?: string;
}

export interface SimAwsState {
  cloudwatch: { namespace: string; datum: MetricDatum }[];
  sns: {
    topicArn: string;
    subject?: string;
    message: string;
    attributes: Record<string, SnsMessageAttribute>;
    messageId: string;
  }[];
  lambda: { functionName: string; qualifier?: string; invocationType: string; payload: string }[];
}

// ─── Lambda ─────────────────────────────────────────────────────────────────────────────────────

export interface LambdaInvocation {
  functionName: string;
  qualifier?: string;
  invocationType: string;
  payload: string;
}
/** What a RequestResponse invocation returns (JSON-encoded); the default returns `null`. */
export type LambdaResponder = (invocation: LambdaInvocation) => unknown;

export function createNotifyHandlers(ctx: Pick<AwsContext, 'state' | 'keep' | 'lambdaResponder'>) {
  const { state, keep } = ctx;

  // ── SNS ──
  function sns(action: string, p: Record<string, string>, requestId: string): Reply {
    if (action !== 'Publish') throw unknownAction(action);
    const topicArn = p.TopicArn ?? p.TargetArn;
    if (!topicArn) {
      throw new AwsError(
        400,
        'InvalidParameter',
        'Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter',
      );
    }
    if (!/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$/.test(topicArn)) {
      throw new AwsError(400, 'InvalidParameter', 'Invalid parameter: TopicArn');
    }
    const message = p.Message;
    if (message === undefined || message === '') {
      throw new AwsError(
        400,
        'ValidationError',
        "1 validation error detected: Value null at 'message' failed to satisfy constraint: Member must not be null",
      );
    }
    if (Buffer.byteLength(message) > LIMITS.snsMessageBytes) {
      throw new AwsError(400, 'InvalidParameter', 'Invalid parameter: Message too long');
    }
    const subject = p.Subject;
    if (
      subject !== undefined &&
      (subject.length === 0 || subject.length > LIMITS.snsSubjectChars || !/^[\x20-\x7e]+$/.test(subject))
    ) {
      throw new AwsError(400, 'InvalidParameter', 'Invalid parameter: Subject');
    }
    const attributes: Record<string, SnsMessageAttribute> = {};
    for (let n = 1; p[`MessageAttributes.entry.${n}.Name`] !== undefined; n++) {
      const name = p[`MessageAttributes.entry.${n}.Name`] ?? '';
      const dataType = p[`MessageAttributes.entry.${n}.Value.DataType`];
      const stringValue = p[`MessageAttributes.entry.${n}.Value.StringValue`];
      const binaryValue = p[`MessageAttributes.entry.${n}.Value.BinaryValue`];
      if (!dataType || !/^(String|Number|Binary)(\.|$)|^String\.Array$/.test(dataType)) {
        throw new AwsError(
          400,
          'ParameterValueInvalid',
          `The message attribute '${name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.`,
        );
      }
      if (stringValue === undefined && binaryValue === undefined) {
        throw new AwsError(
          400,
          'ParameterValueInvalid',
          `The message attribute '${name}' must contain non-empty message attribute value for message attribute type '${dataType}'.`,
        );
      }
      if (dataType.startsWith('Number') && !Number.isFinite(Number(stringValue))) {
        throw new AwsError(
          400,
          'ParameterValueInvalid',
          `Could not cast message attribute '${name}' value to number.`,
        );
      }
      attributes[name] = { dataType, stringValue, binaryValue };
    }
    if (Object.keys(attributes).length > LIMITS.snsMessageAttributes) {
      throw new AwsError(
        400,
        'InvalidParameterValue',
        `Number of message attributes [${Object.keys(attributes).length}] exceeds the allowed maximum [${LIMITS.snsMessageAttributes}].`,
      );
    }
    const messageId = randomUUID();
    keep(state.sns, [{ topicArn, subject, message, attributes, messageId }]);
    return queryResponse('sns', action, xmlTag('MessageId', messageId), requestId);
  }

  // ── CloudWatch ──
  function cloudwatch(action: string, body: string): Reply {
    if (action !== 'PutMetricData') throw unknownAction(action);
    let json: unknown;
    try {
      json = body === '' ? {} : JSON.parse(body);
    } catch {
      throw new AwsError(400, 'SerializationException', 'Request body is not valid JSON', true);
    }
    const parsed = PutMetricDataInput.safeParse(json);
    if (!parsed.success) {
      throw new AwsError(
        400,
        'SerializationException',
        `Malformed PutMetricData: ${parsed.error.message}`,
        true,
      );
    }
    const { Namespace: namespace, MetricData, EntityMetricData } = parsed.data;
    const datums = [...(MetricData ?? []), ...(EntityMetricData ?? []).flatMap((e) => e.MetricData ?? [])];
    if (!namespace) throw new AwsError(400, 'MissingParameter', 'The parameter Namespace is required.');
    if (namespace.startsWith('AWS/') || namespace.length > 255 || !/^[\x21-\x7e ]+$/.test(namespace)) {
      throw new AwsError(
        400,
        'InvalidParameterValue',
        `The value ${namespace} for parameter Namespace is invalid.`,
      );
    }
    if (datums.length === 0)
      throw new AwsError(400, 'MissingParameter', 'The parameter MetricData is required.');
    if (datums.length > LIMITS.cloudwatchDatumsPerCall) {
      throw new AwsError(
        400,
        'InvalidParameterValue',
        `The collection MetricData must not have a size greater than ${LIMITS.cloudwatchDatumsPerCall}.`,
      );
    }
    datums.forEach((d, idx) => {
      const where = `MetricData.member.${idx + 1}`;
      if (!d.MetricName)
        throw new AwsError(400, 'MissingParameter', `The parameter ${where}.MetricName is required.`);
      if ((d.Dimensions?.length ?? 0) > LIMITS.cloudwatchDimensions) {
        throw new AwsError(
          400,
          'InvalidParameterValue',
          `The collection ${where}.Dimensions must not have a size greater than ${LIMITS.cloudwatchDimensions}.`,
        );
      }
      for (const dim of d.Dimensions ?? []) {
        if (dim.Name === '' || dim.Value === '') {
          throw new AwsError(
            400,
            'InvalidParameterValue',
            `The value for ${where}.Dimensions must not be empty.`,
          );
        }
      }
      const kinds = [d.Value !== undefined, d.StatisticValues !== undefined, d.Values !== undefined].filter(
        Boolean,
      );
      if (kinds.length > 1) {
        throw new AwsError(
          400,
          'InvalidParameterCombination',
          `The parameters ${where}.Value, ${where}.StatisticValues and ${where}.Values are mutually exclusive.`,
        );
      }
      if ((d.Values?.length ?? 0) > LIMITS.cloudwatchValuesPerDatum) {
        throw new AwsError(
          400,
          'InvalidParameterValue',
          `The collection ${where}.Values must not have a size greater than ${LIMITS.cloudwatchValuesPerDatum}.`,
        );
      }
      if (d.Unit !== undefined && !CLOUDWATCH_UNITS.has(d.Unit)) {
        throw new AwsError(
          400,
          'InvalidParameterValue',
          `The value ${d.Unit} for parameter ${where}.Unit is invalid.`,
        );
      }
    });
    keep(
      state.cloudwatch,
      datums.map((datum) => ({ namespace, datum })),
    );
    return { status: 200, contentType: JSON_10, body: '{}' };
  }

  // ── Lambda ──
  function lambda(
    req: IncomingMessage,
    functionName: string,
    query: Record<string, string>,
    body: string,
  ): Reply {
    const invocationType = headerString(req, 'x-amz-invocation-type') ?? 'RequestResponse';
    if (!['RequestResponse', 'Event', 'DryRun'].includes(invocationType)) {
      throw new AwsError(400, 'InvalidParameterValueException', `Invalid invocation type: ${invocationType}`);
    }
    const limit = invocationType === 'Event' ? LIMITS.lambdaEventPayloadBytes : LIMITS.lambdaSyncPayloadBytes;
    if (Buffer.byteLength(body) > limit) {
      throw new AwsError(
        413,
        'RequestTooLargeException',
        `Request must be smaller than ${limit} bytes for the InvokeFunction operation`,
      );
    }
    if (body !== '') {
      try {
        JSON.parse(body);
      } catch {
        throw new AwsError(400, 'InvalidRequestContentException', 'Could not parse request body into json');
      }
    }
    const invocation: LambdaInvocation = {
      functionName,
      qualifier: query.Qualifier,
      invocationType,
      payload: body,
    };
    if (invocationType === 'DryRun') return { status: 204, contentType: JSON_REST, body: '' };
    keep(state.lambda, [invocation]);
    if (invocationType === 'Event') return { status: 202, contentType: JSON_REST, body: '' };
    const out = ctx.lambdaResponder ? ctx.lambdaResponder(invocation) : null;
    return {
      status: 200,
      contentType: JSON_REST,
      body: JSON.stringify(out ?? null),
      headers: { 'X-Amz-Executed-Version': '$LATEST' },
    };
  }

  return { sns, cloudwatch, lambda };
}
