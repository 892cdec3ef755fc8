/** The Lambda sink: an asynchronous ('Event') invocation per notification with the JSON body. */
import { describeIssues, StoredNotification } from '../payload.js';
import type { DeliveryResult, FunctionInvoker, OutboxEntry, Sink } from '../ports.js';
import { deliverEach } from './deliver-each.js';

export interface LambdaSinkOptions {
  invoker: FunctionInvoker;
  functionName: string;
  concurrency?: number;
}

export class LambdaSink implements Sink {
  readonly name = 'lambda';

  constructor(private readonly options: LambdaSinkOptions) {}

  deliver(batch: OutboxEntry[]): Promise<DeliveryResult[]> {
    return deliverEach(batch, this.options.concurrency ?? 8, async (entry) => {
      const parsed = StoredNotification.safeParse(entry.payload);
      if (!parsed.success) {
        return { id: entry.id, outcome: 'permanent', error: `bad payload: ${describeIssues(parsed.error)}` };
      }
      const out = await this.options.invoker.invokeAsync(
        this.options.functionName,
        JSON.stringify(entry.payload),
      );
      return { id: entry.id, outcome: 'delivered', result: out };
    });
  }
}
