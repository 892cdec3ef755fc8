/**
 * A real `prometheus` binary (Debian's package, 2.42) for the interop tests: a generated config whose static
 * targets are the simulated exporters, a 1 s scrape interval, its own storage directory and a free port.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { ExporterTarget } from '../../src/sim/exporter-endpoints.js';

/** The prometheus binary on PATH or at /usr/bin/prometheus; a clear error when neither exists. */
export function findPrometheus(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, 'prometheus');
    if (dir && existsSync(p)) return p;
  }
  if (existsSync('/usr/bin/prometheus')) return '/usr/bin/prometheus';
  throw new Error(
    'the interop tests need a real Prometheus: no `prometheus` on PATH or at /usr/bin/prometheus ' +
      '(Debian/Ubuntu: apt-get install -y --no-install-recommends prometheus; .ci/run does this)',
  );
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface RealPrometheus {
  url: string;
  /** Instant query through the HTTP API (any PromQL: this is the real thing). */
  query(q: string): Promise<{ status: number; body: PromApiBody }>;
  /** Polls `check` every 100 ms until it is true; fails after `timeoutMs` with `what`. */
  waitFor(what: string, check: () => Promise<boolean>, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface PromApiBody {
  status: string;
  errorType?: string;
  error?: string;
  warnings?: string[];
  data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

function configYaml(targets: ExporterTarget[]): string {
  const groups = targets
    .map(
      (t) => `      - targets: ['${t.address}']
        labels:
          __metrics_path__: '${t.metricsPath}'
          instance: '${t.node}'`,
    )
    .join('\n');
  return `global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: gpu-metrics
    static_configs:
${groups}
`;
}

export async function startRealPrometheus(targets: ExporterTarget[]): Promise<RealPrometheus> {
  const bin = findPrometheus();
  const dir = await mkdtemp(join(tmpdir(), 'gpu-medic-prometheus-'));
  const config = join(dir, 'prometheus.yml');
  await writeFile(config, configYaml(targets));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn(
    bin,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const keep = (b: Buffer) => {
    output = (output + b.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const query = async (q: string) => {
    const res = await fetch(`${url}/api/v1/query`, {
      method: 'POST',
      body: new URLSearchParams({ query: q }),
    });
    return { status: res.status, body: (await res.json()) as PromApiBody };
  };
  const waitFor = async (what: string, check: () => Promise<boolean>, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${output}`);
      if (await check().catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; prometheus said: ${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor('prometheus to be ready', async () => (await fetch(`${url}/-/ready`)).status === 200);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url, query, waitFor, stop };
}
