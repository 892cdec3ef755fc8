import { describe, expect, it } from 'vitest';
import type { IncidentState, RemediationAction } from '../domain/incident.js';
import { IncidentStates, TerminalStates } from '../domain/incident.js';
import {
  canTransition,
  claimState,
  planSteps,
  type StepName,
  stepDoneState,
  stepState,
} from './state-machine.js';

describe('planSteps', () => {
  it.each<[RemediationAction, StepName[]]>([
    ['none', []],
    ['cordon', ['cordon', 'resolve']],
    ['uncordon', ['uncordon', 'resolve']],
    ['drain', ['cordon', 'kubeflow_snapshot', 'drain', 'follow_jobs', 'resolve']],
    [
      'reboot',
      [
        'cordon',
        'kubeflow_snapshot',
        'drain',
        'reboot',
        'wait_node_back',
        'verify_scan',
        'uncordon',
        'follow_jobs',
        'resolve',
      ],
    ],
    [
      'replace',
      [
        'cordon',
        'kubeflow_snapshot',
        'drain',
        'replace',
        'wait_replacement',
        'verify_replacement',
        'follow_jobs',
        'resolve',
      ],
    ],
  ])('%s', (action, steps) => {
    expect(planSteps(action)).toEqual(steps);
  });

  it.each<RemediationAction>([
    'cordon',
    'uncordon',
    'drain',
    'reboot',
    'replace',
  ])('every step of %s is reachable from the claim state in order', (action) => {
    let state = claimState(action) as IncidentState;
    expect(canTransition('awaiting_approval', state)).toBe(true);
    for (const step of planSteps(action)) {
      const next = stepState[step];
      expect(canTransition(state, next), `${state} → ${next}`).toBe(true);
      state = step === 'drain' ? 'drained' : next;
    }
    expect(state).toBe('resolved');
  });
});

describe('canTransition', () => {
  it.each(IncidentStates.filter((s) => TerminalStates.has(s)))('%s is terminal: no way out', (from) => {
    for (const to of IncidentStates) expect(canTransition(from, to)).toBe(false);
  });

  it.each<[IncidentState, IncidentState, boolean]>([
    ['detected', 'awaiting_approval', true],
    ['awaiting_approval', 'dismissed', true],
    ['draining', 'dismissed', false],
    ['rebooting', 'replacing', false],
    ['draining', 'rebooting', false],
    ['verifying', 'resolved', true],
    ['cordoned', 'cancelled', true],
    ['drained', 'escalated', true],
  ])('%s → %s: %s', (from, to, ok) => {
    expect(canTransition(from, to)).toBe(ok);
  });
});

describe('the reset plan', () => {
  it('cordon → drain → reset → the settle gate → uncordon; no EC2 step', () => {
    expect(planSteps('reset')).toEqual([
      'cordon',
      'kubeflow_snapshot',
      'drain',
      'reset',
      'verify_scan',
      'uncordon',
      'follow_jobs',
      'resolve',
    ]);
    expect(planSteps('reset')).not.toContain('reboot');
    expect(planSteps('reset')).not.toContain('replace');
  });

  it('every state the reset plan walks through is a legal transition', () => {
    let state: IncidentState = 'detected';
    for (const step of planSteps('reset')) {
      const next = stepState[step];
      expect(canTransition(state, next), `${state} → ${next}`).toBe(true);
      state = stepDoneState[step] ?? next;
    }
  });
});
