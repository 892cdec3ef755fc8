/**
 * Full scans under the Deployment's CPU limit (one CPU): each size runs in a child process that pins
 * itself and all its threads to CPU 0 with `taskset` once its simulator has started, so the simulator
 * (a separate process standing in for the API server and the exporters) is not squeezed onto the same
 * CPU. Without `taskset` the part is not run: a scan that was not limited is not reported as one.
 */
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { OneCpuResult } from './report-extra.js';
import { runBenchSize } from './run.js';

export const ONE_CPU_METHOD =
  'the benchmark process and all its threads pinned to CPU 0 with `taskset -a -p -c 0` (the simulator process left unpinned)';

/** True when `taskset` can change this machine's CPU affinity. */
export function tasksetAvailable(): boolean {
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export interface OneCpuOptions {
  nodes: number;
  gpusPerNode: number;
  concurrency: number;
  scans: number;
  progress: (line: string) => void;
}

/** Runs one size in a pinned child process and returns its scans. */
export function runOneCpu(opts: OneCpuOptions): Promise<OneCpuResult> {
  const fromSource = import.meta.url.endsWith('.ts');
  const child = fileURLToPath(new URL(`./one-cpu.${fromSource ? 'ts' : 'js'}`, import.meta.url));
  const args = [
    ...process.execArgv,
    ...(fromSource && !process.execArgv.some((a) => a.includes('tsx')) ? ['--import', 'tsx'] : []),
    child,
    'child',
    JSON.stringify(opts),
  ];
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
    });
    proc.stderr.setEncoding('utf8').on('data', (d: string) => {
      for (const line of d.split('\n')) if (line.trim()) opts.progress(`  [1 CPU] ${line.trim()}`);
    });
    proc.on('error', reject);
    proc.on('close', (code) => {
      if (code !== 0) {
        reject(new Error(`the 1-CPU benchmark child exited with ${code}`));
        return;
      }
      try {
        resolve(JSON.parse(out) as OneCpuResult);
      } catch (err) {
        reject(new Error(`the 1-CPU benchmark child printed no result: ${(err as Error).message}`));
      }
    });
  });
}

/** The child: pin after the simulator starts, scan, print the result as JSON on stdout. */
async function child(raw: string): Promise<void> {
  const opts = JSON.parse(raw) as Omit<OneCpuOptions, 'progress'>;
  const result = await runBenchSize({
    ...opts,
    faultTrials: 0,
    pushTrials: 0,
    afterSimulatorStart: () => {
      execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
    },
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  const out: OneCpuResult = {
    nodes: result.nodes,
    method: ONE_CPU_METHOD,
    scans: result.scans,
    processMaxRssBytes: result.processMaxRssBytes,
  };
  process.stdout.write(JSON.stringify(out));
}

if (process.argv[2] === 'child' && process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  child(process.argv[3] ?? '{}').then(
    () => process.exit(0),
    (err) => {
      process.stderr.write(`${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}
