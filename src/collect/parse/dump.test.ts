import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { detectFormat, parseDump, snapshotFromDump, splitBundle } from './dump.js';
import { MetricsParseError } from './prometheus.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url), 'utf8');
/** A fixture as the command printed it: without the `# SOURCE:` provenance comment on top. */
const output = (name: string) =>
  fixture(name)
    .split('\n')
    .filter((l) => !/^#(?:\s|$)/.test(l))
    .join('\n');

describe('detectFormat', () => {
  it.each([
    ['dcgm-sample-eks-h100-8gpu.prom', 'prometheus'],
    ['dcgm-sample-a800-8gpu-mig.prom', 'prometheus'],
    ['dcgm-sample-xid-errcode-labels.prom', 'prometheus'],
    ['kernel-xid-lines.txt', 'kernel'],
    ['dcgmi-discovery-h800-8gpu.txt', 'dcgmi'],
    ['dcgmi-dmon-230-319.txt', 'dcgmi'],
    ['dcgmi-health-table.txt', 'dcgmi'],
    ['dcgmi-health-failure.json', 'dcgmi'],
    ['aws-sample-bundle.txt', 'bundle'],
  ])('%s is %s', (file, format) => {
    expect(detectFormat(fixture(file))).toBe(format);
  });

  it('calls prose unknown', () => {
    expect(detectFormat('The node rebooted at 3am and nobody knows why.\nThen it was fine.')).toBe('unknown');
  });
});

describe('splitBundle', () => {
  it('accepts === cmd === and ### cmd markers', () => {
    const r = splitBundle('pre\n=== dcgmi discovery -l ===\na\n### dmesg | grep -i xid\nb\nc\n');
    expect(r.preamble).toBe('pre');
    expect(r.sections).toEqual([
      { command: 'dcgmi discovery -l', line: 2, body: 'a' },
      { command: 'dmesg | grep -i xid', line: 4, body: 'b\nc\n' },
    ]);
  });
});

describe('snapshotFromDump', () => {
  it('builds a snapshot from the exporter sample, named after its host', () => {
    const s = snapshotFromDump(fixture('dcgm-sample-eks-h100-8gpu.prom'), { takenAt: 1 });
    expect(s).toMatchObject({ node: 'ip-100-64-171-120.ec2.internal', source: 'file', takenAt: 1 });
    expect(s.gpus).toHaveLength(8);
    expect(s.unparsed).toBeUndefined();
  });

  it('combines every section of the AWS-sample bundle', () => {
    const s = snapshotFromDump(fixture('aws-sample-bundle.txt'), { node: 'ip-10-0-0-1' });
    expect(s.node).toBe('ip-10-0-0-1');
    expect(s.gpus).toHaveLength(8);
    expect(s.gpus[3]).toMatchObject({ xidLast: 79, eccDbeVolatile: 0, health: 'pass', model: 'NVIDIA H800' });
    expect(s.logLines).toHaveLength(1);
    expect(s.unparsed).toEqual(['[1234567.123460] NVRM: GPU 0000:65:00.0: GPU has fallen off the bus.']);
  });

  it('keeps kernel log lines as logLines', () => {
    const s = snapshotFromDump(fixture('kernel-xid-lines.txt'));
    expect(s.gpus).toEqual([]);
    expect(s.logLines).toHaveLength(21);
  });

  // Regression: the `+---` border above "Health Monitor Report" went to `unparsed` (or was a dmon
  // error), so hybrid mode asked the model about every dcgmi health table once a custom category existed.
  it.each([
    ['health alone', ''],
    ['health after dmon', `${output('dcgmi-dmon-230-319.txt')}\n`],
    ['health after discovery', `${output('dcgmi-discovery-h800-8gpu.txt')}\n`],
  ])('keeps the dcgmi health box border out of unparsed and errors: %s', (_, before) => {
    const r = parseDump(`${before}${output('dcgmi-health-table.txt')}`, { node: 'n' });
    expect(r.format).toBe('dcgmi');
    expect(r.snapshot.unparsed).toBeUndefined();
    expect(r.errors).toEqual([]);
    const byIndex = new Map(r.snapshot.gpus.map((g) => [g.index, g]));
    expect(byIndex.get(0)?.health).toBe('warn');
    expect(byIndex.get(1)?.health).toBe('fail');
  });

  it('still keeps a border that opens no health report, and reports odd dmon rows', () => {
    const r = parseDump('+-----+\n| odd |\n#Entity   XIDER\nID\nGPU 0     0\nsomething odd\n', {
      node: 'n',
    });
    expect(r.snapshot.unparsed).toEqual(['+-----+', '| odd |']);
    expect(r.errors.map((e) => e.message)).toEqual(['dmon: unreadable row "something odd"']);
  });

  it('puts unknown text into unparsed for the LLM', () => {
    const s = snapshotFromDump('GPU 3 makes a clicking noise\n\nand smells of smoke');
    expect(s.unparsed).toEqual(['GPU 3 makes a clicking noise', 'and smells of smoke']);
  });

  it('reports malformed metric lines with line numbers and keeps the rest', () => {
    const r = parseDump(
      'DCGM_FI_DEV_GPU_TEMP{gpu="0"} 30\nDCGM_FI_DEV_GPU_TEMP{gpu="1"} hot\nDCGM_FI_DEV_GPU_TEMP{gpu="x"} 3\n',
    );
    expect(r.format).toBe('prometheus');
    expect(r.errors.map((e) => e.line)).toEqual([2, 3]);
    expect(r.snapshot.gpus).toEqual([{ index: 0, temperatureC: 30 }]);
  });

  it.each([
    ['empty', '', /empty/],
    ['binary', '\u0000\u0001\u0002ELF', /binary/],
  ])('throws MetricsParseError for %s input', (_n, text, msg) => {
    expect(() => snapshotFromDump(text)).toThrow(MetricsParseError);
    expect(() => snapshotFromDump(text)).toThrow(msg);
  });

  it('throws for input over maxBytes', () => {
    expect(() => snapshotFromDump('x 1\n'.repeat(100), { maxBytes: 100 })).toThrow(/over the 100-byte limit/);
  });
});
