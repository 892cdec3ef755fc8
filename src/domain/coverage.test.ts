import { describe, expect, it } from 'vitest';
import { ExpectedSignalFamilies, missingFamilyPhrases, signalCoverage } from './coverage.js';
import type { SignalFamily } from './gpu.js';

const stock: SignalFamily[] = ['xid', 'row_remap', 'thermal'];

describe('signalCoverage', () => {
  it('counts per family the nodes whose read carried it, and lists what fewer than all read nodes carried', () => {
    const c = signalCoverage([{ signals: stock }, { signals: [...stock, 'ecc'] }, { signals: stock }]);
    expect(c).toMatchObject({ nodes: 3, read: 3 });
    expect(c.byFamily).toMatchObject({ xid: 3, ecc: 1, nvlink: 0, kernel_log: 0 });
    expect(c.missing).toEqual(['xid_count', 'ecc', 'retired_pages', 'nvlink', 'health']);
    expect(missingFamilyPhrases(c)).toContain('ECC counters: 1 of 3 nodes');
  });

  it('counts a failed read and a source that does not say in no family and not as read', () => {
    const c = signalCoverage([
      { signals: stock, error: { kind: 'timeout', message: 'slow' } },
      {},
      { signals: ExpectedSignalFamilies.slice() },
    ]);
    expect(c).toMatchObject({ nodes: 3, read: 1 });
    expect(c.byFamily.xid).toBe(1);
    expect(c.missing).toEqual([]);
  });

  it('never expects kernel_log: only the dcgm-server source reads dmesg', () => {
    expect(ExpectedSignalFamilies).not.toContain('kernel_log');
    expect(signalCoverage([{ signals: ExpectedSignalFamilies.slice() }]).missing).toEqual([]);
  });

  it('counts a family listed twice once', () => {
    expect(signalCoverage([{ signals: ['ecc', 'ecc'] }]).byFamily.ecc).toBe(1);
  });
});
