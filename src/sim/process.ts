/**
 * The simulator in its own process, for the benchmark: the child's CPU (rendering thousands of
 * exporter payloads, serving the API) is then not counted as the monitor's. The child is sim-main.ts
 * run through the tsx loader in a checkout, or sim-main.js next to the compiled process.js.
 * Faults and state go through the control API; CPU usage over the IPC channel.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { FaultRequest, SimNodeState, SimState } from './control-api.js';
import type { ChildMessage, ChildOptions } from './sim-main.js';

export type SimulatorProcessOptions = ChildOptions;

export interface RequestCounts {
  total: number;
  byService: Record<string, number>;
  unexpected: number;
}

export interface SimulatorProcess {
  env: Record<string, string>;
  controlUrl: string;
  pid: number;
  /** `process.cpuUsage()` of the child (µs since it started), asked over IPC. */
  cpuUsage(): Promise<NodeJS.CpuUsage>;
  /** Resident set size of the child, in bytes. */
  rss(): Promise<number>;
  inject(fault: FaultRequest): Promise<void>;
  clear(node: string): Promise<void>;
  state(): Promise<SimState>;
  nodeState(node: string): Promise<SimNodeState>;
  /** Requests the child's fakes served so far (exact even when the log is bounded). */
  requestCount(): Promise<number>;
  requestCounts(): Promise<RequestCounts>;
  /** Asks the child to stop, and kills it if it does not exit; resolves once it is gone. */
  close(): Promise<void>;
}

/** How long a child may take to close its servers before it is killed. */
const CLOSE_GRACE_MS = 5000;
const STDERR_TAIL = 4096;

function childEntry(): { entry: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  const dir = dirname(here);
  if (here.endsWith('.ts')) {
    // --import resolves a bare 'tsx' from the cwd; an absolute URL works from any directory.
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    return { entry: join(dir, 'sim-main.ts'), execArgv: ['--import', tsx] };
  }
  const entry = join(dir, 'sim-main.js');
  if (!existsSync(entry)) throw new Error(`simulator child entry not found: ${entry}`);
  return { entry, execArgv: [] };
}

class ControlApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ControlApiError';
  }
}

export async function startSimulatorProcess(opts: SimulatorProcessOptions = {}): Promise<SimulatorProcess> {
  const { entry, execArgv } = childEntry();
  const child: ChildProcess = fork(entry, [JSON.stringify(opts)], {
    execArgv,
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    serialization: 'json',
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    stderr = (stderr + d).slice(-STDERR_TAIL);
  });
  const exited = once(child, 'exit').then(() => undefined);
  // A failed send or kill after start-up surfaces through the calls that need the child; an
  // unhandled 'error' event would take the benchmark down instead.
  child.on('error', (e) => {
    stderr = `${stderr}\n${e.message}`.slice(-STDERR_TAIL);
  });

  type CpuAnswer = Extract<ChildMessage, { type: 'cpu' }>;
  const pending = new Map<number, { resolve: (m: CpuAnswer) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  child.on('exit', () => {
    for (const p of pending.values()) p.reject(new Error('simulator process exited'));
    pending.clear();
  });

  const ready = await new Promise<Extract<ChildMessage, { type: 'ready' }>>((resolve, reject) => {
    const onExit = (code: number | null, signal: string | null): void =>
      reject(
        new Error(
          `simulator process exited before it was ready (code ${code}, signal ${signal})${stderr ? `:\n${stderr}` : ''}`,
        ),
      );
    child.once('exit', onExit);
    child.once('error', reject);
    child.on('message', (m: ChildMessage) => {
      if (m.type === 'ready') {
        child.off('exit', onExit);
        resolve(m);
      } else if (m.type === 'error') {
        child.off('exit', onExit);
        reject(new Error(m.message));
      } else if (m.type === 'cpu') {
        pending.get(m.id)?.resolve(m);
        pending.delete(m.id);
      }
    });
  }).catch(async (e: unknown) => {
    // A child that never spawned (no pid) has no exit to wait for.
    if (child.pid !== undefined) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    }
    throw e;
  });

  const controlUrl = ready.controlUrl;

  async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${controlUrl}${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } }),
    });
    const text = await res.text();
    if (!res.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { error?: string }).error ?? text;
      } catch {
        // Not JSON: keep the raw text.
      }
      throw new ControlApiError(
        res.status,
        `simulator control API ${method} ${path}: ${res.status} ${message}`,
      );
    }
    return JSON.parse(text) as T;
  }

  function askCpu(): Promise<CpuAnswer> {
    if (!child.connected) return Promise.reject(new Error('simulator process is gone'));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      child.send({ type: 'cpu', id }, (err) => {
        if (err) {
          pending.delete(id);
          reject(err);
        }
      });
    });
  }

  let closing: Promise<void> | undefined;
  return {
    env: ready.env,
    controlUrl,
    pid: ready.pid,
    cpuUsage: async () => (await askCpu()).cpu,
    rss: async () => (await askCpu()).rss,
    inject: async (fault) => {
      await call('POST', '/faults', fault);
    },
    clear: async (node) => {
      await call('POST', '/clear', { node });
    },
    state: () => call<SimState>('GET', '/state'),
    nodeState: (node) => call<SimNodeState>('GET', `/state?node=${encodeURIComponent(node)}`),
    requestCount: async () => (await call<RequestCounts>('GET', '/requests/count')).total,
    requestCounts: () => call<RequestCounts>('GET', '/requests/count'),
    close() {
      closing ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        if (child.connected) child.send({ type: 'close' }, () => undefined);
        const kill = setTimeout(() => child.kill('SIGKILL'), CLOSE_GRACE_MS);
        await exited;
        clearTimeout(kill);
      })();
      return closing;
    },
  };
}
