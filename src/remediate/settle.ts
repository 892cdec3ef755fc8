/**
 * The settle gate: a node that is Ready with a new boot ID is not yet back. The kubelet is up before
 * the NVIDIA device plugin re-registers (until then `nvidia.com/gpu` reads 0) and before the dcgm-exporter passes
 * its readiness probe, so a scan at that moment reads nothing — and a scan that reads nothing is not "healthy".
 * The node counts as back only when, within GPU_SETTLE_TIMEOUT, all hold:
 *   1. the expected GPU resources are allocatable again (the physical count, or the MIG / shared resources it had);
 *   2. a GPU agent pod (dcgm-exporter or DCGM) is Ready on the new boot;
 *   3. one complete scan reads every expected GPU with no critical finding.
 * Each change of what is missing is a `settle_wait` line in the thread; a timeout names what was missing.
 * The decisions are pure functions; `settleNode` is the polling loop around them.
 */
import { z } from 'zod';
import type { ProgressDetails } from '../domain/events.js';
import type { GpuNode } from '../domain/node.js';
import type { GpuAgentPod, NodeReading } from './ports.js';
import type { StepContext } from './steps.js';

const GPU = 'nvidia.com/gpu';
const MIG_PREFIX = 'nvidia.com/mig-';

/**
 * The node's physical GPU count (src/domain/gpu-count.ts: the EC2 instance-type table, else GFD's physical count),
 * 0 when unknown. Never the node's `nvidia.com/gpu` alone: time-slicing and MIG advertise devices, not GPUs, and a
 * lost GPU lowers capacity and labels too.
 */
export function physicalGpuCount(node: GpuNode): number {
  return node.expectedGpus ?? 0;
}

/** What the node should have once back: journaled before the reboot (or replace), compared after. */
export const GpuExpectation = z.object({
  /** Physical GPUs a complete scan must read (0 = unknown: any complete read). */
  gpus: z.number().int().min(0),
  /** NVIDIA extended resources that must be allocatable again, at least this many each. */
  resources: z.record(z.string(), z.number().int().min(0)),
});
export type GpuExpectation = z.infer<typeof GpuExpectation>;

/** The node's expectation now: its physical count and its NVIDIA resources (zero entries dropped). */
export function gpuExpectationOf(node: GpuNode): GpuExpectation {
  const gpus = physicalGpuCount(node);
  const resources: Record<string, number> = {};
  for (const [name, n] of Object.entries(node.gpuResources)) if (n > 0) resources[name] = n;
  // A plain node whose allocatable already dropped (a GPU lost before the repair) must get them all back.
  // Shared nodes (time-slicing, also as `nvidia.com/gpu.shared`; MIG) advertise devices, not GPUs: their
  // resources as recorded, and the physical count through the scan.
  const plain =
    (node.gpuSharing === undefined || node.gpuSharing === 'none') &&
    !Object.keys(resources).some((k) => k.startsWith(MIG_PREFIX));
  if (plain && gpus > 0) resources[GPU] = Math.max(resources[GPU] ?? 0, gpus);
  return { gpus, resources };
}

/**
 * A lost GPU lowers everything the node reports after the reboot (labels, capacity, allocatable), so what it
 * says now cannot lower the expectation: the larger of the record and the node, per resource.
 */
export function combineExpectations(a: GpuExpectation | undefined, b: GpuExpectation): GpuExpectation {
  if (!a) return b;
  const resources = { ...a.resources };
  for (const [name, n] of Object.entries(b.resources)) resources[name] = Math.max(resources[name] ?? 0, n);
  return { gpus: Math.max(a.gpus, b.gpus), resources };
}

/** The agent pods as they were before the reboot: a pod still on its old container is not "on the new boot". */
export const AgentRecord = z.object({ uid: z.string(), restarts: z.number().int().min(0) });
export type AgentRecord = z.infer<typeof AgentRecord>;

export function agentRecordsOf(pods: readonly GpuAgentPod[]): AgentRecord[] {
  return pods.map((p) => ({ uid: p.uid, restarts: p.restarts }));
}

export type MissingKind = NonNullable<ProgressDetails['settle_wait']['waitingFor']>;

export interface Missing {
  kind: MissingKind;
  /** A clause the thread can print: "the device plugin reports 0 of 8 nvidia.com/gpu". */
  text: string;
  /** GPUs that are there and expected, where the kind counts them. */
  have?: number;
  want?: number;
}

/** Resources short of the expectation, the most telling first (`nvidia.com/gpu`, then MIG profiles). */
export function missingResources(expect: GpuExpectation, node: GpuNode): Missing | undefined {
  const names = Object.keys(expect.resources).sort((a, b) =>
    a === GPU ? -1 : b === GPU ? 1 : a.localeCompare(b),
  );
  for (const name of names) {
    const want = expect.resources[name] ?? 0;
    const have = node.gpuResources[name] ?? 0;
    if (have < want) {
      const what = name === GPU ? 'GPUs' : name;
      return { kind: 'gpus', text: `the device plugin reports ${have} of ${want} ${what}`, have, want };
    }
  }
  return undefined;
}

/**
 * Is a GPU agent pod Ready on the new boot? Ready now, and provably not the pre-reboot container: a pod that is
 * new (unknown uid), restarted since the record, or turned Ready after the reboot was issued. Without a record
 * (a replacement node, or a journal from before this gate) any Ready pod counts.
 */
