/**
 * The dcgm-server source (what the AWS sample read): exec into the node's DCGM host-engine pod (the EKS node
 * monitoring agent's `dcgm-server`, or the GPU Operator's `nvidia-dcgm`) and run `dcgmi discovery -l`,
 * `dcgmi dmon -e 230,319 -c 1`, `dcgmi health -c -j` and `dmesg`, in parallel, then parse them into one
 * NodeSnapshot. Field 230 is the last XID *code* (sticky), never a count: gpusFromDcgmi maps it to `xidLast`.
 *
 * Every command is an argv exec, never `sh -c`: the agent's 2026 image has `dcgmi` but no `sh`, `dmesg`,
 * `grep` or `tail`. The kernel's XID lines are filtered here, not by a pipeline.
 * A part that fails (a binary the image lacks, a dcgmi error, a timeout) is a `missingPart` and the rest of the
 * snapshot stands; the node fails only when nothing lists its GPUs. A binary found missing in a pod is not
 * asked for again in that pod (its image cannot change), so kernel lines are read only where they exist.
 */
import type { Logger } from 'pino';
import {
  type CollectionError,
  type MissingPart,
  type NodeSnapshot,
  SignalFamilies,
  type SignalFamily,
} from '../domain/gpu.js';
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
 * could be had (pod gone, refused, timeout, stream broken, a binary the image lacks — error code
 * `missing-command`). src/k8s/exec.ts `podExecutor(kc)` implements it.
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
  /** The DCGM host-engine pod on a node (DCGM_SERVER_NAMESPACE / DCGM_SERVER_SELECTOR), e.g. PodIndex.forNode. */
  findPod: (node: string) => PodRef | undefined;
  /** Per command; the commands run in parallel. */
  timeoutMs: number;
  logger?: Logger;
  now?: () => number;
}

export const DcgmServerParts = ['discovery', 'dmon', 'health', 'kernel'] as const;
export type DcgmServerPart = (typeof DcgmServerParts)[number];

/** The name a failed part carries in `NodeSnapshot.missingParts` (and in coverage). */
export const DCGM_SERVER_PART_NAMES: Readonly<Record<DcgmServerPart, string>> = {
  discovery: 'dcgmi_discovery',
  dmon: 'dcgmi_dmon',
  health: 'dcgmi_health',
  kernel: 'kernel_log',
};

/** The sample's commands as argv (no shell); dmon reads both fields at once, health as JSON. */
export const DCGM_SERVER_COMMANDS: Readonly<Record<DcgmServerPart, readonly string[]>> = {
  discovery: ['dcgmi', 'discovery', '-l'],
  dmon: ['dcgmi', 'dmon', '-e', '230,319', '-c', '1'],
  health: ['dcgmi', 'health', '-c', '-j'],
  kernel: ['dmesg'],
};

/** Kernel lines kept per scan: the sample's `grep -i xid | tail -20`, done here. */
export const KERNEL_XID_TAIL = 20;

/** Pods × binaries remembered as missing; past this the oldest is forgotten (and asked about once more). */
const MAX_REMEMBERED = 4096;

/** dmon columns → the signal family they carry. */
const DMON_FAMILIES: Readonly<Record<string, SignalFamily>> = {
  XIDER: 'xid',
  EDVTL: 'ecc',
  EDVDV: 'ecc',
  ESVTL: 'ecc',
  ESVDV: 'ecc',
  EDATL: 'ecc',
  ESATL: 'ecc',
  TMPTR: 'thermal',
  MMTMP: 'thermal',
};

/** `dmesg` output → the sample's `grep -i xid | tail -20`. */
export function kernelXidLines(dmesg: string, tail = KERNEL_XID_TAIL): string {
  const lines = dmesg.split('\n').filter((l) => /xid/i.test(l));
  return lines.slice(Math.max(0, lines.length - tail)).join('\n');
}

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

function isMissingCommand(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'missing-command';
}

