/**
 * A DCGM diagnostic run (`dcgmi diag -r <level>`): per test and per GPU, what it found. The journal records
 * `{ level, results }` on the `diagnose` row; the thread shows it as a table; RMA records read it per GPU.
 */

/** 1 quick (seconds), 2 medium (minutes), 3 long (up to about half an hour). */
export const DiagLevels = [1, 2, 3] as const;
export type DiagLevel = (typeof DiagLevels)[number];

export const DiagStatuses = ['pass', 'fail', 'warn', 'skip'] as const;
export type DiagStatus = (typeof DiagStatuses)[number];

/** One test on one GPU (DCGM's GPU index, `entity_id`). */
export interface DiagResult {
  test: string;
  gpu: number;
  status: DiagStatus;
  /** DCGM's failure or warning text (several joined with "; "), or its info line on a skip. */
  info?: string;
}

/** A test's verdict that names no GPU (DCGM's `test_summary` for an error of the node as a whole). */
export interface DiagNodeResult {
  test: string;
  status: DiagStatus;
  info?: string;
}

export interface DiagReport {
  level: DiagLevel;
  results: DiagResult[];
  /** Failures or warnings DCGM reported for a test without naming a GPU. */
  nodeWide?: DiagNodeResult[];
  /** DCGM's version and the driver it saw, when it says. */
  dcgmVersion?: string;
  driverVersion?: string;
}

/** What asking DCGM for a diagnostic gave. */
export type DiagRun =
  | { kind: 'report'; report: DiagReport; pod: string }
  /** Nothing to run it in (no DCGM host-engine pod on the node): not a verdict on the GPUs. */
  | { kind: 'unavailable'; reason: string }
  /** It ran but gave no verdict: DCGM's runtime_error, an unreadable output, the command failing. */
  | { kind: 'error'; reason: string; pod?: string };

/** The run's verdict: fail when any test failed (on a GPU or node-wide), else warn when any warned, else pass. */
export function diagVerdict(report: Pick<DiagReport, 'results' | 'nodeWide'>): 'pass' | 'warn' | 'fail' {
  const all = [...report.results, ...(report.nodeWide ?? [])];
  if (all.some((r) => r.status === 'fail')) return 'fail';
  if (all.some((r) => r.status === 'warn')) return 'warn';
  return 'pass';
}

/** GPUs with a failed test, in order. */
export function failedGpus(report: Pick<DiagReport, 'results'>): number[] {
  return [...new Set(report.results.filter((r) => r.status === 'fail').map((r) => r.gpu))].sort(
    (a, b) => a - b,
  );
}

export function isDiagLevel(n: number): n is DiagLevel {
  return (DiagLevels as readonly number[]).includes(n);
}
