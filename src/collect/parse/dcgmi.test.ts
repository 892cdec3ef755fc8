import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gpusFromDcgmi, parseDcgmiDiscovery, parseDcgmiDmon, parseDcgmiHealth } from './dcgmi.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../../../test/fixtures/${name}`, import.meta.url), 'utf8');

describe('parseDcgmiDiscovery', () => {
  it('reads the real 8-GPU box table (and ignores the NvSwitch table)', () => {
    const r = parseDcgmiDiscovery(fixture('dcgmi-discovery-h800-8gpu.txt'));
    expect(r.declaredCount).toBe(8);
    expect(r.errors).toEqual([]);
    expect(r.gpus).toHaveLength(8);
    expect(r.gpus[0]).toEqual({
      index: 0,
      model: 'NVIDIA H800',
      pciBusId: '00000000:18:00.0',
      uuid: 'GPU-34bf77d1-c686-6821-79a8-32d326c5039c',
    });
    expect(r.gpus[7]?.pciBusId).toBe('00000000:E2:00.0');
  });

  it('reports a non-integer GPU ID and keeps the other rows', () => {
    const r = parseDcgmiDiscovery('2 GPUs found.\n| x      | Name: A |\n| 1      | Name: B |\n');
    expect(r.errors).toHaveLength(1);
    expect(r.gpus).toEqual([{ index: 1, model: 'B' }]);
  });

  it('copes with truncated output', () => {
    const r = parseDcgmiDiscovery('8 GPUs found.\n+----+\n| 0      | Name: NVIDIA H1');
    expect(r.gpus).toEqual([]);
    expect(r.declaredCount).toBe(8);
  });
});

describe('parseDcgmiDmon', () => {
  it('reads `dcgmi dmon -e 230,319 -c 1` with N/A', () => {
    const r = parseDcgmiDmon(fixture('dcgmi-dmon-230-319.txt'));
    expect(r.columns).toEqual(['XIDER', 'EDVDV']);
    expect(r.rows).toHaveLength(8);
    expect(r.rows[3]).toEqual({ entity: 'GPU', id: 3, values: { XIDER: 79, EDVDV: 0 } });
    expect(r.rows[5]?.values.EDVDV).toBeUndefined();
    expect(r.errors).toEqual([]);
  });

  it('keeps the last sample per entity when -c > 1', () => {
    const r = parseDcgmiDmon('#Entity   XIDER\nID\nGPU 0     N/A\nGPU 0     0\nGPU 0     31\n');
    expect(r.rows).toEqual([{ entity: 'GPU', id: 0, values: { XIDER: 31 } }]);
  });

  it('skips a box border after the rows (the next table), reporting nothing', () => {
    const r = parseDcgmiDmon('#Entity   XIDER\nID\nGPU 0     13\n+-----------+----------+\n');
    expect(r.errors).toEqual([]);
    expect(r.rows).toEqual([{ entity: 'GPU', id: 0, values: { XIDER: 13 } }]);
  });

  it('reports wrong types and rows before the header', () => {
    const r = parseDcgmiDmon('GPU 0 1\n#Entity   XIDER\nGPU x 1\nGPU 1 abc\nGPU 2 5\n');
    expect(r.errors.map((e) => e.line)).toEqual([1, 3, 4]);
    expect(r.rows).toEqual([{ entity: 'GPU', id: 2, values: { XIDER: 5 } }]);
  });
});

describe('parseDcgmiHealth', () => {
  it.each([['dcgmi-health-table.txt'], ['dcgmi-health-failure.json']])('reads %s', (file) => {
    const r = parseDcgmiHealth(fixture(file));
    expect(r.errors).toEqual([]);
    expect(r.overall).toBe('fail');
    expect(r.entities).toEqual([
      {
        group: 'GPU',
        id: '0',
        health: 'warn',
        incidents: [
          {
            severity: 'warn',
            system: 'PCIe',
            message: 'Detected more than 8 PCIe replays per minute for GPU 0 : 11',
          },
        ],
      },
      {
        group: 'GPU',
        id: '1',
        health: 'fail',
        incidents: [
          {
            severity: 'fail',
            system: 'Memory',
            message: 'GPU 1 had uncorrectable memory errors and row remapping failed.',
          },
        ],
      },
    ]);
  });

  it('reads the shape with Health/Error children', () => {
    const r = parseDcgmiHealth(
      JSON.stringify({
        body: {
          'Overall Health': { value: 'Warning' },
          GPU: {
            children: {
              '0': {
                children: {
                  PCIe: { children: { Health: { value: 'Warning' }, Error: { value: 'PCIe replays' } } },
                },
              },
            },
          },
        },
      }),
    );
    expect(r.overall).toBe('warn');
    expect(r.entities[0]).toEqual({
      group: 'GPU',
      id: '0',
      health: 'warn',
      incidents: [{ severity: 'warn', system: 'PCIe', message: 'PCIe replays' }],
    });
  });

  it('reads a healthy report', () => {
    const r = parseDcgmiHealth(
      '+---+---+\n| Health Monitor Report |\n+===+===+\n| Overall Health            | Healthy                                                  |\n+---+---+\n',
    );
    expect(r).toEqual({ overall: 'pass', entities: [], errors: [] });
  });

  it.each([
    ['invalid JSON', '{"body": {', /invalid JSON/],
    ['JSON without body', '{"header": []}', /no "body"/],
    [
      'watches not enabled',
      'Error: Health watches not enabled. Please enable watches.',
      /watches not enabled/,
    ],
  ])('reports %s as an error, without throwing', (_n, text, msg) => {
    const r = parseDcgmiHealth(text);
    expect(r.errors[0]?.message).toMatch(msg);
    expect(r.entities).toEqual([]);
  });
});

describe('gpusFromDcgmi', () => {
  it('combines discovery, two dmon runs, health and kernel lines', () => {
    const r = gpusFromDcgmi({
      discovery: fixture('dcgmi-discovery-h800-8gpu.txt'),
      dmon: ['#Entity   EDVDV\nID\nGPU 1     2\n', '#Entity   XIDER\nID\nGPU 3     79\n'],
      health: fixture('dcgmi-health-failure.json'),
      kernel:
        "NVRM: Xid (PCI:0000:65:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\nNVRM: odd line\nsystemd[1]: Reached target Multi-User System.",
    });
    expect(r.declaredCount).toBe(8);
    expect(r.gpus).toHaveLength(8);
    expect(r.gpus[1]).toMatchObject({ eccDbeVolatile: 2, health: 'fail' });
    expect(r.gpus[3]).toMatchObject({ xidLast: 79, health: 'pass', pciBusId: '00000000:65:00.0' });
    expect(r.gpus[3]?.xids).toBeUndefined();
    expect(r.logLines).toHaveLength(1);
    // A kernel line about the NVIDIA stack that the rules cannot read is kept; one about nothing GPU is not.
    expect(r.unparsed).toEqual(['NVRM: odd line']);
  });
});
