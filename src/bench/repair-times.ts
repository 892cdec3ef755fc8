/**
 * Time to repair in the benchmark: gpu-medic repairs faults on a small simulated fleet and the phases
 * (detection → cordon, cordon → drained, drained → healthy) are measured from its progress events by the same
 * RepairPhaseClock that feeds /metrics. The simulator's own delays (reboot, new node, device plugin) are
 * scaled down and stated with the figures: what is measured is gpu-medic's path around them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRuntime, type Runtime } from '../app/runtime.js';
import { loadConfig } from '../config/config.js';
import { isOpen } from '../domain/incident.js';
import { silentLogger } from '../log/logger.js';
import { type PhaseSample, RepairPhaseClock, RepairPhases } from '../metrics/repair-phases.js';
import { startSimulator } from '../sim/index.js';

/** The simulator's delays during the measurement (ms). */
export const REPAIR_SIM_DELAYS = {
  rebootDelayMs: 1500,
  replaceDelayMs: 2000,
  terminateDelayMs: 300,
  rescheduleDelayMs: 300,
  devicePluginDelayMs: 600,
  exporterReadyDelayMs: 400,
} as const;

export interface RepairTimesResult {
  samples: PhaseSample[];
  /** Repairs that did not end resolved within the time allowed, by action. */
  unfinished: string[];
  delays: typeof REPAIR_SIM_DELAYS;
  monitorIntervalSeconds: number;
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    // A benchmark polls the runtime it measures; this wait is not a test's synchronisation.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** One reboot (an ECC DBE) and one replace (XID 79) on an 8-node fleet, timed phase by phase. */
export async function runRepairTimes(
  opts: { progress?: (line: string) => void } = {},
): Promise<RepairTimesResult> {
  const savedEnv = { ...process.env };
  const dir = await mkdtemp(join(tmpdir(), 'gpu-medic-bench-repair-'));
  const sim = await startSimulator({
    counters: 'full',
    nodes: 8,
    ...REPAIR_SIM_DELAYS,
    slack: false,
    controlPort: false,
  });
  let rt: Runtime | undefined;
  const samples: PhaseSample[] = [];
  const unfinished: string[] = [];
  const monitorIntervalSeconds = 1;
  try {
    Object.assign(process.env, sim.env);
    const config = loadConfig({
      ...sim.env,
      DB_PATH: join(dir, 'bench.db'),
      MONITOR_INTERVAL: String(monitorIntervalSeconds),
      CLASSIFIER: 'rules',
      LOG_LEVEL: 'silent',
    });
    const runtime = await createRuntime(config, { logger: silentLogger(), engine: { pollMs: 200 } });
    rt = runtime;
    const clock = new RepairPhaseClock();
    runtime.bus.subscribe((e) => {
      const i = runtime.store.incidents.get(e.incidentId);
      samples.push(...clock.observe(e, i ? { firstSeen: i.firstSeen, action: i.plannedAction } : undefined));
    });
    const gpuNodes = sim.cluster
      .listNodes()
      .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
      .map((n) => n.metadata?.name ?? '');
    await runtime.start();
    await until('the first scan', () => gpuNodes.every((n) => runtime.lastScan.has(n)), 30_000);
    const trials: [string, string, () => void][] = [
      ['reboot', gpuNodes[0] ?? '', () => sim.cluster.injectEcc(gpuNodes[0] ?? '', 1, { dbe: 2 })],
      ['replace', gpuNodes[1] ?? '', () => sim.cluster.injectXid(gpuNodes[1] ?? '', 2, 79)],
    ];
    for (const [action, node, inject] of trials) {
      opts.progress?.(`  repair times: ${action} on ${node}`);
      inject();
      const closed = () =>
        runtime.store.incidents
          .listByNode(node, 10)
          .find((i) => i.plannedAction === action && !isOpen(i.state));
      try {
        await until(`the ${action} to end`, () => closed() !== undefined, 60_000);
        if (closed()?.state !== 'resolved') unfinished.push(action);
      } catch {
        unfinished.push(action);
      }
    }
  } finally {
    await rt?.stop();
    await sim.close();
    for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
    Object.assign(process.env, savedEnv);
    await rm(dir, { recursive: true, force: true });
  }
  return { samples, unfinished, delays: REPAIR_SIM_DELAYS, monitorIntervalSeconds };
}

/** The report's section: one line per action and phase. */
export function repairTimesMarkdown(r: RepairTimesResult): string {
  const d = r.delays;
  const lines = [
    '## Time to repair (simulated fleet)',
    '',
    `Phases as \`gpu_medic_repair_phase_seconds\` measures them, on 8 simulated p5 nodes with MONITOR_INTERVAL ${r.monitorIntervalSeconds} s and the simulator's delays scaled down (reboot ${d.rebootDelayMs / 1000} s, new node ${d.replaceDelayMs / 1000} s, device plugin ${d.devicePluginDelayMs / 1000} s, exporter ${d.exporterReadyDelayMs / 1000} s). On real hardware a p5 reboot takes 10–15 minutes: the reboot and replace lines here show gpu-medic's own share.`,
    '',
    '| action | phase | seconds |',
    '|---|---|---:|',
  ];
  for (const action of ['reset', 'reboot', 'replace']) {
    for (const phase of RepairPhases) {
      const s = r.samples.filter((x) => x.action === action && x.phase === phase);
      if (s.length === 0) continue;
      const mean = s.reduce((sum, x) => sum + x.seconds, 0) / s.length;
      lines.push(`| ${action} | ${phase.replaceAll('_', ' ')} | ${mean.toFixed(1)} |`);
    }
  }
  if (r.unfinished.length > 0) lines.push('', `Did not end resolved: ${r.unfinished.join(', ')}.`);
  return `${lines.join('\n')}\n`;
}
