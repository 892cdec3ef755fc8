/** The reboot path: reboot the instance, wait for the node to come back, and the settle gate (verify scan). */
import type { GpuNode } from '../domain/node.js';
import { escalateToAfter } from './escalation.js';
import { rebootUnavailableReason } from './node-kind.js';
import {
  agentRecordsOf,
  combineExpectations,
  type GpuExpectation,
  gpuExpectationOf,
  settleNode,
} from './settle.js';
import {
  done,
  instanceIdOf,
  minutes,
  pause,
  requireNode,
  type StepContext,
  type StepOutcome,
  settledDetail,
  settleTimeout,
} from './step-kit.js';

function rebootShows(node: GpuNode | undefined, bootIdBefore: string | null | undefined): boolean {
  return !node?.ready || (typeof bootIdBefore === 'string' && node.bootId !== bootIdBefore);
}

export async function reboot(ctx: StepContext): Promise<StepOutcome> {
  const { cluster, cloud, clock } = ctx.deps;
  const node = await requireNode(ctx);
  const unavailable = rebootUnavailableReason(node);
  // The services never plan this; a node relabelled under a running plan still must not reach EC2.
  if (unavailable)
    return { kind: 'end', state: 'escalated', reason: unavailable, detail: { needsHuman: true } };
  const instanceId = instanceIdOf(ctx, node);
  if (ctx.resumed) {
    // Interrupted after "started": the reboot may or may not have reached EC2. Watch for it first.
    const before = ctx.resumed.detail.bootIdBefore;
    const graceEnd = clock.now() + ctx.config.rebootGraceMs;
    let current: GpuNode | undefined = node;
    for (;;) {
      if (rebootShows(current, before)) {
        return done(
          { instanceId, reissued: false },
          { step: 'reboot_issued', details: { instanceId, reissued: false } },
        );
      }
      if (clock.now() >= graceEnd) break;
      await pause(ctx, Math.min(ctx.config.pollMs, 5_000));
      current = await cluster.getNode(ctx.incident.node);
    }
    if (ctx.plan.dryRun)
      return done({ would: `reboot ${instanceId}` }, { step: 'reboot_issued', details: { instanceId } });
    ctx.signal.throwIfAborted();
    await cloud.rebootInstance(instanceId);
    return done(
      { instanceId, reissued: true },
      { step: 'reboot_issued', details: { instanceId, reissued: true } },
    );
  }
  // The boot ID goes in the row BEFORE the call: it is how a resumed run knows the reboot happened. So do the
  // GPU resources and the agent pods: after the reboot the node reports less until it has settled.
  const agents = await cluster.listGpuAgentPods(node.name);
  ctx.begin({
    bootIdBefore: node.bootId ?? null,
    instanceId,
    gpuExpectation: gpuExpectationOf(node),
    agentPodsBefore: agentRecordsOf(agents),
  });
  if (ctx.plan.dryRun)
    return done({ would: `reboot ${instanceId}` }, { step: 'reboot_issued', details: { instanceId } });
  ctx.signal.throwIfAborted();
  await cloud.rebootInstance(instanceId);
  return done({ instanceId }, { step: 'reboot_issued', details: { instanceId } });
}

export async function waitNodeBack(ctx: StepContext): Promise<StepOutcome> {
  const { cluster, clock } = ctx.deps;
  if (ctx.plan.dryRun)
    return done({ would: 'wait for a new boot ID and Ready' }, { step: 'node_back', details: {} });
  const before = ctx.rowOf('reboot')?.detail.bootIdBefore;
  const row = ctx.begin({});
  const deadline = row.startedAt + ctx.config.rebootTimeoutMs;
  let announced = false;
  for (;;) {
    const node = await cluster.getNode(ctx.incident.node);
    if (node?.ready && node.bootId !== undefined && node.bootId !== before) {
      return done(
        { bootIdBefore: before, bootId: node.bootId },
        {
          step: 'node_back',
          details: {
            bootId: node.bootId,
            ...(typeof before === 'string' ? { previousBootId: before } : {}),
          },
        },
      );
    }
    if (clock.now() >= deadline) {
      return {
        kind: 'end',
        state: 'escalated',
        reason: `${ctx.incident.node} did not come back Ready with a new boot ID within ${minutes(ctx.config.rebootTimeoutMs)} after the reboot: it stays cordoned; a human decides.`,
        detail: { needsHuman: true, ready: node?.ready ?? false, bootId: node?.bootId ?? null },
      };
    }
    if (!announced) {
      ctx.publish({
        step: 'settle_wait',
        details: {
          waitingFor: 'node_ready',
          waitedMs: clock.now() - row.startedAt,
          timeoutMs: ctx.config.rebootTimeoutMs,
        },
      });
      announced = true;
    }
    await pause(ctx, ctx.config.pollMs);
  }
}

/**
 * The settle gate after a reboot (settle.ts): GPUs allocatable again, an agent pod Ready on the new boot, and a
 * complete scan of every expected GPU with nothing critical. Until then the node stays cordoned.
 */
export async function verifyScan(ctx: StepContext): Promise<StepOutcome> {
  if (ctx.plan.dryRun)
    return done({ would: 'wait for the GPUs to settle and scan them' }, { step: 'gpu_scan', details: {} });
  const reboot = ctx.rowOf('reboot');
  const expectation = mergeExpectations(
    ctx.rowOf('cordon')?.detail.gpuExpectation,
    reboot?.detail.gpuExpectation,
  );
  const row = ctx.begin({});
  const result = await settleNode(ctx, {
    node: ctx.incident.node,
    expectation,
    agentsBefore: reboot?.detail.agentPodsBefore,
    rebootAt: reboot?.startedAt,
    faultKey: ctx.incident.faultKey,
    startedAt: row.startedAt,
  });
  if (result.kind === 'settled') {
    return done(settledDetail(result), {
      step: 'gpu_scan',
      details: { healthy: true, gpus: result.gpus, expected: result.expected },
    });
  }
  const after = ctx.plan.action === 'reset' ? 'the GPU reset' : 'the reboot';
  if (result.kind === 'timeout')
    return settleTimeout(ctx, ctx.incident.node, `came back after ${after}`, result.missing, true);
  const next = escalateToAfter(ctx.plan.action) ?? 'replace';
  return {
    kind: 'end',
    state: 'escalated',
    reason: `GPU scan after ${after} still fails (${result.category}: ${result.explanation}); the node stays cordoned and the fault goes to the escalation ladder (${next}).`,
    // The services open a follow-up for the same fault; the policy, seeing the repair that did not help, takes
    // the next rung (a reset → reboot, a reboot → replace).
    detail: {
      healthy: false,
      escalateTo: next,
      category: result.category,
      explanation: result.explanation,
    },
  };
}

function mergeExpectations(
  a: GpuExpectation | undefined,
  b: GpuExpectation | undefined,
): GpuExpectation | undefined {
  return b ? combineExpectations(a, b) : a;
}
