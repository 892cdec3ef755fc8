/** The SNS sink: one Publish per notification, JSON body, a short ASCII subject, filterable attributes. */
import { notificationSubject } from '../message.js';
import { describeIssues, StoredNotification } from '../payload.js';
import type { DeliveryResult, OutboxEntry, Sink, TopicPublisher } from '../ports.js';
import { deliverEach } from './deliver-each.js';

export interface SnsSinkOptions {
  publisher: TopicPublisher;
  topicArn: string;
  concurrency?: number;
}

export class SnsSink implements Sink {
  readonly name = 'sns';
  private readonly fifo: boolean;

  constructor(private readonly options: SnsSinkOptions) {
    this.fifo = options.topicArn.endsWith('.fifo');
  }

  deliver(batch: OutboxEntry[]): Promise<DeliveryResult[]> {
    return deliverEach(batch, this.options.concurrency ?? 8, async (entry) => {
      const parsed = StoredNotification.safeParse(entry.payload);
      if (!parsed.success) {
        return { id: entry.id, outcome: 'permanent', error: `bad payload: ${describeIssues(parsed.error)}` };
      }
      const m = parsed.data;
      const out = await this.options.publisher.publish({
        topicArn: this.options.topicArn,
        subject: notificationSubject(m),
        message: JSON.stringify(entry.payload),
        // Subscription filter policies match on these (e.g. {"severity": ["critical"]}).
        attributes: { severity: m.severity, category: m.category, cluster: m.cluster },
        // FIFO topics: one group per incident keeps its steps in order; the outbox id dedupes retries.
        ...(this.fifo ? { groupId: m.incident_id, deduplicationId: `gpu-medic-${entry.id}` } : {}),
      });
      return { id: entry.id, outcome: 'delivered', result: out };
    });
  }
}
