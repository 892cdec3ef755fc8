/**
 * The deployment artifacts as the test/manifests*.test.ts suites read them: tiny typed accessors over
 * untyped YAML, and the kustomize base's applied objects with the Deployment's pod spec, its container and
 * the gpu-medic ConfigMap picked out (each lookup throws when the manifest does not hold what it names).
 */
import { type K8sObject, loadManifestObjects, loadYamlDocuments, manifestsDir } from './rbac.js';

// ---- tiny typed accessors over untyped YAML ---------------------------------------------------------

export type Obj = Record<string, unknown>;
export function obj(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} is not a mapping`);
  return v as Obj;
}
export function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new Error(`${what} is not a list`);
  return v;
}
export function byName(list: unknown[], name: string, what: string): Obj {
  const hit = list.map((x, i) => obj(x, `${what}[${i}]`)).find((x) => x.name === name);
  if (!hit) throw new Error(`${what} has no entry named ${name}`);
  return hit;
}

export const entries = loadManifestObjects();
export const objects = entries.map((e) => e.object);
export const kustomization = loadYamlDocuments(`${manifestsDir}/kustomization.yaml`)[0] as unknown as Obj;
export const resourceFiles = arr(kustomization.resources, 'kustomization.resources') as string[];
export const applied = entries.filter((e) => resourceFiles.includes(e.file)).map((e) => e.object);

export function one(kind: string, name?: string): K8sObject {
  const hits = applied.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (hits.length !== 1)
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${hits.length}`);
  return hits[0] as K8sObject;
}

export const deployment = one('Deployment');
export const podSpec = obj(obj(obj(deployment.spec, 'spec').template, 'template').spec, 'pod spec');
export const container = obj(arr(podSpec.containers, 'containers')[0], 'container');
export const configMap = one('ConfigMap', 'gpu-medic-config');
export const configData = obj(configMap.data, 'ConfigMap data');
