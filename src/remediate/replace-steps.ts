/** The replace path: terminate (or delete) the node, wait for a replacement, and its settle gate. */
import type { ProgressDetails } from '../domain/events.js';
import type { JournalDetail } from './journal.js';
import { provisionsOnDemand } from './karpenter.js';
import { isAutoModeNode, nodePoolOf } from './node-kind.js';
import { rmaTags, tagForRma, tagsBeforeReplace } from './rma-tags.js';
import { settleNode } from './settle.js';
import {
  done,
  instanceIdOf,
  minutes,
  pause,
  requireNode,
  type StepContext,
  type StepOutcome,
  type StepProgress,
  settledDetail,
  settleTimeout,
} from './step-kit.js';

const terminating = new Set(['shutting-down', 'terminated']);

export async function replace(ctx: StepContext): Promise<StepOutcome> {
  const { cluster, cloud } = ctx.deps;
  if (ctx.resumed) {
    const d = ctx.resumed.detail;
    const instanceId = d.instanceId;
    const node = await cluster.getNode(ctx.incident.node);
    const byNodeDelete = d.method === 'karpenter' || d.method === 'auto-mode';
    // An Auto Mode instance is EKS's: not even DescribeInstances is asked about it.
    const state =
      instanceId && d.method !== 'auto-mode' ? (await cloud.describeInstance(instanceId))?.state : undefined;
    const alreadyGoing = (state !== undefined && terminating.has(state)) || (byNodeDelete && !node);
    const told = replaceDetails(d);
    if (ctx.plan.dryRun) {
      return done(
        { reissued: false, instanceState: state ?? null },
        { step: 'replace_issued', details: { ...told, reissued: false } },
      );
    }
    // The crash may have come between the tags and the terminate: write them again (EC2 keeps tags on a
    // terminating instance too).
    const tagged = tagsBeforeReplace(d.method) ? await tagForRma(ctx, instanceId, d.tags) : {};
    if (alreadyGoing) {
      return done(
        { reissued: false, instanceState: state ?? null, ...tagged },
        { step: 'replace_issued', details: { ...told, reissued: false } },
      );
    }
    ctx.signal.throwIfAborted();
    await issueReplace(ctx, d.method, instanceId);
    return done(
      { reissued: true, ...tagged },
      { step: 'replace_issued', details: { ...told, reissued: true } },
    );
  }
  const node = await requireNode(ctx);
  const instanceId = instanceIdOf(ctx, node);
  const karpenter = nodePoolOf(node);
  const autoMode = isAutoModeNode(node);
  // Auto Mode and Karpenter nodes are replaced through the Node: no EC2 or Auto Scaling call at all.
  const asg = karpenter || autoMode ? undefined : await cloud.autoScalingGroupOf(instanceId);
  const method = autoMode ? 'auto-mode' : karpenter ? 'karpenter' : asg ? 'asg' : 'ec2';
  const group = node.nodeGroup ?? karpenter;
  const nodesBefore = (await cluster.listNodes()).map((n) => n.name);
  // The tags are decided before any effect, from the GPUs the cordon row recorded (the last scan before
  // the repair), so a resumed step writes the same ones.
  const gpuIds = ctx.rowOf('cordon')?.detail.gpuIds ?? ctx.deps.health.lastGpus?.(node.name);
  const row = ctx.begin({
    method,
    instanceId,
    nodesBefore,
    ...(group ? { group } : {}),
    ...(asg ? { autoScalingGroup: asg } : {}),
    ...(node.instanceType ? { instanceType: node.instanceType } : {}),
    ...(tagsBeforeReplace(method) ? { tags: rmaTags(ctx.incident, gpuIds) } : {}),
  });
  const told: StepProgress = { step: 'replace_issued', details: replaceDetails(row.detail) };
  if (ctx.plan.dryRun) return done({ would: `${method} replace of ${instanceId}` }, told);
  ctx.signal.throwIfAborted();
  const tagged = tagsBeforeReplace(method) ? await tagForRma(ctx, instanceId, row.detail.tags) : {};
  ctx.signal.throwIfAborted();
  await issueReplace(ctx, method, instanceId);
  return done({ ...tagged }, told);
}

/** The thread's view of a replace, from the row written before the effect (so a resume tells the same). */
function replaceDetails(d: JournalDetail): ProgressDetails['replace_issued'] {
  const { method, instanceId, autoScalingGroup: asg, group: pool } = d;
  return {
    ...(instanceId ? { instanceId } : {}),
    ...(method ? { method } : {}),
    ...(method === 'asg' && asg ? { asg } : {}),
    ...((method === 'karpenter' || method === 'auto-mode') && pool ? { nodePool: pool } : {}),
  };
}

