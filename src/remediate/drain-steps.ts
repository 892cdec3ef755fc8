import { backoffDelay } from '../domain/backoff.js';
/** Taking the node out of service: cordon, the Kubeflow job snapshot, the drain; and giving it back (uncordon). */
import { disruptionGuardBefore, guardFromDisruption } from './karpenter.js';
import type { PodRef } from './ports.js';
import { gpuExpectationOf } from './settle.js';
import { done, minutes, pause, requireNode, type StepContext, type StepOutcome } from './step-kit.js';

export async function cordon(ctx: StepContext): Promise<StepOutcome> {
  const node = await requireNode(ctx);
  const guard = await disruptionGuardBefore(ctx, node.name);
  // Whether it was cordoned before we came decides whether we uncordon at the end. The GPUs it has now are
  // what a replacement (or the node after a reboot) must show again before the incident resolves.
  const gpuIds = ctx.deps.health.lastGpus?.(node.name);
  const zone = node.labels['topology.kubernetes.io/zone'] ?? node.availabilityZone;
  const row = ctx.begin({
    wasUnschedulable: node.unschedulable,
    gpuExpectation: gpuExpectationOf(node),
    ...(gpuIds && gpuIds.length > 0 ? { gpuIds } : {}),
    ...(zone ? { zone } : {}),
    ...guard,
  });
  await guardFromDisruption(ctx, node.name, row);
  const cordonedByUs = row.detail.wasUnschedulable !== true || cordonedByEscalatedPredecessor(ctx);
  if (node.unschedulable) {
    return done(
      { cordonedByUs, alreadyCordoned: !cordonedByUs },
      { step: 'cordoned', details: cordonedByUs ? {} : { alreadyCordoned: true } },
    );
  }
  if (ctx.plan.dryRun)
    return done({ cordonedByUs: true, would: `cordon ${node.name}` }, { step: 'cordoned', details: {} });
  ctx.signal.throwIfAborted();
  await ctx.deps.cluster.cordon(node.name);
  return done({ cordonedByUs: true }, { step: 'cordoned', details: {} });
}

/**
 * A follow-up of an escalation (a reset that did not hold → a reboot) finds the node cordoned by the run it
 * follows: that cordon is still gpu-medic's, so the follow-up uncordons once the node is sound again.
 */
function cordonedByEscalatedPredecessor(ctx: StepContext): boolean {
  const { incidents, steps } = ctx.deps;
  const me = ctx.incident;
  const prev = incidents
    .list({ node: me.node })
    .filter((i) => i.id !== me.id && i.faultKey === me.faultKey && i.firstSeen <= me.firstSeen)
    .sort((a, b) => b.firstSeen - a.firstSeen)[0];
  if (prev?.state !== 'escalated' || steps.lastOf(prev.id, 'escalate')?.detail.to === undefined) return false;
  const cordon = steps.lastOf(prev.id, 'cordon');
  return (
    cordon?.status === 'done' && cordon.detail.cordonedByUs === true && !steps.lastOf(prev.id, 'uncordon')
  );
}

export async function uncordon(ctx: StepContext): Promise<StepOutcome> {
  if (ctx.plan.action !== 'uncordon') {
    const cordonDetail = ctx.doneDetail('cordon');
    if (cordonDetail?.cordonedByUs !== true) {
      return done(
        { skipped: 'the node was cordoned before gpu-medic came: left cordoned' },
        { step: 'uncordoned', details: { leftCordoned: true } },
      );
    }
  }
  const node = await requireNode(ctx);
  ctx.begin({});
  if (!node.unschedulable) return done({ alreadySchedulable: true }, { step: 'uncordoned', details: {} });
  if (ctx.plan.dryRun) return done({ would: `uncordon ${node.name}` }, { step: 'uncordoned', details: {} });
  ctx.signal.throwIfAborted();
  await ctx.deps.cluster.uncordon(node.name);
  return done({}, { step: 'uncordoned', details: {} });
}

function podName(p: PodRef): string {
  return `${p.namespace}/${p.name}`;
}

export async function kubeflowSnapshot(ctx: StepContext): Promise<StepOutcome> {
  const pods = await ctx.deps.cluster.listPodsOnNode(ctx.incident.node);
  const jobs = await ctx.deps.cluster.listTrainingJobsForPods(
    pods.filter((p) => !p.isDaemonSet && !p.isMirror),
  );
  return done(
    { jobs: jobs.map((j) => ({ ...j })) },
    {
      step: 'kubeflow_jobs',
      details: {
        jobs: jobs.map(({ kind, namespace, name }) => ({ kind, namespace, name })),
      },
    },
  );
}

