/**
 * Nodes a source answers from its one read of the whole fleet per scan (Prometheus), taken in memory. They
 * skip the worker pool: a deadline timer and an AbortController per node were a fifth of a 5,000-node
 * Prometheus scan's CPU, for reads that cannot hang.
 */
import type { Logger } from 'pino';
import type { NodeSnapshot } from '../domain/gpu.js';
import type { GpuNode } from '../domain/node.js';

/**
 * Hands each node `read` answers to `take` and returns the nodes it could not answer (they go through
 * `collect`, which reports what went wrong as the node's error). `take` returns true when it has just
 * recorded a batch: the loop then yields, so the event loop (probes, webhooks) is served while thousands of
 * nodes are recorded.
 */
export async function takeFromScanRead(
  nodes: readonly GpuNode[],
  read: (node: GpuNode) => NodeSnapshot | undefined,
  take: (node: GpuNode, snapshot: NodeSnapshot, ms: number) => boolean,
  logger?: Logger,
): Promise<GpuNode[]> {
  const rest: GpuNode[] = [];
  for (const node of nodes) {
    const t = performance.now();
    let snapshot: NodeSnapshot | undefined;
    try {
      snapshot = read(node);
    } catch (err) {
      logger?.warn({ err, node: node.name }, 'reading a node from the scan read failed');
    }
    if (!snapshot) {
      rest.push(node);
      continue;
    }
    if (take(node, snapshot, performance.now() - t)) {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  return rest;
}
