/**
 * The deployment artifacts, read as a reviewer would: kustomize base, RBAC, Deployment hardening,
 * IAM policy, Slack app manifest and Dockerfile. Docker and a cluster are not available here, so
 * these tests check structure and cross-references (a ConfigMap the Deployment names must exist, the
 * DB path must be on the volume, …) rather than a live apply.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { EXPORTER_METRICS_READ } from '../src/collect/parse/exporter.js';
import { defaultBedrockModelIdFor } from '../src/config/bedrock-model.js';
import { parsePolicy } from '../src/config/policy-file.js';
import { renderExporterMetrics } from '../src/sim/dcgm-exporter.js';
import { SeededRandom } from '../src/sim/seeded-random.js';
import { makeGpu } from '../src/sim/sim-gpu.js';
import {
  asList,
  iamPolicyPath,
  type K8sObject,
  kustomizeNamespace,
  loadClusterRoleRules,
  loadIamActions,
  loadIamPolicy,
  loadManifestObjects,
  loadRoleRules,
  loadRoles,
  loadYamlDocuments,
  manifestsDir,
  manifestsRoot,
  repoRoot,
  tripleKey,
} from './support/rbac.js';

// ---- tiny typed accessors over untyped YAML ---------------------------------------------------------

type Obj = Record<string, unknown>;
function obj(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} is not a mapping`);
  return v as Obj;
}
function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new Error(`${what} is not a list`);
  return v;
}
function byName(list: unknown[], name: string, what: string): Obj {
  const hit = list.map((x, i) => obj(x, `${what}[${i}]`)).find((x) => x.name === name);
  if (!hit) throw new Error(`${what} has no entry named ${name}`);
  return hit;
}

const entries = loadManifestObjects();
const objects = entries.map((e) => e.object);
const kustomization = loadYamlDocuments(`${manifestsDir}/kustomization.yaml`)[0] as unknown as Obj;
const resourceFiles = arr(kustomization.resources, 'kustomization.resources') as string[];
const applied = entries.filter((e) => resourceFiles.includes(e.file)).map((e) => e.object);

function one(kind: string, name?: string): K8sObject {
  const hits = applied.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (hits.length !== 1)
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${hits.length}`);
  return hits[0] as K8sObject;
}

const deployment = one('Deployment');
const podSpec = obj(obj(obj(deployment.spec, 'spec').template, 'template').spec, 'pod spec');
const container = obj(arr(podSpec.containers, 'containers')[0], 'container');
const configMap = one('ConfigMap', 'gpu-medic-config');
const configData = obj(configMap.data, 'ConfigMap data');

// ---- kustomize base ---------------------------------------------------------------------------------

describe('manifests/ as a kustomize base', () => {
  it('parses every YAML file into objects with apiVersion, kind and a name', () => {
    expect(entries.length).toBeGreaterThan(10);
    for (const { file, object } of entries) {
      expect(object.apiVersion, file).toMatch(/^[a-z0-9.]+(\/v[0-9a-z]+)?$|^v1$/);
      expect(object.kind, file).toMatch(/^[A-Z]\w+$/);
      if (object.kind !== 'Kustomization') expect(object.metadata?.name, file).toMatch(/^[a-z0-9-]+$/);
    }
  });

  it('lists resources that exist, and every manifest except the Secret template', () => {
    for (const f of resourceFiles) expect(existsSync(`${manifestsDir}/${f}`), f).toBe(true);
    const onDisk = readdirSync(manifestsDir).filter((f) => /\.ya?ml$/.test(f));
    const unlisted = onDisk.filter((f) => !resourceFiles.includes(f) && f !== 'kustomization.yaml');
    expect(unlisted).toEqual(['secret.example.yaml']);
    expect(kustomizeNamespace()).toBe('gpu-medic');
  });

  it('never applies a Secret: the template stays out of the resources', () => {
    expect(applied.filter((o) => o.kind === 'Secret')).toEqual([]);
    const secret = objects.find((o) => o.kind === 'Secret');
    expect(secret?.metadata.name).toBe('gpu-medic-secrets');
    const keys = Object.keys(obj(secret?.stringData, 'stringData')).sort();
    expect(keys).toEqual(['SLACK_APP_TOKEN', 'SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'WEBHOOK_SECRET']);
    for (const v of Object.values(obj(secret?.stringData, 'stringData')))
      expect(String(v)).toMatch(/REPLACE-ME/);
  });

  it('contains the objects an install needs, each once', () => {
    const kinds = applied.map((o) => o.kind).sort();
    expect(kinds).toEqual(
      [
        'ClusterRole',
        'ClusterRoleBinding',
        'ConfigMap',
        'ConfigMap',
        'Deployment',
        'Namespace',
        'PersistentVolumeClaim',
        // Leader election in gpu-medic's namespace; DCGM exporter proxy and dcgm-server exec in theirs.
        'Role',
        'Role',
        'Role',
        'RoleBinding',
        'RoleBinding',
        'RoleBinding',
        'Service',
        'ServiceAccount',
      ].sort(),
    );
    expect(one('Namespace').metadata.name).toBe('gpu-medic');
  });

  it('maps the placeholder image name to a registry image', () => {
    expect(container.image).toBe('gpu-medic');
    const images = arr(kustomization.images, 'images');
    const img = byName(images, 'gpu-medic', 'images');
    expect(img.newName).toMatch(/\//);
    expect(String(img.newTag)).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('resolves every cross-reference between objects', () => {
    const sa = one('ServiceAccount');
    expect(podSpec.serviceAccountName).toBe(sa.metadata.name);

    const envFrom = arr(container.envFrom, 'envFrom').map((e) => obj(e, 'envFrom entry'));
    const cmRef = obj(envFrom.find((e) => e.configMapRef)?.configMapRef, 'configMapRef');
    expect(cmRef.name).toBe(configMap.metadata.name);
    const secretRef = obj(envFrom.find((e) => e.secretRef)?.secretRef, 'secretRef');
    expect(secretRef.name).toBe(objects.find((o) => o.kind === 'Secret')?.metadata.name);

    const volumes = arr(podSpec.volumes, 'volumes');
    const pvcVol = obj(byName(volumes, 'data', 'volumes').persistentVolumeClaim, 'pvc volume');
    expect(pvcVol.claimName).toBe(one('PersistentVolumeClaim').metadata.name);
    const policyVol = obj(byName(volumes, 'policy', 'volumes').configMap, 'policy volume');
    const policyCm = one('ConfigMap', String(policyVol.name));
    expect(Object.keys(obj(policyCm.data, 'policy data'))).toContain('policy.yaml');

    const bindings = applied.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding');
    expect(bindings).toHaveLength(4);
    for (const b of bindings) {
      const roleRef = obj(b.roleRef, 'roleRef');
      const role = one(b.kind === 'ClusterRoleBinding' ? 'ClusterRole' : 'Role', String(roleRef.name));
      // A RoleBinding only binds a Role of its own namespace.
      if (b.kind === 'RoleBinding')
        expect(b.metadata.namespace, b.metadata.name).toBe(role.metadata.namespace);
      expect(b.subjects).toEqual([
        { kind: 'ServiceAccount', name: sa.metadata.name, namespace: 'gpu-medic' },
      ]);
    }

    const svcSpec = obj(one('Service').spec, 'service spec');
    const podLabels = obj(
      obj(obj(obj(deployment.spec, 'spec').template, 'template').metadata, 'meta').labels,
      'labels',
    );
    for (const [k, v] of Object.entries(obj(svcSpec.selector, 'selector'))) expect(podLabels[k], k).toBe(v);
    const matchLabels = obj(
      obj(obj(deployment.spec, 'spec').selector, 'selector').matchLabels,
      'matchLabels',
    );
    for (const [k, v] of Object.entries(matchLabels)) expect(podLabels[k], k).toBe(v);
    const port = byName(arr(svcSpec.ports, 'ports'), 'http', 'service ports');
    expect(port.port).toBe(3000);
    const containerPort = byName(arr(container.ports, 'container ports'), String(port.targetPort), 'ports');
    expect(containerPort.containerPort).toBe(3000);
  });
});

// ---- Deployment -------------------------------------------------------------------------------------

describe('the Deployment', () => {
  const spec = obj(deployment.spec, 'spec');

  it('runs one replica and replaces it with Recreate (one SQLite writer on a RWO volume)', () => {
    expect(spec.replicas).toBe(1);
    expect(obj(spec.strategy, 'strategy').type).toBe('Recreate');
    const pvc = obj(one('PersistentVolumeClaim').spec, 'pvc spec');
    expect(pvc.accessModes).toEqual(['ReadWriteOnce']);
    expect(obj(obj(pvc.resources, 'resources').requests, 'requests').storage).toBe('1Gi');
  });

  it.each([
    ['livenessProbe', '/healthz'],
    ['readinessProbe', '/readyz'],
  ])('has a %s on %s over the http port', (probe, path) => {
    const get = obj(obj(container[probe], probe).httpGet, `${probe}.httpGet`);
    expect(get.path).toBe(path);
    expect(get.port).toBe('http');
  });

  it('runs non-root with a read-only root filesystem and no privileges', () => {
    const pod = obj(podSpec.securityContext, 'pod securityContext');
    expect(pod.runAsNonRoot).toBe(true);
    expect(pod.runAsUser).toBe(10001);
    expect(pod.fsGroup).toBe(10001);
    expect(obj(pod.seccompProfile, 'seccomp').type).toBe('RuntimeDefault');
    const c = obj(container.securityContext, 'container securityContext');
    expect(c.runAsNonRoot).toBe(true);
    expect(c.readOnlyRootFilesystem).toBe(true);
    expect(c.allowPrivilegeEscalation).toBe(false);
    expect(obj(c.capabilities, 'capabilities').drop).toEqual(['ALL']);
    expect(c.privileged).toBeUndefined();
  });

  it('mounts the database volume, the policy file and a writable /tmp', () => {
    const mounts = arr(container.volumeMounts, 'volumeMounts').map((m) => obj(m, 'mount'));
    const at = (name: string) => mounts.find((m) => m.name === name)?.mountPath;
    expect(at('data')).toBe('/var/lib/gpu-medic');
    expect(at('policy')).toBe('/etc/gpu-medic');
    expect(mounts.find((m) => m.name === 'policy')?.readOnly).toBe(true);
    expect(at('tmp')).toBe('/tmp');
    expect(byName(arr(podSpec.volumes, 'volumes'), 'tmp', 'volumes').emptyDir).toBeDefined();
    expect(String(configData.DB_PATH).startsWith(`${at('data')}/`)).toBe(true);
    const policyItems = arr(
      obj(byName(arr(podSpec.volumes, 'volumes'), 'policy', 'v').configMap, 'cm').items,
      'i',
    );
    const policyPath = obj(policyItems[0], 'item').path;
    expect(configData.POLICY_FILE).toBe(`${at('policy')}/${String(policyPath)}`);
  });

  it('gets POD_NAMESPACE (and POD_NAME) from the downward API', () => {
    const env = arr(container.env, 'env');
    const fieldPath = (name: string) =>
      obj(obj(byName(env, name, 'env').valueFrom, 'valueFrom').fieldRef, 'fieldRef').fieldPath;
    expect(fieldPath('POD_NAMESPACE')).toBe('metadata.namespace');
    expect(fieldPath('POD_NAME')).toBe('metadata.name');
  });

  it('sets resource requests and limits', () => {
    const r = obj(container.resources, 'resources');
    for (const k of ['requests', 'limits']) {
      const v = obj(r[k], k);
      expect(v.cpu, k).toBeDefined();
      expect(v.memory, k).toBeDefined();
    }
  });

  it('starts the production process', () => {
    expect(container.args).toEqual(['run']);
    expect(container.command).toBeUndefined();
  });
});

// ---- ConfigMaps ------------------------------------------------------------------------------------

describe('the ConfigMaps', () => {
  it('hold only strings (Kubernetes rejects numbers and booleans in data)', () => {
    for (const cm of applied.filter((o) => o.kind === 'ConfigMap'))
      for (const [k, v] of Object.entries(obj(cm.data, 'data')))
        expect(typeof v, `${cm.metadata.name}.${k}`).toBe('string');
  });

  it('default to dry run on a first install and name the cluster, region and port', () => {
    expect(configData.DRY_RUN).toBe('true');
    expect(configData.CLUSTER_NAME).toBeTruthy();
    expect(configData.AWS_REGION).toMatch(/^[a-z]{2}-[a-z]+-\d$/);
    expect(configData.PORT).toBe('3000');
    expect(Number(configData.MONITOR_INTERVAL)).toBeGreaterThan(0);
    expect(configData.SLACK_CHANNEL).toBeTruthy();
  });

  it('carries no secret in the ConfigMap', () => {
    for (const key of Object.keys(configData)) expect(key).not.toMatch(/TOKEN|SECRET|PASSWORD/);
  });

  it('ships an example policy that the real policy parser accepts', () => {
    const text = String(obj(one('ConfigMap', 'gpu-medic-policy').data, 'data')['policy.yaml']);
    const policy = parsePolicy(text, 'policy-configmap.yaml');
    expect(policy.remediation.rules[0]).toEqual({ match: { xid: 79 }, action: 'replace', mode: 'auto' });
    expect(policy.remediation.llmDestructiveMode).toBe('approve');
  });
});

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

// ---- IAM ---------------------------------------------------------------------------------------------

const expectedIamActions = [
  'aps:QueryMetrics',
  'autoscaling:DescribeAutoScalingInstances',
  'autoscaling:TerminateInstanceInAutoScalingGroup',
  'bedrock:InvokeModel',
  'cloudwatch:PutMetricData',
  'ec2:CreateTags',
  'ec2:DescribeInstances',
  'ec2:RebootInstances',
  'ec2:TerminateInstances',
  'eks:DescribeNodegroup',
  'lambda:InvokeFunction',
  'sns:Publish',
];

describe('IAM policy', () => {
  const policy = loadIamPolicy();
  const statementsFor = (action: string) => policy.Statement.filter((s) => asList(s.Action).includes(action));

  it('allows exactly the AWS actions the code calls', () => {
    expect(policy.Version).toBe('2012-10-17');
    expect(loadIamActions()).toEqual(expectedIamActions);
    for (const s of policy.Statement) {
      expect(s.Effect).toBe('Allow');
      for (const a of asList(s.Action)) expect(a).not.toContain('*');
    }
  });

  it('reads node groups (EKS node auto repair) only in the one cluster', () => {
    const statements = statementsFor('eks:DescribeNodegroup');
    expect(statements).toHaveLength(1);
    for (const s of statements) {
      expect(asList(s.Resource)).toEqual(['arn:aws:eks:us-east-1:111122223333:nodegroup/my-gpu-cluster/*/*']);
    }
  });

  it('queries (DCGM_SOURCE=prometheus, optional) only one Amazon Managed Prometheus workspace', () => {
    const statements = statementsFor('aps:QueryMetrics');
    expect(statements.map((s) => [s.Sid, asList(s.Action), asList(s.Resource)])).toEqual([
      [
        'QueryTheAmpWorkspace',
        ['aps:QueryMetrics'],
        ['arn:aws:aps:us-east-1:111122223333:workspace/ws-EXAMPLE'],
      ],
    ]);
  });

  it('uses Resource "*" only where AWS has no resource-level permission, or under a condition', () => {
    for (const s of policy.Statement) {
      if (!asList(s.Resource).includes('*')) continue;
      const actions = asList(s.Action);
      const describeOnly = actions.every((a) => /:Describe/.test(a));
      expect(describeOnly || s.Condition !== undefined, s.Sid).toBe(true);
    }
  });

  it.each([
    ['ec2:RebootInstances', 'aws:ResourceTag/'],
    ['ec2:TerminateInstances', 'aws:ResourceTag/'],
    ['ec2:CreateTags', 'aws:ResourceTag/'],
    ['autoscaling:TerminateInstanceInAutoScalingGroup', 'autoscaling:ResourceTag/'],
  ])('scopes %s to the cluster by a %s condition in every statement', (action, keyPrefix) => {
    const statements = statementsFor(action);
    expect(statements.length).toBeGreaterThan(0);
    for (const s of statements) {
      const keys = Object.values(s.Condition ?? {}).flatMap((c) => Object.keys(c));
      expect(
        keys.some((k) => k.startsWith(keyPrefix)),
        s.Sid,
      ).toBe(true);
      expect(
        keys.some((k) => k.includes('eks:cluster-name') || k.includes('kubernetes.io/cluster/')),
        s.Sid,
      ).toBe(true);
    }
  });

  it('lets ec2:CreateTags write only gpu-medic: tag keys (RMA evidence), never another tag', () => {
    const statements = statementsFor('ec2:CreateTags');
    expect(statements).toHaveLength(2);
    for (const s of statements) {
      expect(asList(s.Action), s.Sid).toEqual(['ec2:CreateTags']);
      expect(s.Condition?.['ForAllValues:StringLike']?.['aws:TagKeys'], s.Sid).toEqual(['gpu-medic:*']);
    }
  });

  it('limits PutMetricData to the CloudWatch namespace configured in the ConfigMap', () => {
    const [s] = statementsFor('cloudwatch:PutMetricData');
    expect(s?.Condition?.StringEquals?.['cloudwatch:namespace']).toBe(configData.CLOUDWATCH_NAMESPACE);
  });

  it('names the SNS topic and the Lambda function by ARN', () => {
    for (const r of statementsFor('sns:Publish').flatMap((s) => asList(s.Resource)))
      expect(r).toMatch(/^arn:aws:sns:[a-z0-9-]+:\d{12}:[\w-]+$/);
    for (const r of statementsFor('lambda:InvokeFunction').flatMap((s) => asList(s.Resource)))
      expect(r).toMatch(/^arn:aws:lambda:[a-z0-9-]+:\d{12}:function:[\w-]+(:\*)?$/);
  });

  it('allows the default Bedrock model through its cross-Region profile, in any destination Region', () => {
    const statements = statementsFor('bedrock:InvokeModel');
    const resources = statements.flatMap((s) => asList(s.Resource));
    const profile = `inference-profile/${defaultBedrockModelIdFor('us-east-1')}`;
    expect(profile).toBe('inference-profile/us.anthropic.claude-sonnet-4-6');
    expect(resources.some((r) => r.endsWith(profile))).toBe(true);
    const model = statements.find((s) =>
      asList(s.Resource).includes('arn:aws:bedrock:*::foundation-model/anthropic.claude-sonnet-4-6'),
    );
    expect(
      JSON.stringify(model?.Condition?.StringEquals?.['bedrock:InferenceProfileArn']).endsWith(`${profile}"`),
    ).toBe(true);
  });

  it('ships a Pod Identity trust policy', () => {
    const trust = loadIamPolicy(
      iamPolicyPath.replace('gpu-medic-policy.json', 'trust-policy-pod-identity.json'),
    );
    const [s] = trust.Statement;
    expect(obj((s as unknown as Obj).Principal, 'Principal').Service).toBe('pods.eks.amazonaws.com');
    expect(asList(s?.Action).sort()).toEqual(['sts:AssumeRole', 'sts:TagSession']);
  });
});

