/**
 * Judging measured figures against issue 3's targets, and rendering them (terminal table and
 * docs/benchmarks.md). Pure: the figures come in, text goes out; nothing here measures or rounds
 * a figure toward a target.
 */
import os from 'node:os';
import type { LlmBenchResult } from './llm.js';
import { extraChecks, extraMarkdown, type OneCpuResult } from './report-extra.js';
import type { ScanMeasurement, SizeResult } from './run.js';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  totalMemoryBytes: number;
  node: string;
  platform: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    totalMemoryBytes: os.totalmem(),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
  };
}

export interface BenchReport {
  date: string;
  command: string;
  machine: MachineInfo;
  /** How our code ran: through the tsx loader (a loader thread in-process adds RSS) or compiled. */
  runtime: string;
  sizes: SizeResult[];
  /** The LLM section; absent with `--no-llm`. */
  llm?: LlmBenchResult;
  /** Full scans under a 1-CPU limit (report-extra.ts); absent when not run. */
  oneCpu?: OneCpuResult[];
  /** What the reader should know about the run (`--note`), e.g. that the machine was shared. */
  note?: string;
}

export type TargetStatus = 'met' | 'NOT met' | 'not measured';

export interface TargetCheck {
  target: string;
  measured: string;
  status: TargetStatus;
}

/** 1 MB = 10^6 bytes throughout, so "250 MB" is the strictest reading of the target. */
const MB = 1e6;
export const RSS_LIMIT_BYTES = 250 * MB;

const measuredScans = (s: SizeResult): ScanMeasurement[] => s.scans.filter((m) => !m.warmup);
const max = (xs: number[]) => (xs.length === 0 ? Number.NaN : Math.max(...xs));

export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const ms = (x: number) => (Number.isFinite(x) ? `${Math.round(x).toLocaleString('en-US')} ms` : '—');
const mb = (x: number) => `${(x / MB).toFixed(0)} MB`;
const status = (ok: boolean): TargetStatus => (ok ? 'met' : 'NOT met');

/** Worst measured scan against each limit: a target is met only when every measured scan met it. */
export function checkTargets(sizes: SizeResult[]): TargetCheck[] {
  const at = (n: number) => sizes.find((s) => s.nodes === n);
  const checks: TargetCheck[] = [];
  const scanLimit = (
    n: number,
    label: string,
    pick: (m: ScanMeasurement) => number,
    limit: number,
    unit: string,
  ) => {
    const s = at(n);
    const worst = s ? max(measuredScans(s).map(pick)) : Number.NaN;
    checks.push({
      target: `${n.toLocaleString('en-US')} nodes × 8 GPUs: full scan ${label} < ${unit}`,
      measured: s ? `worst ${ms(worst)} (median ${ms(median(measuredScans(s).map(pick)))})` : '—',
      status: !s || Number.isNaN(worst) ? 'not measured' : status(worst < limit),
    });
  };
  scanLimit(1000, 'wall time', (m) => m.wallMs, 2000, '2 s');
  scanLimit(1000, 'CPU time', (m) => m.cpuMs, 1000, '1 CPU-s');
  scanLimit(5000, 'wall time', (m) => m.wallMs, 10_000, '10 s');

  if (sizes.length === 0) {
    checks.push({ target: 'RSS < 250 MB', measured: '—', status: 'not measured' });
  }
  for (const s of sizes) {
    const peak = Math.max(s.processMaxRssBytes, max(s.scans.map((m) => m.peakRssBytes)));
    checks.push({
      target: `${s.nodes.toLocaleString('en-US')} nodes: RSS < 250 MB`,
      measured: `peak ${mb(peak)} (process maxRSS so far)`,
      status: status(peak < RSS_LIMIT_BYTES),
    });
  }
  for (const s of sizes) {
    const limitMs = s.intervalSeconds * 1000 + 1000;
    const target = `${s.nodes.toLocaleString('en-US')} nodes: fault → incident ≤ interval (${s.intervalSeconds} s) + 1 s`;
    if (s.faults.length === 0) {
      checks.push({ target, measured: '—', status: 'not measured' });
      continue;
    }
    const missed = s.faults.filter((f) => f.latencyMs === undefined).length;
    const worst = max(s.faults.map((f) => f.latencyMs ?? f.waitedMs));
    checks.push({
      target,
      measured: `worst ${ms(worst)} of ${s.faults.length}${missed ? `, ${missed} never opened` : ''}`,
      status: status(missed === 0 && worst <= limitMs),
    });
  }
  return checks;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

function mdTable(header: string[], rows: string[][]): string[] {
  const esc = (c: string) => c.replaceAll('|', '\\|');
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ];
}

