import { describe, expect, it } from 'vitest';
import { event, incident } from '../../../test/support/fixtures.js';
import { buildNotification } from '../message.js';
import { type MetricPoint, type MetricPublisher, type OutboxEntry, SinkError } from '../ports.js';
import { CLOUDWATCH_MAX_AGE_MS, CloudWatchSink } from './cloudwatch.js';

const NOW = Date.parse('2025-06-01T12:00:00Z');

class RecordingPublisher implements MetricPublisher {
  readonly calls: MetricPoint[][] = [];
  reject: (points: MetricPoint[]) => SinkError | undefined = () => undefined;
  async putMetricData(_ns: string, points: MetricPoint[]): Promise<void> {
    const e = this.reject(points);
    if (e) throw e;
    this.calls.push(points);
  }
}

function entry(id: number, payload: unknown): OutboxEntry {
  return {
    id,
    sink: 'cloudwatch',
    orderingKey: `k${id}`,
    payload,
    status: 'pending',
    attempts: 0,
    nextAttemptAt: 0,
    createdAt: 0,
  };
}

const detected = (id: string, at = NOW) =>
  buildNotification(event('detected', { incidentId: id, at }), incident({ id, category: `CAT_${id}` }), 'c');

describe('CloudWatchSink', () => {
  it('does not queue steps without a datapoint', () => {
    const sink = new CloudWatchSink({ publisher: new RecordingPublisher() });
    expect(sink.accepts(buildNotification(event('approval_needed'), incident(), 'c'))).toBe(false);
    expect(sink.accepts(detected('a'))).toBe(true);
  });

  it('gives up on unreadable payloads and drops datapoints CloudWatch would refuse as too old', async () => {
    const pub = new RecordingPublisher();
    const sink = new CloudWatchSink({ publisher: pub, clock: () => NOW });
    const results = await sink.deliver([
      entry(1, { nonsense: true }),
      entry(2, detected('old', NOW - CLOUDWATCH_MAX_AGE_MS - 1)),
      entry(3, detected('new')),
    ]);
    expect(results).toEqual([
      { id: 1, outcome: 'permanent', error: expect.stringContaining('not a notification') },
      { id: 2, outcome: 'delivered', result: { datapoints: 0 } },
      { id: 3, outcome: 'delivered', result: { datapoints: 1 } },
    ]);
    expect(pub.calls).toHaveLength(1);
  });

  it('one refused datapoint kills only its own message; a transient failure retries the whole call', async () => {
    const pub = new RecordingPublisher();
    pub.reject = (points) =>
      points.some((p) => p.dimensions.some((d) => d.value === 'CAT_bad'))
        ? new SinkError('InvalidParameterValue', true)
        : undefined;
    const sink = new CloudWatchSink({ publisher: pub, clock: () => NOW });
    const results = await sink.deliver([
      entry(1, detected('a')),
      entry(2, detected('bad')),
      entry(3, detected('b')),
    ]);
    expect(results.map((r) => r.outcome)).toEqual(['delivered', 'permanent', 'delivered']);

    pub.reject = () => new SinkError('Throttling', false);
    const again = await sink.deliver([entry(4, detected('c')), entry(5, detected('d'))]);
    expect(again.map((r) => r.outcome)).toEqual(['retry', 'retry']);
  });
});
