import type { Logger } from 'pino';
import type { GpuNode } from '../domain/node.js';

/**
 * Node mapping is pure, so it cannot log: the monitor says once per instance type that the EC2 GPU table
 * does not know it, and what it expects instead (GFD's count, unshared capacity, or no count check).
 */
export function noteGpuCountSources(
  nodes: readonly GpuNode[],
  noticed: Set<string>,
  log: Logger | undefined,
): void {
  if (!log) return;
  for (const n of nodes) {
    const source = n.gpuCountSource;
    if (source === undefined || source === 'instance-type') continue;
    const instanceType = n.instanceType ?? '(none)';
    if (noticed.has(instanceType)) continue;
    noticed.add(instanceType);
    const meta = {
      instanceType,
      node: n.name,
      sharing: n.gpuSharing,
      source,
      expectedGpus: n.expectedGpus,
    };
    if (source === 'unknown') {
      log.warn(
        meta,
        'instance type not in the GPU table and no physical GPU count on the node: no GPU-count check',
      );
    } else {
      log.info(meta, 'instance type not in the GPU table: expecting the GPU count the node reports');
    }
  }
}
