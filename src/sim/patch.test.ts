import { describe, expect, it } from 'vitest';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, PatchError } from './patch.js';

const node = {
  metadata: { name: 'n', labels: { a: '1', b: '2' } },
  spec: { providerID: 'aws:///x/i-1' },
  status: {
    conditions: [
      { type: 'Ready', status: 'True' },
      { type: 'AcceleratedHardwareReady', status: 'True' },
    ],
  },
};

describe('patches', () => {
  it('merge patch sets, deletes with null, and replaces lists', () => {
    const out = applyMergePatch(node, {
      metadata: { labels: { b: null, c: '3' } },
      spec: { unschedulable: true },
      status: { conditions: [{ type: 'X', status: 'False' }] },
    });
    expect(out).toEqual({
      metadata: { name: 'n', labels: { a: '1', c: '3' } },
      spec: { providerID: 'aws:///x/i-1', unschedulable: true },
      status: { conditions: [{ type: 'X', status: 'False' }] },
    });
    expect(node.metadata.labels.b).toBe('2');
  });

  it('strategic merge patch merges conditions by type', () => {
    const out = applyStrategicMergePatch(node, {
      status: {
        conditions: [{ type: 'AcceleratedHardwareReady', status: 'False', reason: 'NvidiaXID79Error' }],
      },
    }) as typeof node;
    expect(out.status.conditions).toEqual([
      { type: 'Ready', status: 'True' },
      { type: 'AcceleratedHardwareReady', status: 'False', reason: 'NvidiaXID79Error' },
    ]);
  });

  it('JSON Patch applies an array and refuses an object like the API server (400)', () => {
    const out = applyJsonPatch(node, [
      { op: 'add', path: '/spec/unschedulable', value: true },
      { op: 'remove', path: '/metadata/labels/a' },
      { op: 'test', path: '/metadata/name', value: 'n' },
    ]) as { spec: { unschedulable: boolean }; metadata: { labels: Record<string, string> } };
    expect(out.spec.unschedulable).toBe(true);
    expect(out.metadata.labels).toEqual({ b: '2' });
    try {
      applyJsonPatch(node, { spec: { unschedulable: true } });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(PatchError);
      expect((e as PatchError).status).toBe(400);
    }
    expect(() => applyJsonPatch(node, [{ op: 'replace', path: '/spec/missing', value: 1 }])).toThrow(
      PatchError,
    );
  });
});
