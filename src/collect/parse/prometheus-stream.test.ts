/**
 * The streaming parser gives exactly what parsePrometheus gives for the same text, however the text is
 * split: mid-line, mid-name, mid-label, mid-escape, between CR and LF, inside a UTF-8 character.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exporterReader, gpusFromExporter } from './exporter.js';
import {
  ExpositionParser,
  type ParsedExposition,
  type ParsePrometheusOptions,
  parsePrometheus,
} from './prometheus.js';

type Outcome = { ok: ParsedExposition } | { error: string };

function whole(text: string, opts?: ParsePrometheusOptions): Outcome {
  try {
    return { ok: parsePrometheus(text, opts) };
  } catch (err) {
    return { error: `${(err as Error).name}: ${(err as Error).message}` };
  }
}

function streamed(chunks: (string | Uint8Array)[], opts?: ParsePrometheusOptions): Outcome {
  try {
    const p = new ExpositionParser(opts);
    for (const c of chunks) p.write(c);
    return { ok: p.end() };
  } catch (err) {
    return { error: `${(err as Error).name}: ${(err as Error).message}` };
  }
}

/** Splits into pieces of `size` (strings by UTF-16 unit, buffers by byte). */
function pieces<T extends string | Buffer>(input: T, size: number): T[] {
  const out: T[] = [];
  for (let i = 0; i < input.length; i += size) out.push(input.slice(i, i + size) as T);
  return out;
}

// Every awkward thing on a few lines: escapes in label values and HELP, CRLF, a BOM, indentation,
// multi-byte characters (2, 3 and 4 UTF-8 bytes), timestamps, suffix folding, a malformed line, blank
// lines, and no final newline.
const AWKWARD = [
  '\ufeff# HELP DCGM_FI_DEV_XID_ERRORS Value of the last XID error \\\\ with a \\n newline.',
  '# TYPE DCGM_FI_DEV_XID_ERRORS gauge',
  'DCGM_FI_DEV_XID_ERRORS{gpu="0",UUID="GPU-aaaa-0000",Hostname="ip-10-0-1-5",err_msg="say \\"hi\\" \\\\ back\\nslash \\q"} 79 1700000000000',
  'DCGM_FI_DEV_XID_ERRORS{gpu="1",UUID="GPU-aaaa-0001",Hostname="ip-10-0-1-5",modelName="NVIDIA H100 80GB HBM3 é 中 😀"} 0',
  '',
  '   DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-aaaa-0000"} 55.125',
  'DCGM_FI_DEV_GPU_TEMP{gpu="1",UUID="GPU-aaaa-0001"}\t+Inf',
  '# TYPE rpc_duration histogram',
  'rpc_duration_bucket{le="0.5"} 3',
  'rpc_duration_bucket{le="+Inf"} 7',
  'rpc_duration_sum 1.5e3',
  'rpc_duration_count 7',
  'broken{gpu="0" 1',
  'also broken here',
  'DCGM_FI_DEV_POWER_USAGE{gpu="0",pci_bus_id="00000000:53:00.0",brace="}{"} 301.5',
  'DCGM_FI_DEV_POWER_USAGE{gpu="1"} NaN',
].join('\r\n');