const SCAN_HEADER = [
  'nodes',
  'scan',
  'wall',
  'CPU (user+sys)',
  'peak RSS',
  'API requests',
  'failures',
  'simulator CPU',
];

function scanRows(sizes: SizeResult[]): string[][] {
  return sizes.flatMap((s) =>
    s.scans.map((m) => [
      s.nodes.toLocaleString('en-US'),
      m.warmup ? `${m.index} (warm-up)` : String(m.index),
      ms(m.wallMs),
      `${ms(m.cpuMs)} (${Math.round(m.cpuUserMs)}+${Math.round(m.cpuSystemMs)})`,
      mb(m.peakRssBytes),
      m.requests.toLocaleString('en-US'),
      String(m.failures),
      ms(m.simCpuMs),
    ]),
  );
}

const FAULT_HEADER = ['nodes', 'interval', 'node / GPU', 'injected at', 'fault → incident'];

function faultRows(sizes: SizeResult[]): string[][] {
  return sizes.flatMap((s) =>
    s.faults.map((f) => [
      s.nodes.toLocaleString('en-US'),
      `${s.intervalSeconds} s (±${Math.round(s.jitter * 50)}% jitter)`,
      `${f.node} / ${f.gpu}`,
      `${ms(f.injectedAfterMs)} into the loop`,
      f.latencyMs === undefined ? `none within ${ms(f.waitedMs)}` : ms(f.latencyMs),
    ]),
  );
}

const TARGET_HEADER = ['target', 'measured', 'status'];
const targetRows = (checks: TargetCheck[]) => checks.map((c) => [c.target, c.measured, c.status]);

function machineLine(m: MachineInfo): string {
  return `${m.cpuModel}, ${m.cores} cores, ${(m.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB RAM, Node ${m.node}, ${m.platform}`;
}

function payloadLine(s: SizeResult): string {
  const p = s.payload;
  const shape = p
    ? `${(p.bytes / 1024).toFixed(1)} KiB, ${p.lines} lines, ${p.families} families, ${p.samples} samples per scrape`
    : 'payload not sampled';
  return `${s.nodes.toLocaleString('en-US')} nodes (${s.nodesSeen} seen): simulator up in ${ms(s.simStartMs)}, informers synced in ${ms(s.syncMs)}; ${shape}; simulator RSS ${mb(s.simRssBytes)}`;
}

const LLM_HOW = [
  '- LLM classification: a separate simulator process whose Bedrock fake (the real SDK client, the',
  '  real Converse wire format) gives one standing `classify_gpu_fault` answer, the operator category',
  '  `FABRIC_MANAGER_DOWN` from a temp `POLICY_FILE`, after a scripted delay. `CLASSIFIER=hybrid`, the',
  '  real `createSensing` and `Monitor`, a fresh SQLite store (empty LLM cache). One warm-up scan',
  "  with no fault, then XID 999 (not in NVIDIA's catalog, so the rules mark it ambiguous) is injected",
  '  on GPU 0 of every node. Scan 1 is timed like the full scans (wall, CPU of our process); the',
  '  model answer is applied off the scan, so the clock then runs until `store.incidents.listOpen()`',
  "  shows every incident with the model's category (polled every 25 ms). Scan 2 reads the same fault",
  '  again: the cache answers, no new call. Calls are counted twice: by the fake (`GET /bedrock/calls`)',
  '  and by our `llmStats`.',
];

