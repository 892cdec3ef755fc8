import { describe, expect, it } from 'vitest';
import type { Incident } from '../domain/incident.js';
import { type RawJournalRow, repairRecordsOf } from './repair-records.js';

const incident: Incident = {
  id: 'inc-1',
  node: 'gpu-0',
  instanceId: 'i-0abc',
  instanceType: 'p5.48xlarge',
  faultKey: 'ecc_dbe:gpu3',
  category: 'ECC_ERROR',
  severity: 'critical',
  recommendedAction: 'replace',
  plannedAction: 'replace',
  mode: 'auto',
  gpu: 3,
  explanation: 'DBE',
  source: 'rules',
  evidence: [],
  state: 'resolved',
  preexisting: false,
  firstSeen: 1_000,
  lastSeen: 1_000,
  count: 1,
  updatedAt: 9_000,
};

const gpuIds = [
  { index: 0, uuid: 'GPU-0000', pciBusId: '00000000:18:00.0' },
  { index: 2, uuid: 'GPU-2222', pciBusId: '00000000:3A:00.0', xids: [48] },
  { index: 3, uuid: 'GPU-3333', pciBusId: '00000000:53:00.0', xids: [48, 63] },
];

const rows = (extra: RawJournalRow[] = []): RawJournalRow[] => [
  { step: 'plan', status: 'done', startedAt: 1_500, detail: { action: 'replace' } },
  { step: 'cordon', status: 'done', startedAt: 2_000, detail: { gpuIds, zone: 'us-east-1a' } },
  { step: 'drain', status: 'done', startedAt: 3_000, detail: {} },
  { step: 'replace', status: 'done', startedAt: 4_000, detail: { instanceId: 'i-0abc', method: 'asg' } },
  ...extra,
];

describe('repairRecordsOf', () => {
  it('one record for the faulty GPU (first) and one per other GPU seen with an XID', () => {
    const records = repairRecordsOf({ incident, rows: rows(), outcome: 'resolved', endedAt: 8_000 });
    expect(records.map((r) => [r.gpuIndex, r.gpuUuid, r.faulty, r.xids])).toEqual([
      [3, 'GPU-3333', true, [48, 63]],
      [2, 'GPU-2222', false, [48]],
    ]);
    expect(records[0]).toMatchObject({
      incidentId: 'inc-1',
      action: 'replace',
      node: 'gpu-0',
      instanceId: 'i-0abc',
      instanceType: 'p5.48xlarge',
      zone: 'us-east-1a',
      pciBusId: '00000000:53:00.0',
      detectedAt: 1_000,
      startedAt: 2_000,
      endedAt: 8_000,
      outcome: 'resolved',
      diag: [],
    });
  });

  it("reads the diagnose step's results per GPU (a row this version may not know), and a GPU that failed one", () => {
    const diagnose: RawJournalRow = {
      step: 'diagnose',
      status: 'done',
      startedAt: 6_000,
      detail: {
        level: 1,
        results: [
          { test: 'memory', gpu: 3, status: 'fail', info: 'DBE at 0x1f' },
          { test: 'pcie', gpu: 0, status: 'warn', info: 'replays' },
          { test: 'memory', gpu: 0, status: 'pass' },
        ],
      },
    };
    const records = repairRecordsOf({
      incident,
      rows: rows([diagnose]),
      outcome: 'escalated',
      endedAt: 8_000,
    });
    expect(records.map((r) => r.gpuIndex)).toEqual([3, 0, 2]);
    expect(records[0]?.diag).toEqual([{ test: 'memory', status: 'fail', info: 'DBE at 0x1f' }]);
    expect(records[0]?.diagLevel).toBe('1');
    expect(records[1]?.diag).toEqual([
      { test: 'pcie', status: 'warn', info: 'replays' },
      { test: 'memory', status: 'pass' },
    ]);
  });

  it('a malformed diagnose detail is read as no results, never an exception', () => {
    const bad: RawJournalRow = {
      step: 'diagnose',
      status: 'done',
      startedAt: 6_000,
      detail: { results: 'x' },
    };
    const records = repairRecordsOf({ incident, rows: rows([bad]), outcome: 'resolved', endedAt: 8_000 });
    expect(records[0]?.diag).toEqual([]);
  });

  it('the faulty GPU has a record when no scan named it; a node-level fault records every GPU read', () => {
    const noIds = rows().map((r) => (r.step === 'cordon' ? { ...r, detail: {} } : r));
    const [only] = repairRecordsOf({ incident, rows: noIds, outcome: 'resolved', endedAt: 8_000 });
    expect(only).toMatchObject({ gpuIndex: 3, faulty: true, xids: [] });
    expect(only?.gpuUuid).toBeUndefined();
    const nodeLevel = { ...incident, gpu: undefined, faultKey: 'gpu_missing' };
    const all = repairRecordsOf({ incident: nodeLevel, rows: rows(), outcome: 'resolved', endedAt: 8_000 });
    expect(all.map((r) => r.gpuIndex)).toEqual([0, 2, 3]);
  });

  it('nothing for a run whose repair step never began, an action that repairs nothing, or a reboot record for a reboot', () => {
    const drainOnly = rows().filter((r) => r.step !== 'replace');
    expect(repairRecordsOf({ incident, rows: drainOnly, outcome: 'cancelled', endedAt: 8_000 })).toEqual([]);
    const cordonOnly = rows().map((r) => (r.step === 'plan' ? { ...r, detail: { action: 'cordon' } } : r));
    expect(repairRecordsOf({ incident, rows: cordonOnly, outcome: 'resolved', endedAt: 8_000 })).toEqual([]);
    const reboot: RawJournalRow[] = [
      { step: 'plan', status: 'done', startedAt: 1, detail: { action: 'reboot' } },
      { step: 'reboot', status: 'done', startedAt: 2, detail: { instanceId: 'i-0abc' } },
    ];
    expect(repairRecordsOf({ incident, rows: reboot, outcome: 'resolved', endedAt: 3 })[0]).toMatchObject({
      action: 'reboot',
      startedAt: 2,
    });
  });
});
