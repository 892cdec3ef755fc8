import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { detectFormat, parseDump, snapshotFromDump, splitBundle, splitNodeBlocks } from './dump.js';
import { MetricsParseError } from './prometheus.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url), 'utf8');
/** A fixture as the command printed it: without the `# SOURCE:` provenance comment on top. */
const output = (name: string) =>
  fixture(name)
    .split('\n')
    .filter((l) => !/^#(?:\s|$)/.test(l))
    .join('\n');

const corpus = (name: string) =>
  readFileSync(new URL(`../../../eval/corpus/${name}`, import.meta.url), 'utf8');

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

  it.each([
    ['dmesg-boot-healthy.log'],
    ['journal-k-healthy.log'],
    ['journal-fabricmanager-failed-a.log'],
  ])('calls the whole log %s kernel, even without an NVRM Xid line', (file) => {
    expect(detectFormat(corpus(file))).toBe('kernel');
  });

  it.each([
    ['bundle-aws-sections-healthy.txt'],
    ['bundle-aws-sections-partial-xid48.txt'],
  ])('calls the AWS sample sections %s a bundle', (file) => {
    expect(detectFormat(corpus(file))).toBe('bundle');
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

describe('the AWS sample bundle sections', () => {
  const bundle = (sections: string) => `${'='.repeat(60)}\n${sections}`;

  it('reads every section of the reference layout', () => {
    const r = parseDump(corpus('bundle-aws-sections-xid79.txt'));
    expect(r.format).toBe('bundle');
    expect(r.errors).toEqual([]);
    const s = r.snapshot;
    expect(s.node).toBe('ip-10-0-12-34.ec2.internal');
    expect(s.gpus).toHaveLength(8);
    expect(s.gpus[3]).toMatchObject({
      xidLast: 79,
      eccDbeVolatile: 0,
      health: 'pass',
      model: 'NVIDIA H100 80GB HBM3',
      pciBusId: '00000000:86:00.0',
    });
    expect(s.logLines).toEqual([
      "[812345.118822] NVRM: Xid (PCI:0000:86:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
    ]);
    expect(s.missingParts).toBeUndefined();
  });

  it('keeps the node name of NODE_INFO unless the caller names the node', () => {
    expect(snapshotFromDump(corpus('bundle-aws-sections-healthy.txt')).node).toBe(
      'ip-10-0-7-41.us-west-2.compute.internal',
    );
    expect(snapshotFromDump(corpus('bundle-aws-sections-healthy.txt'), { node: 'n' }).node).toBe('n');
  });

  it.each([
    ['ECC_DATA', 'GPU 0      0\nGPU 1      3\n', { eccDbeVolatile: 3 }],
    ['XID_DATA', 'GPU 0      0\nGPU 1      48\n', { xidLast: 48 }],
    ['XID_DATA', '#Entity   XIDER\nID\nGPU 0      0\nGPU 1      13\n', { xidLast: 13 }],
  ])('reads %s rows as the last value of their dmon field', (name, body, want) => {
    const s = snapshotFromDump(bundle(`=== ${name} ===\n${body}`));
    expect(s.gpus[1]).toMatchObject(want);
    expect(s.unparsed).toBeUndefined();
  });

  it('reads N/A as no value and blank lines between sections as nothing', () => {
    const r = parseDump(corpus('bundle-aws-sections-ecc-dbe.txt'));
    expect(r.errors).toEqual([]);
    expect(r.snapshot.gpus[7]?.eccDbeVolatile).toBeUndefined();
    expect(r.snapshot.gpus[2]?.eccDbeVolatile).toBe(4);
    expect(r.snapshot.unparsed).toBeUndefined();
  });

  it('says which sections are missing or empty, and reads the rest', () => {
    const s = snapshotFromDump(corpus('bundle-aws-sections-partial-xid48.txt'));
    expect(s.gpus.map((g) => g.xidLast)).toEqual([48, 0, 0, 0]);
    expect(s.missingParts).toEqual([
      { part: 'dcgmi_health', reason: expect.stringMatching(/HEALTH_DATA section is empty/) },
      { part: 'dcgmi_discovery', reason: expect.stringMatching(/no GPU_INFO section/) },
    ]);
  });

  it('an empty XID_DETAILS is normal, not a missing part', () => {
    const s = snapshotFromDump(corpus('bundle-aws-sections-healthy.txt'));
    expect(s.missingParts).toBeUndefined();
    expect(s.logLines).toBeUndefined();
  });

  it('keeps a GPU_COUNT that is not a number for the LLM, and reports a count that disagrees', () => {
    const odd = parseDump(
      bundle('=== GPU_COUNT ===\nError: unable to connect\n=== XID_DATA ===\nGPU 0   0\n'),
    );
    expect(odd.snapshot.unparsed).toEqual(['[GPU_COUNT]', 'Error: unable to connect']);
    const off = parseDump(bundle('=== GPU_COUNT ===\n8\n=== XID_DATA ===\nGPU 0   0\n'));
    expect(off.errors.map((e) => e.message)).toEqual([
      'GPU_COUNT says 8 GPU(s) but the other sections list 1',
    ]);
  });

  it('cuts a run log of several nodes into one block per node, and leaves a single block whole', () => {
    const a = corpus('bundle-aws-sections-healthy.txt');
    const b = corpus('bundle-aws-sections-xid79.txt');
    const blocks = splitNodeBlocks(`${a}${b}`);
    expect(blocks).toHaveLength(2);
    expect(blocks.map((t) => snapshotFromDump(t).node)).toEqual([
      'ip-10-0-7-41.us-west-2.compute.internal',
      'ip-10-0-12-34.ec2.internal',
    ]);
    expect(snapshotFromDump(blocks[1] ?? '').gpus[3]?.xidLast).toBe(79);
    expect(snapshotFromDump(blocks[0] ?? '').gpus.every((g) => g.xidLast === 0)).toBe(true);
    expect(splitNodeBlocks(a)).toEqual([a]);
    expect(splitNodeBlocks(fixture('kernel-xid-lines.txt'))).toHaveLength(1);
  });

  it('still reads the section names our own bundle invented', () => {
    const s = snapshotFromDump(fixture('aws-sample-bundle.txt'));
    expect(s.gpus[3]?.xidLast).toBe(79);
    expect(s.missingParts).toBeUndefined();
  });
});

describe('whole kernel logs', () => {
  it.each([
    ['dmesg-boot-healthy.log'],
    ['journal-k-healthy.log'],
  ])('%s leaves nothing for the rules or the LLM', (file) => {
    const s = snapshotFromDump(corpus(file));
    expect(s.logLines).toBeUndefined();
    expect(s.unparsed).toBeUndefined();
  });

  it('keeps the Xid lines of a whole dmesg and the fault lines around them', () => {
    const s = snapshotFromDump(corpus('dmesg-boot-xid79.log'));
    expect(s.logLines).toHaveLength(1);
    expect(s.unparsed?.[0]).toMatch(/GPU has fallen off the bus/);
    expect(s.unparsed?.join('\n')).not.toMatch(/Linux version|loading NVIDIA UNIX|GPU Board Serial/);
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
