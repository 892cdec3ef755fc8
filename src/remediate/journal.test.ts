import { describe, expect, it } from 'vitest';
import { type JournalProblem, JournalSteps, journalSchema, readDetail } from './journal.js';
import { StepNames } from './state-machine.js';

const row = (step: string, detail: unknown) => ({ incidentId: 'inc-1', seq: 3, step, detail });

function read(step: string, detail: unknown) {
  const problems: JournalProblem[] = [];
  const parsed = readDetail(row(step, detail), (p) => problems.push(p));
  return { parsed, problems };
}

describe('journal detail schemas', () => {
  it('has a schema for every plan step and bookkeeping row', () => {
    for (const step of [...StepNames, 'plan', 'escalate', 'release_guard', 'auto_repair'] as const) {
      expect(JournalSteps).toContain(step);
      expect(journalSchema(step).safeParse({}).success).toBe(true);
    }
  });

  it('reads a well-formed row as it was written', () => {
    const plan = {
      action: 'reboot',
      mode: 'auto',
      actor: 'monitor',
      trigger: 'auto',
      reason: 'xid 48',
      force: false,
      dryRun: false,
    };
    expect(read('plan', plan)).toEqual({ parsed: plan, problems: [] });
    const cordon = {
      wasUnschedulable: false,
      gpuExpectation: { gpus: 8, resources: { 'nvidia.com/gpu': 8 } },
    };
    expect(read('cordon', cordon)).toEqual({ parsed: cordon, problems: [] });
  });

  it('keeps both shapes of `jobs`: the snapshot and what following them found', () => {
    const jobs = [
      { kind: 'PyTorchJob', apiVersion: 'kubeflow.org/v1', namespace: 'ml', name: 'ft' },
      { job: 'PyTorchJob ml/ft', status: 'running' },
    ];
    expect(read('follow_jobs', { jobs }).parsed).toEqual({ jobs });
  });

  it('reports a malformed field with the row that holds it, and reads the rest', () => {
    const { parsed, problems } = read('reboot', {
      bootIdBefore: 42,
      instanceId: 'i-1',
      agentPodsBefore: [{ uid: 'u', restarts: -1 }],
    });
    expect(parsed).toEqual({ instanceId: 'i-1' });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ incidentId: 'inc-1', seq: 3, step: 'reboot' });
    expect(problems[0]?.message).toMatch(
      /^journal row inc-1#3 \(reboot\): bootIdBefore: .*; agentPodsBefore\.0\.restarts: /,
    );
    expect(problems[0]?.message).toMatch(/read without bootIdBefore, agentPodsBefore$/);
  });

  it('reports an enum value it does not know instead of passing it on', () => {
    const { parsed, problems } = read('plan', { action: 'defragment', actor: 'cli:bob' });
    expect(parsed).toEqual({ actor: 'cli:bob' });
    expect(problems[0]?.message).toMatch(/action/);
  });

  it('reads a detail that is not an object, or of an unknown step, as empty, and says so', () => {
    expect(read('drain', [1, 2])).toEqual({
      parsed: {},
      problems: [
        expect.objectContaining({
          message: 'journal row inc-1#3 (drain): detail is not a JSON object; read as empty',
        }),
      ],
    });
    expect(read('drain', 'text').parsed).toEqual({});
    expect(read('defragment', { a: 1 })).toEqual({
      parsed: {},
      problems: [
        expect.objectContaining({ step: 'defragment', message: expect.stringMatching(/unknown step/) }),
      ],
    });
  });

  it('reads a missing detail as empty without a problem', () => {
    expect(read('resolve', undefined)).toEqual({ parsed: {}, problems: [] });
  });
});
