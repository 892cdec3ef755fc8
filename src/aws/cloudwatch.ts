/** The CloudWatch adapter of the notify MetricPublisher port: the only file importing the CloudWatch SDK. */
import { CloudWatchClient, type MetricDatum, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { type MetricPoint, type MetricPublisher, SinkError } from '../notify/ports.js';
import { type AwsClientOptions, awsClientConfig, classifyAwsError } from './client-config.js';

export function toMetricDatum(p: MetricPoint): MetricDatum {
  return {
    MetricName: p.metric,
    Dimensions: p.dimensions.map((d) => ({ Name: d.name, Value: d.value })),
    Timestamp: new Date(p.timestamp),
    Value: p.value,
    Unit: p.unit,
  };
}

export class CloudWatchMetricPublisher implements MetricPublisher {
  private readonly client: CloudWatchClient;

  /** The outbox retries with backoff, so the client itself tries once unless told otherwise. */
  constructor(options: AwsClientOptions & { client?: CloudWatchClient } = {}) {
    this.client = options.client ?? new CloudWatchClient(awsClientConfig({ maxAttempts: 1, ...options }));
  }

  async putMetricData(namespace: string, points: MetricPoint[]): Promise<void> {
    try {
      await this.client.send(
        new PutMetricDataCommand({ Namespace: namespace, MetricData: points.map(toMetricDatum) }),
      );
    } catch (error) {
      const f = classifyAwsError(error);
      throw new SinkError(`cloudwatch PutMetricData: ${f.code}: ${f.message}`, !f.retryable, {
        ...(f.status === undefined ? {} : { status: f.status }),
        errorCode: f.code,
      });
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}
