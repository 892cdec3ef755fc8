import type { CollectionError, NodeSnapshot, SnapshotSource } from '../domain/gpu.js';
import { devicePluginStarting } from '../domain/gpu-count.js';
import type { GpuNode } from '../domain/node.js';

/**
 * A source of GPU facts for one node. `collect` never rejects for a node's own failure: it returns a
 * snapshot with `error` set, because an unreadable node is a finding (exporter down ≠ healthy).
 */
export interface Collector {
  readonly source: SnapshotSource;
  collect(node: GpuNode, signal: AbortSignal): Promise<NodeSnapshot>;
}

/** A failure reading one node, with the kind the classifier reports. */
export class CollectError extends Error {
  constructor(
    readonly kind: CollectionError['kind'],
    message: string,
  ) {
    super(message);
    this.name = 'CollectError';
  }
}

/**
 * The node-level facts every snapshot carries, whatever the GPU source: from the node watch. A node whose
 * device plugin has not registered yet since it turned Ready (a fresh boot, a new node) has no allocatable
 * count to compare: that part is missing, not "0 GPUs".
 */
export function baseSnapshot(node: GpuNode, source: SnapshotSource, now: number): NodeSnapshot {
  const starting = devicePluginStarting(node, now);
  return {
    node: node.name,
    takenAt: now,
    source,
    gpus: [],
    expectedGpus: node.expectedGpus || undefined,
    ...(starting ? {} : { allocatableGpus: node.allocatableGpus }),
    conditions: node.conditions,
    bootId: node.bootId,
    ...(starting
      ? {
          missingParts: [
            {
              part: 'device_plugin',
              reason: `the NVIDIA device plugin has not registered since ${node.name} turned Ready ${Math.round((now - (node.readySince ?? now)) / 1000)} s ago`,
            },
          ],
        }
      : {}),
  };
}

export function collectionError(error: unknown): CollectionError {
  if (error instanceof CollectError) return { kind: error.kind, message: error.message };
  const e = error instanceof Error ? error : new Error(String(error));
  if (e.name === 'TimeoutError' || e.name === 'DeadlineError' || e.name === 'AbortError') {
    return { kind: 'timeout', message: e.message };
  }
  if (e.name === 'HttpError') return { kind: 'http', message: e.message };
  if (e.name === 'MetricsParseError') return { kind: 'parse', message: e.message };
  return { kind: 'unreachable', message: e.message };
}
