import { describe, expect, it } from 'vitest';
import { readEvent, readStepDetails, withoutDetails } from './event-details.js';
import {
  type ProgressEvent,
  type ProgressEventBase,
  type ProgressStep,
  ProgressSteps,
  progressEvent,
  type StepDetails,
} from './events.js';

const base: ProgressEventBase = { incidentId: 'inc-1', node: 'gpu-0', state: 'draining', at: 1_000 };

/**
 * A reader exhaustive over the steps, the way the thread and the notification sinks read events: narrowing
 * on `step` gives each branch its step's details, and the `satisfies never` default makes a step added to
 * ProgressSteps without a branch here a compile error.
 */
function summary(event: ProgressEvent): string {
  const { step, details } = event;
  switch (step) {
    case 'detected':
      return `detected ${details.xid ?? details.category ?? '?'}`;
    case 'policy':
    case 'approval_needed':
    case 'approved':
      return `${step} ${details.action ?? 'none'}`;
    case 'cordoned':
      return `cordoned${details.alreadyCordoned ? ' before' : ''}`;
    case 'drain_started':
      return `drain ${details.pods ?? 0}`;
    case 'pod_evicted':
      return `evicted ${details.pod ?? '?'} ${details.evicted ?? 0}/${details.total ?? 0}`;
    case 'pdb_wait':
      return `pdb ${details.pod ?? '?'}`;
    case 'drained':
      return `drained ${details.evicted ?? 0}`;
    case 'reboot_issued':
      return `reboot ${details.instanceId ?? '?'}`;
    case 'node_back':
      return `back ${details.bootId ?? '?'}`;
    case 'settle_wait':
      return `wait ${details.waitingFor ?? '?'}`;
    case 'gpu_scan':
      return `scan ${details.healthy === true ? 'healthy' : 'not healthy'}`;
    case 'replace_issued':
      return `replace ${details.method ?? '?'}`;
    case 'replacement_ready':
      return `replacement ${details.newNode ?? '?'}`;
    case 'diag_started':
    case 'diag_progress':
      return `${step} ${details.level ?? '?'}`;
    case 'diag_result':
      return `diag ${details.verdict ?? '?'} ${(details.results ?? []).length}`;
    case 'uncordoned':
      return `uncordoned${details.leftCordoned ? ' (left)' : ''}`;
    case 'kubeflow_jobs':
      return `jobs ${(details.jobs ?? []).map((j) => j.name).join(',')}`;
    case 'kubeflow_job_running':
    case 'kubeflow_job_not_running':
      return `job ${details.name ?? '?'} ${details.status ?? '?'}`;
    case 'resolved':
      return `resolved ${details.action ?? '?'}`;
    case 'escalated':
      return `escalated to ${details.to ?? '?'}`;
    case 'failed':
    case 'cancelled':
    case 'dismissed':
      return `${step}: ${details.reason ?? '?'}`;
    case 'gpu_reset':
      return `reset ${details.gpus?.join(',') ?? '?'}`;
    case 'safety_limit':
      return `limit ${details.limit ?? '?'}`;
    case 'excluded':
      return `excluded by ${details.by ?? '?'}`;
    case 'auto_repair_deferred':
      return `deferred ${details.owner ?? '?'}`;
    case 'auto_repair_outcome':
      return `eks ${details.outcome ?? '?'}`;
    default:
      return String(step satisfies never);
  }
}

