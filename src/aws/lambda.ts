/** The Lambda adapter of the notify FunctionInvoker port: the only file importing the Lambda SDK. */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { type FunctionInvoker, SinkError } from '../notify/ports.js';
import { type AwsClientOptions, awsClientConfig, classifyAwsError } from './client-config.js';

export class LambdaFunctionInvoker implements FunctionInvoker {
  private readonly client: LambdaClient;

  constructor(options: AwsClientOptions & { client?: LambdaClient } = {}) {
    this.client = options.client ?? new LambdaClient(awsClientConfig({ maxAttempts: 1, ...options }));
  }

  /** `Event`: Lambda queues the event and answers 202; the function's own retries and DLQ take over. */
  async invokeAsync(functionName: string, payload: string): Promise<{ statusCode?: number }> {
    try {
      const out = await this.client.send(
        new InvokeCommand({
          FunctionName: functionName,
          InvocationType: 'Event',
          Payload: new TextEncoder().encode(payload),
        }),
      );
      return out.StatusCode === undefined ? {} : { statusCode: out.StatusCode };
    } catch (error) {
      const f = classifyAwsError(error);
      throw new SinkError(`lambda Invoke: ${f.code}: ${f.message}`, !f.retryable, {
        ...(f.status === undefined ? {} : { status: f.status }),
        errorCode: f.code,
      });
    }
  }

  destroy(): void {
    this.client.destroy();
  }
}
