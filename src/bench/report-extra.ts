/**
 * The benchmark's issue-15 parts, rendered apart from report.ts: fault → incident through an Alertmanager
 * push next to the scan's, and full scans under a 1-CPU limit (the Deployment's `limits.cpu: "1"`).
 */
import type { PushTrial } from './push.js';
import type { ScanMeasurement, SizeResult } from './run.js';

export interface OneCpuResult {
  nodes: number;
  /** How the limit was applied, e.g. "taskset -c 0 (benchmark process only; the simulator unpinned)". */
  method: string;
  scans: ScanMeasurement[];
  processMaxRssBytes: number;
}

export interface ExtraCheck {
  target: string;
  measured: string;
  status: 'met' | 'NOT met' | 'not measured';
}

export const PUSH_LIMIT_MS = 1000;

const ms = (x: number) => (Number.isFinite(x) ? `${Math.round(x).toLocaleString('en-US')} ms` : '—');
const n = (x: number) => x.toLocaleString('en-US');

function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const pushLatency = (p: PushTrial) => p.postToIncidentMs ?? Number.POSITIVE_INFINITY;

/** Push → incident ≤ 1 s after the POST, per size; and the 1-CPU scans against the 10 s / 2 s wall targets. */
export function extraChecks(sizes: SizeResult[], oneCpu: OneCpuResult[] = []): ExtraCheck[] {
  const checks: ExtraCheck[] = [];
  for (const s of sizes) {
    if (!s.pushes) continue;
    const target = `${n(s.nodes)} nodes: Alertmanager push → incident ≤ 1 s after the POST`;
    if (s.pushes.length === 0) {
      checks.push({ target, measured: '—', status: 'not measured' });
      continue;
    }
    const missed = s.pushes.filter((p) => p.postToIncidentMs === undefined).length;
    const worst = Math.max(...s.pushes.map(pushLatency));
    checks.push({
      target,
      measured: `worst ${ms(worst)} of ${s.pushes.length}${missed ? `, ${missed} never opened` : ''}`,
      status: missed === 0 && worst <= PUSH_LIMIT_MS ? 'met' : 'NOT met',
    });
  }
  for (const r of oneCpu) {
    const measured = r.scans.filter((m) => !m.warmup);
    const limit = r.nodes >= 5000 ? 10_000 : 2000;
    const worst = Math.max(...measured.map((m) => m.wallMs));
    checks.push({
      target: `${n(r.nodes)} nodes on 1 CPU: full scan wall time < ${limit / 1000} s`,
      measured: measured.length
        ? `worst ${ms(worst)} (median ${ms(median(measured.map((m) => m.wallMs)))})`
        : '—',
      status: measured.length === 0 ? 'not measured' : worst < limit ? 'met' : 'NOT met',
    });
  }
  return checks;
}

export const PUSH_HEADER = [
  'nodes',
  'fault → incident by scan (worst / median)',
  'Alertmanager POST → incident (worst / median)',
  'POST → answer (worst)',
  'pushes',
];

export function pushRows(sizes: SizeResult[]): string[][] {
  return sizes
    .filter((s) => s.pushes && s.pushes.length > 0)
    .map((s) => {
      const pushes = s.pushes ?? [];
      const scan = s.faults.map((f) => f.latencyMs ?? f.waitedMs);
      const push = pushes.map(pushLatency);
      return [
        n(s.nodes),
        scan.length
          ? `${ms(Math.max(...scan))} / ${ms(median(scan))} (interval ${s.intervalSeconds} s)`
          : '—',
        `${ms(Math.max(...push))} / ${ms(median(push))}`,
        ms(Math.max(...pushes.map((p) => p.postToResponseMs))),
        pushes.map((p) => `${p.node} / ${p.gpu}`).join(', '),
      ];
    });
}

export const ONE_CPU_HEADER = ['nodes', 'scan', 'wall', 'CPU (user+sys)', 'peak RSS', 'failures'];

export function oneCpuRows(results: OneCpuResult[]): string[][] {
  return results.flatMap((r) =>
    r.scans.map((m) => [
      n(r.nodes),
      `${m.index}${m.warmup ? ' (warm-up)' : ''}`,
      ms(m.wallMs),
      `${ms(m.cpuMs)} (${Math.round(m.cpuUserMs)}+${Math.round(m.cpuSystemMs)})`,
      `${(m.peakRssBytes / 1e6).toFixed(0)} MB`,
      String(m.failures),
    ]),
  );
}

/** Markdown sections; `table` renders a header and rows. */
export function extraMarkdown(
  sizes: SizeResult[],
  oneCpu: OneCpuResult[] | undefined,
  table: (header: string[], rows: string[][]) => string[],
): string[] {
  const out: string[] = [];
  const rows = pushRows(sizes);
  if (rows.length > 0) {
    out.push(
      '## Fault → incident: scan vs Alertmanager push',
      '',
      "XID 79 injected, then Alertmanager's webhook (version 4) POSTed to `/webhooks/alertmanager` on the ops",
      "server, naming the node by dcgm-exporter's `Hostname` label; the clock starts when the POST is sent and",
      'stops at `onIncident`. The push scans only that node; the scan column is the periodic loop above.',
      '',
      ...table(PUSH_HEADER, rows),
      '',
    );
  }
  if (oneCpu && oneCpu.length > 0) {
    out.push(
      '## Full scans on one CPU',
      '',
      `The Deployment limits gpu-medic to one CPU. Method: ${[...new Set(oneCpu.map((r) => r.method))].join('; ')}.`,
      '',
      ...table(ONE_CPU_HEADER, oneCpuRows(oneCpu)),
      '',
    );
  }
  return out;
}
