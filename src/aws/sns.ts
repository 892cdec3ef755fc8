/** The SNS adapter of the notify TopicPublisher port: the only file importing the SNS SDK. */
import {
  type MessageAttributeValue,
  PublishCommand,
  type PublishCommandInput,
  SNSClient,
} from '@aws-sdk/client-sns';
import { SinkError, type TopicMessage, type TopicPublisher } from '../notify/ports.js';
import { type AwsClientOptions, awsClientConfig, classifyAwsError } from './client-config.js';

export function publishInput(m: TopicMessage): PublishCommandInput {
  const attributes: Record<string, MessageAttributeValue> = {};
  // SNS rejects an empty attribute value; an absent attribute simply does not match a filter.
  for (const [name, value] of Object.entries(m.attributes)) {
    if (value !== '') attributes[name] = { DataType: 'String', StringValue: value };
  }
  const input: PublishCommandInput = {
    TopicArn: m.topicArn,
    Subject: m.subject,
    Message: m.message,
    MessageAttributes: attributes,
  };
  if (m.groupId !== undefined) input.MessageGroupId = m.groupId;
  if (m.deduplicationId !== undefined) input.MessageDeduplicationId = m.deduplicationId;
  return input;
}

export class SnsTopicPublisher implements TopicPublisher {
  private readonly client: SNSClient;

  constructor(options: AwsClientOptions & { client?: SNSClient } = {}) {
    this.client = options.client ?? new SNSClient(awsClientConfig({ maxAttempts: 1, ...options }));
  }

  async publish(message: TopicMessage): Promise<{ messageId?: string }> {
    try {
      const out = await this.client.send(new PublishCommand(publishInput(message)));
      return out.MessageId === undefined ? {} : { messageId: out.MessageId };
    } catch (error) {
      const f = classifyAwsError(error);
      throw new SinkError(`sns Publish: ${f.code}: ${f.message}`, !f.retryable, {
        ...(f.status === undefined ? {} : { status: f.status }),
        errorCode: f.code,
      });
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}
