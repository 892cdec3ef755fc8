/**
 * The deployment artifacts in manifests/, read as a reviewer would: the kustomize base, the Deployment's
 * hardening, the ConfigMaps, the dcgm-exporter counters file and the Prometheus alert rules. Docker and a
 * cluster are not available here, so these tests check structure and cross-references (a ConfigMap the
 * Deployment names must exist, the DB path must be on the volume, …) rather than a live apply. RBAC, the IAM
 * policy, the Slack app manifest and the Dockerfile have their own manifests-*.test.ts.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { EXPORTER_METRICS_READ } from '../src/collect/parse/exporter.js';
import { parsePolicy } from '../src/config/policy-file.js';
import { renderExporterMetrics } from '../src/sim/dcgm-exporter.js';
import { SeededRandom } from '../src/sim/seeded-random.js';
import { makeGpu } from '../src/sim/sim-gpu.js';
import {
  applied,
  arr,
  byName,
  configData,
  configMap,
  container,
  deployment,
  entries,
  kustomization,
  type Obj,
  obj,
  objects,
  one,
  podSpec,
  resourceFiles,
} from './support/manifests.js';
import { kustomizeNamespace, loadYamlDocuments, manifestsDir, manifestsRoot } from './support/rbac.js';

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
