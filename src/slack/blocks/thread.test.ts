import { describe, expect, it } from 'vitest';
import { type ProgressEventBase, progressEvent } from '../../domain/events.js';
import {
  type ProgressEvent,
  type ProgressStep,
  ProgressSteps,
  type StepDetails,
  withoutDetails,
} from '../chat-events.js';
import { SlackLimits } from './limits.js';
import { threadReply } from './thread.js';

const node = 'ip-10-0-1-2';
const at = Date.UTC(2026, 10, 29, 3, 12, 5);

function ev(told: StepDetails, extra: Partial<ProgressEventBase> = {}): ProgressEvent {
  return progressEvent({ incidentId: 'inc-1', node, state: 'draining', at, ...extra }, told);
}

/**
 * An event whose details do not follow the contract (an old shape, junk). The compiler refuses to build
 * one, so it arrives the only way it can: as parsed JSON, from outside the process.
 */
function loose(step: ProgressStep, details: Record<string, unknown>): ProgressEvent {
  return JSON.parse(JSON.stringify({ ...ev(withoutDetails(step)), details }));
}

describe('threadReply', () => {
  it.each<[string, ProgressEvent, string]>([
    [
      'detected',
      ev({ step: 'detected', details: { xid: 79, gpu: 3, category: 'XID_CRITICAL_79' } }),
      '🚨 Detected XID 79 on GPU 3 of ip-10-0-1-2 (XID_CRITICAL_79)',
    ],
    [
      'detected without xid',
      ev({ step: 'detected', details: { category: 'ECC_ERROR', gpu: 0 } }),
      '🚨 Detected ECC_ERROR on GPU 0 of ip-10-0-1-2',
    ],
    [
      'policy',
      ev({ step: 'policy', details: { action: 'reboot', mode: 'auto', rule: 'xid 48' } }),
      '📋 Policy: reboot · auto (rule: xid 48)',
    ],
    [
      'policy alert only',
      ev({ step: 'policy', details: { action: 'none', mode: 'off' } }),
      '📋 Policy: alert only',
    ],
    [
      'policy auto',
      ev({ step: 'policy', details: { action: 'replace', mode: 'auto' } }),
      '📋 Policy: replace · auto',
    ],
    [
      'policy mode off',
      ev({ step: 'policy', details: { action: 'reboot', mode: 'off' } }),
      '📋 Policy: alert only',
    ],
    [
      'policy approve',
      ev({ step: 'policy', details: { action: 'reboot', mode: 'approve' } }),
      '📋 Policy: reboot · approve',
    ],
    [
      'policy without mode',
      ev({ step: 'policy', details: { action: 'replace' } }),
      '📋 Policy: replace · auto',
    ],
    ['policy without details', ev({ step: 'policy', details: {} }), '📋 Policy: alert only'],
    [
      'approval_needed',
      ev({ step: 'approval_needed', details: { action: 'reboot' } }),
      '✋ Waiting for approval to reboot ip-10-0-1-2 — an admin can press the button above',
    ],
    [
      'approved',
      ev({ step: 'approved', details: { action: 'replace' } }, { actor: 'slack:U0123ABCD' }),
      '👍 replace approved by <@U0123ABCD>',
    ],
    [
      'cordoned',
      ev({ step: 'cordoned', details: {} }, { elapsedMs: 300 }),
      '✅ Cordoned ip-10-0-1-2 (0.3 s)',
    ],
    [
      'cordoned before us',
      ev({ step: 'cordoned', details: { alreadyCordoned: true } }),
      '✅ ip-10-0-1-2 was already cordoned (not by gpu-medic: it stays cordoned afterwards)',
    ],
    [
      'drain_started one pod',
      ev({ step: 'drain_started', details: { pods: 1, skipped: 0 } }),
      '🚿 Draining ip-10-0-1-2: 1 pod to evict',
    ],
    [
      'drain_started with a list (old shape) shows no count',
      loose('drain_started', { pods: ['a/b'] }),
      '🚿 Draining ip-10-0-1-2',
    ],
    [
      'drain_started',
      ev({ step: 'drain_started', details: { pods: 5, skipped: 3 } }),
      '🚿 Draining ip-10-0-1-2: 5 pods to evict (3 DaemonSet/mirror pods left in place)',
    ],
    [
      'pod_evicted',
      ev({ step: 'pod_evicted', details: { pod: 'ml-team/trainer-1', evicted: 3, total: 5 } }),
      '↪️ Evicted ml-team/trainer-1 (3 of 5 evicted)',
    ],
    [
      'pdb_wait',
      ev({
        step: 'pdb_wait',
        details: { pdb: 'ml-team/trainer-pdb', pod: 'ml-team/trainer-0', evicted: 2, total: 5 },
      }),
      '⏳ Eviction refused: waiting on PodDisruptionBudget ml-team/trainer-pdb for ml-team/trainer-0 (2 of 5 evicted)',
    ],
    [
      'pdb_wait as the engine publishes it',
      ev({
        step: 'pdb_wait',
        details: { pod: 'ml/llama-ft-worker-0', evicted: 1, total: 2, retryInMs: 2000 },
      }),
      '⏳ Eviction refused: waiting on a PodDisruptionBudget for ml/llama-ft-worker-0 (1 of 2 evicted), retry in 2.0 s',
    ],
    [
      'drained',
      ev({ step: 'drained', details: { evicted: 5 } }, { elapsedMs: 63_000 }),
      '✅ Drained ip-10-0-1-2: 5 pods evicted (1m 3s)',
    ],
    [
      'drained with forced deletions',
      ev({ step: 'drained', details: { evicted: 1, forced: 1 } }),
      '✅ Drained ip-10-0-1-2: 1 pod evicted, 1 deleted around a PodDisruptionBudget',
    ],
    [
      'reboot_issued',
      ev({ step: 'reboot_issued', details: { instanceId: 'i-0abc1234def567890' } }),
      '🔁 Reboot issued for i-0abc1234def567890 (ip-10-0-1-2)',
    ],
    [
      'node_back',
      ev(
        { step: 'node_back', details: { bootId: '5f3c9a2e-1111-2222-3333-444455556666' } },
        { elapsedMs: 130_000 },
      ),
      '🟢 Node back: new boot ID 5f3c9a2e… after 2m 10s',
    ],
    [
      'gpu_scan healthy',
      ev({ step: 'gpu_scan', details: { healthy: true, gpus: 8, expected: 8 } }),
      '🧪 GPU scan healthy: 8/8 GPUs read, nothing critical',
    ],
    [
      'gpu_scan healthy on a replacement node',
      ev({ step: 'gpu_scan', details: { healthy: true, gpus: 8, expected: 8, node: 'ip-10-0-9-9' } }),
      '🧪 GPU scan healthy on ip-10-0-9-9: 8/8 GPUs read, nothing critical',
    ],
    [
      'settle_wait for the device plugin',
      ev({
        step: 'settle_wait',
        details: {
          waitingFor: 'gpus',
          missing: 'the device plugin reports 0 of 8 GPUs',
          waitedMs: 60_000,
          timeoutMs: 900_000,
        },
      }),
      '⏳ Not back yet — ip-10-0-1-2 stays cordoned: the device plugin reports 0 of 8 GPUs (1m so far, gives up after 15m)',
    ],
    [
      'settle_wait for the exporter, at once',
      ev({
        step: 'settle_wait',
        details: {
          waitingFor: 'agent',
          missing: 'gpu-operator/nvidia-dcgm-exporter-x is not Ready',
          waitedMs: 0,
        },
      }),
      '⏳ Not back yet — ip-10-0-1-2 stays cordoned: gpu-operator/nvidia-dcgm-exporter-x is not Ready',
    ],
    [
      'settle_wait for the node',
      ev({ step: 'settle_wait', details: { waitingFor: 'node_ready', timeoutMs: 1_200_000 } }),
      '⏳ Waiting for ip-10-0-1-2 to come back Ready with a new boot ID (gives up after 20m)',
    ],
    [
      'settle_wait for a replacement',
      ev({
        step: 'settle_wait',
        details: {
          waitingFor: 'replacement',
          missing: 'a new node in gpu-ng-1',
          timeoutMs: 1_800_000,
        },
      }),
      '⏳ Waiting for a replacement node to join: a new node in gpu-ng-1 (gives up after 30m)',
    ],
    [
      'gpu_scan unhealthy',
      ev({ step: 'gpu_scan', details: { healthy: false, gpus: 7, expected: 8, problem: 'GPU 3 missing' } }),
      '❌ GPU scan still unhealthy (7/8 GPUs): GPU 3 missing',
    ],
    [
      'replace_issued asg',
      ev({ step: 'replace_issued', details: { instanceId: 'i-0abc', method: 'asg', asg: 'eks-gpu-a100' } }),
      '♻️ Replacement requested: terminating i-0abc (ip-10-0-1-2) in Auto Scaling group eks-gpu-a100 (desired capacity kept)',
    ],
    [
      'replace_issued karpenter',
      ev({ step: 'replace_issued', details: { method: 'karpenter' } }),
      '♻️ Replacement requested: deleted node ip-10-0-1-2; Karpenter provisions a new one',
    ],
    [
      'replace_issued karpenter with pool',
      ev({
        step: 'replace_issued',
        details: { method: 'karpenter', instanceId: 'i-0k', nodePool: 'gpu-pool' },
      }),
      '♻️ Replacement requested: deleted node ip-10-0-1-2 (i-0k); Karpenter provisions a new one in NodePool gpu-pool',
    ],
    [
      'replace_issued ec2',
      ev({ step: 'replace_issued', details: { method: 'ec2', instanceId: 'i-0s' } }),
      '♻️ Replacement requested: terminating i-0s (ip-10-0-1-2) through EC2 (not in a node group or NodePool: no replacement node is expected)',
    ],
    [
      'replacement_ready',
      ev({ step: 'replacement_ready', details: { newNode: 'ip-10-0-3-4' } }, { elapsedMs: 362_000 }),
      '🟢 Replacement node ip-10-0-3-4 Ready after 6m 2s',
    ],
    [
      'replacement_ready with group',
      ev({ step: 'replacement_ready', details: { newNode: 'p5-new-1', group: 'p5' } }),
      '🟢 Replacement node p5-new-1 Ready in p5',
    ],
    [
      'replacement_ready old shape (replacement) names no node',
      loose('replacement_ready', { replacement: 'p5-new-1' }),
      '🟢 Replacement node Ready',
    ],
    [
      'replacement_ready unnamed',
      ev({ step: 'replacement_ready', details: {} }),
      '🟢 Replacement node Ready',
    ],
    ['uncordoned', ev({ step: 'uncordoned', details: {} }), '✅ Uncordoned ip-10-0-1-2 — back in service'],
    [
      'left cordoned',
      ev({ step: 'uncordoned', details: { leftCordoned: true } }),
      'ℹ️ Left ip-10-0-1-2 cordoned: it was cordoned before gpu-medic came',
    ],
    [
      'kubeflow_jobs',
      loose('kubeflow_jobs', {
        jobs: [{ kind: 'PyTorchJob', namespace: 'ml-team', name: 'llama-ft' }, { bogus: true }],
      }),
      '🧠 Kubeflow jobs with pods on ip-10-0-1-2: PyTorchJob ml-team/llama-ft',
    ],
    [
      'kubeflow_jobs none',
      ev({ step: 'kubeflow_jobs', details: { jobs: [] } }),
      '🧠 No Kubeflow training jobs on ip-10-0-1-2',
    ],
    [
      'kubeflow_job_running',
      ev(
        {
          step: 'kubeflow_job_running',
          details: { kind: 'PyTorchJob', namespace: 'ml-team', name: 'llama-ft' },
        },
        { elapsedMs: 180_000 },
      ),
      '🧠 Kubeflow: PyTorchJob ml-team/llama-ft running again after 3m',
    ],
    [
      'kubeflow_job_running succeeded',
      ev({
        step: 'kubeflow_job_running',
        details: { kind: 'TrainJob', namespace: 'ml', name: 'x', status: 'succeeded' },
      }),
      '🧠 Kubeflow: TrainJob ml/x succeeded',
    ],
    [
      'kubeflow_job_running old shape (job label) does not pretend',
      loose('kubeflow_job_running', { job: 'PyTorchJob ml/llama-ft', status: 'running' }),
      '🧠 Kubeflow: Job a training job running again',
    ],
    [
      'kubeflow_job_not_running',
      ev({
        step: 'kubeflow_job_not_running',
        details: {
          kind: 'TrainJob',
          namespace: 'ml',
          name: 'x',
          reason: 'pods Pending',
        },
      }),
      '⚠️ Kubeflow: TrainJob ml/x not running again — pods Pending',
    ],
    [
      'resolved',
      ev({ step: 'resolved', details: {} }, { elapsedMs: 432_000 }),
      '🎉 Resolved: ip-10-0-1-2 is healthy — 7m 12s in total',
    ],
    [
      'resolved by a replace',
      ev({ step: 'resolved', details: { action: 'replace' } }, { elapsedMs: 61_000 }),
      '🎉 Resolved: ip-10-0-1-2 was replaced — 1m 1s in total',
    ],
    [
      'escalated',
      ev({ step: 'escalated', details: { to: 'replace', reason: 'XID 48 returned within 24h of a reboot' } }),
      '⬆️ Escalated to replace: XID 48 returned within 24h of a reboot',
    ],
    [
      'failed',
      ev({ step: 'failed', details: { stage: 'draining', reason: 'PDB ml/x blocked eviction for 10m' } }),
      '❌ Failed while draining: PDB ml/x blocked eviction for 10m — ip-10-0-1-2 needs a human',
    ],
    [
      'cancelled',
      ev({ step: 'cancelled', details: { reason: 'node uncordoned by a human' } }),
      '🚫 Cancelled: node uncordoned by a human',
    ],
    [
      'dismissed',
      ev({ step: 'dismissed', details: {} }, { actor: 'slack:U0123ABCD' }),
      '🙈 Dismissed by <@U0123ABCD>',
    ],
    [
      'circuit breaker',
      ev({
        step: 'safety_limit',
        details: { limit: 'circuit_breaker', unhealthy: 4, total: 10, thresholdPct: 20 },
      }),
      '🛑 Circuit breaker open: 4 of 10 GPU nodes unhealthy (limit 20 %) — action on ip-10-0-1-2 needs a human; `/gpu resume` to resume automatic actions',
    ],
    [
      'circuit breaker with node limit',
      ev({
        step: 'safety_limit',
        details: {
          limit: 'circuit_breaker',
          action: 'replace',
          unhealthy: 3,
          total: 10,
          thresholdPct: 50,
          maxNodes: 2,
        },
      }),
      '🛑 Circuit breaker open: 3 of 10 GPU nodes unhealthy (limit 50 % or 2 nodes) — replace of ip-10-0-1-2 needs a human; `/gpu resume` to resume automatic actions',
    ],
    [
      'rate limit',
      ev({
        step: 'safety_limit',
        details: { limit: 'rate_limit', count: 5, perHour: 5, windowMinutes: 60, action: 'reboot' },
      }),
      '🛑 Rate limit: 5 remediations in the last 1h (limit 5) — reboot of ip-10-0-1-2 deferred',
    ],
    [
      'max concurrent',
      ev({
        step: 'safety_limit',
        details: { limit: 'max_concurrent', inFlight: 3, maxConcurrent: 3, action: 'reboot' },
      }),
      '🛑 3 remediations already running (limit 3) — reboot of ip-10-0-1-2 must wait',
    ],
    [
      'old safety limit names fall back',
      loose('safety_limit', { limit: 'breaker', action: 'reboot' }),
      '🛑 Safety limit reached — reboot of ip-10-0-1-2 held back',
    ],
    [
      'opt-out',
      ev({ step: 'safety_limit', details: { limit: 'opt_out', label: 'gpu-medic.io/disabled=true' } }),
      '🛑 ip-10-0-1-2 carries the opt-out label `gpu-medic.io/disabled=true` — alert only, no action',
    ],
    [
      'paused',
      ev({ step: 'safety_limit', details: { limit: 'paused', action: 'replace' } }),
      '⏸️ Automatic actions are paused — replace of ip-10-0-1-2 waits; `/gpu resume` to resume',
    ],
    [
      'unknown limit',
      ev({ step: 'safety_limit', details: {} }),
      '🛑 Safety limit reached — action on ip-10-0-1-2 held back',
    ],
    [
      'excluded',
      ev({ step: 'excluded', details: { until: at, by: 'slack:U0123ABCD', reason: 'vendor RMA' } }),
      '🙈 ip-10-0-1-2 is excluded until <!date^1795921925^{date_short_pretty} {time}|2026-11-29 03:12 UTC> by <@U0123ABCD> (vendor RMA) — no action taken',
    ],
    [
      'dry-run cordon',
      ev({ step: 'cordoned', details: {} }, { dryRun: true }),
      '🧪 DRY RUN — would cordon ip-10-0-1-2',
    ],
    [
      'dry-run drain',
      ev({ step: 'drain_started', details: { pods: 4 } }, { dryRun: true }),
      '🧪 DRY RUN — would drain ip-10-0-1-2 (4 pods to evict)',
    ],
    [
      'dry-run reboot',
      ev({ step: 'reboot_issued', details: { instanceId: 'i-0abc' } }, { dryRun: true }),
      '🧪 DRY RUN — would reboot i-0abc',
    ],
    [
      'dry-run replace',
      ev({ step: 'replace_issued', details: {} }, { dryRun: true }),
      '🧪 DRY RUN — would replace ip-10-0-1-2',
    ],
    [
      'dry-run resolved',
      ev({ step: 'resolved', details: {} }, { dryRun: true }),
      '🧪 DRY RUN — 🎉 Resolved: ip-10-0-1-2 is healthy',
    ],
  ])('%s', (_name, event, expected) => {
    expect(threadReply(event).text).toBe(expected);
  });

  it.each(ProgressSteps)('renders %s without details and without crashing on junk details', (step) => {
    expect(threadReply(ev(withoutDetails(step))).text.length).toBeGreaterThan(0);
    const junk = {
      xid: 'x',
      gpu: null,
      pods: '5',
      jobs: 'nope',
      healthy: 'yes',
      until: 'soon',
      pod: 42,
      action: {},
    };
    // Junk has no type: it arrives as parsed JSON would, from outside the contract.
    const junkEvent: ProgressEvent = JSON.parse(
      JSON.stringify({ ...ev(withoutDetails(step)), details: junk }),
    );
    expect(threadReply(junkEvent).text).not.toContain('undefined');
    expect(threadReply(junkEvent).text).not.toContain('[object');
  });

  it('escapes untrusted details', () => {
    const text = threadReply(ev({ step: 'failed', details: { reason: '<!channel> evict <@U1> & go' } })).text;
    expect(text).toContain('&lt;!channel&gt; evict &lt;@U1&gt; &amp; go');
  });

  it('caps very long replies', () => {
    const jobs = Array.from({ length: 5000 }, (_, i) => ({
      kind: 'PyTorchJob',
      namespace: 'n'.repeat(50),
      name: `job-${i}`,
    }));
    const text = threadReply(ev({ step: 'kubeflow_jobs', details: { jobs } })).text;
    expect(text).toContain('and 4980 more');
    expect(
      threadReply(ev({ step: 'failed', details: { reason: 'r'.repeat(100_000) } })).text.length,
    ).toBeLessThanOrEqual(SlackLimits.messageText);
  });
});
