/**
 * End-to-end helpers: `gpu-medic` as a child process (bin/gpu-medic.js, the way an operator starts it),
 * Slack requests signed exactly as Slack signs them, and read-only looks into the child's SQLite file.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { Simulator } from '../../src/sim/index.js';
import { postSlackEvent, signSlackRequest } from '../support/slack-requests.js';
import { waitFor } from '../support/wait.js';

export { buttonClick, slashCommand } from '../support/slack-requests.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const binPath = join(repoRoot, 'bin', 'gpu-medic.js');

/** Slack signing secrets are 32 hex characters; the config refuses anything else. */
export const signingSecret = '8f742231b10e8888abcd99a0b1c285a5';
export const adminUser = 'UADMIN';
export const viewerUser = 'UVIEWER01';
export const alertChannel = '#gpu-alerts';

/** A port nobody listens on right now (the child binds it; a race with another process is unlikely). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface ChildGpuMedic {
  child: ChildProcess;
  /** Everything the child wrote to stdout and stderr so far. */
  output(): string;
  /** The last lines of the output, for failure messages. */
  tail(lines?: number): string;
  /** Resolves with the exit code (or the signal's name) once the child is gone. */
  exited: Promise<number | string>;
  /** Writes a line to the child's stdin. */
  send(line: string): void;
  /** SIGTERM, then the exit code; SIGKILL after `graceMs` (then the promise rejects). */
  stop(graceMs?: number): Promise<number | string>;
}

export function spawnGpuMedic(args: string[], env: NodeJS.ProcessEnv): ChildGpuMedic {
  const child = spawn(process.execPath, [binPath, ...args], {
    cwd: repoRoot,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  const alive = () => child.exitCode === null && child.signalCode === null;
  const tail = (lines = 60) => out.split('\n').slice(-lines).join('\n');
  return {
    child,
    output: () => out,
    tail,
    exited,
    send(line) {
      child.stdin?.write(`${line}\n`);
    },
    async stop(graceMs = 15_000) {
      if (!alive()) return exited;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`gpu-medic did not exit within ${graceMs} ms of SIGTERM\n${tail()}`));
        }, graceMs);
      });
      try {
        return await Promise.race([exited, killed]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** `gpu-medic run` in Slack HTTP mode against the simulator, ready when `/readyz` answers 200. */
export async function startRun(
  sim: Simulator,
  dbPath: string,
  extraEnv: Record<string, string> = {},
): Promise<ChildGpuMedic & { base: string; port: number }> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...sim.env,
    DB_PATH: dbPath,
    PORT: String(port),
    SLACK_SIGNING_SECRET: signingSecret,
    SLACK_CHANNEL: alertChannel,
    SLACK_ADMIN_USERS: adminUser,
    MONITOR_INTERVAL: '1',
    CLASSIFIER: 'rules',
    LOG_LEVEL: 'info',
    POD_NAMESPACE: 'gpu-medic',
    LEASE_NAME: `gpu-medic-e2e-${process.pid}`,
    REMEDIATIONS_PER_HOUR: '50',
    CLOUDWATCH_ENABLED: 'false',
    ...extraEnv,
  };
  // No app token: HTTP mode.
  delete env.SLACK_APP_TOKEN;
  const proc = spawnGpuMedic(['run'], env);
  const base = `http://127.0.0.1:${port}`;
  await waitFor(
    'gpu-medic /readyz',
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`gpu-medic run exited early\n${proc.tail()}`);
      const res = await fetch(`${base}/readyz`).catch(() => undefined);
      return res?.status === 200;
    },
    { timeoutMs: 30_000, context: () => proc.tail() },
  );
  return { ...proc, base, port };
}

/** Slack's request signature, with this suite's signing secret unless told. */
export const slackSignature = (body: string, ts: number, secret = signingSecret): string =>
  signSlackRequest(body, ts, secret);

/** POSTs a signed request to a child's Slack endpoint (this suite's signing secret). */
export const postSlack = (base: string, body: string, opts: { ts?: number; signature?: string } = {}) =>
  postSlackEvent(base, body, { secret: signingSecret, ...opts });

/** The child's database, opened read-only (WAL: the writer keeps the -shm file that readers need). */
export function openDbReadOnly(path: string): Database.Database {
  return new Database(path, { readonly: true, fileMustExist: true });
}

/** A sample of a Prometheus counter or gauge from `/metrics` (summed over label sets). */
export async function metricValue(base: string, name: string): Promise<number> {
  const res = await fetch(`${base}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  const text = await res.text();
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1] === name) {
      sum += Number(m[3]);
      found = true;
    }
  }
  if (!found) throw new Error(`metric ${name} not found in /metrics`);
  return sum;
}

/** Waits until the monitor finished `n` more scans than it had when called. */
export async function waitForScans(base: string, n: number, context?: () => string): Promise<void> {
  const start = await metricValue(base, 'gpu_medic_scans_total');
  await waitFor(`${n} scans`, async () => (await metricValue(base, 'gpu_medic_scans_total')) >= start + n, {
    ...(context ? { context } : {}),
    timeoutMs: 30_000,
  });
}

/** Names of the simulated GPU nodes (the system node excluded), in a stable order. */
export function gpuNodeNames(sim: Simulator): string[] {
  return sim.cluster
    .listNodes()
    .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
    .map((n) => n.metadata?.name ?? '')
    .filter((n) => n !== '')
    .sort();
}
