import { CoreV1Api, type KubeConfig, makeInformer, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';

export interface IndexedPod {
  namespace: string;
  name: string;
  node: string;
  podIP?: string;
  ready: boolean;
}

/**
 * Watches the pods matching one or more label selectors (e.g. both dcgm-exporter label styles) and
 * indexes them by node. A watch per selector, since label selectors cannot express "a=b OR c=d".
 */
export class PodIndex {
  private readonly byNode = new Map<string, Map<string, IndexedPod>>();
  private readonly nodeOf = new Map<string, string>();
  private readonly informers: ReturnType<typeof makeInformer<V1Pod>>[] = [];
  private stopped = false;

  constructor(
    private readonly kc: KubeConfig,
    private readonly opts: { namespace?: string; selectors: string[]; logger?: Logger },
  ) {}

  async start(): Promise<void> {
    const api = this.kc.makeApiClient(CoreV1Api);
    const ns = this.opts.namespace;
    for (const labelSelector of this.opts.selectors) {
      const path = ns ? `/api/v1/namespaces/${ns}/pods` : '/api/v1/pods';
      const list = ns
        ? () => api.listNamespacedPod({ namespace: ns, labelSelector })
        : () => api.listPodForAllNamespaces({ labelSelector });
      const informer = makeInformer<V1Pod>(this.kc, path, list, labelSelector);
      informer.on('add', (p) => this.put(p));
      informer.on('update', (p) => this.put(p));
      informer.on('delete', (p) => this.remove(p));
      informer.on('error', (err) => {
        if (this.stopped) return;
        this.opts.logger?.warn({ err: String(err), labelSelector }, 'pod watch failed; re-listing');
        setTimeout(() => {
          if (!this.stopped) informer.start().catch(() => undefined);
        }, 2000).unref();
      });
      this.informers.push(informer);
      await informer.start();
      for (const p of informer.list()) this.put(p);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.informers.map((i) => i.stop()));
  }

  /** The pod on that node, preferring a ready one. */
  forNode(node: string): IndexedPod | undefined {
    const pods = this.byNode.get(node);
    if (!pods) return undefined;
    let fallback: IndexedPod | undefined;
    for (const p of pods.values()) {
      if (p.ready) return p;
      fallback ??= p;
    }
    return fallback;
  }

  size(): number {
    let n = 0;
    for (const m of this.byNode.values()) n += m.size;
    return n;
  }

  private key(p: V1Pod): string {
    return `${p.metadata?.namespace}/${p.metadata?.name}`;
  }

  private put(p: V1Pod): void {
    const node = p.spec?.nodeName;
    if (!node || !p.metadata?.name) return;
    this.remove(p);
    const ready = p.status?.phase === 'Running' && !p.metadata.deletionTimestamp;
    const entry: IndexedPod = {
      namespace: p.metadata.namespace ?? 'default',
      name: p.metadata.name,
      node,
      podIP: p.status?.podIP,
      ready,
    };
    let m = this.byNode.get(node);
    if (!m) {
      m = new Map();
      this.byNode.set(node, m);
    }
    m.set(this.key(p), entry);
    this.nodeOf.set(this.key(p), node);
  }

  private remove(p: V1Pod): void {
    const key = this.key(p);
    const node = this.nodeOf.get(key);
    if (node === undefined) return;
    this.nodeOf.delete(key);
    const m = this.byNode.get(node);
    if (m?.delete(key) && m.size === 0) this.byNode.delete(node);
  }
}
