import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  gpusFromDcgmi,
  parseDcgmiDiscovery,
  parseDcgmiDmon,
  parseDcgmiHealth,
} from '../collect/parse/dcgmi.js';
import { parseKernelXids } from '../collect/parse/kernel-log.js';
import {
  dmonRowsFromSim,
  healthReportsFromSim,
  renderDiscovery,
  renderDmesg,
  renderDmon,
  renderHealthJson,
  renderHealthTable,
  wrapWords,
} from './dcgmi-render.js';
import { runSimCommand } from './exec-server.js';
import { SeededRandom } from './seeded-random.js';
import { makeGpu, type SimGpu } from './sim-gpu.js';

/** A fixture without our `#` provenance lines: exactly what dcgmi printed. */
const fixture = (name: string) =>
  readFileSync(new URL(`../../test/fixtures/${name}`, import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => !l.startsWith('# ') && !l.startsWith('#   '))
    .join('\n');

const gpus = (n: number): SimGpu[] => {
  const rng = new SeededRandom(7);
  return Array.from({ length: n }, (_, i) => makeGpu(i, rng));
};

describe('layouts match the real dcgmi samples byte for byte', () => {
  it('discovery -l (8x H800, DCGM 3.1.8)', () => {
    const expected = fixture('dcgmi-discovery-h800-8gpu.txt');
    const parsed = parseDcgmiDiscovery(expected).gpus;
    const input = parsed.map((g) => ({
      index: g.index,
      model: g.model ?? '',
      pciBusId: g.pciBusId ?? '',
      uuid: g.uuid ?? '',
    }));
    expect(renderDiscovery(input)).toBe(expected);
  });

  it('dmon -e 230,319 -c 1, with N/A', () => {
    const expected = fixture('dcgmi-dmon-230-319.txt');
    const rows = Array.from({ length: 8 }, (_, i) => ({
      index: i,
      values: [i === 3 ? 79 : 0, i === 5 ? undefined : 0],
    }));
    expect(renderDmon(['XIDER', 'EDVDV'], rows)).toBe(expected);
  });

  it('health -c (tree printer, overflow rows)', () => {
    const expected = fixture('dcgmi-health-table.txt');
    const reports = [
      {
        index: 0,
        incidents: [
          {
            severity: 'warn' as const,
            system: 'PCIe system',
            message: 'Detected more than 8 PCIe replays per minute for GPU 0 : 11',
          },
        ],
      },
      {
        index: 1,
        incidents: [
          {
            severity: 'fail' as const,
            system: 'Memory system',
            message: 'GPU 1 had uncorrectable memory errors and row remapping failed.',
          },
        ],
      },
    ];
    expect(renderHealthTable(reports)).toBe(expected);
    // The JSON printer carries the same tree: the parser reads both to the same result.
    expect(parseDcgmiHealth(renderHealthJson(reports))).toEqual(parseDcgmiHealth(expected));
    expect(parseDcgmiHealth(renderHealthJson(reports))).toEqual(
      parseDcgmiHealth(
        readFileSync(new URL('../../test/fixtures/dcgmi-health-failure.json', import.meta.url), 'utf8'),
      ),
    );
  });
});

describe('simulated GPU state round-trips through the parsers', () => {
  it('discovery, dmon and health of a faulty node', () => {
    const g = gpus(8);
    const [g2, g5, g6] = [g[2], g[5], g[6]] as [SimGpu, SimGpu, SimGpu];
    g2.xidLast = 79;
    g5.eccDbeVolatile = 3;
    g6.health = 'fail';
    g6.healthMessage = 'NVLink link 4 is down';
    const out = gpusFromDcgmi({
      discovery: renderDiscovery(g),
      dmon: [renderDmon(['XIDER', 'EDVDV'], dmonRowsFromSim(g, [230, 319]))],
      health: renderHealthJson(healthReportsFromSim(g)),
    });
    expect(out.errors).toEqual([]);
    expect(out.declaredCount).toBe(8);
    expect(out.overallHealth).toBe('fail');
    expect(out.gpus.map((x) => x.uuid)).toEqual(g.map((x) => x.uuid));
    expect(out.gpus[2]).toMatchObject({ xidLast: 79, eccDbeVolatile: 0, health: 'pass', model: g2.model });
    expect(out.gpus[5]).toMatchObject({
      eccDbeVolatile: 3,
      health: 'fail',
      healthIncidents: [
        {
          severity: 'fail',
          system: 'Memory',
          message: 'Detected 3 volatile double-bit ECC error(s) in GPU 5.',
        },
      ],
    });
    expect(out.gpus[6]).toMatchObject({
      health: 'fail',
      healthIncidents: [{ severity: 'fail', system: 'NVLink', message: 'NVLink link 4 is down' }],
    });
  });

  it('a healthy node: "Healthy" overall, every GPU passes', () => {
    const g = gpus(4);
    const table = parseDcgmiHealth(renderHealthTable(healthReportsFromSim(g)));
    const json = parseDcgmiHealth(renderHealthJson(healthReportsFromSim(g)));
    expect(table).toEqual({ overall: 'pass', entities: [], errors: [] });
    expect(json).toEqual(table);
  });

  it('dmon prints every requested field in order, -c N samples', () => {
    const g = gpus(2);
    const text = renderDmon(['TMPTR', 'XIDER'], dmonRowsFromSim(g, [150, 230]), 3);
    const parsed = parseDcgmiDmon(text);
    expect(parsed.columns).toEqual(['TMPTR', 'XIDER']);
    expect(parsed.rows.map((r) => r.values)).toEqual(g.map((x) => ({ TMPTR: x.temperatureC, XIDER: 0 })));
    expect(text.split('\n').filter((l) => l.startsWith('GPU '))).toHaveLength(6);
  });

  it('dmesg lines keep the NVRM text the kernel-log parser reads', () => {
    const lines = renderDmesg([
      "NVRM: Xid (PCI:0000:53:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
    ]);
    expect(lines[0]).toMatch(/^\[\s*\d+\.\d{6}\] NVRM: Xid/);
    expect(parseKernelXids(lines.join('\n')).xids).toMatchObject([{ xid: 79, pciBusId: '0000:53:00' }]);
  });

  it('wraps long messages on word boundaries', () => {
    expect(wrapWords('a '.repeat(40).trim(), 10).every((l) => l.length <= 10)).toBe(true);
    expect(wrapWords('short')).toEqual(['short']);
    expect(wrapWords('')).toEqual([]);
  });
});

describe('runSimCommand (what a dcgm-server pod answers)', () => {
  const host = () => {
    const g = gpus(2);
    return {
      gpus: g,
      kernelLog: [
        'NVRM: loading NVIDIA UNIX x86_64 Kernel Module  550.127.08',
        'NVRM: Xid (PCI:0000:53:00): 13, pid=1, name=python, Graphics SM Warp Exception',
        "NVRM: Xid (PCI:0000:64:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
      ],
    };
  };

  it.each([
    [['dcgmi', 'discovery', '-l'], 0, /^2 GPUs found\./],
    [['dcgmi', 'dmon', '-e', '230,319', '-c', '1'], 0, /^#Entity {3}XIDER/],
    [['dcgmi', 'dmon', '-e', '230', '-c', '1'], 0, /^#Entity {3}XIDER {23}\n/],
    [['dcgmi', 'dmon', '-e', '319', '-c', '1'], 0, /^#Entity {3}EDVDV/],
    [['dcgmi', 'health', '-c'], 0, /Health Monitor Report/],
    [['dcgmi', 'health', '-c', '-j'], 0, /^\{\n {3}"body" : \{/],
    [['sh', '-c', 'dmesg | grep -i xid | tail -20'], 0, /\] NVRM: Xid .*: 13,.*\n.*: 79,/],
    [['sh', '-c', 'dmesg | grep -i xid | tail -1'], 0, /^\[[^\n]*: 79, [^\n]*\n$/],
    [['dmesg'], 0, /loading NVIDIA/],
  ])('%j → exit %i', (command, exitCode, stdout) => {
    const r = runSimCommand(command, host());
    expect(r.exitCode).toBe(exitCode);
    expect(r.stdout).toMatch(stdout);
    expect(r.stderr).toBe('');
  });

  it.each([
    [['sh', '-c', 'lspci'], 127, 'lspci: command not found'],
    [['sh', '-c', 'dmesg | frobnicate'], 127, 'frobnicate: command not found'],
    [['sh', '-c', 'dmesg | grep -i sxid'], 1, ''],
    [['dcgmi', 'dmon', '-e', '999', '-c', '1'], 255, 'Invalid field'],
    [['dcgmi', 'diag', '-r', '1'], 255, 'unknown subcommand'],
    [['sh', '-c', 'dmesg | tail -x'], 1, 'invalid option'],
  ])('%j → exit %i', (command, exitCode, stderr) => {
    const r = runSimCommand(command, host());
    expect(r.exitCode).toBe(exitCode);
    expect(r.stderr).toContain(stderr);
  });

  it('a binary missing from the image never starts (the runtime refuses it): no exit status of its own', () => {
    const r = runSimCommand(['lspci'], host());
    expect(r.startError).toMatch(/exec: "lspci": executable file not found in \$PATH: unknown$/);
    expect(r.stdout).toBe('');
  });

  it('the EKS agent image has dcgmi but no sh or dmesg', () => {
    const minimal = { ...host(), tools: new Set(['dcgmi', 'nv-hostengine']) };
    expect(runSimCommand(['dcgmi', 'discovery', '-l'], minimal)).toMatchObject({ exitCode: 0 });
    expect(runSimCommand(['sh', '-c', 'dmesg'], minimal).startError).toContain(
      'exec: "sh": executable file not found',
    );
    expect(runSimCommand(['dmesg'], minimal).startError).toContain(
      'exec: "dmesg": executable file not found',
    );
  });

  it('outside a DCGM pod nothing exists', () => {
    expect(runSimCommand(['dcgmi', 'discovery', '-l'], undefined).startError).toContain(
      'exec: "dcgmi": executable file not found in $PATH',
    );
  });
});
