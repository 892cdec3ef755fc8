/** The RBAC manifests gpu-medic ships: exactly the grants the code needs, namespaced where they can be. */
import { describe, expect, it } from 'vitest';
import { arr, configData, configMap, kustomization, obj, one } from './support/manifests.js';
import { loadClusterRoleRules, loadRoleRules, loadRoles, tripleKey } from './support/rbac.js';

// ---- RBAC -------------------------------------------------------------------------------------------

/** The ClusterRole the code needs, and nothing more (the RBAC-honesty test checks it against the wire). */
const expectedClusterRole: [apiGroup: string, resource: string, verbs: string[]][] = [
  ['', 'nodes', ['get', 'list', 'watch', 'patch', 'delete']],
  ['', 'pods', ['list', 'watch']],
  ['', 'pods/eviction', ['create']],
  ['kubeflow.org', 'pytorchjobs', ['get']],
  ['kubeflow.org', 'tfjobs', ['get']],
  ['kubeflow.org', 'mpijobs', ['get']],
  ['kubeflow.org', 'xgboostjobs', ['get']],
  ['kubeflow.org', 'paddlejobs', ['get']],
  ['kubeflow.org', 'jaxjobs', ['get']],
  ['trainer.kubeflow.org', 'trainjobs', ['get']],
];

describe('RBAC', () => {
  const clusterRules = loadClusterRoleRules();

  it.each(expectedClusterRole)('ClusterRole grants %j %s %j', (apiGroup, resource, verbs) => {
    const got = clusterRules
      .filter((t) => t.apiGroup === apiGroup && t.resource === resource)
      .map((t) => t.verb)
      .sort();
    expect(got).toEqual([...verbs].sort());
  });

  it('ClusterRole grants exactly the expected table, no wildcard, nothing else', () => {
    const want = expectedClusterRole
      .flatMap(([apiGroup, resource, verbs]) => verbs.map((verb) => tripleKey({ apiGroup, resource, verb })))
      .sort();
    expect(clusterRules.map(tripleKey)).toEqual(want);
    for (const t of clusterRules) expect(`${t.apiGroup}${t.resource}${t.verb}`).not.toContain('*');
  });

  it('limits leases to the namespaced Role, for leader election only', () => {
    const leader = loadRoles().find((r) => r.name === 'gpu-medic-leader-election');
    expect(leader?.namespace).toBe('gpu-medic');
    expect(leader?.rules.map(tripleKey)).toEqual([
      'coordination.k8s.io/leases:create',
      'coordination.k8s.io/leases:get',
      'coordination.k8s.io/leases:update',
    ]);
    expect(clusterRules.some((t) => t.resource === 'leases')).toBe(false);
  });

  it('grants pods/exec and pods/proxy never cluster-wide, only in the DCGM namespaces of the configuration', () => {
    expect(clusterRules.filter((t) => t.resource === 'pods/exec' || t.resource === 'pods/proxy')).toEqual([]);
    const roles = loadRoles();
    const withSub = (sub: string) =>
      roles
        .filter((r) => r.rules.some((t) => t.resource === sub))
        .map((r) => ({ name: r.name, namespace: r.namespace, rules: r.rules.map(tripleKey) }));
    expect(withSub('pods/proxy')).toEqual([
      {
        name: 'gpu-medic-dcgm-exporter-proxy',
        namespace: configData.DCGM_NAMESPACE,
        rules: ['core/pods/proxy:get'],
      },
    ]);
    expect(withSub('pods/exec')).toEqual([
      {
        name: 'gpu-medic-dcgm-server-exec',
        namespace: configData.DCGM_SERVER_NAMESPACE,
        rules: ['core/pods/exec:create', 'core/pods/exec:get'],
      },
    ]);
    expect(configData.DCGM_NAMESPACE).toBe('gpu-operator');
    expect(configData.DCGM_SERVER_NAMESPACE).toBe('kube-system');
  });

  it('binds the DCGM Roles where the ConfigMap says: kustomize replacements from DCGM_NAMESPACE / DCGM_SERVER_NAMESPACE', () => {
    const replacements = arr(kustomization.replacements, 'replacements').map((r) => obj(r, 'replacement'));
    const targetsOf = (field: string) => {
      const r = replacements.find((x) => obj(x.source, 'source').fieldPath === `data.${field}`);
      expect(obj(r?.source, 'source')).toMatchObject({ kind: 'ConfigMap', name: configMap.metadata.name });
      return arr(r?.targets, 'targets')
        .map((t) => obj(t, 'target'))
        .map(
          (t) =>
            `${obj(t.select, 'select').kind}/${obj(t.select, 'select').name} ${arr(t.fieldPaths, 'fieldPaths').join(',')}`,
        )
        .sort();
    };
    expect(targetsOf('DCGM_NAMESPACE')).toEqual([
      'Role/gpu-medic-dcgm-exporter-proxy metadata.namespace',
      'RoleBinding/gpu-medic-dcgm-exporter-proxy metadata.namespace',
    ]);
    expect(targetsOf('DCGM_SERVER_NAMESPACE')).toEqual([
      'Role/gpu-medic-dcgm-server-exec metadata.namespace',
      'RoleBinding/gpu-medic-dcgm-server-exec metadata.namespace',
    ]);
    // The namespace transformer must not move them back into gpu-medic's namespace.
    const transformer = String(arr(kustomization.transformers, 'transformers')[0]);
    expect(transformer).toMatch(/kind: NamespaceTransformer/);
    expect(transformer).toMatch(/unsetOnly: true/);
  });

  it('never grants secrets, pod deletion or escalation verbs', () => {
    const all = [...clusterRules, ...loadRoleRules()];
    expect(all.filter((t) => t.resource === 'secrets')).toEqual([]);
    expect(all.filter((t) => t.resource === 'pods' && t.verb === 'delete')).toEqual([]);
    expect(all.filter((t) => ['escalate', 'bind', 'impersonate'].includes(t.verb))).toEqual([]);
  });

  it('annotates the ServiceAccount for IRSA with a role ARN', () => {
    const annotations = obj(one('ServiceAccount').metadata.annotations, 'annotations');
    expect(annotations['eks.amazonaws.com/role-arn']).toMatch(/^arn:aws:iam::\d{12}:role\/[\w+=,.@-]+$/);
  });
});
