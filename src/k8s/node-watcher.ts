import { isDeepStrictEqual } from 'node:util';
import { CoreV1Api, type KubeConfig, type V1Node } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { GpuNode } from '../domain/node.js';
import { LIST_PAGE_SIZE, ListWatch } from './list-watch.js';
import { isWatchedNode, toGpuNode } from './node-mapper.js';

export type NodeChange =
  | { type: 'upsert'; node: GpuNode; previous?: GpuNode }
  | { type: 'delete'; node: GpuNode };

/**
 * Keeps the set of GPU nodes current from a node watch (list + watch, re-listing after a broken watch).
 * `GPU_NODE_SELECTOR` narrows the watch server-side; without it, nodes with `nvidia.com/gpu` capacity count.
 * Only the GpuNode projection is kept — not the full V1Node objects an informer cache would hold.
 */
export class NodeWatcher {
  private readonly nodes = new Map<string, GpuNode>();
  private readonly listeners = new Set<(change: NodeChange) => void>();
  private watch: ListWatch<V1Node> | undefined;
  private synced = false;

  constructor(
    private readonly kc: KubeConfig,
    private readonly opts: {
      labelSelector?: string;
      logger?: Logger;
      /** First retry delay after a failed watch (doubles up to 30 s). */
      restartDelayMs?: number;
    } = {},
  ) {}

  /** Resolves after the first full list. */
  async start(): Promise<void> {
    const api = this.kc.makeApiClient(CoreV1Api);
    const labelSelector = this.opts.labelSelector || undefined;
    this.watch = new ListWatch<V1Node>(this.kc, {
      path: '/api/v1/nodes',
      labelSelector,
      list: (token) => api.listNode({ labelSelector, limit: LIST_PAGE_SIZE, _continue: token }),
      key: (n) => n.metadata?.name ?? '',
      handler: {
        upsert: (n) => this.apply(n),
        remove: (n) => {
          const name = n.metadata?.name;
          if (name) this.drop(name);
        },
        prune: (seen) => {
          for (const name of [...this.nodes.keys()]) if (!seen.has(name)) this.drop(name);
        },
      },
      logger: this.opts.logger,
      backoffMs: this.opts.restartDelayMs ?? 2000,
    });
    await this.watch.start();
    this.synced = true;
  }

  async stop(): Promise<void> {
    await this.watch?.stop();
  }

  get isSynced(): boolean {
    return this.synced;
  }

  list(): GpuNode[] {
    return [...this.nodes.values()];
  }

  get(name: string): GpuNode | undefined {
    return this.nodes.get(name);
  }

  onChange(listener: (change: NodeChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private apply(raw: V1Node): void {
    const node = toGpuNode(raw);
    if (!node) return;
    const previous = this.nodes.get(node.name);
    if (!isWatchedNode(node, Boolean(this.opts.labelSelector))) {
      if (previous) this.drop(node.name);
      return;
    }
    // A status heartbeat changes nothing gpu-medic reads: keep the object, so a scan can tell the node is the
    // same by identity (the Monitor then skips an unchanged quiet node's rules).
    if (previous && isDeepStrictEqual(previous, node)) return;
    this.nodes.set(node.name, node);
    this.emit({ type: 'upsert', node, previous });
  }

  private drop(name: string): void {
    const known = this.nodes.get(name);
    if (!known) return;
    this.nodes.delete(name);
    this.emit({ type: 'delete', node: known });
  }

  private emit(change: NodeChange): void {
    for (const l of this.listeners) {
      try {
        l(change);
      } catch (err) {
        this.opts.logger?.error({ err }, 'node change listener failed');
      }
    }
  }
}
