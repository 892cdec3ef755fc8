import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { isPodReady, matchesLabelSelector } from './pod-index.js';

function pod(phase: string, ready: 'True' | 'False' | undefined, deleting = false): V1Pod {
  return {
    metadata: {
      name: 'p',
      namespace: 'gpu-operator',
      ...(deleting ? { deletionTimestamp: new Date() } : {}),
    },
    status: { phase, ...(ready ? { conditions: [{ type: 'Ready', status: ready }] } : {}) },
  };
}

describe('isPodReady', () => {
  it.each<[string, V1Pod, boolean]>([
    ['Running and Ready', pod('Running', 'True'), true],
    ['Running, containers restarting after a reboot (Ready False)', pod('Running', 'False'), false],
    ['Running without conditions yet', pod('Running', undefined), false],
    ['Pending', pod('Pending', 'True'), false],
    ['terminating', pod('Running', 'True', true), false],
  ])('%s → %s', (_name, p, ready) => {
    expect(isPodReady(p)).toBe(ready);
  });
});

describe('matchesLabelSelector', () => {
  const labels = { app: 'nvidia-dcgm-exporter', tier: 'gpu' };
  it.each<[string, boolean]>([
    ['app=nvidia-dcgm-exporter', true],
    ['app==nvidia-dcgm-exporter', true],
    ['app=nvidia-dcgm-exporter,tier=gpu', true],
    ['app=nvidia-dcgm-exporter,tier!=gpu', false],
    ['app.kubernetes.io/name=dcgm-exporter', false],
    ['tier', true],
    ['!tier', false],
    ['app in (nvidia-dcgm-exporter)', false],
    ['', false],
  ])('%s → %s', (selector, match) => {
    expect(matchesLabelSelector(labels, selector)).toBe(match);
  });
});
