import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { KUBEFLOW_JOB_RESOURCES, type SimCluster } from './cluster.js';
import { defaultFaultMessage, K8sFaults, type K8sFaultTarget, reasonFor } from './k8s-faults.js';
import type { KubeLease, KubeNode, KubeObject, KubePod } from './k8s-objects.js';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, PatchError } from './patch.js';
import { type RecordedRequest, RequestLog } from './recorder.js';
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
import { DCGM_EXPORTER_PORT } from './workloads.js';

/**
 * A subset of the Kubernetes API server over plain HTTP (or HTTPS with `tls`), backed by a SimCluster: real REST paths, JSON
 * bodies, resourceVersions, watch streams, `Status` errors. @kubernetes/client-node runs against it
 * unmodified (kubeconfig from kubeconfig.ts).
 *
 * Exec and other upgrade subresources are not served here: attach an `'upgrade'` listener to the
 * returned `server` (node http.Server) to add them; this module never listens for upgrades itself.
 */

/** What the API server's audit log would say about a request: enough to derive RBAC rules from tests. */
export interface K8sRecordedRequest extends RecordedRequest {
  verb: string;
  resource?: string;
  subresource?: string;
  /** '' for the core group. */
  apiGroup?: string;
  namespace?: string;
  name?: string;
}

export interface SimK8sOptions {
  port?: number;
  host?: string;
  log?: RequestLog;
  logger?: Logger;
  /** The bearer token the kubeconfig carries: any other (or none) is answered 401, as a real API server does. */
  token?: string;
  faults?: K8sFaults;
  /** Serve HTTPS with this certificate (PEM), as EKS does; the kubeconfig then carries the issuing CA. */
  tls?: { cert: string; key: string };
}

export interface SimK8sServer {
  url: string;
  server: Server;
  log: RequestLog;
  /** Faults to serve next (500, 429 + Retry-After, 409, 410 on a watch, a dropped watch, 401 …). */
  faults: K8sFaults;
  /** Cuts every open watch stream now (an API server restart, a load balancer timeout); returns how many. */
  dropWatches(): number;
  close(): Promise<void>;
}

const JSON_TYPE = 'application/json';
const EXPOSITION_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const BODY_LIMIT = 4 * 1024 * 1024;
const NODE_FIELDS = ['metadata.name', 'spec.unschedulable'] as const;
const POD_FIELDS = ['metadata.name', 'metadata.namespace', 'spec.nodeName', 'status.phase'] as const;
const GENERIC_FIELDS = ['metadata.name', 'metadata.namespace'] as const;

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  query: URLSearchParams;
  body: string;
  params: string[];
  rec: K8sRecordedRequest;
  /** Records a streaming response (watch, hung proxy) when it starts rather than when it ends. */
  recordNow(status: number): void;
}

interface Route {
  method: string;
  pattern: RegExp;
  operation: string;
  verb: string;
  resource?: string;
  subresource?: string;
  apiGroup?: string;
  /** Index of the namespace / name capture group, for the record. */
  ns?: number;
  name?: number;
  handle: (c: Ctx) => void;
}

export function statusBody(
  code: number,
  reason: string,
  message: string,
  details?: Record<string, unknown>,
): string {
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  });
}

/** An opaque `continue` token: base64url of the next offset and the first page's resourceVersion. */
export function encodeContinue(offset: number, rv: string): string {
  return Buffer.from(JSON.stringify({ o: offset, rv })).toString('base64url');
}

export function decodeContinue(token: string): { offset: number; rv: string } | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (typeof v !== 'object' || v === null) return undefined;
    const { o, rv } = v as { o?: unknown; rv?: unknown };
    if (typeof o !== 'number' || !Number.isInteger(o) || o < 0 || typeof rv !== 'string') return undefined;
    return { offset: o, rv };
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, status: number, body: string, type = JSON_TYPE): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function sendError(res: ServerResponse, e: ApiError): void {
  send(res, e.status, statusBody(e.status, e.reason, e.message, e.details));
}

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch (e) {
    throw new ApiError(400, 'BadRequest', `error decoding body: ${(e as Error).message}`);
  }
}