// ---- Slack app manifest -----------------------------------------------------------------------------

describe('slack-manifest.yml', () => {
  const manifest = obj(parseYaml(readFileSync(`${repoRoot}/slack-manifest.yml`, 'utf8')), 'slack manifest');
  const features = obj(manifest.features, 'features');
  const settings = obj(manifest.settings, 'settings');

  it('defines the /gpu command with a usage hint', () => {
    const cmd = obj(arr(features.slash_commands, 'slash_commands')[0], 'command');
    expect(cmd.command).toBe('/gpu');
    expect(String(cmd.usage_hint)).toContain('status');
    expect(String(cmd.usage_hint)).toContain('exclude <node>');
    expect(cmd.description).toBeTruthy();
  });

  it('turns on interactivity, the App Home tab and Socket Mode', () => {
    expect(obj(settings.interactivity, 'interactivity').is_enabled).toBe(true);
    expect(settings.socket_mode_enabled).toBe(true);
    expect(obj(features.app_home, 'app_home').home_tab_enabled).toBe(true);
    expect(obj(settings.event_subscriptions, 'events').bot_events).toEqual(['app_home_opened']);
    expect(obj(features.bot_user, 'bot_user').display_name).toBe('gpu-medic');
    expect(obj(manifest.display_information, 'display').name).toBe('gpu-medic');
  });

  it('asks for the bot scopes the app uses and no more', () => {
    const scopes = obj(obj(manifest.oauth_config, 'oauth').scopes, 'scopes');
    expect([...arr(scopes.bot, 'bot scopes')].sort()).toEqual([
      'chat:write',
      'commands',
      'files:write',
      'usergroups:read',
    ]);
    expect(scopes.user).toBeUndefined();
  });
});

