/**
 * The core API routes: health and discovery, nodes (get, patch, delete), pods (list by node, delete,
 * eviction) and the pod proxy that reaches a node's DCGM exporter.
 */

import {
  type Ctx,
  type K8sContext,
  NODE_FIELDS,
  POD_FIELDS,
  parseJson,
  type Route,
  requireObject,
  seg,
  send,
} from './k8s-http.js';
import { createListing } from './k8s-lists.js';
import type { KubeNode, KubeObject, KubePod } from './k8s-objects.js';
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, PatchError } from './patch.js';
import { ApiError } from './resource-store.js';
import type { FieldRequirement } from './selectors.js';
import { DCGM_EXPORTER_PORT } from './workloads.js';

const EXPOSITION_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function coreRoutes(ctx: K8sContext): Route[] {
  const { cluster, streams } = ctx;
  const { listOrWatch, getOne, selectors } = createListing(ctx);

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
  return [
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
  ];
}
