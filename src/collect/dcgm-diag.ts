/**
 * DCGM diagnostics through the node's DCGM host-engine pod: `dcgmi diag -r <level> -j` as an argv exec (the EKS
 * node monitoring agent's image has no shell), its JSON parsed per test and per GPU (parse/dcgmi-diag.ts).
 * `dcgmi` exits non-zero when a test failed (226, or 205 for an ISOLATE error) and still prints the JSON, so the
 * output is read whatever the exit code; no readable JSON is an error with the reason, never a pass.
 */
import type { Logger } from 'pino';
import type { DiagLevel, DiagRun } from '../domain/diag.js';
import type { ExecPort, PodRef } from './dcgm-server.js';
import { parseDcgmiDiag } from './parse/dcgmi-diag.js';

/** About how long each level runs on a node of 8 GPUs (DCGM's documentation: quick, medium, long). */
export const DIAG_EXPECTED_MS: Readonly<Record<DiagLevel, number>> = {
  1: 60_000,
  2: 5 * 60_000,
  3: 30 * 60_000,
};
/** Past this, the exec is given up (a hung host engine); generous: level 3 takes longer on larger nodes. */
export const DIAG_TIMEOUT_MS: Readonly<Record<DiagLevel, number>> = {
  1: 10 * 60_000,
  2: 30 * 60_000,
  3: 120 * 60_000,
};

export function diagCommand(level: DiagLevel): string[] {
  return ['dcgmi', 'diag', '-r', String(level), '-j'];
}

export interface DcgmDiagOptions {
  exec: ExecPort;
  /** The node's DCGM host-engine pod (a Ready one), if it has one. */
  findPod: (node: string) => Promise<PodRef | undefined>;
  timeoutMs?: Readonly<Record<DiagLevel, number>>;
  expectedMs?: Readonly<Record<DiagLevel, number>>;
  logger?: Logger;
}

const clip = (s: string, n = 200) => {
  const t = s.trim().replace(/\s+/g, ' ');
  return t.length > n ? `${t.slice(0, n - 1)}…` : t;
};

export interface DcgmDiagRunner {
  run(node: string, level: DiagLevel, signal?: AbortSignal): Promise<DiagRun>;
  expectedMs(level: DiagLevel): number;
}

export function createDcgmDiagRunner(opts: DcgmDiagOptions): DcgmDiagRunner {
  const timeouts = opts.timeoutMs ?? DIAG_TIMEOUT_MS;
  const expected = opts.expectedMs ?? DIAG_EXPECTED_MS;
  return {
    expectedMs: (level) => expected[level],
    async run(node, level, signal) {
      const pod = await opts.findPod(node);
      if (!pod) return { kind: 'unavailable', reason: `no DCGM host-engine pod is running on ${node}` };
      const name = `${pod.namespace}/${pod.name}`;
      const command = diagCommand(level);
      let out: Awaited<ReturnType<ExecPort['exec']>>;
      try {
        out = await opts.exec.exec({
          namespace: pod.namespace,
          pod: pod.name,
          ...(pod.container ? { container: pod.container } : {}),
          command,
          timeoutMs: timeouts[level],
          ...(signal ? { signal } : {}),
        });
      } catch (e) {
        if (signal?.aborted) throw e;
        const code = (e as { code?: unknown } | null)?.code;
        // The image or the host engine, not the network: asking again cannot help.
        if (code === 'missing-command')
          return { kind: 'error', pod: name, reason: `\`dcgmi\` is not in ${name}'s image` };
        if (code === 'timeout') {
          return {
            kind: 'error',
            pod: name,
            reason: `\`${command.join(' ')}\` did not finish within ${Math.round(timeouts[level] / 60_000)} min`,
          };
        }
        throw e;
      }
      const parsed = parseDcgmiDiag(out.stdout, level);
      if (parsed.kind === 'report') {
        opts.logger?.info({ node, pod: name, level, exitCode: out.exitCode }, 'dcgm diag: done');
        return { kind: 'report', report: parsed.report, pod: name };
      }
      const said = clip(out.stderr);
      const reason =
        parsed.kind === 'runtime_error'
          ? `DCGM: ${parsed.message}`
          : `${parsed.message} (exit code ${out.exitCode}${said ? `, stderr: ${said}` : ''})`;
      opts.logger?.warn({ node, pod: name, level, exitCode: out.exitCode, reason }, 'dcgm diag: no verdict');
      return { kind: 'error', pod: name, reason };
    },
  };
}
