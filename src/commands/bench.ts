import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type BenchReport, formatTerminal, machineInfo, renderMarkdown } from '../bench/report.js';
import { runBenchSize, type SizeResult } from '../bench/run.js';
import { CliError } from './cli-error.js';

const USAGE = `Usage: gpu-medic bench [options]

  --sizes 100,1000,5000   fleet sizes (GPU nodes) to measure, smallest first
  --gpus 8                GPUs per node
  --concurrency 32        SCAN_CONCURRENCY
  --scans 3               measured full scans per size (after one warm-up)
  --interval 5            MONITOR_INTERVAL (seconds) for the fault → incident part
  --faults 3              injected XID 79 faults per size (0 skips the part)
  --out PATH              where to write the report (default docs/benchmarks.md)
  --no-write              print only`;

const DEFAULT_OUT = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));

function positiveInts(name: string, raw: string, { allowZero = false } = {}): number[] {
  const parts = raw.split(',').map((s) => s.trim());
  const values = parts.map(Number);
  if (parts.some((p) => p === '') || values.some((v) => !Number.isInteger(v) || v < (allowZero ? 0 : 1))) {
    throw new CliError(
      `--${name}: expected ${allowZero ? 'non-negative' : 'positive'} integers, got "${raw}"`,
      2,
    );
  }
  return values;
}

function one(name: string, raw: string, opts: { allowZero?: boolean } = {}): number {
  const v = positiveInts(name, raw, opts);
  if (v.length !== 1) throw new CliError(`--${name}: expected one number, got "${raw}"`, 2);
  return v[0] as number;
}

/** `gpu-medic bench`: scan speed, CPU, memory and fault → incident latency on a simulated fleet. */
export async function main(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        sizes: { type: 'string', default: '100,1000,5000' },
        gpus: { type: 'string', default: '8' },
        concurrency: { type: 'string', default: '32' },
        scans: { type: 'string', default: '3' },
        interval: { type: 'string', default: '5' },
        faults: { type: 'string', default: '3' },
        out: { type: 'string' },
        'no-write': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    throw new CliError(`${(e as Error).message}\n\n${USAGE}`, 2);
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const str = (k: string) => String(values[k]);
  const sizes = [...new Set(positiveInts('sizes', str('sizes')))].sort((a, b) => a - b);
  const gpusPerNode = one('gpus', str('gpus'));
  const concurrency = one('concurrency', str('concurrency'));
  const scans = one('scans', str('scans'));
  const intervalSeconds = one('interval', str('interval'));
  const faultTrials = one('faults', str('faults'), { allowZero: true });

  const progress = (line: string) => process.stderr.write(`${line}\n`);
  progress(
    `bench: sizes ${sizes.join(', ')} × ${gpusPerNode} GPUs, SCAN_CONCURRENCY ${concurrency}, MONITOR_INTERVAL ${intervalSeconds} s, ${faultTrials} fault(s) per size`,
  );
  const results: SizeResult[] = [];
  for (const nodes of sizes) {
    results.push(
      await runBenchSize({ nodes, gpusPerNode, concurrency, scans, intervalSeconds, faultTrials, progress }),
    );
  }
  const report: BenchReport = {
    date: new Date().toISOString(),
    command: ['gpu-medic bench', ...argv].join(' '),
    machine: machineInfo(),
    runtime: import.meta.url.endsWith('.ts')
      ? 'TypeScript sources through the tsx loader (as `npm run bench` in a checkout; its loader thread and transform cache count in our RSS)'
      : 'compiled JavaScript (dist/, as in the container image)',
    sizes: results,
  };
  console.log(formatTerminal(report));
  if (!values['no-write']) {
    const out = values.out ? String(values.out) : DEFAULT_OUT;
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, renderMarkdown(report));
    console.log(`\nwrote ${out}`);
  }
  return 0;
}
