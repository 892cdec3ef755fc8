/**
 * The steps of a remediation. Each one looks at the real world first, so running it again after a crash
 * never repeats an effect that already happened; `ctx.begin` writes (or returns the resumed) `started` row
 * BEFORE the effect, the engine writes `done` after it. In dry run no mutating port is called.
 */
import type { ProgressDetails, StepDetails } from '../domain/events.js';
import type { Incident } from '../domain/incident.js';
import type { GpuNode } from '../domain/node.js';
import type { EngineConfig, EngineDeps } from './engine.js';
import type { JournalDetail } from './journal.js';
import { disruptionGuardBefore, guardFromDisruption, provisionsOnDemand } from './karpenter.js';
import { isAutoModeNode, nodePoolOf, rebootUnavailableReason } from './node-kind.js';
import type { PodRef, RunPlan, StepRow, TrainingJobRef } from './ports.js';
import {
  agentRecordsOf,
  combineExpectations,
  type GpuExpectation,
  gpuExpectationOf,
  type Missing,
  type SettleResult,
  settleNode,
} from './settle.js';
import type { StepName } from './state-machine.js';

export interface StepContext {
  incident: Incident;
  plan: RunPlan;
  /** This step's `started` row from an earlier, interrupted attempt. */
  resumed: StepRow | undefined;
  config: EngineConfig;
  deps: EngineDeps;
  begin(detail: JournalDetail): StepRow;
  doneDetail(step: StepName): JournalDetail | undefined;
  rowOf(step: StepName): StepRow | undefined;
  /** A progress event within the step; `elapsedMs` when the line should say how long something took. */
  publish(told: StepDetails, elapsedMs?: number): void;
  humanUncordoned(): Promise<string | undefined>;
  /**
   * Fires when this process must stop acting (leadership lost, process stopping). A step stops at its next
   * wait or before its next effect, leaving its `started` row for the next leader to resume.
   */
  signal: AbortSignal;
}

/** The progress event announcing a finished step, typed by the contract in src/domain/events.ts. */
export type StepProgress = StepDetails;

export type StepOutcome =
  | {
      kind: 'done';
      /** Persisted in the step row (what a resumed run reads); never shown as is. */
      detail: JournalDetail;
      /** What the thread is told; null = the step already told it with its own events. */
      progress: StepProgress | null;
    }
  | {
      kind: 'end';
      state: 'escalated' | 'failed' | 'cancelled';
      reason: string;
      detail?: JournalDetail;
    };

const done = (detail: JournalDetail, progress: StepProgress | null): StepOutcome => ({
  kind: 'done',
  detail,
  progress,
});

