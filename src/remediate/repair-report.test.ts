import { describe, expect, it } from 'vitest';
import type { RepairRecord } from '../domain/repair-record.js';
import { csvField, repairCsv, repairSummary } from './repair-report.js';

const record: RepairRecord = {
  incidentId: 'inc-1',
  action: 'replace',
  node: 'gpu-0',
  instanceId: 'i-0abc',
  instanceType: 'p5.48xlarge',
  zone: 'us-east-1a',
  gpuIndex: 3,
  gpuUuid: 'GPU-3333',
  pciBusId: '00000000:53:00.0',
  xids: [48, 63],
  faulty: true,
  faultKey: 'ecc_dbe:gpu3',
  category: 'ECC_ERROR',
  diagLevel: '1',
  diag: [{ test: 'memory', status: 'fail', info: 'DBE "row" 7, bank 2' }],
  detectedAt: Date.UTC(2026, 11, 3, 9, 0),
  startedAt: Date.UTC(2026, 11, 3, 9, 1),
  endedAt: Date.UTC(2026, 11, 3, 9, 30),
  outcome: 'resolved',
  reason: 'line one\nline two',
};

/** A minimal RFC 4180 reader, to prove what the writer wrote reads back field for field. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  return rows;
}

describe('repair CSV (RFC 4180)', () => {
  it('quotes only fields with a comma, a quote or a line break, doubling quotes', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "x"')).toBe('"say ""x"""');
    expect(csvField('a\nb')).toBe('"a\nb"');
  });

  it('a header, then one CRLF-ended row per record that reads back to the same values', () => {
    const csv = repairCsv([record, { ...record, gpuIndex: 2, gpuUuid: 'GPU-2222', faulty: false, xids: [] }]);
    expect(csv.endsWith('\r\n')).toBe(true);
    const [header, first, second] = parseCsv(csv);
    expect(header?.slice(0, 4)).toEqual(['ended_at', 'incident', 'action', 'outcome']);
    const col = (name: string) => header?.indexOf(name) ?? -1;
    expect(first?.[col('gpu_uuid')]).toBe('GPU-3333');
    expect(first?.[col('instance_id')]).toBe('i-0abc');
    expect(first?.[col('zone')]).toBe('us-east-1a');
    expect(first?.[col('xids')]).toBe('48 63');
    expect(first?.[col('diag')]).toBe('memory: fail (DBE "row" 7, bank 2)');
    expect(first?.[col('reason')]).toBe('line one\nline two');
    expect(first?.[col('ended_at')]).toBe('2026-12-03T09:30:00.000Z');
    expect(second?.[col('faulty_gpu')]).toBe('no');
    expect(first).toHaveLength(header?.length ?? 0);
  });

  it('an empty report is the header alone', () => {
    expect(parseCsv(repairCsv([]))).toHaveLength(1);
  });
});

describe('repair summary (chat without files)', () => {
  it('counts repairs per action and outcome and names the faulty GPU by UUID', () => {
    const text = repairSummary([record, { ...record, gpuIndex: 2, faulty: false }], 30);
    expect(text).toContain('1 GPU repair in the last 30 days (1 replace resolved)');
    expect(text).toContain('GPU 3 GPU-3333');
    expect(text).toContain('i-0abc');
  });

  it('says so when there were none', () => {
    expect(repairSummary([], 7)).toBe('No GPU repairs in the last 7 days.');
  });
});
