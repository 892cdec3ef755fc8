import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { JournalProblem } from '../remediate/journal.js';
import { stepStore } from './remediation-stores.js';
import { openStore, type Store } from './store.js';

let s: Store;
let incidentId: string;
let problems: JournalProblem[];

beforeEach(() => {
  s = openStore(':memory:', { now: () => 1_000 });
  problems = [];
  incidentId = s.incidents.openOrTouch(
    {
      node: 'gpu-0',
      faultKey: 'xid:79:gpu3',
      category: 'XID_CRITICAL_79',
      severity: 'critical',
      recommendedAction: 'replace',
      plannedAction: 'replace',
      mode: 'auto',
      explanation: 'GPU has fallen off the bus.',
      source: 'rules',
      evidence: [],
      preexisting: false,
    },
    1,
  ).incident.id;
});
afterEach(() => s.close());

/** A hand edit of a row's detail column, the way someone with sqlite3 would do it. */
function setDetail(seq: number, text: string): void {
  s.db
    .prepare('UPDATE incident_steps SET detail = ? WHERE incident_id = ? AND seq = ?')
    .run(text, incidentId, seq);
}

describe('the journal over the step rows', () => {
  it('reads each detail through its step schema, typed', () => {
    const steps = stepStore(s, (p) => problems.push(p));
    const row = steps.begin(incidentId, 'reboot', { bootIdBefore: 'boot-1', instanceId: 'i-1' }, 10);
    steps.finish(row.id, 'done', { reissued: false }, 11);
    expect(steps.lastOf(incidentId, 'reboot')).toMatchObject({
      step: 'reboot',
      status: 'done',
      detail: { bootIdBefore: 'boot-1', instanceId: 'i-1', reissued: false },
    });
    expect(problems).toEqual([]);
  });

  it('reports a field of the wrong type, naming the row, and reads the row without it', () => {
    const steps = stepStore(s, (p) => problems.push(p));
    steps.begin(incidentId, 'plan', { action: 'reboot', actor: 'cli:alice', trigger: 'manual' }, 10);
    const cordon = steps.begin(incidentId, 'cordon', { wasUnschedulable: false }, 11);
    setDetail(2, JSON.stringify({ wasUnschedulable: 'no', hadDoNotDisrupt: false }));

    const rows = steps.list(incidentId);
    expect(rows.map((r) => r.step)).toEqual(['plan', 'cordon']);
    expect(rows[1]?.detail).toEqual({ hadDoNotDisrupt: false });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ incidentId, seq: 2, step: 'cordon' });
    expect(problems[0]?.message).toMatch(
      new RegExp(`journal row ${incidentId}#2 \\(cordon\\): wasUnschedulable`),
    );

    // Nothing is lost: the row keeps what was written, and finishing it merges into that.
    steps.finish(cordon.id, 'done', { cordonedByUs: true }, 12);
    const stored = s.db
      .prepare<{ detail: string }>('SELECT detail FROM incident_steps WHERE incident_id = ? AND seq = 2')
      .get(incidentId);
    expect(JSON.parse(stored?.detail ?? 'null')).toEqual({
      wasUnschedulable: 'no',
      hadDoNotDisrupt: false,
      cordonedByUs: true,
    });
  });

  it('leaves out fields that belong to another step', () => {
    const steps = stepStore(s, (p) => problems.push(p));
    steps.begin(incidentId, 'uncordon', {}, 10);
    setDetail(1, JSON.stringify({ alreadySchedulable: true, bootIdBefore: 'b' }));
    expect(steps.lastOf(incidentId, 'uncordon')?.detail).toEqual({ alreadySchedulable: true });
    expect(problems).toEqual([]);
  });

  it('reports a detail that is not JSON, reads it as empty, and keeps its text when the step finishes', () => {
    const steps = stepStore(s, (p) => problems.push(p));
    const row = steps.begin(incidentId, 'drain', {}, 10);
    setDetail(1, '{"evicted": [');
    expect(steps.lastOf(incidentId, 'drain')?.detail).toEqual({});
    expect(problems.map((p) => p.message)).toEqual([
      `journal row ${incidentId}#1 (drain): detail is not a JSON object; read as empty`,
    ]);

    steps.finish(row.id, 'done', { evicted: ['ml/a'] }, 11);
    expect(steps.lastOf(incidentId, 'drain')?.detail).toEqual({ evicted: ['ml/a'] });
    expect(problems.at(-1)?.message).toMatch(/keeps it as unreadableDetail/);
    expect(s.steps.lastOf(incidentId, 'drain')?.detail).toEqual({
      unreadableDetail: '{"evicted": [',
      evicted: ['ml/a'],
    });
  });

  it('reports a row of an unknown step and leaves it out of the list; the reader goes on', () => {
    const steps = stepStore(s, (p) => problems.push(p));
    steps.begin(incidentId, 'cordon', { wasUnschedulable: false }, 10);
    s.steps.begin(incidentId, 'defragment', { how: 'carefully' }, 11);
    steps.begin(incidentId, 'drain', {}, 12);
    expect(steps.list(incidentId).map((r) => r.step)).toEqual(['cordon', 'drain']);
    expect(problems).toEqual([
      expect.objectContaining({
        seq: 2,
        step: 'defragment',
        message: expect.stringMatching(/unknown step defragment/),
      }),
    ]);
  });
});
