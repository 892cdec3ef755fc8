import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { LIST_PAGE_SIZE, ListWatch } from './list-watch.js';

export interface IndexedPod {
  namespace: string;
  name: string;
  node: string;
  podIP?: string;
  /** Running, not terminating, and its Ready condition True (isPodReady). */
  ready: boolean;
}

/**
 * Ready as Kubernetes means it: Running, not terminating, and the `Ready` condition True. After a node reboot a
 * DaemonSet pod is Running again before its containers pass their readiness probes; `Running` alone is not enough.
 */
export function isPodReady(p: V1Pod): boolean {
  if (p.status?.phase !== 'Running' || p.metadata?.deletionTimestamp) return false;
  return (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/**
 * An equality-based label selector (`a=b,c!=d,e,!f`; `==` too) against a pod's labels. Set-based expressions
 * (`in`, `notin`) are not supported and match nothing, so a misconfigured selector finds no pod rather than all.
 */
export function matchesLabelSelector(labels: Record<string, string> | undefined, selector: string): boolean {
  const have = labels ?? {};
  const terms = selector
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  if (terms.length === 0) return false;
  return terms.every((term) => {
    if (/\s(not)?in\s*\(/.test(term)) return false;
    const ne = term.split('!=');
    if (ne.length === 2) return have[(ne[0] ?? '').trim()] !== (ne[1] ?? '').trim();
    const eq = term.split(/==?/);
    if (eq.length === 2) return have[(eq[0] ?? '').trim()] === (eq[1] ?? '').trim();
    if (term.startsWith('!')) return !(term.slice(1) in have);
    return term in have;
  });
}

/**
 * Watches the pods matching one or more label selectors (e.g. both dcgm-exporter label styles) and
 * indexes them by node. A watch per selector, since label selectors cannot express "a=b OR c=d".
 */
export class PodIndex {
  private readonly byNode = new Map<string, Map<string, IndexedPod>>();
  private readonly nodeOf = new Map<string, string>();
  private readonly watches: ListWatch<V1Pod>[] = [];

  constructor(
    private readonly kc: KubeConfig,
    private readonly opts: {
      namespace?: string;
      selectors: string[];
      logger?: Logger;
      /** First retry delay after a failed watch (doubles up to 30 s). */
      restartDelayMs?: number;
    },
  ) {}

  /** Resolves after the first full list of every selector. */
  async start(): Promise<void> {
    const api = this.kc.makeApiClient(CoreV1Api);
    const ns = this.opts.namespace;
    for (const labelSelector of this.opts.selectors) {
      const path = ns ? `/api/v1/namespaces/${ns}/pods` : '/api/v1/pods';
      const page = { labelSelector, limit: LIST_PAGE_SIZE };
      // The keys this selector's watch owns, so a re-list prunes only its own pods.
      const mine = new Set<string>();
      const watch = new ListWatch<V1Pod>(this.kc, {
        path,
        labelSelector,
        list: (token) =>
          ns
            ? api.listNamespacedPod({ namespace: ns, ...page, _continue: token })
            : api.listPodForAllNamespaces({ ...page, _continue: token }),
        key: (p) => podKey(p),
        handler: {
          upsert: (p) => {
            if (this.put(p)) mine.add(podKey(p));
          },
          remove: (p) => {
            mine.delete(podKey(p));
            this.remove(podKey(p));
          },
          prune: (seen) => {
            for (const key of [...mine]) {
              if (seen.has(key)) continue;
              mine.delete(key);
              this.remove(key);
            }
          },
        },
        logger: this.opts.logger,
        backoffMs: this.opts.restartDelayMs ?? 2000,
      });
      this.watches.push(watch);
      await watch.start();
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.watches.map((w) => w.stop()));
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

  /** Indexes a pod bound to a node; false for one not (yet) scheduled, which is dropped. */
  private put(p: V1Pod): boolean {
    const key = podKey(p);
    this.remove(key);
    const node = p.spec?.nodeName;
    if (!node || !p.metadata?.name) return false;
    const ready = isPodReady(p);
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
    m.set(key, entry);
    this.nodeOf.set(key, node);
    return true;
  }

  private remove(key: string): void {
    const node = this.nodeOf.get(key);
    if (node === undefined) return;
    this.nodeOf.delete(key);
    const m = this.byNode.get(node);
    if (m?.delete(key) && m.size === 0) this.byNode.delete(node);
  }
}

function podKey(p: V1Pod): string {
  return `${p.metadata?.namespace}/${p.metadata?.name}`;
}
