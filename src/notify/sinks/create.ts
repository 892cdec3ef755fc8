/**
 * Chooses the sinks from configuration: each one only when its variable is set (SNS_TOPIC_ARN,
 * WEBHOOK_URL, LAMBDA_FUNCTION); CloudWatch unless CLOUDWATCH_ENABLED=false. The AWS ports are injected
 * as factories so nothing is built for a disabled sink and this file stays free of SDK imports.
 */
import type { Logger } from 'pino';
import type { FunctionInvoker, MetricPublisher, Sink, SinkName, TopicPublisher } from '../ports.js';
import { CloudWatchSink } from './cloudwatch.js';
import { LambdaSink } from './lambda.js';
import { SnsSink } from './sns.js';
import { WebhookSink } from './webhook.js';

export interface NotifySinkConfig {
  snsTopicArn?: string | undefined;
  webhookUrl?: string | undefined;
  webhookSecret?: string | undefined;
  lambdaFunction?: string | undefined;
  cloudwatch: { namespace: string; perNode: boolean; enabled?: boolean | undefined };
}

export interface SinkFactories {
  metricPublisher: () => MetricPublisher;
  topicPublisher: () => TopicPublisher;
  functionInvoker: () => FunctionInvoker;
  logger?: Logger;
  clock?: () => number;
  webhookTimeoutMs?: number;
  fetch?: typeof fetch;
}

/** CLOUDWATCH_ENABLED: anything but an explicit false/0/no/off keeps CloudWatch on. */
export function cloudwatchEnabledFromEnv(env: Record<string, string | undefined> = process.env): boolean {
  const v = env.CLOUDWATCH_ENABLED?.trim().toLowerCase();
  return !(v === 'false' || v === '0' || v === 'no' || v === 'off');
}

export function enabledSinkNames(config: NotifySinkConfig): SinkName[] {
  const names: SinkName[] = [];
  if (config.cloudwatch.enabled ?? true) names.push('cloudwatch');
  if (config.snsTopicArn) names.push('sns');
  if (config.webhookUrl) names.push('webhook');
  if (config.lambdaFunction) names.push('lambda');
  return names;
}

export function createSinks(config: NotifySinkConfig, deps: SinkFactories): Sink[] {
  const sinks: Sink[] = [];
  const logger = deps.logger;
  for (const name of enabledSinkNames(config)) {
    if (name === 'cloudwatch') {
      sinks.push(
        new CloudWatchSink({
          publisher: deps.metricPublisher(),
          namespace: config.cloudwatch.namespace,
          perNode: config.cloudwatch.perNode,
          ...(deps.clock ? { clock: deps.clock } : {}),
          ...(logger ? { logger } : {}),
        }),
      );
    } else if (name === 'sns' && config.snsTopicArn) {
      sinks.push(new SnsSink({ publisher: deps.topicPublisher(), topicArn: config.snsTopicArn }));
    } else if (name === 'webhook' && config.webhookUrl) {
      sinks.push(
        new WebhookSink({
          url: config.webhookUrl,
          ...(config.webhookSecret ? { secret: config.webhookSecret } : {}),
          ...(deps.webhookTimeoutMs === undefined ? {} : { timeoutMs: deps.webhookTimeoutMs }),
          ...(deps.clock ? { clock: deps.clock } : {}),
          ...(deps.fetch ? { fetch: deps.fetch } : {}),
          ...(logger ? { logger } : {}),
        }),
      );
    } else if (name === 'lambda' && config.lambdaFunction) {
      sinks.push(new LambdaSink({ invoker: deps.functionInvoker(), functionName: config.lambdaFunction }));
    }
  }
  return sinks;
}
