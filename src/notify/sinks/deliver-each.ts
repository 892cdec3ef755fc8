import { type DeliveryResult, failureResult, type OutboxEntry } from '../ports.js';

/**
 * Delivers the entries of a batch one by one, at most `concurrency` at a time. A batch holds at most one
 * entry per ordering key, so running them side by side never reorders a key.
 */
export async function deliverEach(
  batch: readonly OutboxEntry[],
  concurrency: number,
  deliverOne: (entry: OutboxEntry) => Promise<DeliveryResult>,
): Promise<DeliveryResult[]> {
  const results: DeliveryResult[] = new Array(batch.length);
  let next = 0;
  async function lane(): Promise<void> {
    for (let i = next++; i < batch.length; i = next++) {
      const entry = batch[i];
      if (!entry) continue;
      try {
        results[i] = await deliverOne(entry);
      } catch (error) {
        results[i] = failureResult(entry.id, error);
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, batch.length)) }, lane));
  return results;
}
