/**
 * `dcgmi diag -r 1|2|3 -j` in the simulator's DCGM host-engine pods, printed as DCGM 4.x prints it
 * (dcgmi/Diag.cpp; test/fixtures/dcgmi-diag-r2-fail.source.md): categories of tests, one result per GPU and
 * test, DCGM's own failure texts, error ids, categories and severities, a warning printed as "Fail" with
 * severity MONITOR, and `dcgmi`'s exit code (226 when a test reported an error, 205 when one was an ISOLATE).
 *
 * The levels run DCGM's tests — 1: software; 2: + pcie, memory; 3: + diagnostic, targeted_stress,
 * targeted_power, memory_bandwidth — and take longer the higher the level, in simulated time (the cluster's
 * clock): level 3 is the long one. What fails is injected per node, test and GPU (`SimCluster.injectDiag`, the
 * control API's `diag` fault); a GPU whose row remapping failed fails the memory test on its own.
 */
import type { SimExecRequest, SimExecResult } from './exec-server.js';
import type { SimClock } from './sim-clock.js';
import type { SimGpu } from './sim-gpu.js';

export const SimDiagTests = [
  'software',
  'pcie',
  'memory',
  'diagnostic',
  'targeted_stress',
  'targeted_power',
  'memory_bandwidth',
] as const;
export type SimDiagTest = (typeof SimDiagTests)[number];

/** Each level's tests, with DCGM's category for each. */
const LEVEL_TESTS: Record<1 | 2 | 3, readonly { test: SimDiagTest; category: string }[]> = {
  1: [{ test: 'software', category: 'Deployment' }],
  2: [
    { test: 'software', category: 'Deployment' },
    { test: 'pcie', category: 'Integration' },
    { test: 'memory', category: 'Hardware' },
  ],
  3: [
    { test: 'software', category: 'Deployment' },
    { test: 'pcie', category: 'Integration' },
    { test: 'memory', category: 'Hardware' },
    { test: 'diagnostic', category: 'Hardware' },
    { test: 'targeted_stress', category: 'Stress' },
    { test: 'memory_bandwidth', category: 'Stress' },
    { test: 'targeted_power', category: 'Power' },
  ],
};

/** How long each level runs, in simulated ms (real DCGM: about a minute, a few minutes, half an hour). */
export const DEFAULT_DIAG_DURATION_MS: Readonly<Record<1 | 2 | 3, number>> = { 1: 500, 2: 2_000, 3: 8_000 };

interface DcgmError {
  warning: string;
  error_id: number;
  error_category: number;
  error_severity: number;
}

/** dcgm_errors.h severities. */
const MONITOR = 1;
const ISOLATE = 2;

/** A failure of each test as DCGM words it (dcgm_errors.h message, id, category, severity in dcgm_errors.c). */
function failureOf(test: SimDiagTest, gpu: number): DcgmError {
  switch (test) {
    case 'software':
      return e(`Pending page retirements together with a DBE were detected on GPU ${gpu}.`, 83, 10, 6);
    case 'pcie':
      return e(`Detected more than 8 PCIe replays per minute for GPU ${gpu} : 31`, 3, 13, ISOLATE);
    case 'memory':
    case 'diagnostic':
      return e(`Found 4 faulty memory elements on GPU ${gpu}`, 52, 10, ISOLATE);
    case 'targeted_stress':
    case 'memory_bandwidth':
      return e(
        `Max stress level of 1510.2 did not reach desired stress level of 3000.0 for GPU ${gpu}`,
        50,
        1,
        4,
      );
    case 'targeted_power':
      return e(
        `Max power of 412.0 did not reach desired power minimum targeted_power of 560.0 for GPU ${gpu}`,
        63,
        14,
        4,
      );
  }
}

const e = (warning: string, error_id: number, error_category: number, error_severity: number): DcgmError => ({
  warning,
  error_id,
  error_category,
  error_severity,
});

export interface DiagInjection {
  test: SimDiagTest;
  /** One GPU (DCGM index); every GPU of the node when omitted. */
  gpu?: number;
  status: 'fail' | 'warn' | 'skip';
  /** DCGM's text; a failure of that test in DCGM's words when omitted. */
  message?: string;
  /** Runs it applies to; for good when omitted. */
  times?: number;
}

