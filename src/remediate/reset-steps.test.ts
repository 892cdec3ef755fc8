import { describe, expect, it } from 'vitest';
import { resetScope } from './reset-steps.js';

describe('resetScope: one GPU where the topology allows it', () => {
  it.each([
    ['g6e.12xlarge', 2, { gpu: 2, wholeNode: false }],
    ['g5.48xlarge', 7, { gpu: 7, wholeNode: false }],
    ['p5.4xlarge', 0, { gpu: 0, wholeNode: false }],
    ['p4d.24xlarge', 3, { gpu: undefined, wholeNode: true }],
    ['p4de.24xlarge', 3, { gpu: undefined, wholeNode: true }],
    ['p5.48xlarge', 3, { gpu: undefined, wholeNode: true }],
    ['p5e.48xlarge', 3, { gpu: undefined, wholeNode: true }],
    ['p5en.48xlarge', 3, { gpu: undefined, wholeNode: true }],
    ['p6-b200.48xlarge', 3, { gpu: undefined, wholeNode: true }],
  ])('%s GPU %d → %j', (type, gpu, want) => {
    expect(resetScope(type, gpu)).toEqual(want);
  });

  it('no GPU known → the whole node', () => {
    expect(resetScope('g6e.12xlarge', undefined)).toEqual({ gpu: undefined, wholeNode: true });
  });
});