function minutes(ms: number): string {
  return ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`;
}

/**
 * Every wait of a step: returns early when the run is aborted and then throws, so nothing after the wait
 * (an eviction, an EC2 call) happens in a process that is no longer allowed to act.
 */
async function pause(ctx: StepContext, ms: number): Promise<void> {
  await ctx.deps.clock.sleep(ms, ctx.signal);
  ctx.signal.throwIfAborted();
}

async function requireNode(ctx: StepContext): Promise<GpuNode> {
  const node = await ctx.deps.cluster.getNode(ctx.incident.node);
  if (!node) throw new Error(`node ${ctx.incident.node} not found`);
  return node;
}

async function cordon(ctx: StepContext): Promise<StepOutcome> {
  const node = await requireNode(ctx);
  const guard = await disruptionGuardBefore(ctx, node.name);
  // Whether it was cordoned before we came decides whether we uncordon at the end. The GPUs it has now are
  // what a replacement (or the node after a reboot) must show again before the incident resolves.
  const row = ctx.begin({
    wasUnschedulable: node.unschedulable,
    gpuExpectation: gpuExpectationOf(node),
    ...guard,
  });
  await guardFromDisruption(ctx, node.name, row);
  const cordonedByUs = row.detail.wasUnschedulable !== true;
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

async function uncordon(ctx: StepContext): Promise<StepOutcome> {
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

async function kubeflowSnapshot(ctx: StepContext): Promise<StepOutcome> {
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

async function drain(ctx: StepContext): Promise<StepOutcome> {
  const { cluster, clock } = ctx.deps;
  const { config } = ctx;
  const nodeName = ctx.incident.node;
  ctx.begin({});
  const deadline = clock.now() + config.drainTimeoutMs;
  const evicted: string[] = [];
  const forced: string[] = [];
  let backoff = 1_000;
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
      backoff = Math.min(backoff * 2, config.maxBackoffMs);
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

function instanceIdOf(ctx: StepContext, node: GpuNode | undefined): string {
  const id = ctx.incident.instanceId ?? node?.instanceId;
  if (!id) throw new Error(`no EC2 instance id for ${ctx.incident.node} (spec.providerID)`);
  return id;
}

function rebootShows(node: GpuNode | undefined, bootIdBefore: string | null | undefined): boolean {
  return !node?.ready || (typeof bootIdBefore === 'string' && node.bootId !== bootIdBefore);
}

async function reboot(ctx: StepContext): Promise<StepOutcome> {
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

async function waitNodeBack(ctx: StepContext): Promise<StepOutcome> {
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

/** The settle gate's timeout, as the thread and the escalation policy see it. */
function settleTimeout(
  ctx: StepContext,
  node: string,
  when: string,
  missing: Missing,
  replaceable: boolean,
): StepOutcome {
  // Fewer GPUs than before (the device plugin or the scan counts some, not all): the hardware lost one, and a
  // reboot that did not bring it back escalates to replace. Nothing read at all: a human looks first.
  const lost =
    replaceable && missing.have !== undefined && missing.have > 0 && (missing.want ?? 0) > missing.have;
  return {
    kind: 'end',
    state: 'escalated',
    reason: `${node} ${when} but did not settle within ${minutes(ctx.config.settleTimeoutMs)}: ${missing.text}. It stays cordoned${lost ? '; the lost GPU goes to the escalation policy (replace)' : '; a human decides'}.`,
    detail: {
      settled: false,
      waitingFor: missing.kind,
      missing: missing.text,
      ...(lost ? { escalateTo: 'replace' } : { needsHuman: true }),
    },
  };
}

function settledDetail(result: Extract<SettleResult, { kind: 'settled' }>): JournalDetail {
  return { healthy: true, gpus: result.gpus, waitedMs: result.waitedMs };
}

/**
 * The settle gate after a reboot (settle.ts): GPUs allocatable again, an agent pod Ready on the new boot, and a
 * complete scan of every expected GPU with nothing critical. Until then the node stays cordoned.
 */
async function verifyScan(ctx: StepContext): Promise<StepOutcome> {
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
  if (result.kind === 'timeout')
    return settleTimeout(ctx, ctx.incident.node, 'came back after the reboot', result.missing, true);
  return {
    kind: 'end',
    state: 'escalated',
    reason: `GPU scan after the reboot still fails (${result.category}: ${result.explanation}); the node stays cordoned and the fault goes to the escalation policy (replace).`,
    // The services open a follow-up for the same fault; the policy, seeing the reboot that did not help, replaces.
    detail: {
      healthy: false,
      escalateTo: 'replace',
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

const terminating = new Set(['shutting-down', 'terminated']);

async function replace(ctx: StepContext): Promise<StepOutcome> {
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
    if (alreadyGoing || ctx.plan.dryRun) {
      return done(
        { reissued: false, instanceState: state ?? null },
        { step: 'replace_issued', details: { ...told, reissued: false } },
      );
    }
    ctx.signal.throwIfAborted();
    await issueReplace(ctx, d.method, instanceId);
    return done({ reissued: true }, { step: 'replace_issued', details: { ...told, reissued: true } });
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
  const row = ctx.begin({
    method,
    instanceId,
    nodesBefore,
    ...(group ? { group } : {}),
    ...(asg ? { autoScalingGroup: asg } : {}),
    ...(node.instanceType ? { instanceType: node.instanceType } : {}),
  });
  const told: StepProgress = { step: 'replace_issued', details: replaceDetails(row.detail) };
  if (ctx.plan.dryRun) return done({ would: `${method} replace of ${instanceId}` }, told);
  ctx.signal.throwIfAborted();
  await issueReplace(ctx, method, instanceId);
  return done({}, told);
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

async function waitReplacement(ctx: StepContext): Promise<StepOutcome> {
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
async function verifyReplacement(ctx: StepContext): Promise<StepOutcome> {
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

/** The jobs of the snapshot (a follow's results, `{ job, status }`, are not jobs to follow). */
function jobsOf(detail: JournalDetail | undefined): TrainingJobRef[] {
  return (detail?.jobs ?? []).flatMap((j) => ('kind' in j ? [j] : []));
}

async function followJobs(ctx: StepContext): Promise<StepOutcome> {
  const jobs = jobsOf(ctx.doneDetail('kubeflow_snapshot'));
  // The snapshot already told the thread which jobs there are (or that there are none): the follow
  // speaks only through one kubeflow_job_running / kubeflow_job_not_running line per job.
  if (jobs.length === 0) return done({ jobs: [] }, null);
  if (ctx.plan.dryRun) return done({ would: 'follow training jobs', jobs }, null);
  const { cluster, clock } = ctx.deps;
  // The job lost its pods when the drain began: "running again after" counts from there.
  const since = ctx.rowOf('drain')?.startedAt ?? clock.now();
  const deadline = clock.now() + ctx.config.jobTimeoutMs;
  const results: { job: string; status: string }[] = [];
  const pending = new Map(jobs.map((j) => [`${j.kind} ${j.namespace}/${j.name}`, j]));
  for (;;) {
    for (const [label, job] of pending) {
      const status = await cluster.getTrainingJobStatus(job);
      if (status === 'running' || status === 'succeeded') {
        results.push({ job: label, status });
        ctx.publish(
          { step: 'kubeflow_job_running', details: { ...jobRef(job), status } },
          clock.now() - since,
        );
        pending.delete(label);
      }
    }
    if (pending.size === 0) break;
    if (clock.now() >= deadline) {
      for (const [label, job] of pending) {
        const status = await cluster.getTrainingJobStatus(job);
        results.push({ job: label, status });
        ctx.publish(
          {
            step: 'kubeflow_job_not_running',
            details: {
              ...jobRef(job),
              status,
              reason: `still ${status} after following it for ${minutes(ctx.config.jobTimeoutMs)}`,
            },
          },
          clock.now() - since,
        );
      }
      break;
    }
    await pause(ctx, ctx.config.pollMs);
  }
  return done({ jobs: results }, null);
}

function jobRef(j: TrainingJobRef): { kind: string; namespace: string; name: string } {
  return { kind: j.kind, namespace: j.namespace, name: j.name };
}

export async function runStep(step: StepName, ctx: StepContext): Promise<StepOutcome> {
  switch (step) {
    case 'cordon':
      return cordon(ctx);
    case 'kubeflow_snapshot':
      return kubeflowSnapshot(ctx);
    case 'drain':
      return drain(ctx);
    case 'reboot':
      return reboot(ctx);
    case 'wait_node_back':
      return waitNodeBack(ctx);
    case 'verify_scan':
      return verifyScan(ctx);
    case 'uncordon':
      return uncordon(ctx);
    case 'replace':
      return replace(ctx);
    case 'wait_replacement':
      return waitReplacement(ctx);
    case 'verify_replacement':
      return verifyReplacement(ctx);
    case 'follow_jobs':
      return followJobs(ctx);
    case 'resolve':
      return done({}, null);
  }
}