describe('ExpositionParser: chunked input parses exactly as the whole text', () => {
  it('the awkward text split into two strings at every position', () => {
    for (const text of [AWKWARD, `${AWKWARD}\n`, `${AWKWARD}\r\n`]) {
      const expected = whole(text);
      expect('ok' in expected && expected.ok.samples.length).toBe(10);
      expect('ok' in expected && expected.ok.errors.length).toBe(3);
      for (let i = 0; i <= text.length; i++) {
        const got = streamed([text.slice(0, i), text.slice(i)]);
        if (JSON.stringify(got) !== JSON.stringify(expected)) expect(got, `split at ${i}`).toEqual(expected);
      }
    }
  });

  it('the awkward text as UTF-8 split into two buffers at every byte, even inside a character', () => {
    const bytes = Buffer.from(AWKWARD, 'utf8');
    expect(bytes.length).toBeGreaterThan(AWKWARD.length);
    const expected = whole(AWKWARD);
    for (let i = 0; i <= bytes.length; i++) {
      const got = streamed([bytes.subarray(0, i), bytes.subarray(i)]);
      if (JSON.stringify(got) !== JSON.stringify(expected))
        expect(got, `split at byte ${i}`).toEqual(expected);
    }
  });

  it('the awkward text one character, and one byte, at a time; and split at every pair of positions', () => {
    const expected = whole(AWKWARD);
    expect(streamed(pieces(AWKWARD, 1))).toEqual(expected);
    expect(streamed(pieces(Buffer.from(AWKWARD, 'utf8'), 1))).toEqual(expected);
    const n = AWKWARD.length;
    for (let i = 0; i < n; i += 7) {
      for (let j = i; j <= n; j += 5) {
        const got = streamed([AWKWARD.slice(0, i), AWKWARD.slice(i, j), AWKWARD.slice(j)]);
        if (JSON.stringify(got) !== JSON.stringify(expected))
          expect(got, `split at ${i}, ${j}`).toEqual(expected);
      }
    }
  });

  it('real exporter scrapes (fixtures) in chunks of every size from 1 byte to 64 KiB', () => {
    const dir = join(import.meta.dirname, '../../../test/fixtures');
    const files = readdirSync(dir).filter((f) => f.endsWith('.prom'));
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const file of files) {
      const text = readFileSync(join(dir, file), 'utf8');
      const crlf = text.replace(/\n/g, '\r\n');
      for (const t of [text, crlf]) {
        const expected = whole(t);
        expect('ok' in expected, file).toBe(true);
        const bytes = Buffer.from(t, 'utf8');
        for (const size of [1, 2, 3, 7, 64, 1000, 4095, 4096, 4097, 16_384, 65_536]) {
          expect(streamed(pieces(bytes, size)), `${file} in ${size}-byte chunks`).toEqual(expected);
          expect(streamed(pieces(t, size)), `${file} in ${size}-char chunks`).toEqual(expected);
        }
      }
    }
  });

  it('folds samples into GPUs as they stream (onSample) exactly as gpusFromExporter over the whole text', () => {
    const dir = join(import.meta.dirname, '../../../test/fixtures');
    const texts = readdirSync(dir)
      .filter((f) => f.endsWith('.prom'))
      .map((f) => readFileSync(join(dir, f), 'utf8'));
    for (const text of [...texts, AWKWARD]) {
      const parsed = parsePrometheus(text);
      const expected = gpusFromExporter(parsed);
      expect(expected.gpus.length).toBeGreaterThan(0);
      for (const size of [1, 13, 4096, 65_536]) {
        const reader = exporterReader();
        const p = new ExpositionParser({ onSample: reader.add });
        for (const chunk of pieces(Buffer.from(text, 'utf8'), size)) p.write(chunk);
        const result = p.end();
        // The samples went to the reader, not into the result.
        expect(result.samples).toEqual([]);
        expect(result.errors).toEqual(parsed.errors);
        expect(reader.count).toBe(parsed.samples.length);
        expect(reader.finish()).toEqual(expected);
      }
    }
  });

  it('refuses what parsePrometheus refuses, with the same error, however it is split', () => {
    const control = `${'\u0001\u0002x'.repeat(50)}\nm 1\n`;
    const cases: [string, ParsePrometheusOptions | undefined][] = [
      ['', undefined],
      ['   \r\n\t\n', undefined],
      ['\u000b\u000c  ', undefined],
      ['<!doctype html><html>502 Bad Gateway</html>', undefined],
      ['  \n{"kind":"Status","code":503}', undefined],
      ['[1,2,3]', undefined],
      ['metric_a 1\nmetric\u0000b 2\n', undefined],
      [control, undefined],
      [`${' '.repeat(5000)}<html>`, undefined],
      ['only garbage here\nand more', undefined],
      ['m 1\n'.repeat(100), { maxBytes: 100 }],
      ['m{l="é中"} 1\n'.repeat(4), { maxBytes: 55 }],
    ];
    for (const [text, opts] of cases) {
      const expected = whole(text, opts);
      expect('error' in expected, JSON.stringify(text)).toBe(true);
      for (const size of [1, 3, 4096]) {
        expect(streamed(pieces(text, size), opts), JSON.stringify(text)).toEqual(expected);
        expect(streamed(pieces(Buffer.from(text, 'utf8'), size), opts), JSON.stringify(text)).toEqual(
          expected,
        );
      }
    }
  });

  it('counts dropped errors and their line numbers the same way', () => {
    const text = `ok 1\n${'bad line\n'.repeat(30)}ok 2`;
    const expected = whole(text, { maxErrors: 5 });
    expect('ok' in expected && expected.ok.errors.at(-1)).toEqual({
      line: 32,
      message: '25 more malformed lines not listed',
    });
    for (const size of [1, 4, 9, 10, 11])
      expect(streamed(pieces(text, size), { maxErrors: 5 })).toEqual(expected);
  });

  it('refuses to be used after end', () => {
    const p = new ExpositionParser();
    p.write('m 1\n');
    p.end();
    expect(() => p.write('m 2\n')).toThrow(/after end/);
    expect(() => p.end()).toThrow(/twice/);
  });
});
