/**
 * Runs `work` over `items` with at most `concurrency` in flight and a deadline per item. One slow or
 * failing item never delays or breaks the others: its outcome is reported, never thrown.
 */
export type Outcome<R> =
  | { ok: true; value: R; ms: number }
  | { ok: false; error: Error; timedOut: boolean; ms: number };

export class DeadlineError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'DeadlineError';
  }
}

export async function mapBounded<T, R>(
  items: readonly T[],
  concurrency: number,
  timeoutMs: number,
  work: (item: T, signal: AbortSignal) => Promise<R>,
  onDone?: (item: T, outcome: Outcome<R>) => void,
): Promise<Outcome<R>[]> {
  const results = new Array<Outcome<R>>(items.length);
  await forEachBounded(items, concurrency, timeoutMs, work, (item, outcome, index) => {
    results[index] = outcome;
    onDone?.(item, outcome);
  });
  return results;
}

/**
 * `mapBounded` that keeps no outcome: each goes to `onDone` and is dropped. A scan of 5,000 nodes would
 * otherwise hold every node's snapshot until the last node answers (~20 MB of live heap at the peak).
 */
export async function forEachBounded<T, R>(
  items: readonly T[],
  concurrency: number,
  timeoutMs: number,
  work: (item: T, signal: AbortSignal) => Promise<R>,
  onDone: (item: T, outcome: Outcome<R>, index: number) => void,
): Promise<void> {
  let next = 0;
  const runOne = async (index: number): Promise<void> => {
    const item = items[index] as T;
    const started = performance.now();
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort();
        reject(new DeadlineError(timeoutMs));
      }, timeoutMs);
    });
    let outcome: Outcome<R>;
    try {
      const value = await Promise.race([work(item, controller.signal), deadline]);
      outcome = { ok: true, value, ms: performance.now() - started };
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      outcome = {
        ok: false,
        error,
        timedOut: error instanceof DeadlineError,
        ms: performance.now() - started,
      };
    } finally {
      clearTimeout(timer);
    }
    onDone(item, outcome, index);
  };
  const worker = async (): Promise<void> => {
    while (next < items.length) await runOne(next++);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
}