// ---- Dockerfile --------------------------------------------------------------------------------------

interface Stage {
  from: string;
  name?: string;
  lines: string[];
}

/** Dockerfile instructions (continuations joined, comments dropped) grouped by build stage. */
function dockerStages(text: string): Stage[] {
  const joined = text.replace(/\\\r?\n/g, ' ');
  const stages: Stage[] = [];
  for (const raw of joined.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) {
      stages.push({ from: from[1] as string, name: from[2], lines: [] });
      continue;
    }
    stages.at(-1)?.lines.push(line);
  }
  return stages;
}

describe('Dockerfile', () => {
  const text = readFileSync(`${repoRoot}/Dockerfile`, 'utf8');
  const stages = dockerStages(text);
  const runtime = stages.at(-1) as Stage;
  const has = (s: Stage, re: RegExp) => s.lines.some((l) => re.test(l));

  it('is multi-stage on Node 20 bookworm', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/ARG NODE_IMAGE=node:20-bookworm-slim/);
    for (const s of stages) expect(s.from).toMatch(/^\$\{NODE_IMAGE\}$/);
  });

  it('compiles TypeScript in a build stage and installs production dependencies with npm ci --omit=dev', () => {
    const build = stages.find((s) => s.name === 'build') as Stage;
    expect(has(build, /^RUN npm ci\b/)).toBe(true);
    expect(has(build, /npm run build/)).toBe(true);
    expect(stages.some((s) => has(s, /^RUN npm ci --omit=dev\b/))).toBe(true);
  });

  it('runs as a non-root user in the final stage, with no compiler installed there', () => {
    const users = runtime.lines.filter((l) => /^USER\s/i.test(l));
    expect(users).toHaveLength(1);
    const user = (users[0] as string).split(/\s+/)[1] as string;
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    expect(user).toMatch(/^10001/);
    expect(has(runtime, /g\+\+|build-essential|apt-get install/)).toBe(false);
    expect(has(runtime, /^RUN npm ci\b(?!.*--omit=dev)/)).toBe(false);
  });

  it('ships dist/, bin/, data/ and production node_modules, and starts `gpu-medic run`', () => {
    expect(has(runtime, /^COPY --from=build \/app\/dist \.\/dist$/)).toBe(true);
    expect(has(runtime, /^COPY --from=deps \/app\/node_modules \.\/node_modules$/)).toBe(true);
    expect(has(runtime, /^COPY bin \.\/bin$/)).toBe(true);
    expect(has(runtime, /^COPY data\/\*\.csv \.\/data\/$/)).toBe(true);
    expect(runtime.lines).toContain('ENTRYPOINT ["node", "--heap-growing-percent=50", "bin/gpu-medic.js"]');
    expect(runtime.lines).toContain('CMD ["run"]');
    expect(runtime.lines).toContain('EXPOSE 3000');
  });

  it('sets production env and a DB path on the volume the Deployment mounts', () => {
    const env = runtime.lines.filter((l) => l.startsWith('ENV ')).join(' ');
    expect(env).toContain('NODE_ENV=production');
    expect(env).toContain('AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true');
    expect(env).toContain(`DB_PATH=${String(configData.DB_PATH)}`);
  });

  it('builds src/ with tsconfig.build.json', () => {
    const build = stages.find((s) => s.name === 'build') as Stage;
    expect(has(build, /^COPY src \.\/src$/)).toBe(true);
    expect(has(build, /^COPY tsconfig\.json tsconfig\.build\.json \.\/$/)).toBe(true);
    const pkg = JSON.parse(readFileSync(`${repoRoot}/package.json`, 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json');
  });

  it('leaves the simulator, the benchmarks, the evaluation and test code out of the context and the build', () => {
    const ignore = readFileSync(`${repoRoot}/.dockerignore`, 'utf8').split(/\r?\n/);
    const left = imageExclusions();
    for (const p of imageMustLeaveOut) {
      expect(ignore, p).toContain(p);
      expect(left, p).toContain(p);
    }
    // The context and the build leave out the same src/ files.
    expect(ignore.filter((l) => l.startsWith('src/')).sort()).toEqual([...left].sort());
    // What is left out really is: sample paths of each kind match.
    for (const f of [
      'src/sim/cluster.ts',
      'src/bench/run.ts',
      'src/eval/suite.ts',
      'src/commands/demo.ts',
      'src/app/chat.test.ts',
      'src/remediate/testing/harness.ts',
      'src/store/kill-writer.fixture.ts',
    ])
      expect(isLeftOut(f, left), f).toBe(true);
    for (const f of ['src/cli.ts', 'src/app/runtime.ts', 'src/commands/run.ts', 'src/commands/scan.ts'])
      expect(isLeftOut(f, left), f).toBe(false);
  });

  it('builds: no file the image keeps imports one it leaves out (src/sim is the tests’ and tools’ only)', () => {
    const left = imageExclusions();
    const kept = productionSources(left);
    expect(kept).toContain('src/cli.ts');
    const offenders: string[] = [];
    for (const file of kept) {
      // A literal dynamic import counts too: the compiler follows it into the build.
      for (const target of relativeImports(file)) {
        if (isLeftOut(target, left)) offenders.push(`${file} → ${target}`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('keeps secrets, local databases and build output out of the build context', () => {
    const ignore = readFileSync(`${repoRoot}/.dockerignore`, 'utf8').split(/\r?\n/);
    for (const p of ['node_modules', 'dist', '.git', 'data/*.db', '.env']) expect(ignore).toContain(p);
    for (const needed of ['src', 'bin', 'data', 'package.json', 'package-lock.json'])
      expect(ignore).not.toContain(needed);
  });
});

/** What the image must leave out: the tools that need the simulator, and tests with their support code. */
const imageMustLeaveOut = [
  'src/sim',
  'src/bench',
  'src/eval',
  'src/commands/demo.ts',
  'src/commands/bench.ts',
  'src/commands/eval.ts',
  'src/**/*.test.ts',
];

/** tsconfig.build.json's `exclude`: what the production build leaves out of src/. */
function imageExclusions(): string[] {
  const tsconfig = JSON.parse(readFileSync(`${repoRoot}/tsconfig.build.json`, 'utf8')) as {
    exclude: string[];
  };
  return tsconfig.exclude;
}

/** A tsconfig / .dockerignore pattern (`**`, `*`, or a directory) as a regular expression over paths. */
function patternRegExp(pattern: string): RegExp {
  const body = pattern
    .split(/(\*\*\/|\*)/)
    .map((part) =>
      part === '**/' ? '(?:.*/)?' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('');
  return new RegExp(`^${body}(?:/.*)?$`);
}

function isLeftOut(path: string, patterns: string[]): boolean {
  return patterns.some((p) => patternRegExp(p).test(path));
}

/** Every TypeScript file of src/ the production build compiles. */
function productionSources(left: string[]): string[] {
  return (readdirSync(`${repoRoot}/src`, { recursive: true }) as string[])
    .map((f) => `src/${f.split('\\').join('/')}`)
    .filter((f) => f.endsWith('.ts') && !isLeftOut(f, left));
}

/** The src/ files a source file imports (statically or by a literal `import()`), as .ts paths. */
function relativeImports(file: string): string[] {
  // Comments dropped: a path quoted in a comment is not an import.
  const text = readFileSync(`${repoRoot}/${file}`, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  const dir = file.split('/').slice(0, -1);
  const found: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)) {
    const parts = [...dir];
    for (const seg of (m[1] as string).split('/')) {
      if (seg === '..') parts.pop();
      else if (seg !== '.') parts.push(seg);
    }
    found.push(parts.join('/').replace(/\.js$/, '.ts'));
  }
  return found;
}

// ---- dcgm-exporter counters (manifests/dcgm-exporter/) ---------------------------------------------------

/** dcgm-exporter's counters CSV, read as the exporter does: `#` comments, `FIELD, type, help` rows. */
function readCountersCsv(text: string): { field: string; type: string; help: string }[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((line) => {
      const [field = '', type = '', ...help] = line.split(',').map((p) => p.trim());
      return { field, type, help: help.join(',') };
    });
}

describe('manifests/dcgm-exporter: the counters file gpu-medic needs', () => {
  const dcgmDir = `${manifestsRoot}/dcgm-exporter`;
  const csv = readCountersCsv(readFileSync(`${dcgmDir}/gpu-medic-counters.csv`, 'utf8'));
  const fields = new Set(csv.map((r) => r.field));

  it('parses as dcgm-exporter CSV: one DCGM field per row, a known type, a help text, no duplicates', () => {
    expect(csv.length).toBeGreaterThan(20);
    for (const r of csv) {
      expect(r.field).toMatch(/^DCGM_(FI|EXP)_[A-Z0-9_]+$/);
      expect(['gauge', 'counter', 'label']).toContain(r.type);
      expect(r.help.length).toBeGreaterThan(0);
    }
    expect(fields.size).toBe(csv.length);
  });

  it('enables every metric the exporter parser reads (taken from the parser, not a copy)', () => {
    expect(EXPORTER_METRICS_READ.length).toBeGreaterThan(20);
    const missing = EXPORTER_METRICS_READ.filter((m) => !fields.has(m));
    expect(missing).toEqual([]);
    for (const m of EXPORTER_METRICS_READ) expect(csv.find((r) => r.field === m)?.type, m).not.toBe('label');
  });

  it('holds every family the simulator renders with the full counter set', () => {
    const text = renderExporterMetrics('n1', [makeGpu(0, new SeededRandom(1))], { counters: 'full' });
    const rendered = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] ?? '');
    expect(rendered.filter((f) => !fields.has(f))).toEqual([]);
  });

  it('is a kustomization making ConfigMap gpu-medic-dcgm-counters with the key the GPU Operator mounts', () => {
    const k = obj(loadYamlDocuments(`${dcgmDir}/kustomization.yaml`)[0], 'dcgm-exporter kustomization');
    expect(k.namespace).toBe('gpu-operator');
    const gen = obj(arr(k.configMapGenerator, 'configMapGenerator')[0], 'generator');
    expect(gen.name).toBe('gpu-medic-dcgm-counters');
    // ClusterPolicy dcgmExporter.config.name is mounted at /etc/dcgm-exporter/dcgm-metrics.csv.
    expect(arr(gen.files, 'files')).toEqual(['dcgm-metrics.csv=gpu-medic-counters.csv']);
    expect(obj(k.generatorOptions, 'generatorOptions').disableNameSuffixHash).toBe(true);
    // Not part of gpu-medic's own base: it belongs in the exporter's namespace, applied on its own.
    expect(resourceFiles.some((f) => f.includes('dcgm-exporter'))).toBe(false);
  });
});

// ---- Prometheus alert rules and the Alertmanager receiver (manifests/prometheus/) --------------------------

describe('manifests/prometheus: alert rules on DCGM metrics and the Alertmanager receiver', () => {
  const promDir = `${manifestsRoot}/prometheus`;
  const rulesFile = obj(parseYaml(readFileSync(`${promDir}/rules.yml`, 'utf8')), 'rules.yml');
  const groups = arr(rulesFile.groups, 'rules.yml groups').map((g, i) => obj(g, `groups[${i}]`));
  const rules = groups.flatMap((g) => arr(g.rules, `group ${g.name} rules`).map((r) => obj(r, 'rule')));

  it('is a valid rules file: named groups of alerts with an expression, labels and a summary', () => {
    expect(groups.length).toBeGreaterThan(0);
    expect(rules.length).toBeGreaterThanOrEqual(5);
    const names = rules.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const r of rules) {
      expect(r.alert, JSON.stringify(r)).toMatch(/^[A-Za-z][A-Za-z0-9_]*$/);
      expect(typeof r.expr).toBe('string');
      const labels = obj(r.labels, `${r.alert} labels`);
      // The label the receiver's route matches on.
      expect(labels.gpu_medic, String(r.alert)).toBe('scan');
      expect(['critical', 'warning']).toContain(labels.severity);
      expect(String(obj(r.annotations, `${r.alert} annotations`).summary)).toMatch(/\$labels\.Hostname/);
    }
  });

  it('names only metrics the exporter parser reads (taken from the parser, not a copy)', () => {
    const named = new Set(
      rules.flatMap((r) => [...String(r.expr).matchAll(/\b(DCGM_[A-Z0-9_]+)\b/g)].map((m) => m[1])),
    );
    expect(named.size).toBeGreaterThanOrEqual(5);
    expect([...named].filter((m) => !EXPORTER_METRICS_READ.includes(m as string))).toEqual([]);
    // The exporter's sticky last-XID gauge, the one fault signal every stock exporter carries, is covered.
    expect(named.has('DCGM_FI_DEV_XID_ERRORS')).toBe(true);
  });

  it('ships the same rules as a PrometheusRule for the Prometheus Operator', () => {
    const docs = loadYamlDocuments(`${promDir}/prometheus-rule.yaml`);
    expect(docs).toHaveLength(1);
    const pr = docs[0] as unknown as Obj;
    expect(pr.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(pr.kind).toBe('PrometheusRule');
    expect(obj(pr.metadata, 'metadata').name).toBe('gpu-medic-dcgm');
    expect(pr.spec).toEqual(rulesFile);
  });

  it('routes gpu_medic="scan" alerts to POST /webhooks/alertmanager with a bearer token from a file', () => {
    const am = obj(parseYaml(readFileSync(`${promDir}/alertmanager-receiver.yaml`, 'utf8')), 'receiver');
    const route = obj(arr(obj(am.route, 'route').routes, 'routes')[0], 'routes[0]');
    expect(route.receiver).toBe('gpu-medic');
    expect(arr(route.matchers, 'matchers')).toEqual(['gpu_medic="scan"']);
    expect(arr(route.group_by, 'group_by')).toEqual(expect.arrayContaining(['Hostname', 'hostname']));
    expect(route.continue).toBe(true);
    const receiver = byName(arr(am.receivers, 'receivers'), 'gpu-medic', 'receivers');
    const hook = obj(arr(receiver.webhook_configs, 'webhook_configs')[0], 'webhook_configs[0]');
    const url = new URL(String(hook.url));
    expect(url.pathname).toBe('/webhooks/alertmanager');
    // The Service's port and name, in gpu-medic's namespace.
    const service = one('Service', 'gpu-medic');
    const port = obj(arr(obj(service.spec, 'spec').ports, 'ports')[0], 'port');
    expect(url.host).toBe(`gpu-medic.gpu-medic.svc:${port.port}`);
    expect(hook.send_resolved).toBe(false);
    const auth = obj(obj(hook.http_config, 'http_config').authorization, 'authorization');
    expect(auth.type).toBe('Bearer');
    expect(String(auth.credentials_file)).toMatch(/^\/etc\/alertmanager\/secrets\/.+/);
    expect(auth.credentials).toBeUndefined();
  });
});
