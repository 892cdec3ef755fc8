/**
 * Lists and watches as a real API server serves them: label and field selectors, `limit` and
 * `continue` paging, watch streams from a resourceVersion (410 Expired when it is too old), and
 * single-object reads. One factory over the server's context, shared by the route modules.
 */

import {
  type Ctx,
  decodeContinue,
  encodeContinue,
  JSON_TYPE,
  type K8sContext,
  send,
  statusBody,
} from './k8s-http.js';
import type { KubeNode, KubeObject, KubePod } from './k8s-objects.js';
import { ApiError } from './resource-store.js';
import {
  type FieldRequirement,
  type LabelSelector,
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
  SelectorError,
} from './selectors.js';

export function createListing(ctx: K8sContext) {
  const { cluster, streams, watches } = ctx;

  function listBody(
    kind: string,
    apiVersion: string,
    items: Iterable<string>,
    page: { rv: string; continue?: string; remaining?: number } = { rv: String(cluster.store.currentRv()) },
  ): string {
    const parts: string[] = [];
    for (const i of items) parts.push(i);
    const more =
      page.continue === undefined
        ? ''
        : `,"continue":"${page.continue}","remainingItemCount":${page.remaining ?? 0}`;
    return `{"kind":"${kind}","apiVersion":"${apiVersion}","metadata":{"resourceVersion":"${page.rv}"${more}},"items":[${parts.join(',')}]}`;
  }

  /**
   * Paging as a real API server does it (`limit` + opaque `continue`): a token names the offset into
   * the matching items and the resourceVersion of the first page, which every later page reports.
   * Unlike etcd this is not a consistent snapshot: objects added or removed between pages can shift
   * the offset, which is within what a client may see from a real server's relists anyway.
   */
  function pageOf(c: Ctx): { limit: number | undefined; offset: number; rv: string } {
    const limitParam = c.query.get('limit');
    const limit = limitParam === null || limitParam === '' ? undefined : Number(limitParam);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0))
      throw new ApiError(400, 'BadRequest', `invalid limit: ${limitParam}`);
    const token = c.query.get('continue');
    if (!token) return { limit: limit || undefined, offset: 0, rv: String(cluster.store.currentRv()) };
    const decoded = decodeContinue(token);
    if (!decoded) throw new ApiError(400, 'BadRequest', 'continue key is not valid');
    return { limit: limit || undefined, offset: decoded.offset, rv: decoded.rv };
  }

  function selectors(
    c: Ctx,
    fields: readonly string[],
  ): { labels: LabelSelector; fields: FieldRequirement[] } {
    try {
      return {
        labels: parseLabelSelector(c.query.get('labelSelector') ?? undefined),
        fields: parseFieldSelector(c.query.get('fieldSelector') ?? undefined, fields),
      };
    } catch (e) {
      if (e instanceof SelectorError) throw new ApiError(400, 'BadRequest', e.message);
      throw e;
    }
  }

  function fieldOf(o: KubeObject, field: string): string | undefined {
    switch (field) {
      case 'metadata.name':
        return o.metadata.name;
      case 'metadata.namespace':
        return o.metadata.namespace;
      case 'spec.nodeName':
        return (o as KubePod).spec?.nodeName;
      case 'status.phase':
        return (o as KubePod).status?.phase;
      case 'spec.unschedulable':
        return String((o as KubeNode).spec?.unschedulable === true);
      default:
        return undefined;
    }
  }

  /** Serves a list or (with `watch=true`) a watch of one resource. */
  function listOrWatch(
    c: Ctx,
    resource: string,
    kind: string,
    apiVersion: string,
    fields: readonly string[],
    candidates: (sel: { fields: FieldRequirement[] }) => Iterable<KubeObject>,
    namespace?: string,
  ): void {
    const sel = selectors(c, fields);
    const matches = (o: KubeObject): boolean =>
      (!namespace || o.metadata.namespace === namespace) &&
      matchesLabels(sel.labels, o.metadata.labels) &&
      matchesFields(sel.fields, (f) => fieldOf(o, f));
    const watch = c.query.get('watch');
    if (watch === 'true' || watch === '1') {
      c.rec.verb = 'watch';
      c.rec.operation = c.rec.operation?.replace(/^list/, 'watch');
      startWatch(c, resource, matches, () => candidates(sel));
      return;
    }
    const page = pageOf(c);
    const items: string[] = [];
    let index = 0;
    let remaining = 0;
    const end = page.limit === undefined ? Number.POSITIVE_INFINITY : page.offset + page.limit;
    for (const o of candidates(sel)) {
      if (!matches(o)) continue;
      if (index >= page.offset && index < end) items.push(cluster.store.jsonOf(resource, o));
      else if (index >= end) remaining++;
      index++;
    }
    send(
      c.res,
      200,
      listBody(
        kind,
        apiVersion,
        items,
        remaining > 0 ? { rv: page.rv, continue: encodeContinue(end, page.rv), remaining } : { rv: page.rv },
      ),
    );
  }

  function startWatch(
    c: Ctx,
    resource: string,
    matches: (o: KubeObject) => boolean,
    current: () => Iterable<KubeObject>,
  ): void {
    const { res } = c;
    const rvParam = c.query.get('resourceVersion');
    const since = rvParam && rvParam !== '0' ? Number(rvParam) : undefined;
    if (since !== undefined && !Number.isFinite(since))
      throw new ApiError(400, 'BadRequest', `invalid resource version: ${rvParam}`);
    res.writeHead(200, {
      'Content-Type': JSON_TYPE,
      'Transfer-Encoding': 'chunked',
      'Cache-Control': 'no-cache',
    });
    res.flushHeaders();
    c.recordNow(200);
    streams.add(res);
    watches.add(res);
    const write = (type: string, object: KubeObject): void => {
      if (!res.writableEnded && !res.destroyed)
        res.write(`{"type":"${type}","object":${JSON.stringify(object)}}\n`);
    };
    const unsubscribe = cluster.store.subscribe((e) => {
      if (e.resource === resource && matches(e.object)) write(e.type, e.object);
    });
    const stop = (): void => {
      unsubscribe();
      streams.delete(res);
      watches.delete(res);
    };
    // The client knows the stream is over when the *response* closes; the request closes earlier.
    res.on('close', stop);
    const timeout = Number(c.query.get('timeoutSeconds') ?? '0');
    if (timeout > 0) {
      const t = setTimeout(() => res.end(), timeout * 1000);
      t.unref();
      res.on('close', () => clearTimeout(t));
    }
    if (since === undefined) {
      for (const o of current()) if (matches(o)) write('ADDED', o);
      return;
    }
    const events = cluster.store.eventsSince(resource, since);
    if (events === 'gone') {
      res.write(
        `{"type":"ERROR","object":${statusBody(410, 'Expired', `too old resource version: ${since} (${cluster.store.currentRv()})`)}}\n`,
      );
      res.end();
      return;
    }
    for (const e of events) if (matches(e.object)) write(e.type, e.object);
  }
  function getOne(
    resource: string,
    ns: string | undefined,
    name: string,
    qualified: string,
  ): (c: Ctx) => void {
    return (c) => {
      const json = cluster.store.json(resource, ns, name);
      if (!json)
        throw new ApiError(404, 'NotFound', `${qualified} "${name}" not found`, { name, kind: resource });
      send(c.res, 200, json);
    };
  }

  return { listOrWatch, getOne, selectors };
}