const LLM_HEADER = ['measure', 'value'];
const LLM_TITLE = 'LLM classification (hybrid, Bedrock fake)';

const counts = (c: Record<string, number>) => {
  const e = Object.entries(c).filter(([, n]) => n > 0);
  return e.length === 0 ? '0' : e.map(([k, n]) => `${n} ${k}`).join(', ');
};

/** The LLM figures as rows; the fake's count and our own counter side by side, never merged. */
export function llmRows(r: LlmBenchResult): string[][] {
  const s = r.stats;
  const n = (x: number) => x.toLocaleString('en-US');
  const avg = s.latencyCount > 0 ? s.latencyMsSum / s.latencyCount : Number.NaN;
  return [
    ['nodes with the same unknown fault (XID 999)', n(r.nodes)],
    ['Bedrock calls (fake received / llmStats.calls)', `${n(r.fakeCalls)} / ${n(s.calls)}`],
    ['coalesced onto an in-flight call', n(s.coalesced)],
    ['cache hits', `${n(s.cacheHits)} (${n(r.scan2Stats.cacheHits)} in scan 2)`],
    ['answers accepted', n(s.accepted)],
    ['rejections', counts(s.rejections)],
    ['fallbacks to the rules', counts(s.fallbacks)],
    ['timeouts / throttles / errors', `${s.timeouts} / ${s.throttles} / ${s.errors}`],
    ['average call latency', `${ms(avg)} (scripted: ${ms(r.fakeLatencyMs)})`],
    ['tokens in / out (scripted by the fake)', `${n(s.inputTokens)} / ${n(s.outputTokens)}`],
    ['warm-up scan (first sight, no fault)', ms(r.warmupWallMs)],
    [
      'scan 1 (fault on every node): wall / CPU',
      `${ms(r.scan1.wallMs)} / ${ms(r.scan1.cpuMs)}${r.scan1.failures ? `, ${r.scan1.failures} failures` : ''}`,
    ],
    [
      'scan 1 start → every incident refined',
      r.allRefinedMs === undefined
        ? `${n(r.refined)} of ${n(r.incidents)} within ${ms(r.waitedMs)}`
        : `${ms(r.allRefinedMs)} (${n(r.refined)} of ${n(r.incidents)} incidents)`,
    ],
    ['scan 2: wall / CPU', `${ms(r.scan2.wallMs)} / ${ms(r.scan2.cpuMs)}`],
    ['scan 2: new Bedrock calls (fake / llmStats)', `${n(r.scan2.fakeCalls)} / ${n(r.scan2Stats.calls)}`],
  ];
}

function llmTerminal(r: LlmBenchResult | undefined): string[] {
  if (!r) return [];
  return ['', `${LLM_TITLE}, ${r.nodes.toLocaleString('en-US')} nodes:`, ...table(LLM_HEADER, llmRows(r))];
}

function llmMarkdown(r: LlmBenchResult | undefined): string[] {
  if (!r) return [];
  return [
    `## ${LLM_TITLE}`,
    '',
    `The Bedrock fake's latency is scripted (${ms(r.fakeLatencyMs)} per call) and so is its token usage`,
    `(${r.usagePerCall.inputTokens} in, ${r.usagePerCall.outputTokens} out per call): these figures measure our pipeline (one`,
    'model call per fault signature, the signature cache, coalescing of identical in-flight requests, the',
    "model kept off the scan's critical path), not the model. Accuracy is `npm run eval`'s job.",
    '',
    ...mdTable(LLM_HEADER, llmRows(r)),
    '',
  ];
}

/** Issue 3's targets, then issue 15's (report-extra.ts). */
function allChecks(report: BenchReport): TargetCheck[] {
  return [...checkTargets(report.sizes), ...extraChecks(report.sizes, report.oneCpu)];
}

