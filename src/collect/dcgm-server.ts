/**
 * The dcgm-server source (what the AWS sample read): exec into the EKS node monitoring agent's dcgm-server
 * pod on each node and run `dcgmi discovery -l`, `dcgmi dmon -e 230,319 -c 1`, `dcgmi health -c -j` and
 * the kernel's XID lines, in parallel, then parse them into one NodeSnapshot.
 * Field 230 is the last XID *code* (sticky), never a count: gpusFromDcgmi maps it to `xidLast`.
 */
import type { Logger } from 'pino';
import type { CollectionError, NodeSnapshot } from '../domain/gpu.js';
import type { GpuNode } from '../domain/node.js';
import { baseSnapshot, type Collector } from './collector.js';
import { type DcgmiOutputs, gpusFromDcgmi } from './parse/dcgmi.js';

export interface ExecRequest {
  namespace: string;
  pod: string;
  container?: string;
  command: string[];
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/**
 * Runs a command in a pod. Resolves with the exit code whatever it is; rejects only when no exit code
 * could be had (pod gone, refused, timeout, stream broken). src/k8s/exec.ts `podExecutor(kc)` implements it.
 */
export interface ExecPort {
  exec(req: ExecRequest): Promise<ExecResult>;
}

export interface PodRef {
  namespace: string;
  name: string;
  container?: string;
}

export interface DcgmServerCollectorOptions {
  exec: ExecPort;
  /** The dcgm-server pod on a node (kube-system, `k8s-app=dcgm-server`), e.g. PodIndex.forNode. */
  findPod: (node: string) => PodRef | undefined;
  /** Per command; the commands run in parallel. */
  timeoutMs: number;
  logger?: Logger;
  now?: () => number;
}

export const DcgmServerParts = ['discovery', 'dmon', 'health', 'kernel'] as const;
export type DcgmServerPart = (typeof DcgmServerParts)[number];

/** The sample's commands; dmon reads both fields at once, health as JSON (no table layout to guess). */
export const DCGM_SERVER_COMMANDS: Readonly<Record<DcgmServerPart, readonly string[]>> = {
  discovery: ['dcgmi', 'discovery', '-l'],
  dmon: ['dcgmi', 'dmon', '-e', '230,319', '-c', '1'],
  health: ['dcgmi', 'health', '-c', '-j'],
  kernel: ['sh', '-c', 'dmesg | grep -i xid | tail -20'],
};

const clip = (s: string, n = 300) => {
  const t = s.trim().replace(/\s+/g, ' ');
  return t.length > n ? `${t.slice(0, n)}…` : t;
};

interface PartOutcome {
  part: DcgmServerPart;
  output?: string;
  failure?: { timeout: boolean; message: string };
}

function isTimeout(e: unknown): boolean {
  const err = e as { code?: unknown; name?: unknown } | null;
  return err?.code === 'timeout' || err?.name === 'TimeoutError';
}

export function createDcgmServerCollector(opts: DcgmServerCollectorOptions): Collector {
  const now = opts.now ?? Date.now;
  const log = opts.logger;

  async function run(pod: PodRef, part: DcgmServerPart, signal?: AbortSignal): Promise<PartOutcome> {
    const command = [...DCGM_SERVER_COMMANDS[part]];
    const req: ExecRequest = { namespace: pod.namespace, pod: pod.name, command, timeoutMs: opts.timeoutMs };
    if (pod.container) req.container = pod.container;
    if (signal) req.signal = signal;
    try {
      const r = await opts.exec.exec(req);
      if (r.exitCode !== 0) {
        const said = clip(r.stderr || r.stdout);
        return {
          part,
          failure: {
            timeout: false,
            message: `\`${command.join(' ')}\` exited with code ${r.exitCode}${said ? `: ${said}` : ''}`,
          },
        };
      }
      if (part === 'kernel' && r.stderr.trim() !== '') {
        // A pipeline's exit code is tail's: dmesg failing (no CAP_SYSLOG) only shows on stderr.
        log?.warn(
          { pod: `${pod.namespace}/${pod.name}`, stderr: clip(r.stderr) },
          'dcgm-server: dmesg wrote errors',
        );
      }
      return { part, output: r.stdout };
    } catch (e) {
      return {
        part,
        failure: {
          timeout: isTimeout(e),
          message: `\`${command.join(' ')}\`: ${(e as Error).message ?? String(e)}`,
        },
      };
    }
  }

  return {
    source: 'dcgm-server',
    async collect(node: GpuNode, signal?: AbortSignal): Promise<NodeSnapshot> {
      const snapshot = baseSnapshot(node, 'dcgm-server', now());
      const pod = opts.findPod(node.name);
      if (!pod) {
        snapshot.error = { kind: 'no-exporter', message: `no dcgm-server pod on node ${node.name}` };
        return snapshot;
      }
      const outcomes = await Promise.all(DcgmServerParts.map((part) => run(pod, part, signal)));
      const outputs: DcgmiOutputs = {};
      const failures: PartOutcome[] = [];
      for (const o of outcomes) {
        if (o.failure || o.output === undefined) {
          failures.push(o);
          continue;
        }
        if (o.part === 'dmon') outputs.dmon = [o.output];
        else outputs[o.part] = o.output;
      }

      const parsed = gpusFromDcgmi(outputs);
      snapshot.gpus = parsed.gpus;
      const unparsed = [...parsed.unparsed, ...parsed.errors.map((e) => `dcgmi parse: ${e.message}`)];
      if (parsed.logLines.length > 0) snapshot.logLines = parsed.logLines;

      let error: CollectionError | undefined;
      if (failures.length > 0) {
        const message = `${pod.namespace}/${pod.name}: ${failures.map((f) => f.failure?.message).join('; ')}`;
        error = { kind: failures.every((f) => f.failure?.timeout) ? 'timeout' : 'exec', message };
      } else if (outputs.discovery !== undefined && parsed.declaredCount === undefined) {
        // No "N GPUs found." line: the GPU list is unreadable, and an empty list must not read as missing GPUs.
        error = { kind: 'parse', message: 'unreadable `dcgmi discovery -l` output (no "GPUs found" line)' };
        unparsed.push(
          ...outputs.discovery
            .split('\n')
            .filter((l) => l.trim() !== '')
            .slice(0, 20),
        );
      }
      if (error) {
        snapshot.error = error;
        log?.warn(
          { node: node.name, kind: error.kind, error: error.message },
          'dcgm-server: node read failed',
        );
      }
      if (unparsed.length > 0) snapshot.unparsed = unparsed;
      log?.debug({ node: node.name, gpus: snapshot.gpus.length }, 'dcgm-server: node read');
      return snapshot;
    },
  };
}
