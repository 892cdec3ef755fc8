import type { KubeObject, WatchEvent } from './k8s-objects.js';

/** An API error the server turns into a `Status` object. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

interface Entry {
  obj: KubeObject;
  /** Serialized form, cached because list and proxy traffic at fleet scale is mostly re-serialization. */
  json?: string;
}

export type WatchListener = (e: WatchEvent) => void;

/**
 * The simulator's etcd: every object of every resource, one global resourceVersion counter, cached JSON,
 * change listeners, and a bounded event history so a watch can resume from a recent resourceVersion
 * (older ones get 410 Gone, as from a compacted etcd).
 */
export class ResourceStore {
  private rv = 1000;
  private readonly resources = new Map<string, Map<string, Entry>>();
  private readonly listeners = new Set<WatchListener>();
  private readonly history: WatchEvent[] = [];
  private historyStart = 0;

  constructor(private readonly historyLimit = 20_000) {}

  static key(namespace: string | undefined, name: string): string {
    return namespace ? `${namespace}/${name}` : name;
  }

  currentRv(): number {
    return this.rv;
  }

  private table(resource: string): Map<string, Entry> {
    let t = this.resources.get(resource);
    if (!t) {
      t = new Map();
      this.resources.set(resource, t);
    }
    return t;
  }

  get<T extends KubeObject>(resource: string, namespace: string | undefined, name: string): T | undefined {
    return this.resources.get(resource)?.get(ResourceStore.key(namespace, name))?.obj as T | undefined;
  }

  json(resource: string, namespace: string | undefined, name: string): string | undefined {
    const e = this.resources.get(resource)?.get(ResourceStore.key(namespace, name));
    if (!e) return undefined;
    e.json ??= JSON.stringify(e.obj);
    return e.json;
  }

  /** Live objects (do not mutate; use `update`). */
  list<T extends KubeObject>(resource: string, namespace?: string): T[] {
    const out: T[] = [];
    for (const e of this.resources.get(resource)?.values() ?? []) {
      if (namespace && e.obj.metadata.namespace !== namespace) continue;
      out.push(e.obj as T);
    }
    return out;
  }

  jsonOf(resource: string, obj: KubeObject): string {
    return this.json(resource, obj.metadata.namespace, obj.metadata.name) ?? JSON.stringify(obj);
  }

  /** Adds a new object (assigns resourceVersion); throws AlreadyExists. */
  create<T extends KubeObject>(resource: string, obj: T): T {
    const t = this.table(resource);
    const key = ResourceStore.key(obj.metadata.namespace, obj.metadata.name);
    if (t.has(key))
      throw new ApiError(409, 'AlreadyExists', `${resource} "${obj.metadata.name}" already exists`, {
        name: obj.metadata.name,
        kind: resource,
      });
    obj.metadata.resourceVersion = String(++this.rv);
    t.set(key, { obj });
    this.emit({ type: 'ADDED', resource, object: obj, rv: this.rv });
    return obj;
  }

  /** Applies `mutate` to the live object, bumps its resourceVersion and emits MODIFIED. */
  update<T extends KubeObject>(
    resource: string,
    namespace: string | undefined,
    name: string,
    mutate: (obj: T) => T | undefined,
  ): T {
    const t = this.table(resource);
    const key = ResourceStore.key(namespace, name);
    const e = t.get(key);
    if (!e) throw new ApiError(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });
    const next = (mutate(e.obj as T) ?? e.obj) as T;
    next.metadata.resourceVersion = String(++this.rv);
    e.obj = next;
    e.json = undefined;
    this.emit({ type: 'MODIFIED', resource, object: next, rv: this.rv });
    return next;
  }

  delete<T extends KubeObject>(resource: string, namespace: string | undefined, name: string): T | undefined {
    const t = this.resources.get(resource);
    const key = ResourceStore.key(namespace, name);
    const e = t?.get(key);
    if (!t || !e) return undefined;
    t.delete(key);
    // A deleted object's final resourceVersion is the deletion's, as the API server reports it.
    e.obj.metadata.resourceVersion = String(++this.rv);
    this.emit({ type: 'DELETED', resource, object: e.obj, rv: this.rv });
    return e.obj as T;
  }

  subscribe(fn: WatchListener): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  /**
   * Events of `resource` after resourceVersion `since`, or 'gone' when the history no longer reaches
   * back that far.
   */
  eventsSince(resource: string, since: number): WatchEvent[] | 'gone' {
    if (since >= this.rv) return [];
    const first = this.history[0];
    if (this.historyStart > 0 && (!first || since < first.rv - 1)) return 'gone';
    return this.history.filter((e) => e.rv > since && e.resource === resource);
  }

  private emit(e: WatchEvent): void {
    this.history.push(e);
    // Trim in chunks so emitting stays O(1) amortized at fleet scale.
    if (this.history.length > this.historyLimit * 1.5) {
      this.history.splice(0, this.history.length - this.historyLimit);
      this.historyStart++;
    }
    for (const l of this.listeners) l(e);
  }
}