/** The terminal summary. */
export function formatTerminal(report: BenchReport): string {
  return [
    `gpu-medic bench — ${report.date}`,
    `machine: ${machineLine(report.machine)}`,
    `runtime: ${report.runtime}`,
    ...report.sizes.map(payloadLine),
    '',
    ...table(SCAN_HEADER, scanRows(report.sizes)),
    '',
    ...table(FAULT_HEADER, faultRows(report.sizes)),
    '',
    ...table(TARGET_HEADER, targetRows(allChecks(report))),
    ...extraMarkdown(report.sizes, report.oneCpu, table),
    ...llmTerminal(report.llm),
  ].join('\n');
}

/** docs/benchmarks.md. */
export function renderMarkdown(report: BenchReport): string {
  const concurrency = [...new Set(report.sizes.map((s) => s.concurrency))].join(', ');
  return [
    '# Benchmarks',
    '',
    `Measured ${report.date} with \`${report.command}\`. Generated by the benchmark; the figures are as measured.`,
    '',
    `**Machine:** ${machineLine(report.machine)}.`,
    '',
    `**Runtime:** ${report.runtime}.`,
    '',
    ...(report.note ? [`**Note:** ${report.note}`, ''] : []),
    '## Targets (issue 3)',
    '',
    ...mdTable(TARGET_HEADER, targetRows(allChecks(report))),
    '',
    '## Full scans',
    '',
    `SCAN_CONCURRENCY ${concurrency}, SCAN_TIMEOUT 10 s, rules classifier, SQLite store in a temp directory.`,
    '',
    ...mdTable(SCAN_HEADER, scanRows(report.sizes)),
    '',
    ...report.sizes.map((s) => `- ${payloadLine(s)}`),
    '',
    '## Fault → incident',
    '',
    ...mdTable(FAULT_HEADER, faultRows(report.sizes)),
    '',
    ...extraMarkdown(report.sizes, report.oneCpu, mdTable),
    ...llmMarkdown(report.llm),
    '## How measured',
    '',
    '- The simulator (Kubernetes API server with the dcgm-exporter pod proxy, AWS fake) runs in its own',
    '  process (`startSimulatorProcess`), so rendering thousands of exporter payloads is not counted as',
    '  our CPU. Its payloads are a real 8-GPU dcgm-exporter scrape in size and shape: every default family',
    '  with HELP and TYPE lines and full label sets. Its own CPU per scan is shown for context.',
    '- In the benchmark process: the real sensing stack (`createSensing`: node informer, exporter pod',
    '  index, keep-alive pod-proxy scrapes, Prometheus parser, rules classifier) and the real `Monitor`',
    "  writing to a real SQLite store, configured from the simulator's environment with LOG_LEVEL silent.",
    '- After the informers sync, one warm-up scan (first sight of every node: every GPU row is',
    "  inserted) and 3 measured `scanOnce()` calls. Wall = the monitor's own scan duration; CPU =",
    '  `process.cpuUsage()` delta across the scan (user + system, all threads of our process); peak RSS =',
    '  `process.memoryUsage.rss()` sampled every 20 ms during the scan, and `process.resourceUsage().maxRSS`',
    '  (lifetime peak, sizes run smallest first) for the RSS target; API requests = requests the',
    "  simulator's fakes served during the scan. A target is met only if every measured scan met it.",
    '- Fault → incident: the monitor loop runs with the MONITOR_INTERVAL shown and its default jitter',
    '  (each period is the interval ± 5 %). Unless `--interval` is given, the bench picks per size the',
    '  smallest of 5, 10, 15, 30, 60 s that is at least 1.5 × the slowest measured scan, as an operator',
    '  would size MONITOR_INTERVAL to the fleet. At a random moment of a period, XID 79 is injected on a',
    "  random GPU of a random node through the simulator's control API, and the wall time until",
    '  `onIncident` reports `XID_CRITICAL_79` for that node is recorded (the clock starts before the',
    '  control request is sent). Scans start on a fixed period (one interval after the previous scan',
    '  STARTED), so a node is read about once per interval: the worst case is about interval + jitter +',
    "  the drift of the node's place within the scan.",
    ...(report.llm ? LLM_HOW : []),
    '',
  ].join('\n');
}
