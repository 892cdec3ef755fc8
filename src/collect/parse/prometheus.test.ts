import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { MetricsParseError, parseFloatToken, parsePrometheus } from './prometheus.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url), 'utf8');

describe('parsePrometheus', () => {
  it('reads HELP/TYPE, labels, values and groups samples by family', () => {
    const r = parsePrometheus(
      [
        '# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).',
        '# TYPE DCGM_FI_DEV_GPU_TEMP gauge',
        'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a"} 26',
        'DCGM_FI_DEV_GPU_TEMP{gpu="1",UUID="GPU-b"} 27.5',
      ].join('\n'),
    );
    expect(r.errors).toEqual([]);
    expect(r.samples).toHaveLength(2);
    const fam = r.families.get('DCGM_FI_DEV_GPU_TEMP');
    expect(fam?.type).toBe('gauge');
    expect(fam?.help).toBe('GPU temperature (in C).');
    expect(fam?.samples.map((s) => s.value)).toEqual([26, 27.5]);
    expect(r.samples[1]?.labels).toEqual({ gpu: '1', UUID: 'GPU-b' });
    expect(r.samples[1]?.line).toBe(4);
  });

  it('unescapes label values (\\\\, \\", \\n) and keeps commas and braces inside quotes', () => {
    const r = parsePrometheus('m{a="x\\\\y",b="say \\"hi\\"",c="l1\\nl2",d="a,b}c"} 1\n');
    expect(r.errors).toEqual([]);
    expect(r.samples[0]?.labels).toEqual({ a: 'x\\y', b: 'say "hi"', c: 'l1\nl2', d: 'a,b}c' });
  });

  it.each([
    ['NaN', Number.NaN],
    ['+Inf', Number.POSITIVE_INFINITY],
    ['-Inf', Number.NEGATIVE_INFINITY],
    ['1e3', 1000],
    ['-0.5', -0.5],
  ])('parses the value %s', (tok, expected) => {
    const r = parsePrometheus(`m ${tok}\n`);
    expect(r.samples[0]?.value).toBe(expected);
  });

  it('reads optional timestamps, CRLF, blank lines, trailing commas and untyped families', () => {
    const r = parsePrometheus('\r\n# TYPE a counter\r\na{x="1",} 5 1700000000000\r\n\r\nb 2\r\n');
    expect(r.errors).toEqual([]);
    expect(r.samples[0]).toMatchObject({
      name: 'a',
      value: 5,
      timestampMs: 1700000000000,
      labels: { x: '1' },
    });
    expect(r.families.get('b')?.type).toBe('untyped');
  });

  it('keeps duplicate series (both samples) and folds histogram suffixes into the family', () => {
    const r = parsePrometheus(
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\nd 1\nd 2\n',
    );
    expect(r.families.get('h')?.samples).toHaveLength(4);
    expect(r.families.get('d')?.samples.map((s) => s.value)).toEqual([1, 2]);
  });

  it('reports a malformed line with its number and parses the rest', () => {
    const r = parsePrometheus('good 1\nbad{gpu="0" 1\nalso_good{a="b"} 2\nno_value\nx{a="1"} notanumber\n');
    expect(r.samples.map((s) => s.name)).toEqual(['good', 'also_good']);
    expect(r.errors.map((e) => e.line)).toEqual([2, 4, 5]);
    expect(r.errors[2]?.message).toMatch(/invalid value/);
  });

  it('reports a line truncated mid-label', () => {
    const r = parsePrometheus('a 1\nDCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-22db');
    expect(r.samples).toHaveLength(1);
    expect(r.errors).toEqual([{ line: 2, message: expect.stringMatching(/unterminated/) }]);
  });

  it.each([
    ['empty', '', /empty/],
    ['whitespace', '  \n\n ', /empty/],
    ['HTML', '<!DOCTYPE html><html><body>502 Bad Gateway</body></html>', /HTML/],
    ['JSON', '{"kind":"Status","status":"Failure"}', /JSON/],
    ['binary', 'PK\u0003\u0004\u0000\u0000binary', /binary/],
    ['garbage', 'this is not\nmetrics at all!\n', /no readable metric lines/],
  ])('throws MetricsParseError for %s input', (_name, text, message) => {
    expect(() => parsePrometheus(text)).toThrow(MetricsParseError);
    expect(() => parsePrometheus(text)).toThrow(message);
  });

  it('throws for input over maxBytes', () => {
    const big = 'm 1\n'.repeat(300);
    expect(() => parsePrometheus(big, { maxBytes: 1000 })).toThrow(/over the 1000-byte limit/);
    expect(parsePrometheus(big, { maxBytes: 2000 }).samples).toHaveLength(300);
  });

  it('caps the error list on a flood of bad lines', () => {
    const text = `ok 1\n${'bad line here\n'.repeat(50)}`;
    const r = parsePrometheus(text, { maxErrors: 10 });
    expect(r.errors).toHaveLength(11);
    expect(r.errors[10]?.message).toMatch(/40 more/);
  });

  it.each([
    ['dcgm-sample-eks-h100-8gpu.prom', 'DCGM_FI_DEV_GPU_TEMP'],
    ['dcgm-sample-a800-8gpu-mig.prom', 'DCGM_FI_DEV_XID_ERRORS'],
    ['dcgm-sample-xid-errcode-labels.prom', 'DCGM_FI_DEV_XID_ERRORS'],
  ])('parses the real sample %s without errors', (file, family) => {
    const r = parsePrometheus(fixture(file));
    expect(r.errors).toEqual([]);
    expect(r.families.get(family)?.samples.length).toBeGreaterThan(0);
  });

  it('rejects token spellings ParseFloat would not accept', () => {
    expect(parseFloatToken('0x10')).toBeUndefined();
    expect(parseFloatToken('')).toBeUndefined();
    expect(parseFloatToken('12abc')).toBeUndefined();
  });
});