export function agentOnNewBoot(
  pods: readonly GpuAgentPod[],
  before: readonly AgentRecord[] | undefined,
  rebootAt: number | undefined,
): Missing | undefined {
  if (pods.length === 0) return { kind: 'agent', text: 'no dcgm-exporter or DCGM pod runs on the node' };
  const fresh = (p: GpuAgentPod) => {
    if (!before) return true;
    const old = before.find((b) => b.uid === p.uid);
    if (!old || p.restarts > old.restarts) return true;
    return rebootAt !== undefined && p.readySince !== undefined && p.readySince >= rebootAt;
  };
  if (pods.some((p) => p.ready && fresh(p))) return undefined;
  const ready = pods.find((p) => p.ready);
  if (ready) {
    return {
      kind: 'agent',
      text: `${podName(ready)} has not restarted since the reboot (its readings predate it)`,
    };
  }
  return {
    kind: 'agent',
    text: `${pods.map(podName).join(', ')} ${pods.length > 1 ? 'are' : 'is'} not Ready`,
  };
}

function podName(p: GpuAgentPod): string {
  return `${p.namespace}/${p.name}`;
}

export type ScanJudgement =
  | { kind: 'missing'; missing: Missing }
  | { kind: 'critical'; explanation: string; category: string }
  | { kind: 'healthy' };

/**
 * One scan's verdict for the gate. A scan that could not read the node, or read fewer GPUs than expected, is
 * "not yet" — never healthy. A complete read with a critical finding (or the fault we came for) is a failure.
 */
export function judgeScan(
  reading: NodeReading,
  expect: GpuExpectation,
  faultKey: string | undefined,
): ScanJudgement {
  if (reading.error !== undefined) {
    return {
      kind: 'missing',
      missing: { kind: 'scan', text: `the GPU scan could not read the node (${reading.error})` },
    };
  }
  const want = Math.max(expect.gpus, 1);
  if (reading.gpusRead < want) {
    return {
      kind: 'missing',
      missing: {
        kind: 'scan',
        text: `the GPU scan read ${reading.gpusRead} of ${expect.gpus || 'the'} GPUs`,
        have: reading.gpusRead,
        want,
      },
    };
  }
  const bad = reading.verdict.findings.find(
    (f) => f.severity === 'critical' || (faultKey !== undefined && f.key === faultKey),
  );
  if (bad) return { kind: 'critical', explanation: bad.explanation, category: bad.category };
  return { kind: 'healthy' };
}

export interface SettleTarget {
  node: string;
  /** What the node had before the repair (journaled), combined with what it says now. */
  expectation: GpuExpectation | undefined;
  /** The agent pods before the reboot; undefined for a new node. */
  agentsBefore: AgentRecord[] | undefined;
  /** When the reboot was issued (journal time); undefined for a new node. */
  rebootAt: number | undefined;
  /** The fault we came for: seen again on a complete read, it is a failure even when not critical. */
  faultKey: string | undefined;
  /** When the gate began (its journal row): a resumed gate keeps its deadline. */
  startedAt: number;
}

export type SettleResult =
  | { kind: 'settled'; gpus: number; expected: number; waitedMs: number }
  | { kind: 'critical'; category: string; explanation: string; gpus: number; waitedMs: number }
  | { kind: 'timeout'; missing: Missing; waitedMs: number };

/**
 * Polls the node until it has settled, a complete scan finds it broken, or GPU_SETTLE_TIMEOUT passes. Publishes
 * a `settle_wait` event whenever what is missing changes (not on every poll). Never uncordons anything itself.
 */
export async function settleNode(ctx: StepContext, target: SettleTarget): Promise<SettleResult> {
  const { cluster, health, clock } = ctx.deps;
  const start = target.startedAt;
  const deadline = start + ctx.config.settleTimeoutMs;
  let told = '';
  for (;;) {
    const node = await cluster.getNode(target.node);
    const expect = node
      ? combineExpectations(target.expectation, gpuExpectationOf(node))
      : (target.expectation ?? { gpus: 0, resources: {} });
    let missing: Missing | undefined;
    if (!node) missing = { kind: 'node', text: `${target.node} is gone from the cluster` };
    else if (!node.ready) missing = { kind: 'node', text: `${target.node} is not Ready` };
    else missing = missingResources(expect, node);
    if (!missing) {
      missing = agentOnNewBoot(
        await cluster.listGpuAgentPods(target.node),
        target.agentsBefore,
        target.rebootAt,
      );
    }
    if (!missing) {
      const judged = judgeScan(await health.scanNode(target.node), expect, target.faultKey);
      if (judged.kind === 'healthy') {
        return { kind: 'settled', gpus: expect.gpus, expected: expect.gpus, waitedMs: clock.now() - start };
      }
      if (judged.kind === 'critical') {
        return { ...judged, gpus: expect.gpus, waitedMs: clock.now() - start };
      }
      missing = judged.missing;
    }
    const now = clock.now();
    if (now >= deadline) return { kind: 'timeout', missing, waitedMs: now - start };
    const key = `${missing.kind}:${missing.text}`;
    if (key !== told) {
      ctx.publish({
        step: 'settle_wait',
        details: {
          node: target.node,
          waitingFor: missing.kind,
          missing: missing.text,
          waitedMs: now - start,
          timeoutMs: ctx.config.settleTimeoutMs,
        },
      });
      told = key;
    }
    await ctx.deps.clock.sleep(ctx.config.pollMs, ctx.signal);
    ctx.signal.throwIfAborted();
  }
}
