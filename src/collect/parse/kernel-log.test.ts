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

  // Behaviour change (issue 10): a line that names nothing of the GPU stack is ignored, not unparsed, so
  // that a whole dmesg reads as healthy; a malformed NVRM line is still kept for the LLM.
  it('never throws on garbage or binary', () => {
    const r2 = parseKernelXids('\u0000\u0001garbage\nNVRM: Xid (PCI:zz): abc\n');
    expect(r2.xids).toEqual([]);
    expect(r2.unparsed).toEqual(['NVRM: Xid (PCI:zz): abc']);
    expect(r2.ignored).toBe(1);
  });

  it.each([
    [
      "NVRM: Xid (PCI:0000:9a:00 GPU-I:03): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
      79,
      '0000:9a:00',
      3,
      undefined,
    ],
    [
      '[ 40.1] NVRM: Xid (PCI:0000:01:00 GPU-I:05): 94, pid=7194, name=python3, Ch 00000008',
      94,
      '0000:01:00',
      5,
      undefined,
    ],
    [
      'NVRM: Xid (PCI:0000:3b:00 GPU-I:01 GPU-CI:02): 13, pid=1, name=python, Graphics SM Warp Exception',
      13,
      '0000:3b:00',
      1,
      2,
    ],
    [
      'Dec 03 09:12:01 ip-10-0-1-2 kernel: NVRM: Xid (PCI:0000:10:1c GPU-I:02): 48, pid=3, name=t, An uncorrectable double bit error',
      48,
      '0000:10:1c',
      2,
      undefined,
    ],
  ])('reads the MIG form %s', (line, xid, bus, gi, ci) => {
    const x = parseKernelXids(line).xids[0];
    expect(x).toMatchObject({ xid, pciBusId: bus, gpuInstance: gi });
    expect(x?.computeInstance).toBe(ci);
    expect(x?.message).not.toMatch(/GPU-I|pid=/);
  });
});

describe('parseKernelXids on a whole dmesg / journalctl -k', () => {
  it.each([
    ['[    0.000000] Linux version 6.1.158-180.294.amzn2023.x86_64 (mockbuild@ip-10-0-47-12) #1 SMP'],
    ['[    0.004000] ACPI: RSDP 0x00000000000F8F00 000014 (v00 AMAZON)'],
    ['[    0.611024] pci 0000:38:00.0: [10de:27b8] type 00 class 0x030200'],
    ['[    5.331422] nvidia: loading out-of-tree module taints kernel.'],
    ["[    5.331438] nvidia: module license 'NVIDIA' taints kernel."],
    ['[    5.371904] nvidia-nvlink: Nvlink Core is being initialized, major device number 239'],
    ['[    5.374215] nvidia 0000:38:00.0: enabling device (0000 -> 0002)'],
    [
      '[    5.420777] NVRM: loading NVIDIA UNIX x86_64 Kernel Module  550.163.01  Tue Apr  8 12:41:26 UTC 2026',
    ],
    ['[    5.420777] NVRM: loading NVIDIA UNIX Open Kernel Module for x86_64  570.195.03  Release Build'],
    [
      '[    5.462881] nvidia-modeset: Loading NVIDIA Kernel Mode Setting Driver for UNIX platforms  550.163.01',
    ],
    ['[    5.471193] [drm] [nvidia-drm] [GPU ID 0x00003800] Loading driver'],
    ['[    5.471199] [drm] Initialized nvidia-drm 0.0.0 20160202 for 0000:38:00.0 on minor 1'],
    ['[    5.498014] nvidia-uvm: Loaded the UVM driver, major device number 237.'],
    ['[    5.512440] nvidia_uvm: module uses symbols from proprietary module nvidia, inheriting taint.'],
    ['[Thu Dec  3 09:12:01 2026] NVRM: GPU Board Serial Number: 1653923011245'],
    [
      'Dec 03 07:55:17 ip-10-0-1-2 kernel: NVRM: GPU at PCI:0000:9a:00: GPU-4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f',
    ],
    ['Dec 03 07:55:12 ip-10-0-1-2 kernel: DMI: Amazon EC2 p5.48xlarge/, BIOS 1.0 10/16/2017'],
    [
      '2026-12-03T07:55:17+0000 ip-10-0-1-2 kernel: nvidia-uvm: Loaded the UVM driver, major device number 237.',
    ],
    ['Dec 03 07:55:17.123456 ip-10-0-1-2 kernel: NVRM: GPU Board Serial Number: 1653923011245'],
    ['Thu 2026-12-03 07:55:17 UTC ip-10-0-1-2 kernel: nvidia: loading out-of-tree module taints kernel.'],
    ['Dec 03 07:55:20 ip-10-0-1-2 systemd[1]: Started NVIDIA Persistence Daemon.'],
    ['-- Logs begin at Mon 2026-11-30 07:55:12 UTC, end at Thu 2026-12-03 09:12:44 UTC. --'],
  ])('ignores %s', (line) => {
    expect(parseKernelXids(line)).toEqual({ xids: [], sxids: [], unparsed: [], ignored: 1 });
  });

  it.each([
    ['[612044.190912] NVRM: GPU 0000:9a:00.0: GPU has fallen off the bus.'],
    ['Dec 03 09:12:01 ip-10-0-1-2 kernel: NVRM: GPU at PCI:0000:9a:00 has fallen off the bus'],
    ['[   12.1] NVRM: GPU 0000:9a:00.0: RmInitAdapter failed! (0x25:0x65:1457)'],
    [
      "Mar 04 10:21:07 ip-10-0-7-21 systemd[1]: nvidia-fabricmanager.service: Failed with result 'exit-code'.",
    ],
    ['Mar 04 10:21:07 ip-10-0-7-21 systemd[1]: Failed to start NVIDIA fabric manager service.'],
  ])('keeps the possible fault %s for the LLM', (line) => {
    expect(parseKernelXids(line).unparsed).toEqual([line]);
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
