import { describe, expect, it } from 'vitest';
import { matchesLabels, parseFieldSelector, parseLabelSelector, SelectorError } from './selectors.js';

const labels = { 'eks.amazonaws.com/nodegroup': 'gpu-ng-1', 'nvidia.com/gpu.present': 'true', tier: 'a' };

describe('label selectors', () => {
  it.each([
    ['', true],
    ['nvidia.com/gpu.present', true],
    ['!nvidia.com/gpu.present', false],
    ['!karpenter.sh/nodepool', true],
    ['eks.amazonaws.com/nodegroup=gpu-ng-1', true],
    ['eks.amazonaws.com/nodegroup==gpu-ng-2', false],
    ['eks.amazonaws.com/nodegroup!=system-ng', true],
    ['tier in (a, b)', true],
    ['tier notin (a,b)', false],
    ['tier in (a,b),nvidia.com/gpu.present=true', true],
    ['tier,missing', false],
  ])('%s → %s', (selector, expected) => {
    expect(matchesLabels(parseLabelSelector(selector), labels)).toBe(expected);
  });

  it.each(['a in (', 'bad key!', '=x'])('rejects %s', (selector) => {
    expect(() => parseLabelSelector(selector)).toThrow(SelectorError);
  });
});

describe('field selectors', () => {
  it('parses supported fields and rejects others', () => {
    expect(
      parseFieldSelector('spec.nodeName=n1,status.phase!=Failed', ['spec.nodeName', 'status.phase']),
    ).toEqual([
      { field: 'spec.nodeName', op: 'eq', value: 'n1' },
      { field: 'status.phase', op: 'neq', value: 'Failed' },
    ]);
    expect(() => parseFieldSelector('spec.foo=1', ['spec.nodeName'])).toThrow(/not supported/);
  });
});