describe('parsePrometheus: label sets repeated across families', () => {
  it('reuses a parsed label block only for identical text', () => {
    const text = [
      'a{gpu="0",UUID="GPU-0",x="}"} 1',
      'a{gpu="1",UUID="GPU-1",x="}"} 2',
      'b{gpu="0",UUID="GPU-0",x="}"} 3',
      'b{gpu="1",UUID="GPU-1",x="}"} 4',
      'b{gpu="1",UUID="GPU-1",x="}",extra="e"} 5',
      'c{gpu="0",UUID="GPU-0",x="}"} 6 1700000000000',
      'c{gpu="0",UUID="GPU-0",x="}"',
      'c{gpu="1",UUID="GPU-1",x="\\"}"} 7',
    ].join('\n');
    const p = parsePrometheus(text);
    expect(p.samples.map((s) => [s.name, s.labels, s.value])).toEqual([
      ['a', { gpu: '0', UUID: 'GPU-0', x: '}' }, 1],
      ['a', { gpu: '1', UUID: 'GPU-1', x: '}' }, 2],
      ['b', { gpu: '0', UUID: 'GPU-0', x: '}' }, 3],
      ['b', { gpu: '1', UUID: 'GPU-1', x: '}' }, 4],
      ['b', { gpu: '1', UUID: 'GPU-1', x: '}', extra: 'e' }, 5],
      ['c', { gpu: '0', UUID: 'GPU-0', x: '}' }, 6],
      ['c', { gpu: '1', UUID: 'GPU-1', x: '"}' }, 7],
    ]);
    expect(p.samples[5]?.timestampMs).toBe(1700000000000);
    expect(p.errors).toEqual([{ line: 7, message: "expected ',' or '}' after label x in c" }]);
    expect(p.families.get('b')?.samples).toHaveLength(3);
  });

  it.each([
    '0',
    '42',
    '007',
    '55.125',
    '66.033',
    '0.1',
    '1.',
    '.5',
    '123456789012345',
    '1234567890123456789',
    '0.30000000000000004',
    '1e3',
    '-2.5',
    '+Inf',
    'NaN',
  ])('reads the value %s as Number() / ParseFloat would', (token) => {
    const v = parsePrometheus(`m{gpu="0"} ${token}`).samples[0]?.value;
    const expected = parseFloatToken(token);
    if (expected === undefined || Number.isNaN(expected)) expect(v).toBeNaN();
    else expect(v).toBe(expected);
  });
});