export function createDcgmServerCollector(opts: DcgmServerCollectorOptions): Collector {
  const now = opts.now ?? Date.now;
  const log = opts.logger;
  /** `ns/pod/container` + binary → why it cannot run there. */
  const unavailable = new Map<string, string>();

  const memoKey = (pod: PodRef, binary: string) =>
    `${pod.namespace}/${pod.name}/${pod.container ?? ''}\u0000${binary}`;
  const remember = (pod: PodRef, binary: string, reason: string) => {
    if (unavailable.size >= MAX_REMEMBERED) {
      const oldest = unavailable.keys().next().value;
      if (oldest !== undefined) unavailable.delete(oldest);
    }
    unavailable.set(memoKey(pod, binary), reason);
    log?.warn(
      { pod: `${pod.namespace}/${pod.name}`, binary, reason },
      'dcgm-server: a command is not available in the DCGM pod; that part is skipped there',
    );
  };

  async function run(pod: PodRef, part: DcgmServerPart, signal?: AbortSignal): Promise<PartOutcome> {
    const command = [...DCGM_SERVER_COMMANDS[part]];
    const binary = command[0] ?? '';
    const shown = `\`${command.join(' ')}\``;
    const known = unavailable.get(memoKey(pod, binary));
    if (known !== undefined) return { part, failure: { timeout: false, message: known } };
    const req: ExecRequest = { namespace: pod.namespace, pod: pod.name, command, timeoutMs: opts.timeoutMs };
    if (pod.container) req.container = pod.container;
    if (signal) req.signal = signal;
    try {
      const r = await opts.exec.exec(req);
      if (r.exitCode !== 0) {
        const said = clip(r.stderr || r.stdout);
        const message = `${shown} exited with code ${r.exitCode}${said ? `: ${said}` : ''}`;
        // 126 / 127: the runtime (or a wrapper) could not find or run it — a property of the image.
        if (r.exitCode === 126 || r.exitCode === 127) {
          const reason = `\`${binary}\` is not available in the pod's image (${message})`;
          remember(pod, binary, reason);
          return { part, failure: { timeout: false, message: reason } };
        }
        return { part, failure: { timeout: false, message } };
      }
      return { part, output: part === 'kernel' ? kernelXidLines(r.stdout) : r.stdout };
    } catch (e) {
      const message = (e as Error)?.message ?? String(e);
      if (isMissingCommand(e)) {
        const said = /exec: \\?"[^"\\]*\\?": [^:]*(?::[^:]*\$PATH)?/.exec(message)?.[0] ?? clip(message, 200);
        const reason = `\`${binary}\` is not in the pod's image (the runtime: ${said})`;
        remember(pod, binary, reason);
        return { part, failure: { timeout: false, message: reason } };
      }
      return { part, failure: { timeout: isTimeout(e), message: `${shown}: ${message}` } };
    }
  }

  return {
    source: 'dcgm-server',
    async collect(node: GpuNode, signal?: AbortSignal): Promise<NodeSnapshot> {
      const snapshot = baseSnapshot(node, 'dcgm-server', now());
      const pod = opts.findPod(node.name);
      if (!pod) {
        snapshot.error = { kind: 'no-exporter', message: `no DCGM host-engine pod on node ${node.name}` };
        snapshot.signals = [];
        return snapshot;
      }
      const outcomes = await Promise.all(DcgmServerParts.map((part) => run(pod, part, signal)));
      const outputs: DcgmiOutputs = {};
      const failures: PartOutcome[] = [];
      const missing: MissingPart[] = [];
      for (const o of outcomes) {
        if (o.failure || o.output === undefined) {
          failures.push(o);
          missing.push({ part: DCGM_SERVER_PART_NAMES[o.part], reason: o.failure?.message ?? 'no output' });
          continue;
        }
        if (o.part === 'dmon') outputs.dmon = [o.output];
        else outputs[o.part] = o.output;
      }

      const parsed = gpusFromDcgmi(outputs);
      snapshot.gpus = parsed.gpus;
      const unparsed = [...parsed.unparsed, ...parsed.errors.map((e) => `dcgmi parse: ${e.message}`)];
      if (parsed.logLines.length > 0) snapshot.logLines = parsed.logLines;

      const discoveryRead = outputs.discovery !== undefined && parsed.declaredCount !== undefined;
      if (outputs.discovery !== undefined && parsed.declaredCount === undefined) {
        // No "N GPUs found." line: that list is unreadable, and an empty list must not read as missing GPUs.
        missing.push({
          part: DCGM_SERVER_PART_NAMES.discovery,
          reason: 'unreadable `dcgmi discovery -l` output (no "GPUs found" line)',
        });
        unparsed.push(
          ...outputs.discovery
            .split('\n')
            .filter((l) => l.trim() !== '')
            .slice(0, 20),
        );
      }
      const dmonRead = outputs.dmon !== undefined && parsed.dmonColumns.length > 0;
      if (outputs.dmon !== undefined && !dmonRead) {
        missing.push({
          part: DCGM_SERVER_PART_NAMES.dmon,
          reason: 'unreadable `dcgmi dmon` output (no #Entity header)',
        });
      }
      const healthRead = outputs.health !== undefined && parsed.overallHealth !== undefined;
      if (outputs.health !== undefined && !healthRead) {
        missing.push({
          part: DCGM_SERVER_PART_NAMES.health,
          reason: 'unreadable `dcgmi health` output (no overall health)',
        });
      }

      const signals = new Set<SignalFamily>();
      if (dmonRead) for (const c of parsed.dmonColumns) if (DMON_FAMILIES[c]) signals.add(DMON_FAMILIES[c]);
      if (healthRead) signals.add('health');
      if (outputs.kernel !== undefined) signals.add('kernel_log');
      snapshot.signals = SignalFamilies.filter((f) => signals.has(f));
      const order = Object.values(DCGM_SERVER_PART_NAMES);
      missing.sort((a, b) => order.indexOf(a.part) - order.indexOf(b.part));
      if (missing.length > 0) snapshot.missingParts = [...(snapshot.missingParts ?? []), ...missing];

      // Discovery or dmon lists every GPU DCGM sees; with neither, the GPU list is unknown and the node unread
      // (health alone names only GPUs with incidents: counting those would report healthy GPUs as missing).
      if (!discoveryRead && !dmonRead) {
        const why = missing.map((m) => `${m.part}: ${m.reason}`).join('; ');
        const listFailures = failures.filter((f) => f.part === 'discovery' || f.part === 'dmon');
        const error: CollectionError = {
          kind:
            listFailures.length === 0
              ? 'parse'
              : listFailures.every((f) => f.failure?.timeout)
                ? 'timeout'
                : 'exec',
          message: `${pod.namespace}/${pod.name}: no GPU list (${why})`,
        };
        snapshot.error = error;
        log?.warn(
          { node: node.name, kind: error.kind, error: error.message },
          'dcgm-server: node read failed',
        );
      } else if (missing.length > 0) {
        log?.debug({ node: node.name, missing }, 'dcgm-server: node read with parts missing');
      }
      if (unparsed.length > 0) snapshot.unparsed = unparsed;
      log?.debug({ node: node.name, gpus: snapshot.gpus.length }, 'dcgm-server: node read');
      return snapshot;
    },
  };
}