describe('ProgressEvent', () => {
  it('narrows on step: each branch reads its own details', () => {
    const evicted = progressEvent(base, {
      step: 'pod_evicted',
      details: { pod: 'ml/a', evicted: 1, total: 2 },
    });
    expect(summary(evicted)).toBe('evicted ml/a 1/2');
    expect(summary(progressEvent(base, { step: 'escalated', details: { to: 'replace' } }))).toBe(
      'escalated to replace',
    );
    const jobs: StepDetails = {
      step: 'kubeflow_jobs',
      details: { jobs: [{ kind: 'PyTorchJob', namespace: 'ml', name: 'ft' }] },
    };
    expect(summary(progressEvent(base, jobs))).toBe('jobs ft');
  });

  it.each(ProgressSteps)('%s has a reader branch and reads without details', (step) => {
    const event = progressEvent(base, withoutDetails(step));
    expect(event.step).toBe(step);
    expect(event.details).toEqual({});
    expect(summary(event)).not.toContain('undefined');
  });

  it('reads a diagnostic table leniently: a malformed row is dropped, the others kept', () => {
    const read = readStepDetails('diag_result', {
      level: 1,
      verdict: 'fail',
      results: [
        { test: 'memory', gpu: 3, status: 'fail', info: 'Found 4 faulty memory elements on GPU 3' },
        { test: 'memory', gpu: 'x', status: 'fail' },
        { test: 'memory', gpu: 1, status: 'bogus' },
      ],
      nodeWide: 'not a list',
    });
    expect(read).toEqual({
      step: 'diag_result',
      details: {
        level: 1,
        verdict: 'fail',
        results: [
          { test: 'memory', gpu: 3, status: 'fail', info: 'Found 4 faulty memory elements on GPU 3' },
        ],
        nodeWide: [],
      },
    });
    expect(readStepDetails('diag_started', { level: 4 })).toEqual({ step: 'diag_started', details: {} });
  });

  it('keeps what every event carries', () => {
    const event = progressEvent(
      { ...base, actor: 'slack:U1', dryRun: true, elapsedMs: 5 },
      { step: 'cordoned', details: {} },
    );
    expect(event).toEqual({
      ...base,
      actor: 'slack:U1',
      dryRun: true,
      elapsedMs: 5,
      step: 'cordoned',
      details: {},
    });
  });
});

describe('reading events defensively', () => {
  it('keeps the fields of the contract and drops the ones of another type', () => {
    expect(readStepDetails('pod_evicted', { pod: 42, evicted: 1, total: '2', extra: true })).toEqual({
      step: 'pod_evicted',
      details: { evicted: 1 },
    });
    expect(readStepDetails('policy', { action: 'reboot', mode: 'sometimes' })).toEqual({
      step: 'policy',
      details: { action: 'reboot' },
    });
  });

  it('reads details that are not an object as none, and keeps the well-formed jobs of a list', () => {
    expect(readStepDetails('drained', 'three')).toEqual({ step: 'drained', details: {} });
    expect(readStepDetails('drained', [1, 2])).toEqual({ step: 'drained', details: {} });
    expect(
      readStepDetails('kubeflow_jobs', {
        jobs: [{ kind: 'TFJob', namespace: 'a', name: 'b' }, { kind: 1 }, null],
      }),
    ).toEqual({ step: 'kubeflow_jobs', details: { jobs: [{ kind: 'TFJob', namespace: 'a', name: 'b' }] } });
    expect(readStepDetails('kubeflow_jobs', { jobs: 'nope' })).toEqual({
      step: 'kubeflow_jobs',
      details: { jobs: [] },
    });
  });

  it('drops empty strings and numbers that are not finite', () => {
    expect(readStepDetails('node_back', { bootId: '' })).toEqual({ step: 'node_back', details: {} });
    expect(readStepDetails('drain_started', { pods: Number.NaN, skipped: Infinity })).toEqual({
      step: 'drain_started',
      details: {},
    });
  });

  it('does not know a step outside the contract, and readEvent leaves such an event as it is', () => {
    expect(readStepDetails('rebooted_twice', {})).toBeUndefined();
    const nope: ProgressStep = JSON.parse('"nope"');
    expect(() => withoutDetails(nope)).toThrow(/nope is not a progress step/);
    const outside: ProgressEvent = JSON.parse(
      JSON.stringify({ ...base, step: 'rebooted_twice', details: { a: 1 } }),
    );
    expect(readEvent(outside)).toBe(outside);
  });
});