async function issueReplace(
  ctx: StepContext,
  method: JournalDetail['method'],
  instanceId: string | undefined,
): Promise<void> {
  if (method === 'karpenter' || method === 'auto-mode') {
    await ctx.deps.cluster.deleteNode(ctx.incident.node);
    return;
  }
  if (!instanceId) throw new Error(`no EC2 instance id for ${ctx.incident.node}`);
  if (method === 'asg') await ctx.deps.cloud.terminateInAutoScalingGroup(instanceId);
  else await ctx.deps.cloud.terminateInstance(instanceId);
}

export async function waitReplacement(ctx: StepContext): Promise<StepOutcome> {
  const { cluster, clock } = ctx.deps;
  if (ctx.plan.dryRun) {
    return done(
      { would: 'wait for a replacement node to be Ready' },
      { step: 'replacement_ready', details: {} },
    );
  }
  const d = ctx.rowOf('replace')?.detail ?? {};
  const group = d.group;
  if (!group) {
    // A standalone instance: nothing brings a new node, so there is no "replacement Ready" to announce.
    return done(
      { replacement: null, note: 'not in a node group or NodePool: no replacement expected' },
      null,
    );
  }
  const before = new Set(d.nodesBefore ?? []);
  ctx.begin({});
  const deadline = clock.now() + ctx.config.replaceTimeoutMs;
  ctx.publish({
    step: 'settle_wait',
    details: {
      waitingFor: 'replacement',
      missing: `a new node in ${group}`,
      timeoutMs: ctx.config.replaceTimeoutMs,
    },
  });
  const onDemand = provisionsOnDemand(d.method);
  let quietPolls = 0;
  for (;;) {
    const fresh = (await cluster.listNodes()).find(
      (n) => !before.has(n.name) && n.ready && (n.nodeGroup === group || n.karpenterNodePool === group),
    );
    if (fresh) {
      return done(
        { replacement: fresh.name, group },
        { step: 'replacement_ready', details: { newNode: fresh.name, group } },
      );
    }
    if (onDemand) {
      // Karpenter and Auto Mode start a node only for pods that wait for one: with none pending (twice in a
      // row, so pods evicted moments ago have been seen), there is no successor to wait for.
      quietPolls = (await cluster.listPendingGpuPods()).length === 0 ? quietPolls + 1 : 0;
      if (quietPolls >= 2) {
        return done(
          { replacement: null, group, onDemand: true },
          { step: 'replacement_ready', details: { group, onDemand: true } },
        );
      }
    }
    if (clock.now() >= deadline) {
      return {
        kind: 'end',
        state: 'escalated',
        reason: `no replacement node in ${group} became Ready within ${minutes(ctx.config.replaceTimeoutMs)}.`,
      };
    }
    await pause(ctx, ctx.config.pollMs);
  }
}

/**
 * The replacement node goes through the same settle gate before the incident resolves: its GPUs allocatable,
 * an agent pod Ready, a complete scan with nothing critical. It is a new node, so any Ready agent pod counts.
 */
export async function verifyReplacement(ctx: StepContext): Promise<StepOutcome> {
  const fresh = ctx.doneDetail('wait_replacement')?.replacement;
  if (!fresh) {
    return done({ skipped: 'no replacement node to verify' }, null);
  }
  if (ctx.plan.dryRun)
    return done({ would: `verify ${fresh}` }, { step: 'gpu_scan', details: { node: fresh } });
  const row = ctx.begin({ node: fresh });
  // Same instance type: it must have what the old node had (before the fault). Another type (a Karpenter pool
  // may pick one): only what the new node itself says.
  const old = ctx.rowOf('replace')?.detail.instanceType;
  const node = await ctx.deps.cluster.getNode(fresh);
  const sameType = old !== undefined && node?.instanceType === old;
  const result = await settleNode(ctx, {
    node: fresh,
    expectation: sameType ? ctx.rowOf('cordon')?.detail.gpuExpectation : undefined,
    agentsBefore: undefined,
    rebootAt: undefined,
    faultKey: undefined,
    startedAt: row.startedAt,
  });
  if (result.kind === 'settled') {
    return done(
      { node: fresh, ...settledDetail(result) },
      {
        step: 'gpu_scan',
        details: { healthy: true, gpus: result.gpus, expected: result.expected, node: fresh },
      },
    );
  }
  if (result.kind === 'timeout')
    return settleTimeout(ctx, fresh, 'joined as the replacement', result.missing, false);
  return {
    kind: 'end',
    state: 'escalated',
    reason: `the replacement node ${fresh} fails its first GPU scan (${result.category}: ${result.explanation}); a human decides.`,
    detail: { node: fresh, healthy: false, needsHuman: true, category: result.category },
  };
}
