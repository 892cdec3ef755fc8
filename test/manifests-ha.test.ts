/**
 * manifests/overlays/ha, read as a reviewer would: a kustomize overlay over the base that runs two
 * replicas on PostgreSQL. No cluster and no kustomize binary here: the overlay's files are parsed and each
 * fact checked against the base they patch.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadYamlDocuments, manifestsDir, manifestsRoot } from './support/rbac.js';

type Obj = Record<string, unknown>;
const haDir = join(manifestsRoot, 'overlays/ha');
const docs = (file: string) => loadYamlDocuments(join(haDir, file)) as unknown as Obj[];
const kustomization = docs('kustomization.yaml')[0] as Obj;
const resources = kustomization.resources as string[];
const patches = (kustomization.patches as { path: string }[]).map((p) => p.path);
const overlayObjects = [...resources.filter((r) => r.endsWith('.yaml')), ...patches].flatMap((f) =>
  docs(f).map((o) => ({ file: f, o })),
);
const of = (kind: string) => overlayObjects.filter(({ o }) => o.kind === kind).map(({ o }) => o);
const deployment = of('Deployment')[0] as Obj;
const spec = deployment.spec as Obj;
const pod = (spec.template as Obj).spec as Obj;
const baseDeployment = (
  loadYamlDocuments(join(manifestsDir, 'deployment.yaml')) as unknown as Obj[]
)[0] as Obj;
const podLabels = ((((baseDeployment.spec as Obj).template as Obj).metadata as Obj).labels ?? {}) as Obj;

describe('manifests/overlays/ha', () => {
  it('is an overlay of the base, every file it names present and every file present named', () => {
    expect(kustomization.kind).toBe('Kustomization');
    expect(resources).toContain('../../base');
    const named = new Set([...resources, ...patches]);
    const onDisk = readdirSync(haDir).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
    // The Secret template is documentation, never applied.
    expect(onDisk.filter((f) => !named.has(f)).sort()).toEqual(['database-secret.example.yaml']);
  });

  it('runs two replicas with a rolling update that never drops below one', () => {
    expect(deployment.metadata).toMatchObject({ name: 'gpu-medic' });
    expect(spec.replicas).toBe(2);
    expect(spec.strategy).toEqual({
      type: 'RollingUpdate',
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
  });

  it('deletes the PersistentVolumeClaim and mounts no claim', () => {
    const deletes = overlayObjects.filter(({ o }) => o.$patch === 'delete').map(({ o }) => o);
    expect(deletes).toEqual([
      expect.objectContaining({ kind: 'PersistentVolumeClaim', metadata: { name: 'gpu-medic-data' } }),
    ]);
    const data = (pod.volumes as Obj[]).find((v) => v.name === 'data');
    expect(data).toMatchObject({ persistentVolumeClaim: null, emptyDir: expect.any(Object) });
  });

  it('has a PodDisruptionBudget keeping one replica, selecting the pods', () => {
    const [pdb] = of('PodDisruptionBudget') as Obj[];
    const pdbSpec = pdb?.spec as Obj;
    expect(pdbSpec.minAvailable).toBe(1);
    const selected = (pdbSpec.selector as Obj).matchLabels as Obj;
    for (const [k, v] of Object.entries(selected)) expect(podLabels[k], k).toBe(v);
  });

  it('spreads the replicas across nodes (required) and zones (preferred)', () => {
    const spread = pod.topologySpreadConstraints as Obj[];
    expect(spread).toContainEqual(
      expect.objectContaining({
        topologyKey: 'kubernetes.io/hostname',
        whenUnsatisfiable: 'DoNotSchedule',
        maxSkew: 1,
      }),
    );
    expect(spread).toContainEqual(expect.objectContaining({ topologyKey: 'topology.kubernetes.io/zone' }));
    const anti = ((pod.affinity as Obj).podAntiAffinity as Obj)
      .requiredDuringSchedulingIgnoredDuringExecution as Obj[];
    expect(anti).toContainEqual(expect.objectContaining({ topologyKey: 'kubernetes.io/hostname' }));
    for (const term of [...spread, ...anti]) {
      const labels = (term.labelSelector as Obj).matchLabels as Obj;
      for (const [k, v] of Object.entries(labels)) expect(podLabels[k], k).toBe(v);
    }
  });

  it('takes DATABASE_URL from a Secret, never a literal', () => {
    const container = (pod.containers as Obj[]).find((c) => c.name === 'gpu-medic') as Obj;
    const env = (container.env as Obj[]).find((e) => e.name === 'DATABASE_URL') as Obj;
    expect(env).toEqual({
      name: 'DATABASE_URL',
      valueFrom: { secretKeyRef: { name: 'gpu-medic-database', key: 'DATABASE_URL' } },
    });
    const template = docs('database-secret.example.yaml')[0] as Obj;
    expect(template).toMatchObject({ kind: 'Secret', metadata: { name: 'gpu-medic-database' } });
    expect(String((template.stringData as Obj).DATABASE_URL)).toMatch(/^postgres:\/\/.*sslmode=verify-full/);
  });
});
