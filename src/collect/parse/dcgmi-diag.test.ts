import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { diagVerdict, failedGpus } from '../../domain/diag.js';
import { parseDcgmiDiag } from './dcgmi-diag.js';

// A DCGM 4.x `dcgmi diag -r 2 -j` document (its source: test/fixtures/dcgmi-diag-r2-fail.source.md).
const fixture = readFileSync(
  new URL('../../../test/fixtures/dcgmi-diag-r2-fail.json', import.meta.url),
  'utf8',
);

function report(text: string, level: 1 | 2 | 3 = 2) {
  const parsed = parseDcgmiDiag(text, level);
  if (parsed.kind !== 'report') throw new Error(`expected a report, got ${parsed.kind}: ${parsed.message}`);
  return parsed.report;
}

const doc = (tests: unknown[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({ 'DCGM Diagnostic': { test_categories: [{ category: 'Hardware', tests }] }, ...extra });

describe('parseDcgmiDiag', () => {
  it('reads the fixture per test and per GPU, with DCGM’s failure text', () => {
    const r = report(fixture);
    expect(r.level).toBe(2);
    expect(r.dcgmVersion).toBe('4.2.3');
    expect(r.driverVersion).toBe('550.127.05');
    expect(r.results).toHaveLength(12);
    expect(r.results.filter((x) => x.test === 'software').every((x) => x.status === 'pass')).toBe(true);
    expect(r.results.find((x) => x.test === 'memory' && x.gpu === 3)).toEqual({
      test: 'memory',
      gpu: 3,
      status: 'fail',
      info: 'Found 4 faulty memory elements on GPU 3',
    });
    // DCGM prints a warning as "Fail"; its MONITOR severity says it is a warning.
    expect(r.results.find((x) => x.test === 'pcie' && x.gpu === 2)).toMatchObject({
      status: 'warn',
      info: 'Detected clocks event due to thermal violation in GPU 2.',
    });
    expect(r.results.find((x) => x.test === 'memory' && x.gpu === 1)).toMatchObject({
      status: 'skip',
      info: expect.stringContaining('held by another process'),
    });
    // A pass carries no text (the bandwidth info line of GPU 0 is not news).
    expect(r.results.find((x) => x.test === 'pcie' && x.gpu === 0)?.info).toBeUndefined();
    expect(r.nodeWide).toBeUndefined();
    expect(diagVerdict(r)).toBe('fail');
    expect(failedGpus(r)).toEqual([3]);
  });

  it('reads DCGM’s runtime_error as a run that did not happen', () => {
    const text = JSON.stringify({
      'DCGM Diagnostic': {
        version: '4.2.3',
        runtime_error: 'Error: unable to establish a connection to the host engine',
      },
    });
    expect(parseDcgmiDiag(text, 1)).toEqual({
      kind: 'runtime_error',
      message: 'Error: unable to establish a connection to the host engine',
    });
  });

  it.each([
    ['empty output', ''],
    ['a truncated document', fixture.slice(0, 400)],
    ['plain text', 'Error: Unable to connect to host engine. Host engine connection invalid/disconnected.\n'],
    ['another JSON document', '{"body": {"Overall Health": {"value": "Healthy"}}}'],
    ['a document with no tests', '{"DCGM Diagnostic": {"test_categories": []}}'],
    ['a wrongly typed result', doc([{ name: 'memory', results: [{ entity_id: 'zero', status: 1 }] }])],
  ])('says clearly why %s is unreadable', (_, text) => {
    const parsed = parseDcgmiDiag(text, 1);
    expect(parsed.kind).toBe('unreadable');
    if (parsed.kind === 'unreadable') expect(parsed.message).toMatch(/dcgmi diag -j/);
  });

  it('reads a document printed after a log line', () => {
    const r = report(`Successfully ran diagnostic for group.\n${fixture}`);
    expect(failedGpus(r)).toEqual([3]);
  });

  it('reads an unknown status as a failure and names it', () => {
    const r = report(
      doc([{ name: 'memory', results: [{ entity_group: 'GPU', entity_id: 0, status: 'Bogus' }] }]),
    );
    expect(r.results).toEqual([{ test: 'memory', gpu: 0, status: 'fail', info: 'DCGM status "Bogus"' }]);
  });

  it('keeps a failure that names no GPU as node-wide', () => {
    const r = report(
      doc([
        {
          name: 'software',
          results: [{ entity_group: 'GPU', entity_id: 0, status: 'Pass' }],
          test_summary: {
            status: 'Fail',
            warnings: [{ warning: 'Persistence mode for GPU 0 is disabled.', error_severity: 5 }],
          },
        },
      ]),
      1,
    );
    expect(r.nodeWide).toEqual([
      { test: 'software', status: 'fail', info: 'Persistence mode for GPU 0 is disabled.' },
    ]);
    expect(diagVerdict(r)).toBe('fail');
    expect(failedGpus(r)).toEqual([]);
  });

  it('keeps a failing non-GPU entity as node-wide, named', () => {
    const r = report(
      doc([
        {
          name: 'nvbandwidth',
          results: [
            { entity_group: 'NvSwitch', entity_id: 2, status: 'Fail', warnings: [{ warning: 'link down' }] },
          ],
        },
      ]),
    );
    expect(r.results).toEqual([]);
    expect(r.nodeWide).toEqual([{ test: 'nvbandwidth', status: 'fail', info: 'NvSwitch 2: link down' }]);
  });

  it('reads DCGM 3.x documents (root "DCGM GPU Diagnostic", gpu_id) and explicit Warn', () => {
    const text = JSON.stringify({
      'DCGM GPU Diagnostic': {
        test_categories: [
          {
            category: 'Integration',
            tests: [
              {
                name: 'PCIe',
                results: [{ gpu_id: '1', status: 'Warn', warnings: [{ warning: 'replays' }] }],
              },
            ],
          },
        ],
      },
    });
    const r = report(text, 2);
    expect(r.results).toEqual([{ test: 'PCIe', gpu: 1, status: 'warn', info: 'replays' }]);
    expect(diagVerdict(r)).toBe('warn');
  });

  it('a passing run is a pass', () => {
    const r = report(
      doc([
        {
          name: 'memory',
          results: [0, 1].map((g) => ({ entity_group: 'GPU', entity_id: g, status: 'Pass' })),
          test_summary: { status: 'Pass' },
        },
      ]),
    );
    expect(diagVerdict(r)).toBe('pass');
  });
});
