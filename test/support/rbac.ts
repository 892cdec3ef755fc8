/**
 * Reads the permissions gpu-medic ships (manifests/ RBAC and iam/gpu-medic-policy.json) as flat,
 * comparable data, so tests can hold them against what the simulator actually served.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** The kustomize base (manifests/base/); overlays and the DCGM and Prometheus extras sit beside it. */
export const manifestsDir = fileURLToPath(new URL('../../manifests/base/', import.meta.url));
export const manifestsRoot = fileURLToPath(new URL('../../manifests/', import.meta.url));
export const iamPolicyPath = fileURLToPath(new URL('../../iam/gpu-medic-policy.json', import.meta.url));

/** One grant: API group ('' = core), resource with its subresource ('pods/eviction'), verb. */
export interface RbacTriple {
  apiGroup: string;
  resource: string;
  verb: string;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** Every document of one YAML file; throws with the file name on a syntax error or a non-object document. */
export function loadYamlDocuments(path: string): K8sObject[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'), { prettyErrors: true, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: K8sObject[] = [];
  for (const doc of list) {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const js: unknown = doc.toJS();
    if (js === null || js === undefined) continue;
    if (typeof js !== 'object' || Array.isArray(js)) throw new Error(`${path}: a document is not a mapping`);
    out.push(js as K8sObject);
  }
  return out;
}

/** Every object in every *.yaml / *.yml file of manifests/, with the file it came from. */
export function loadManifestObjects(dir = manifestsDir): { file: string; object: K8sObject }[] {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .flatMap((file) => loadYamlDocuments(`${dir}/${file}`).map((object) => ({ file, object })));
}

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

function rulesOf(kind: 'ClusterRole' | 'Role', dir: string): RbacTriple[] {
  const roles = loadManifestObjects(dir).filter((o) => o.object.kind === kind);
  if (roles.length === 0) throw new Error(`no ${kind} in ${dir}`);
  const triples: RbacTriple[] = [];
  for (const { file, object } of roles) {
    for (const rule of (object.rules ?? []) as PolicyRule[]) {
      if (rule.nonResourceURLs) throw new Error(`${file}: nonResourceURLs are not expected`);
      for (const apiGroup of rule.apiGroups ?? [])
        for (const resource of rule.resources ?? [])
          for (const verb of rule.verbs ?? []) triples.push({ apiGroup, resource, verb });
    }
  }
  return sortTriples(dedupe(triples));
}

/** The ClusterRole's grants, one triple per (group, resource, verb), sorted and without duplicates. */
export function loadClusterRoleRules(dir = manifestsDir): RbacTriple[] {
  return rulesOf('ClusterRole', dir);
}

/** The namespaced Role's grants (leader-election leases in gpu-medic's own namespace). */
export function loadRoleRules(dir = manifestsDir): RbacTriple[] {
  return rulesOf('Role', dir);
}

/**
 * The namespace kustomize puts unnamespaced objects in: the `namespace:` field, or the inline
 * NamespaceTransformer (with `unsetOnly`, so objects that name their namespace keep it).
 */
export function kustomizeNamespace(dir = manifestsDir): string {
  const k = loadYamlDocuments(`${dir}/kustomization.yaml`)[0] as Record<string, unknown> | undefined;
  if (typeof k?.namespace === 'string') return k.namespace;
  for (const t of (k?.transformers ?? []) as unknown[]) {
    if (typeof t !== 'string' || !t.includes('NamespaceTransformer')) continue;
    const doc = parseAllDocuments(t)[0]?.toJS() as { metadata?: { namespace?: string } } | undefined;
    if (doc?.metadata?.namespace) return doc.metadata.namespace;
  }
  throw new Error(`${dir}/kustomization.yaml sets no namespace`);
}

/** A namespaced Role as applied: its namespace (its own, else kustomize's) and its grants. */
export interface NamespacedRole {
  name: string;
  namespace: string;
  rules: RbacTriple[];
}

export function loadRoles(dir = manifestsDir): NamespacedRole[] {
  const fallback = kustomizeNamespace(dir);
  return loadManifestObjects(dir)
    .filter((o) => o.object.kind === 'Role')
    .map(({ file, object }) => {
      const triples: RbacTriple[] = [];
      for (const rule of (object.rules ?? []) as PolicyRule[]) {
        if (rule.nonResourceURLs) throw new Error(`${file}: nonResourceURLs are not expected`);
        for (const apiGroup of rule.apiGroups ?? [])
          for (const resource of rule.resources ?? [])
            for (const verb of rule.verbs ?? []) triples.push({ apiGroup, resource, verb });
      }
      return {
        name: object.metadata.name,
        namespace: object.metadata.namespace ?? fallback,
        rules: sortTriples(dedupe(triples)),
      };
    });
}

/**
 * Whether a request in `namespace` ('' = cluster-scoped or all namespaces) is authorized: by the ClusterRole
 * anywhere, by a Role only in its own namespace.
 */
export function grantedIn(
  clusterRules: readonly RbacTriple[],
  roles: readonly NamespacedRole[],
  want: RbacTriple,
  namespace: string,
): boolean {
  if (grants(clusterRules, want)) return true;
  return namespace !== '' && roles.some((r) => r.namespace === namespace && grants(r.rules, want));
}

/** `apps/deployments:get`, core group written as `core`: readable in assertion diffs. */
export function tripleKey(t: RbacTriple): string {
  return `${t.apiGroup === '' ? 'core' : t.apiGroup}/${t.resource}:${t.verb}`;
}

/** Whether `rules` grant `want`, honouring RBAC's `*` wildcards. */
export function grants(rules: readonly RbacTriple[], want: RbacTriple): boolean {
  return rules.some(
    (r) =>
      (r.apiGroup === '*' || r.apiGroup === want.apiGroup) &&
      (r.resource === '*' || r.resource === want.resource) &&
      (r.verb === '*' || r.verb === want.verb),
  );
}

function dedupe(triples: RbacTriple[]): RbacTriple[] {
  const seen = new Map<string, RbacTriple>();
  for (const t of triples) seen.set(tripleKey(t), t);
  return [...seen.values()];
}

function sortTriples(triples: RbacTriple[]): RbacTriple[] {
  // Code-unit order, the same as a plain Array#sort() of the keys.
  return triples.sort((a, b) => (tripleKey(a) < tripleKey(b) ? -1 : tripleKey(a) > tripleKey(b) ? 1 : 0));
}

export interface IamStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface IamPolicyDocument {
  Version: string;
  Statement: IamStatement[];
}

export function loadIamPolicy(path = iamPolicyPath): IamPolicyDocument {
  const doc = JSON.parse(readFileSync(path, 'utf8')) as IamPolicyDocument;
  if (!Array.isArray(doc.Statement)) throw new Error(`${path}: Statement must be an array`);
  return doc;
}

export function asList(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** Every action the IAM policy allows (`ec2:RebootInstances`, …), sorted and without duplicates. */
export function loadIamActions(path = iamPolicyPath): string[] {
  const actions = loadIamPolicy(path)
    .Statement.filter((s) => s.Effect === 'Allow')
    .flatMap((s) => asList(s.Action));
  return [...new Set(actions)].sort();
}

// ---- served vs granted -------------------------------------------------------------------------------

/** The fields of a simulator K8s log entry (src/sim/k8s-server.ts K8sRecordedRequest) that RBAC looks at. */
export interface ServedK8sRequest {
  path: string;
  verb: string;
  resource?: string;
  subresource?: string;
  /** '' for the core group. */
  apiGroup?: string;
  namespace?: string;
}

/**
 * The RBAC triple an API server authorizes for one served request (`pods/eviction` create …);
 * undefined for a non-resource URL (`/version`, `/healthz`, discovery), which RBAC grants through
 * nonResourceURLs (the built-in system:discovery roles), not through resources.
 */
export function servedTriple(r: ServedK8sRequest): RbacTriple | undefined {
  if (r.resource === undefined) return undefined;
  const resource = r.subresource ? `${r.resource}/${r.subresource}` : r.resource;
  return { apiGroup: r.apiGroup ?? '', resource, verb: r.verb };
}

/**
 * The IAM action that authorizes an API operation. Mostly `service:Operation`; the exceptions are the
 * APIs whose IAM action has another name (Lambda Invoke, Bedrock Converse).
 */
const IAM_ACTION_EXCEPTIONS: Record<string, string> = {
  'lambda:Invoke': 'lambda:InvokeFunction',
  'lambda:InvokeAsync': 'lambda:InvokeAsync',
  'bedrock:Converse': 'bedrock:InvokeModel',
  'bedrock:ConverseStream': 'bedrock:InvokeModelWithResponseStream',
  'bedrock:InvokeModel': 'bedrock:InvokeModel',
  'bedrock:InvokeModelWithResponseStream': 'bedrock:InvokeModelWithResponseStream',
};
const IAM_PLAIN_SERVICES = new Set(['ec2', 'autoscaling', 'cloudwatch', 'sns', 'eks']);

/** `sns` + `Publish` → `sns:Publish`; undefined for an operation this table does not know (the test fails on it). */
export function iamActionFor(service: string, operation: string | undefined): string | undefined {
  if (!operation) return undefined;
  const key = `${service}:${operation}`;
  if (key in IAM_ACTION_EXCEPTIONS) return IAM_ACTION_EXCEPTIONS[key];
  return IAM_PLAIN_SERVICES.has(service) ? key : undefined;
}

export interface GrantComparison {
  /** Served, but no rule grants it: the deployment would get 403 / AccessDenied. */
  missing: string[];
  /** Granted, never served and not allow-listed: more privilege than the code uses. */
  unused: string[];
  /** Allow-list entries that are served after all or granted by nothing: the allow-list went stale. */
  staleAllowances: string[];
}

/** Holds RBAC grants (with `*` wildcards) against served triples; `allowUnused` maps tripleKey → reason. */
export function compareRbac(
  granted: readonly RbacTriple[],
  served: readonly RbacTriple[],
  allowUnused: Readonly<Record<string, string>> = {},
): GrantComparison {
  const missing = served.filter((s) => !grants(granted, s)).map(tripleKey);
  const usedBy = (g: RbacTriple) => served.some((s) => grants([g], s));
  const unused = granted.filter((g) => !usedBy(g) && !(tripleKey(g) in allowUnused)).map(tripleKey);
  const grantedKeys = new Set(granted.map(tripleKey));
  const servedKeys = new Set(served.map(tripleKey));
  const staleAllowances = Object.keys(allowUnused).filter((k) => servedKeys.has(k) || !grantedKeys.has(k));
  return { missing: uniqueSorted(missing), unused: uniqueSorted(unused), staleAllowances };
}

function iamMatches(pattern: string, action: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`, 'i');
  return re.test(action);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
}

/** Holds IAM policy actions (with `*` wildcards) against served actions; `allowUnused` maps action → reason. */
export function compareIam(
  granted: readonly string[],
  served: readonly string[],
  allowUnused: Readonly<Record<string, string>> = {},
): GrantComparison {
  const missing = served.filter((s) => !granted.some((g) => iamMatches(g, s)));
  const unused = granted.filter((g) => !served.some((s) => iamMatches(g, s)) && !(g in allowUnused));
  const staleAllowances = Object.keys(allowUnused).filter((k) => served.includes(k) || !granted.includes(k));
  return { missing: uniqueSorted(missing), unused: uniqueSorted(unused), staleAllowances };
}

function uniqueSorted(list: string[]): string[] {
  return [...new Set(list)].sort();
}

/** A readable failure message: what is missing, what is unused, what the allow-list says wrongly. */
export function describeComparison(what: string, c: GrantComparison): string {
  const lines = [`${what}:`];
  if (c.missing.length) lines.push(`  served but NOT granted: ${c.missing.join(', ')}`);
  if (c.unused.length) lines.push(`  granted but NEVER served: ${c.unused.join(', ')}`);
  if (c.staleAllowances.length) lines.push(`  stale allow-list entries: ${c.staleAllowances.join(', ')}`);
  return lines.join('\n');
}
