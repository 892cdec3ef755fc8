import { CoreV1Api, type KubeConfig, makeInformer, type V1Node } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { GpuNode } from '../domain/node.js';
import { isGpuNode, toGpuNode } from './node-mapper.js';

export type NodeChange =
  | { type: 'upsert'; node: GpuNode; previous?: GpuNode }
  | { type: 'delete'; node: GpuNode };

/**
 * Keeps the set of GPU nodes current from a node watch (list + watch, re-listing after a broken watch).
 * `GPU_NODE_SELECTOR` narrows the watch server-side; without it, nodes with `nvidia.com/gpu` capacity count.
 */
export class NodeWatcher {
  private readonly nodes = new Map<string, GpuNode>();
  private readonly listeners = new Set<(change: NodeChange) => void>();
  private informer: ReturnType<typeof makeInformer<V1Node>> | undefined;
  private stopped = false;
  private synced = false;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly kc: KubeConfig,
    private readonly opts: { labelSelector?: string; logger?: Logger; restartDelayMs?: number } = {},
  ) {}

  /** Resolves after the first full list. */
  async start(): Promise<void> {
    const api = this.kc.makeApiClient(CoreV1Api);
    const labelSelector = this.opts.labelSelector || undefined;
    const informer = makeInformer<V1Node>(
      this.kc,
      '/api/v1/nodes',
      () => api.listNode({ labelSelector }),
      labelSelector,
    );
    this.informer = informer;
    informer.on('add', (n) => this.apply(n));
    informer.on('update', (n) => this.apply(n));
    informer.on('delete', (n) => {
      const name = n.metadata?.name;
      const known = name ? this.nodes.get(name) : undefined;
      if (name && known) {
        this.nodes.delete(name);
        this.emit({ type: 'delete', node: known });
      }
    });
    informer.on('error', (err) => {
      if (this.stopped) return;
      this.opts.logger?.warn({ err: String(err) }, 'node watch failed; re-listing');
      clearTimeout(this.restartTimer);
      this.restartTimer = setTimeout(() => {
        if (!this.stopped) informer.start().catch(() => undefined);
      }, this.opts.restartDelayMs ?? 2000);
    });
    await informer.start();
    // The informer's initial list fires `add` for every node before start() resolves.
    for (const n of informer.list()) this.apply(n);
    this.synced = true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    await this.informer?.stop();
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
    if (!isGpuNode(node, Boolean(this.opts.labelSelector))) {
      if (previous) {
        this.nodes.delete(node.name);
        this.emit({ type: 'delete', node: previous });
      }
      return;
    }
    this.nodes.set(node.name, node);
    this.emit({ type: 'upsert', node, previous });
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
