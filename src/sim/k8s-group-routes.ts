/**
 * The API groups beyond the core: coordination.k8s.io Leases (leader election), policy
 * PodDisruptionBudgets, karpenter.sh NodeClaims, and the training jobs of kubeflow.org and
 * trainer.kubeflow.org.
 */

import { KUBEFLOW_JOB_RESOURCES } from './cluster.js';
import {
  GENERIC_FIELDS,
  type K8sContext,
  parseJson,
  type Route,
  requireObject,
  seg,
  send,
} from './k8s-http.js';
import { createListing } from './k8s-lists.js';
import type { KubeLease } from './k8s-objects.js';
import { ApiError } from './resource-store.js';

export function groupRoutes(ctx: K8sContext): Route[] {
  const { cluster } = ctx;
  const { listOrWatch, getOne } = createListing(ctx);

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

  return [
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
}