/**
 * The first wait before a failed step runs again, and before a drain blocked by a PodDisruptionBudget tries
 * again; each further wait doubles, up to maxBackoffMs.
 */
export const RETRY_BASE_MS = 1_000;

export async function drain(ctx: StepContext): Promise<StepOutcome> {
  const { cluster, clock } = ctx.deps;
  const { config } = ctx;
  const nodeName = ctx.incident.node;
  ctx.begin({});
  const deadline = clock.now() + config.drainTimeoutMs;
  const evicted: string[] = [];
  const forced: string[] = [];
  // PDB waits so far: each one doubles the next.
  let blockedRounds = 0;
  let announced = false;
  let lastBlocked = '';
  let total = 0;
  for (;;) {
    const all = await cluster.listPodsOnNode(nodeName);
    const pods = all.filter((p) => !p.isDaemonSet && !p.isMirror);
    const skipped = all.length - pods.length;
    if (pods.length === 0) {
      return done(
        { evicted, ...(forced.length ? { forced } : {}) },
        {
          step: 'drained',
          details: { evicted: evicted.length, ...(forced.length ? { forced: forced.length } : {}) },
        },
      );
    }
    if (ctx.plan.dryRun) {
      return done(
        { would: 'evict', pods: pods.map(podName) },
        { step: 'drain_started', details: { pods: pods.length, skipped } },
      );
    }
    if (!announced) {
      total = pods.length;
      ctx.publish({ step: 'drain_started', details: { pods: total, skipped } });
      announced = true;
    }
    const blocked: PodRef[] = [];
    for (const pod of pods) {
      if (pod.deleting) continue;
      // Leadership lost mid-drain: not one more eviction from this process.
      ctx.signal.throwIfAborted();
      const result = await cluster.evictPod(pod.namespace, pod.name);
      if (result === 'evicted') {
        evicted.push(podName(pod));
        // A pod that appeared during the drain (a Job retrying) raises the total rather than exceed it.
        total = Math.max(total, evicted.length);
        ctx.publish({ step: 'pod_evicted', details: { pod: podName(pod), evicted: evicted.length, total } });
      } else if (result === 'blocked') blocked.push(pod);
    }
    const cancelled = await ctx.humanUncordoned();
    if (cancelled) return { kind: 'end', state: 'cancelled', reason: cancelled, detail: { evicted } };
    const now = clock.now();
    if (blocked.length > 0) {
      const names = blocked.map(podName).join(', ');
      const backoff = backoffDelay(blockedRounds, { baseMs: RETRY_BASE_MS, capMs: config.maxBackoffMs });
      if (now >= deadline) {
        if (!ctx.plan.force) {
          return {
            kind: 'end',
            state: 'escalated',
            reason: `drain blocked by a PodDisruptionBudget for ${minutes(config.drainTimeoutMs)} (${names}): a human decides; the node stays cordoned.`,
            detail: { evicted, blocked: blocked.map(podName), needsHuman: true },
          };
        }
        for (const pod of blocked) {
          ctx.signal.throwIfAborted();
          if ((await cluster.deletePod(pod.namespace, pod.name)) === 'deleted') forced.push(podName(pod));
        }
        continue;
      }
      if (names !== lastBlocked) {
        ctx.publish({
          step: 'pdb_wait',
          details: {
            pod: names,
            evicted: evicted.length,
            total: Math.max(total, evicted.length + blocked.length),
            waitedMs: now - (deadline - config.drainTimeoutMs),
            retryInMs: backoff,
          },
        });
        lastBlocked = names;
      }
      await pause(ctx, backoff);
      blockedRounds++;
      continue;
    }
    // Everything accepted for eviction: wait for the pods to terminate.
    if (now >= deadline) {
      return {
        kind: 'end',
        state: 'escalated',
        reason: `pods still terminating after ${minutes(config.drainTimeoutMs)}: ${pods.map(podName).join(', ')}`,
        detail: { evicted, needsHuman: true },
      };
    }
    await pause(ctx, Math.min(config.pollMs, 2_000));
  }
}
