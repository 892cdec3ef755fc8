import { afterEach, describe, expect, it } from 'vitest';
import type { RepairRecord } from '../domain/repair-record.js';
import { openStore, type Store } from './store.js';

let s: Store | undefined;
afterEach(() => s?.close());

const record = (over: Partial<RepairRecord> = {}): RepairRecord => ({
  incidentId: 'inc-1',
  action: 'replace',
  node: 'gpu-0',
  instanceId: 'i-0abc',
  instanceType: 'p5.48xlarge',
  zone: 'us-east-1a',
  gpuIndex: 3,
  gpuUuid: 'GPU-3333',
  pciBusId: '00000000:53:00.0',
  xids: [79],
  faulty: true,
  faultKey: 'xid:79:gpu3',
  category: 'XID_CRITICAL_79',
  diag: [{ test: 'memory', status: 'fail', info: 'bad' }],
  diagLevel: '1',
  detectedAt: 1_000,
  startedAt: 2_000,
  endedAt: 10_000,
  outcome: 'resolved',
  ...over,
});

describe('repair records (migration 2)', () => {
  it('stores and reads back every field; the same incident written again replaces its rows', () => {
    s = openStore(':memory:');
    s.repairs.save([record(), record({ gpuIndex: 1, gpuUuid: 'GPU-1111', faulty: false, diag: [] })]);
    expect(s.repairs.listSince(0)).toEqual([
      record(),
      record({ gpuIndex: 1, gpuUuid: 'GPU-1111', faulty: false, diag: [] }),
    ]);
    s.repairs.save([record({ outcome: 'escalated', reason: 'diag failed' })]);
    expect(s.repairs.listSince(0)).toEqual([record({ outcome: 'escalated', reason: 'diag failed' })]);
  });

  it('lists by end time and by GPU UUID; a node-level record has no GPU', () => {
    s = openStore(':memory:');
    s.repairs.save([record({ incidentId: 'old', endedAt: 5_000 })]);
    s.repairs.save([record({ incidentId: 'new', endedAt: 20_000 })]);
    const { gpuIndex: _, gpuUuid: __, pciBusId: ___, ...nodeLevel } = record({ incidentId: 'node' });
    s.repairs.save([{ ...nodeLevel, endedAt: 30_000 }]);
    expect(s.repairs.listSince(10_000).map((r) => r.incidentId)).toEqual(['new', 'node']);
    expect(s.repairs.listSince(25_000)[0]?.gpuIndex).toBeUndefined();
    expect(s.repairs.listByUuid('GPU-3333').map((r) => r.incidentId)).toEqual(['old', 'new']);
  });
});