/** A DCGM run refused as a whole (the host engine gone, GPUs busy): `runtime_error`, no tests. */
export interface DiagRuntimeError {
  message: string;
  times?: number;
}

export class SimDiag {
  private readonly injections = new Map<string, DiagInjection[]>();
  private readonly refusals = new Map<string, DiagRuntimeError>();
  /** Runs per node and level, for tests that check what was run. */
  readonly runs: { node: string; level: 1 | 2 | 3; at: number }[] = [];

  constructor(
    private readonly clock: SimClock,
    private readonly durations: Readonly<Record<1 | 2 | 3, number>> = DEFAULT_DIAG_DURATION_MS,
  ) {}

  inject(node: string, injection: DiagInjection): void {
    const list = this.injections.get(node) ?? [];
    list.push({ ...injection });
    this.injections.set(node, list);
  }

  refuse(node: string, refusal: DiagRuntimeError): void {
    this.refusals.set(node, { ...refusal });
  }

  clear(node: string): void {
    this.injections.delete(node);
    this.refusals.delete(node);
  }

  durationMs(level: 1 | 2 | 3): number {
    return this.durations[level];
  }

  /** Runs the diagnostic: resolves after the level's duration on the cluster's clock. */
  run(node: string, level: 1 | 2 | 3, gpus: readonly SimGpu[]): Promise<SimExecResult> {
    this.runs.push({ node, level, at: this.clock.now() });
    return new Promise((resolve) => {
      this.clock.setTimeout(() => resolve(this.result(node, level, gpus)), this.durations[level]);
    });
  }

  private result(node: string, level: 1 | 2 | 3, gpus: readonly SimGpu[]): SimExecResult {
    const refusal = this.refusals.get(node);
    if (refusal) {
      if (refusal.times !== undefined && --refusal.times <= 0) this.refusals.delete(node);
      const body = { 'DCGM Diagnostic': { runtime_error: refusal.message, version: '4.2.3' } };
      return { stdout: `${styled(body)}\n`, exitCode: 255 };
    }
    const applied = new Set<DiagInjection>();
    const pick = (test: SimDiagTest, gpu: number) => {
      const hit = (this.injections.get(node) ?? []).find(
        (i) => i.test === test && (i.gpu === undefined || i.gpu === gpu),
      );
      if (hit) applied.add(hit);
      return hit;
    };
    let worst = 0;
    const categories: { category: string; tests: unknown[] }[] = [];
    for (const { test, category } of LEVEL_TESTS[level]) {
      const results: unknown[] = [];
      const errors: DcgmError[] = [];
      for (const g of gpus) {
        const hit = pick(test, g.index);
        const natural = test === 'memory' && g.rowRemapFailure > 0;
        const base = { entity_group: 'GPU', entity_group_id: 1, entity_id: g.index };
        if (hit?.status === 'skip') {
          results.push({ ...base, info: [hit.message ?? 'Skipping the test on this GPU.'], status: 'Skip' });
        } else if (hit || natural) {
          const err =
            hit?.status === 'warn'
              ? e(
                  hit.message ?? `Detected clocks event due to thermal violation in GPU ${g.index}.`,
                  10,
                  9,
                  MONITOR,
                )
              : hit
                ? { ...failureOf(test, g.index), ...(hit.message ? { warning: hit.message } : {}) }
                : e(`GPU ${g.index} had uncorrectable memory errors and row remapping failed.`, 80, 10, 6);
          errors.push(err);
          worst = Math.max(worst, err.error_severity === ISOLATE ? 2 : 1);
          results.push({ ...base, status: 'Fail', warnings: [err] });
        } else {
          results.push({ ...base, status: 'Pass' });
        }
      }
      const summary = errors.length > 0 ? { status: 'Fail', warnings: errors } : { status: 'Pass' };
      const tests = [{ name: test, results, test_summary: summary }];
      const same = categories.find((c) => c.category === category);
      if (same) same.tests.push(...tests);
      else categories.push({ category, tests });
    }
    for (const i of applied) if (i.times !== undefined) i.times--;
    const left = (this.injections.get(node) ?? []).filter((i) => i.times === undefined || i.times > 0);
    if (left.length > 0) this.injections.set(node, left);
    else this.injections.delete(node);
    const doc = {
      'DCGM Diagnostic': { test_categories: categories },
      entity_groups: [
        {
          entities: gpus.map((g) => ({ device_id: '2330', entity_id: g.index, serial_num: serialOf(g) })),
          entity_group: 'GPU',
          entity_group_id: 1,
        },
      ],
      metadata: { 'Driver Version Detected': '550.127.05', version: '4.2.3' },
    };
    // dcgmi returns DCGM_ST_NVVS_ISOLATE_ERROR (-51) or DCGM_ST_NVVS_ERROR (-30) as its exit status byte.
    return { stdout: `${styled(doc)}\n`, exitCode: worst === 2 ? 205 : worst === 1 ? 226 : 0 };
  }
}

