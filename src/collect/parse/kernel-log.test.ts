import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { normalizePciBusId, parseKernelXids } from './kernel-log.js';

const text = readFileSync(new URL('../../../test/fixtures/kernel-xid-lines.txt', import.meta.url), 'utf8');

describe('parseKernelXids', () => {
  const r = parseKernelXids(text);

  it('reads every NVRM Xid line of the fixture, SXids separately, and keeps the rest as unparsed', () => {
    expect(r.xids.map((x) => x.xid)).toEqual([
      63, 48, 79, 79, 119, 13, 31, 32, 69, 74, 43, 154, 149, 145, 145,
    ]);
    expect(r.sxids.map((x) => x.sxid)).toEqual([20034, 20034, 20034, 24007, 20009, 26006]);
    expect(r.unparsed).toEqual(['NVRM: GPU 0000:91:00.0: GPU has fallen off the bus.']);
  });

  it('splits pid/name from the message and normalizes the bus id', () => {
    expect(r.xids[2]).toMatchObject({
      pciBusId: '0000:91:00',
      xid: 79,
      pid: '<unknown>',
      processName: '<unknown>',
      message: 'GPU has fallen off the bus.',
    });
    expect(r.xids[4]).toMatchObject({ pid: '2024380', processName: 'nvidia-smi' });
    expect(r.xids[4]?.message).toMatch(/^Timeout after 6s/);
    expect(r.xids[3]?.message).toBe('GPU has fallen off the bus.');
    expect(r.xids[3]?.pid).toBeUndefined();
    expect(r.xids[11]?.message).toBe(
      'GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)',
    );
    expect(r.xids[13]?.pciBusId).toBe('0000:00:08');
  });

  it('reads SXid severity and device', () => {
    expect(r.sxids[0]).toMatchObject({ device: 'nvidia-nvswitch1', pciBusId: '0000:06:00', fatal: true });
    expect(r.sxids[4]?.fatal).toBe(false);
    expect(r.sxids[5]?.fatal).toBeUndefined();
  });

  it.each([
    ['[ 1234.567890] NVRM: Xid (PCI:0000:3b:00): 31, pid=1, name=python, x'],
    ['Mar 05 10:00:00 ip-10-0-0-1 kernel: NVRM: Xid (PCI:0000:3b:00): 31, pid=1, name=python, x'],
    ['[Tue Mar  5 10:00:00 2024] NVRM: Xid (PCI:0000:3b:00): 31, pid=1, name=python, x'],
  ])('accepts the prefix of %s', (line) => {
    expect(parseKernelXids(line).xids[0]).toMatchObject({ xid: 31, pciBusId: '0000:3b:00', message: 'x' });
  });

  it.each([
    [
      'NVRM: Xid (PCI:0000:01:00 GPU-I:05): 94, pid=7194, name=python3, Contained: CE User Channel',
      94,
      5,
      undefined,
    ],
    ['NVRM: Xid (PCI:0000:3b:00 GPU-I:01 GPU-CI:02): 13, pid=1, name=a, Graphics Exception', 13, 1, 2],
  ])('reads a MIG line %s as an XID of the physical GPU, with its instance', (line, xid, gi, ci) => {
    const [x] = parseKernelXids(line).xids;
    expect(x).toMatchObject({ xid, gpuInstance: gi, pid: expect.any(String) });
    expect(x?.computeInstance).toBe(ci);
    expect(x?.pciBusId).toMatch(/^0000:(01|3b):00$/);
  });

  it('never throws on garbage or binary', () => {
    const r2 = parseKernelXids('\u0000\u0001garbage\nNVRM: Xid (PCI:zz): abc\n');
    expect(r2.xids).toEqual([]);
    expect(r2.unparsed).toHaveLength(2);
  });

  it.each([
    ['00000000:91:00.0', '0000:91:00'],
    ['0000:91:00', '0000:91:00'],
    ['PCI:0000:00:08.0', '0000:00:08'],
    ['00000000:A8:00.0', '0000:a8:00'],
  ])('normalizes %s to %s', (input, expected) => {
    expect(normalizePciBusId(input)).toBe(expected);
  });
});
