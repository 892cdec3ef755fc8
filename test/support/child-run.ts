/**
 * `gpu-medic run` as a real child process against a simulator running in the test process: spawn it,
 * capture its output for failure messages, SIGKILL it mid-work, and read its SQLite database read-only.
 * Every child started here is tracked so `killAllChildren()` (afterEach/afterAll) never leaks one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const binPath = fileURLToPath(new URL('../../bin/gpu-medic.js', import.meta.url));

/** Variables a test machine may carry that would change what the child does (Slack, a real AWS account). */
const STRIPPED = [
  'SLACK_BOT_TOKEN',
  'SLACK_APP_TOKEN',
  'SLACK_SIGNING_SECRET',
  'SLACK_CHANNEL',
  'SLACK_API_URL',
  'POLICY_FILE',
  'DRY_RUN',
  'AWS_PROFILE',
  'AWS_SESSION_TOKEN',
  'SNS_TOPIC_ARN',
  'WEBHOOK_URL',
  'LAMBDA_FUNCTION',
];

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChildRun {
  readonly name: string;
  readonly pid: number | undefined;
  readonly exited: Promise<ChildExit>;
  /** True until the process has exited. */
  alive(): boolean;
  /** The last lines of stdout and stderr (without scan summaries), interleaved, for failure messages. */
  output(lines?: number): string;
  /** Parsed pino log lines (JSON) seen so far. */
  logs(): Array<Record<string, unknown>>;
  /** Sends a signal and waits for the exit (SIGTERM escalates to SIGKILL after `graceMs`). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<ChildExit>;
}

const children = new Set<ChildRun>();

/** process.env + the simulator's env + the test's variables, without Slack or a real AWS identity. */
export function childEnv(simEnv: Record<string, string>, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of STRIPPED) delete env[k];
  return { ...env, ...simEnv, ...extra };
}

/** Starts `node bin/gpu-medic.js run` (tsx from the sources) with exactly `env`. */
export function startRun(name: string, env: NodeJS.ProcessEnv): ChildRun {
  const proc: ChildProcess = spawn(process.execPath, [binPath, 'run'], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const parsed: Array<Record<string, unknown>> = [];
  const keep = 400;
  let exitInfo: ChildExit | undefined;
  const collect = (stream: NodeJS.ReadableStream | null, tag: string) => {
    let rest = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      for (const line of parts) {
        if (line === '') continue;
        lines.push(`[${name} ${tag}] ${line}`);
        if (lines.length > keep) lines.shift();
        if (line.startsWith('{')) {
          try {
            parsed.push(JSON.parse(line) as Record<string, unknown>);
          } catch {
            // not a log line: kept as text only
          }
        }
      }
    });
  };
  collect(proc.stdout, 'out');
  collect(proc.stderr, 'err');
  const exited = new Promise<ChildExit>((resolve) => {
    proc.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      children.delete(run);
      resolve(exitInfo);
    });
    proc.once('error', (err) => {
      lines.push(`[${name}] spawn error: ${err.message}`);
      exitInfo = { code: null, signal: null };
      children.delete(run);
      resolve(exitInfo);
    });
  });
  const run: ChildRun = {
    name,
    pid: proc.pid,
    exited,
    alive: () => exitInfo === undefined,
    // The per-second scan summaries would push everything else out of a failure message.
    output: (n = 80) =>
      lines
        .filter((l) => !l.includes('"msg":"scan finished"'))
        .slice(-n)
        .join('\n'),
    logs: () => parsed,
    async stop(signal = 'SIGKILL', graceMs = 8_000) {
      if (exitInfo) return exitInfo;
      proc.kill(signal);
      if (signal === 'SIGKILL') return exited;
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      const r = await exited;
      clearTimeout(timer);
      return r;
    },
  };
  children.add(run);
  return run;
}

/** SIGKILLs every child still running (afterEach / afterAll). */
export async function killAllChildren(): Promise<void> {
  await Promise.all([...children].map((c) => c.stop('SIGKILL')));
}

process.once('exit', () => {
  for (const c of children) if (c.pid) process.kill(c.pid, 'SIGKILL');
});

/**
 * Runs `fn` on a fresh read-only connection to the child's database; undefined while the file does not
 * exist yet or SQLite is momentarily unable to read it (a writer mid-checkpoint, a WAL left by a SIGKILL).
 */
export function readDb<T>(path: string, fn: (db: Database.Database) => T): T | undefined {
  if (!existsSync(path)) return undefined;
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 1000');
    return fn(db);
  } catch {
    return undefined;
  } finally {
    db?.close();
  }
}

export interface StepRowView {
  incident_id: string;
  seq: number;
  step: string;
  status: string;
  detail: string | null;
}

export interface IncidentView {
  id: string;
  node: string;
  state: string;
  category: string;
  planned_action: string;
  state_reason: string | null;
}

export function incidentsIn(path: string): IncidentView[] {
  return (
    (readDb(path, (db) =>
      db
        .prepare(
          'SELECT id, node, state, category, planned_action, state_reason FROM incidents ORDER BY first_seen',
        )
        .all(),
    ) as IncidentView[] | undefined) ?? []
  );
}

export function stepsIn(path: string, incidentId?: string): StepRowView[] {
  return (
    (readDb(path, (db) =>
      incidentId
        ? db
            .prepare(
              'SELECT incident_id, seq, step, status, detail FROM incident_steps WHERE incident_id = ? ORDER BY seq',
            )
            .all(incidentId)
        : db.prepare('SELECT incident_id, seq, step, status, detail FROM incident_steps ORDER BY seq').all(),
    ) as StepRowView[] | undefined) ?? []
  );
}

/** Nodes the child's monitor has scanned at least once (node_state rows with a scan time). */
export function scannedNodes(path: string): string[] {
  return (
    (readDb(path, (db) => db.prepare('SELECT node FROM node_state WHERE last_scan_at IS NOT NULL').all()) as
      | Array<{ node: string }>
      | undefined) ?? []
  ).map((r) => r.node);
}
