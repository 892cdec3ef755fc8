import { describe, expect, it } from 'vitest';
import { instanceTypeGpus } from '../domain/instance-gpus.js';
import { INSTANCE_TYPES } from './instance-types.js';

describe('simulator instance types', () => {
  it.each(Object.entries(INSTANCE_TYPES))('%s has the GPU count of the product’s EC2 table', (type, info) => {
    expect(instanceTypeGpus(type) ?? 0).toBe(info.gpus);
  });
});