/** A stable board serial per GPU UUID (DCGM prints `serial_num` when the board has one). */
function serialOf(g: SimGpu): string {
  let h = 0;
  for (const ch of g.uuid) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return String(1_654_000_000_000 + (h % 1_000_000_000));
}

/** jsoncpp's toStyledString: three-space indent, `"key" : value`, keys sorted. */
export function styled(v: unknown, ind = ''): string {
  const pad = `${ind}   `;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => pad + styled(x, pad)).join(',\n')}\n${ind}]`;
  }
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (entries.length === 0) return '{}';
    return `{\n${entries.map(([k, x]) => `${pad}${JSON.stringify(k)} : ${styled(x, pad)}`).join(',\n')}\n${ind}}`;
  }
  return JSON.stringify(v);
}

/** What the host engine's `dcgmi diag` would answer to a bad command line (dcgmi's usage error). */
function usage(msg: string): SimExecResult {
  return { stdout: '', stderr: `${msg}\n`, exitCode: 255 };
}

export interface DiagHost {
  node: string;
  gpus: readonly SimGpu[];
  diag: SimDiag;
}

/**
 * `dcgmi diag …` run in a DCGM pod (argv, as the kubelet starts it; a `sh -c` line is the interpreter's):
 * undefined for any other command, so the exec server's other commands answer it.
 */
export function diagExec(
  req: Pick<SimExecRequest, 'command'>,
  host: DiagHost | undefined,
): Promise<SimExecResult> | undefined {
  const [bin, sub, ...rest] = req.command;
  if (!host || bin === undefined || !/(^|\/)dcgmi$/.test(bin) || sub !== 'diag') return undefined;
  const i = rest.findIndex((a) => a === '-r' || a === '--run');
  const levelText = i >= 0 ? rest[i + 1] : undefined;
  if (levelText === undefined) return Promise.resolve(usage('Error: diag needs -r <level>'));
  if (!/^[123]$/.test(levelText)) {
    return Promise.resolve(
      usage(`Error: Invalid test or level "${levelText}" (this simulator runs 1, 2 or 3)`),
    );
  }
  const level = Number(levelText) as 1 | 2 | 3;
  if (!rest.includes('-j') && !rest.includes('--json')) {
    return Promise.resolve(usage('This simulator prints dcgmi diag only as JSON (-j)'));
  }
  return host.diag.run(host.node, level, host.gpus);
}

/** The cluster as `dcgmi diag` needs it: its DCGM pods, their GPUs and the diagnostic state. */
export interface DiagCluster {
  readonly dcgmServer: { tools?: readonly string[] } | undefined;
  readonly diag: SimDiag;
  isDcgmServerPod(pod: SimExecRequest['pod']): boolean;
  gpuState(node: string): SimGpu[];
}

/** `dcgmi diag` in one of the cluster's DCGM host-engine pods whose image has `dcgmi`; undefined otherwise. */
export function simDiagExec(cluster: DiagCluster, req: SimExecRequest): Promise<SimExecResult> | undefined {
  const ds = cluster.dcgmServer;
  if (!ds || !req.node || !cluster.isDcgmServerPod(req.pod)) return undefined;
  if (ds.tools && !ds.tools.includes('dcgmi')) return undefined;
  const gpus = cluster.gpuState(req.node).filter((g) => g.present);
  return diagExec(req, { node: req.node, gpus, diag: cluster.diag });
}