function requireObject(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ApiError(400, 'BadRequest', `${what}: body must be a JSON object`);
  return v as Record<string, unknown>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > BODY_LIMIT) {
        reject(new ApiError(413, 'RequestEntityTooLarge', 'request entity too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const seg = '([^/]+)';

export async function startSimK8s(cluster: SimCluster, opts: SimK8sOptions = {}): Promise<SimK8sServer> {
  const log = opts.log ?? new RequestLog();
  const logger = opts.logger;
  const streams = new Set<ServerResponse>();
  const watches = new Set<ServerResponse>();
  const faults = opts.faults ?? new K8sFaults();

  // ------------------------------------------------------------ lists and watches

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

  // ------------------------------------------------------------ handlers

  function patchNode(c: Ctx, subresource: 'status' | undefined): void {
    const name = c.params[0] ?? '';
    const node = cluster.store.get<KubeNode>('nodes', undefined, name);
    if (!node) throw new ApiError(404, 'NotFound', `nodes "${name}" not found`, { name, kind: 'nodes' });
    const type = (c.req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    const patch = parseJson(c.body);
    let patched: unknown;
    try {
      switch (type) {
        case 'application/merge-patch+json':
          patched = applyMergePatch(structuredClone(node), requireObject(patch, 'merge patch'));
          break;
        case 'application/strategic-merge-patch+json':
          patched = applyStrategicMergePatch(
            structuredClone(node),
            requireObject(patch, 'strategic merge patch'),
          );
          break;
        case 'application/json-patch+json':
          patched = applyJsonPatch(node, patch);
          break;
        default:
          throw new ApiError(
            415,
            'UnsupportedMediaType',
            `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`,
          );
      }
    } catch (e) {
      if (e instanceof PatchError)
        throw new ApiError(e.status, e.status === 422 ? 'Invalid' : 'BadRequest', e.message);
      throw e;
    }
    const updated = cluster.updateNodeFromApi(name, patched as KubeNode, subresource);
    send(c.res, 200, cluster.store.jsonOf('nodes', updated));
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

  function proxyPod(c: Ctx): void {
    const ns = c.params[0] ?? '';
    const target = c.params[1] ?? '';
    const path = c.params[2] ?? '';
    // `name`, `name:port` or `scheme:name:port`.
    const parts = target.split(':');
    const podName = (parts.length === 3 ? parts[1] : parts[0]) ?? '';
    const port = Number(parts.length === 3 ? parts[2] : (parts[1] ?? ''));
    const pod = cluster.store.get<KubePod>('pods', ns, podName);
    if (!pod)
      throw new ApiError(404, 'NotFound', `pods "${podName}" not found`, { name: podName, kind: 'pods' });
    const ip = pod.status.podIP ?? '';
    if (!pod.spec.nodeName || pod.status.phase !== 'Running' || !ip)
      throw new ApiError(503, 'ServiceUnavailable', `pod ${podName} is not running`);
    const isExporter = pod.metadata.labels?.app === 'nvidia-dcgm-exporter';
    const exporterPort = Number.isNaN(port) || port === 0 || port === DCGM_EXPORTER_PORT;
    if (!isExporter || !exporterPort)
      throw new ApiError(
        503,
        'ServiceUnavailable',
        `error trying to reach service: dial tcp ${ip}:${port || 80}: connect: connection refused`,
      );
    const scrape = cluster.exporterScrape(pod.spec.nodeName);
    if (scrape.kind === 'error')
      throw new ApiError(scrape.status === 404 ? 503 : scrape.status, 'ServiceUnavailable', scrape.message);
    if (scrape.kind === 'hang') {
      // Never answers: the client's timeout (or our close) ends it.
      streams.add(c.res);
      c.res.on('close', () => streams.delete(c.res));
      c.recordNow(0);
      return;
    }
    if (path === 'health') {
      send(c.res, 200, 'OK', 'text/plain; charset=utf-8');
      return;
    }
    if (path !== 'metrics') {
      send(c.res, 404, '404 page not found\n', 'text/plain; charset=utf-8');
      return;
    }
    send(c.res, 200, scrape.body, EXPOSITION_TYPE);
  }

  const discovery = {
    version: () =>
      JSON.stringify({
        major: '1',
        minor: '31',
        gitVersion: 'v1.31.4-eks-2d5f260',
        gitCommit: 'c2f3b7e1d0a9f8e7d6c5b4a39281706f5e4d3c2b',
        gitTreeState: 'clean',
        buildDate: '2025-01-10T00:00:00Z',
        goVersion: 'go1.22.9',
        compiler: 'gc',
        platform: 'linux/amd64',
      }),
    api: () =>
      JSON.stringify({
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: 'sim' }],
      }),
    apis: () => {
      const group = (name: string, version: string) => ({
        name,
        versions: [{ groupVersion: `${name}/${version}`, version }],
        preferredVersion: { groupVersion: `${name}/${version}`, version },
      });
      return JSON.stringify({
        kind: 'APIGroupList',
        apiVersion: 'v1',
        groups: [
          group('coordination.k8s.io', 'v1'),
          group('policy', 'v1'),
          group('kubeflow.org', 'v1'),
          group('trainer.kubeflow.org', 'v1alpha1'),
        ],
      });
    },
  };

  const kubeflowKinds: Record<string, string> = {
    pytorchjobs: 'PyTorchJob',
    tfjobs: 'TFJob',
    mpijobs: 'MPIJob',
    xgboostjobs: 'XGBoostJob',
  };
  const jobPlurals = KUBEFLOW_JOB_RESOURCES.join('|');
  const opName = (plural: string): string => {
    const kind = kubeflowKinds[plural] ?? plural;
    return kind.replace(/Job$/, 'Jobs');
  };

  const routes: Route[] = [
    {
      method: 'GET',
      pattern: /^\/(healthz|livez|readyz)$/,
      operation: 'healthz',
      verb: 'get',
      handle: (c) => send(c.res, 200, 'ok', 'text/plain; charset=utf-8'),
    },
    {
      method: 'GET',
      pattern: /^\/version\/?$/,
      operation: 'version',
      verb: 'get',
      handle: (c) => send(c.res, 200, discovery.version()),
    },
    {
      method: 'GET',
      pattern: /^\/api\/?$/,
      operation: 'discovery',
      verb: 'get',
      handle: (c) => send(c.res, 200, discovery.api()),
    },
    {
      method: 'GET',
      pattern: /^\/apis\/?$/,
      operation: 'discovery',
      verb: 'get',
      handle: (c) => send(c.res, 200, discovery.apis()),
    },
    // ---- nodes
    {
      method: 'GET',
      pattern: /^\/api\/v1\/nodes$/,
      operation: 'listNodes',
      verb: 'list',
      resource: 'nodes',
      apiGroup: '',
      handle: (c) => {
        const sel = selectors(c, NODE_FIELDS);
        const byName = sel.fields.find((f) => f.field === 'metadata.name' && f.op === 'eq');
        listOrWatch(c, 'nodes', 'NodeList', 'v1', NODE_FIELDS, () => {
          if (byName) {
            const n = cluster.store.get<KubeNode>('nodes', undefined, byName.value);
            return n ? [n] : [];
          }
          return cluster.store.list('nodes');
        });
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/nodes/${seg}$`),
      operation: 'getNode',
      verb: 'get',
      resource: 'nodes',
      apiGroup: '',
      name: 0,
      handle: (c) => getOne('nodes', undefined, c.params[0] ?? '', 'nodes')(c),
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/nodes/${seg}/status$`),
      operation: 'getNodeStatus',
      verb: 'get',
      resource: 'nodes',
      subresource: 'status',
      apiGroup: '',
      name: 0,
      handle: (c) => getOne('nodes', undefined, c.params[0] ?? '', 'nodes')(c),
    },
    {
      method: 'PATCH',
      pattern: new RegExp(`^/api/v1/nodes/${seg}$`),
      operation: 'patchNode',
      verb: 'patch',
      resource: 'nodes',
      apiGroup: '',
      name: 0,
      handle: (c) => patchNode(c, undefined),
    },
    {
      method: 'PATCH',
      pattern: new RegExp(`^/api/v1/nodes/${seg}/status$`),
      operation: 'patchNodeStatus',
      verb: 'patch',
      resource: 'nodes',
      subresource: 'status',
      apiGroup: '',
      name: 0,
      handle: (c) => patchNode(c, 'status'),
    },
    {
      method: 'DELETE',
      pattern: new RegExp(`^/api/v1/nodes/${seg}$`),
      operation: 'deleteNode',
      verb: 'delete',
      resource: 'nodes',
      apiGroup: '',
      name: 0,
      handle: (c) => send(c.res, 200, JSON.stringify(cluster.deleteNodeFromApi(c.params[0] ?? ''))),
    },
    // ---- pods
    {
      method: 'GET',
      pattern: /^\/api\/v1\/pods$/,
      operation: 'listPods',
      verb: 'list',
      resource: 'pods',
      apiGroup: '',
      handle: (c) => listOrWatch(c, 'pods', 'PodList', 'v1', POD_FIELDS, podCandidates(undefined)),
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/namespaces/${seg}/pods$`),
      operation: 'listNamespacedPods',
      verb: 'list',
      resource: 'pods',
      apiGroup: '',
      ns: 0,
      handle: (c) =>
        listOrWatch(c, 'pods', 'PodList', 'v1', POD_FIELDS, podCandidates(c.params[0]), c.params[0]),
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/namespaces/${seg}/pods/${seg}$`),
      operation: 'getPod',
      verb: 'get',
      resource: 'pods',
      apiGroup: '',
      ns: 0,
      name: 1,
      handle: (c) => getOne('pods', c.params[0], c.params[1] ?? '', 'pods')(c),
    },
    {
      method: 'DELETE',
      pattern: new RegExp(`^/api/v1/namespaces/${seg}/pods/${seg}$`),
      operation: 'deletePod',
      verb: 'delete',
      resource: 'pods',
      apiGroup: '',
      ns: 0,
      name: 1,
      handle: (c) =>
        send(c.res, 200, JSON.stringify(cluster.deletePodFromApi(c.params[0] ?? '', c.params[1] ?? ''))),
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/api/v1/namespaces/${seg}/pods/${seg}/eviction$`),
      operation: 'evictPod',
      verb: 'create',
      resource: 'pods',
      subresource: 'eviction',
      apiGroup: '',
      ns: 0,
      name: 1,
      handle: (c) => {
        const [ns = '', name = ''] = c.params;
        const body = requireObject(parseJson(c.body), 'Eviction');
        const meta = body.metadata as { name?: unknown } | undefined;
        if (body.kind !== undefined && body.kind !== 'Eviction')
          throw new ApiError(400, 'BadRequest', `expected kind Eviction, got ${String(body.kind)}`);
        if (meta?.name !== undefined && meta.name !== name)
          throw new ApiError(400, 'BadRequest', 'name in URL does not match name in Eviction object');
        cluster.evictPod(ns, name);
        send(
          c.res,
          201,
          JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 }),
        );
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/api/v1/namespaces/${seg}/pods/${seg}/proxy(?:/(.*))?$`),
      operation: 'proxyPod',
      verb: 'get',
      resource: 'pods',
      subresource: 'proxy',
      apiGroup: '',
      ns: 0,
      name: 1,
      handle: proxyPod,
    },
    // ---- leases
    {
      method: 'GET',
      pattern: new RegExp(`^/apis/coordination\\.k8s\\.io/v1/namespaces/${seg}/leases$`),
      operation: 'listLeases',
      verb: 'list',
      resource: 'leases',
      apiGroup: 'coordination.k8s.io',
      ns: 0,
      handle: (c) =>
        listOrWatch(
          c,
          'leases',
          'LeaseList',
          'coordination.k8s.io/v1',
          GENERIC_FIELDS,
          () => cluster.store.list('leases', c.params[0]),
          c.params[0],
        ),
    },
    {
      method: 'POST',
      pattern: new RegExp(`^/apis/coordination\\.k8s\\.io/v1/namespaces/${seg}/leases$`),
      operation: 'createLease',
      verb: 'create',
      resource: 'leases',
      apiGroup: 'coordination.k8s.io',
      ns: 0,
      handle: (c) => {
        const body = requireObject(parseJson(c.body), 'Lease') as unknown as KubeLease;
        if (body.metadata?.namespace && body.metadata.namespace !== c.params[0])
          throw new ApiError(
            400,
            'BadRequest',
            'the namespace of the provided object does not match the namespace sent on the request',
          );
        send(c.res, 201, JSON.stringify(cluster.createLease(c.params[0] ?? '', body)));
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/apis/coordination\\.k8s\\.io/v1/namespaces/${seg}/leases/${seg}$`),
      operation: 'getLease',
      verb: 'get',
      resource: 'leases',
      apiGroup: 'coordination.k8s.io',
      ns: 0,
      name: 1,
      handle: (c) => getOne('leases', c.params[0], c.params[1] ?? '', 'leases.coordination.k8s.io')(c),
    },
    {
      method: 'PUT',
      pattern: new RegExp(`^/apis/coordination\\.k8s\\.io/v1/namespaces/${seg}/leases/${seg}$`),
      operation: 'replaceLease',
      verb: 'update',
      resource: 'leases',
      apiGroup: 'coordination.k8s.io',
      ns: 0,
      name: 1,
      handle: (c) => {
        const [ns = '', name = ''] = c.params;
        const body = requireObject(parseJson(c.body), 'Lease') as unknown as KubeLease;
        if (body.metadata?.name !== undefined && body.metadata.name !== name)
          throw new ApiError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
        send(c.res, 200, JSON.stringify(cluster.replaceLease(ns, name, body)));
      },
    },
    {
      method: 'DELETE',
      pattern: new RegExp(`^/apis/coordination\\.k8s\\.io/v1/namespaces/${seg}/leases/${seg}$`),
      operation: 'deleteLease',
      verb: 'delete',
      resource: 'leases',
      apiGroup: 'coordination.k8s.io',
      ns: 0,
      name: 1,
      handle: (c) => {
        const [ns = '', name = ''] = c.params;
        const gone = cluster.store.delete('leases', ns, name);
        if (!gone)
          throw new ApiError(404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`, { name });
        send(
          c.res,
          200,
          JSON.stringify({
            kind: 'Status',
            apiVersion: 'v1',
            metadata: {},
            status: 'Success',
            details: { name, group: 'coordination.k8s.io', kind: 'leases' },
          }),
        );
      },
    },
    // ---- policy
    {
      method: 'GET',
      pattern: /^\/apis\/policy\/v1\/poddisruptionbudgets$/,
      operation: 'listPdbs',
      verb: 'list',
      resource: 'poddisruptionbudgets',
      apiGroup: 'policy',
      handle: (c) =>
        listOrWatch(c, 'poddisruptionbudgets', 'PodDisruptionBudgetList', 'policy/v1', GENERIC_FIELDS, () =>
          cluster.store.list('poddisruptionbudgets'),
        ),
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/apis/policy/v1/namespaces/${seg}/poddisruptionbudgets$`),
      operation: 'listNamespacedPdbs',
      verb: 'list',
      resource: 'poddisruptionbudgets',
      apiGroup: 'policy',
      ns: 0,
      handle: (c) =>
        listOrWatch(
          c,
          'poddisruptionbudgets',
          'PodDisruptionBudgetList',
          'policy/v1',
          GENERIC_FIELDS,
          () => cluster.store.list('poddisruptionbudgets', c.params[0]),
          c.params[0],
        ),
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/apis/policy/v1/namespaces/${seg}/poddisruptionbudgets/${seg}$`),
      operation: 'getPdb',
      verb: 'get',
      resource: 'poddisruptionbudgets',
      apiGroup: 'policy',
      ns: 0,
      name: 1,
      handle: (c) =>
        getOne('poddisruptionbudgets', c.params[0], c.params[1] ?? '', 'poddisruptionbudgets.policy')(c),
    },
    // ---- karpenter.sh NodeClaims (cluster-scoped)
    {
      method: 'GET',
      pattern: /^\/apis\/karpenter\.sh\/v1\/nodeclaims$/,
      operation: 'listNodeClaims',
      verb: 'list',
      resource: 'nodeclaims',
      apiGroup: 'karpenter.sh',
      handle: (c) =>
        listOrWatch(c, 'nodeclaims', 'NodeClaimList', 'karpenter.sh/v1', GENERIC_FIELDS, () =>
          cluster.store.list('nodeclaims'),
        ),
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/apis/karpenter\\.sh/v1/nodeclaims/${seg}$`),
      operation: 'getNodeClaim',
      verb: 'get',
      resource: 'nodeclaims',
      apiGroup: 'karpenter.sh',
      name: 0,
      handle: (c) => getOne('nodeclaims', undefined, c.params[0] ?? '', 'nodeclaims.karpenter.sh')(c),
    },
    {
      method: 'DELETE',
      pattern: new RegExp(`^/apis/karpenter\\.sh/v1/nodeclaims/${seg}$`),
      operation: 'deleteNodeClaim',
      verb: 'delete',
      resource: 'nodeclaims',
      apiGroup: 'karpenter.sh',
      name: 0,
      handle: (c) => send(c.res, 200, JSON.stringify(cluster.deleteNodeClaimFromApi(c.params[0] ?? ''))),
    },
    // ---- kubeflow
    {
      method: 'GET',
      pattern: new RegExp(`^/apis/kubeflow\\.org/v1/(${jobPlurals})$`),
      operation: 'listKubeflowJobs',
      verb: 'list',
      apiGroup: 'kubeflow.org',
      handle: (c) => {
        const plural = c.params[0] ?? '';
        c.rec.resource = plural;
        c.rec.operation = `list${opName(plural)}`;
        listOrWatch(c, plural, `${kubeflowKinds[plural]}List`, 'kubeflow.org/v1', GENERIC_FIELDS, () =>
          cluster.store.list(plural),
        );
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/apis/kubeflow\\.org/v1/namespaces/${seg}/(${jobPlurals})$`),
      operation: 'listNamespacedKubeflowJobs',
      verb: 'list',
      apiGroup: 'kubeflow.org',
      ns: 0,
      handle: (c) => {
        const [ns, plural = ''] = c.params;
        c.rec.resource = plural;
        c.rec.operation = `listNamespaced${opName(plural)}`;
        listOrWatch(
          c,
          plural,
          `${kubeflowKinds[plural]}List`,
          'kubeflow.org/v1',
          GENERIC_FIELDS,
          () => cluster.store.list(plural, ns),
          ns,
        );
      },
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/apis/kubeflow\\.org/v1/namespaces/${seg}/(${jobPlurals})/${seg}$`),
      operation: 'getKubeflowJob',
      verb: 'get',
      apiGroup: 'kubeflow.org',
      ns: 0,
      name: 2,
      handle: (c) => {
        const [ns, plural = '', name = ''] = c.params;
        c.rec.resource = plural;
        c.rec.operation = `get${kubeflowKinds[plural] ?? plural}`;
        getOne(plural, ns, name, `${plural}.kubeflow.org`)(c);
      },
    },
    {
      method: 'GET',
      pattern: /^\/apis\/trainer\.kubeflow\.org\/v1alpha1\/trainjobs$/,
      operation: 'listTrainJobs',
      verb: 'list',
      resource: 'trainjobs',
      apiGroup: 'trainer.kubeflow.org',
      handle: (c) =>
        listOrWatch(c, 'trainjobs', 'TrainJobList', 'trainer.kubeflow.org/v1alpha1', GENERIC_FIELDS, () =>
          cluster.store.list('trainjobs'),
        ),
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/apis/trainer\\.kubeflow\\.org/v1alpha1/namespaces/${seg}/trainjobs$`),
      operation: 'listNamespacedTrainJobs',
      verb: 'list',
      resource: 'trainjobs',
      apiGroup: 'trainer.kubeflow.org',
      ns: 0,
      handle: (c) =>
        listOrWatch(
          c,
          'trainjobs',
          'TrainJobList',
          'trainer.kubeflow.org/v1alpha1',
          GENERIC_FIELDS,
          () => cluster.store.list('trainjobs', c.params[0]),
          c.params[0],
        ),
    },
    {
      method: 'GET',
      pattern: new RegExp(`^/apis/trainer\\.kubeflow\\.org/v1alpha1/namespaces/${seg}/trainjobs/${seg}$`),
      operation: 'getTrainJob',
      verb: 'get',
      resource: 'trainjobs',
      apiGroup: 'trainer.kubeflow.org',
      ns: 0,
      name: 1,
      handle: (c) => getOne('trainjobs', c.params[0], c.params[1] ?? '', 'trainjobs.trainer.kubeflow.org')(c),
    },
  ];

  function podCandidates(namespace: string | undefined) {
    return (sel: { fields: FieldRequirement[] }): Iterable<KubeObject> => {
      const onNode = sel.fields.find((f) => f.field === 'spec.nodeName' && f.op === 'eq');
      // The node index keeps per-node pod lists O(pods on the node) at fleet scale. `spec.nodeName=` (empty)
      // selects the pods bound to no node, as on a real API server: those are not in the index.
      if (onNode && onNode.value !== '')
        return cluster.podsOn({ nodeName: onNode.value, ...(namespace ? { namespace } : {}) });
      return cluster.podsOn(namespace ? { namespace } : {});
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = req.method ?? 'GET';
    const rec: K8sRecordedRequest = {
      service: 'k8s',
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body: '',
      status: 0,
      at: Date.now(),
      verb: method.toLowerCase(),
    };
    let recorded = false;
    res.on('finish', () => {
      if (recorded) return;
      recorded = true;
      rec.status = res.statusCode;
      log.record(rec);
    });
    try {
      rec.body = method === 'GET' || method === 'HEAD' ? '' : await readBody(req);
      // kube-apiserver authenticates before anything else: a missing, wrong or expired token is a 401.
      const authenticated = opts.token === undefined || req.headers.authorization === `Bearer ${opts.token}`;
      const unauthorized = () => send(res, 401, statusBody(401, 'Unauthorized', 'Unauthorized'));
      let pathMatched = false;
      for (const r of routes) {
        const m = r.pattern.exec(url.pathname);
        if (!m) continue;
        pathMatched = true;
        if (r.method !== method) continue;
        const params = m.slice(1).map((p) => (p === undefined ? '' : decodeURIComponent(p)));
        rec.operation = r.operation;
        rec.verb = r.verb;
        if (r.resource !== undefined) rec.resource = r.resource;
        if (r.subresource !== undefined) rec.subresource = r.subresource;
        if (r.apiGroup !== undefined) rec.apiGroup = r.apiGroup;
        if (r.ns !== undefined) rec.namespace = params[r.ns];
        if (r.name !== undefined) rec.name = params[r.name];
        const recordNow = (status: number): void => {
          recorded = true;
          rec.status = status;
          log.record(rec);
        };
        if (!authenticated) {
          unauthorized();
          return;
        }
        const c: Ctx = { req, res, query: url.searchParams, body: rec.body, params, rec, recordNow };
        const isWatch = r.verb === 'list' && ['true', '1'].includes(url.searchParams.get('watch') ?? '');
        const target: K8sFaultTarget = {
          operation: isWatch ? r.operation.replace(/^list/, 'watch') : r.operation,
          verb: isWatch ? 'watch' : r.verb,
          path: url.pathname,
        };
        const fault = faults.pending > 0 ? faults.take(target) : undefined;
        if (fault?.status !== undefined) {
          serveFault(c, target, fault.status, isWatch, fault.retryAfterSeconds, fault.message);
          return;
        }
        r.handle(c);
        // A dropped watch: the current objects went out, then the connection is cut mid-stream.
        if (fault?.drop && isWatch) setImmediate(() => res.destroy());
        return;
      }
      if (!authenticated) {
        unauthorized();
        return;
      }
      const status = pathMatched ? 405 : 404;
      rec.status = status;
      log.recordUnexpected(rec);
      recorded = true;
      logger?.warn({ method, path: url.pathname }, 'sim k8s: unexpected request');
      send(
        res,
        status,
        pathMatched
          ? statusBody(
              405,
              'MethodNotAllowed',
              `the server does not allow this method on the requested resource`,
            )
          : statusBody(404, 'NotFound', 'the server could not find the requested resource'),
      );
    } catch (e) {
      if (e instanceof ApiError) sendError(res, e);
      else {
        logger?.error({ err: e, path: url.pathname }, 'sim k8s: handler failed');
        send(res, 500, statusBody(500, 'InternalError', `internal error: ${(e as Error).message}`));
      }
    }
  }

  /** Answers with an injected fault, in the shape a real API server uses for that code. */
  function serveFault(
    c: Ctx,
    target: K8sFaultTarget,
    status: number,
    isWatch: boolean,
    retryAfterSeconds: number | undefined,
    message: string | undefined,
  ): void {
    c.rec.verb = target.verb;
    if (target.operation) c.rec.operation = target.operation;
    const text = message ?? defaultFaultMessage(status, target);
    if (isWatch && status === 410) {
      // An expired resourceVersion on a watch: the stream opens (200) and carries one ERROR event.
      c.res.writeHead(200, { 'Content-Type': JSON_TYPE, 'Transfer-Encoding': 'chunked' });
      c.res.end(`{"type":"ERROR","object":${statusBody(410, 'Expired', text)}}\n`);
      return;
    }
    const details = retryAfterSeconds !== undefined ? { retryAfterSeconds } : undefined;
    c.res.statusCode = status;
    c.res.setHeader('Content-Type', JSON_TYPE);
    if (retryAfterSeconds !== undefined) c.res.setHeader('Retry-After', String(retryAfterSeconds));
    c.res.end(statusBody(status, reasonFor(status), text, details));
  }

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    void handle(req, res);
  };
  // An https.Server is an http.Server (tls.Server underneath): exec upgrades attach to it the same way.
  const server: Server = opts.tls
    ? (createHttpsServer({ keepAlive: true, cert: opts.tls.cert, key: opts.tls.key }, listener) as Server)
    : createServer({ keepAlive: true }, listener);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `${opts.tls ? 'https' : 'http'}://${opts.host ?? '127.0.0.1'}:${port}`;
  return {
    url,
    server,
    log,
    faults,
    dropWatches: () => {
      const n = watches.size;
      for (const w of [...watches]) {
        watches.delete(w);
        streams.delete(w);
        w.destroy();
      }
      return n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of streams) s.destroy();
        streams.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
