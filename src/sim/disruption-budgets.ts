import { podKey } from './cluster-types.js';
import type { KubePdb, KubePod } from './k8s-objects.js';
import { ApiError, type ResourceStore } from './resource-store.js';

/**
 * The PodDisruptionBudget controller and the Eviction API's check: each PDB's status follows its pods, and a
 * test (or the control API) can pin `disruptionsAllowed` to drive a drain into the 429 path.
 */
export class DisruptionBudgets {
  /** Pinned `status.disruptionsAllowed` by PDB key; each eviction through a pinned PDB consumes one. */
  private readonly overrides = new Map<string, number>();

  constructor(private readonly store: ResourceStore) {}

  get(namespace: string, name: string): KubePdb | undefined {
    const p = this.store.get<KubePdb>('poddisruptionbudgets', namespace, name);
    return p ? structuredClone(p) : undefined;
  }

  /** Pins a PDB's `status.disruptionsAllowed` (each eviction still consumes one). */
  pin(namespace: string, name: string, n: number): void {
    if (!this.store.get('poddisruptionbudgets', namespace, name))
      throw new ApiError(404, 'NotFound', `poddisruptionbudgets.policy "${name}" not found`);
    this.overrides.set(podKey(namespace, name), n);
    this.recompute();
  }

  /**
   * The Eviction API's admission: 429 while a PDB matching the pod allows no disruption; otherwise the
   * eviction consumes one from every pinned PDB that matches (the caller then terminates the pod).
   */
  admitEviction(p: KubePod): void {
    const pdbs = this.matching(p);
    const blocked = pdbs.find((b) => b.status.disruptionsAllowed <= 0);
    if (blocked)
      throw new ApiError(
        429,
        'TooManyRequests',
        "Cannot evict pod as it would violate the pod's disruption budget.",
        {
          causes: [
            {
              reason: 'DisruptionBudget',
              message: `The disruption budget ${blocked.metadata.name} needs ${blocked.status.desiredHealthy} healthy pods and has ${blocked.status.currentHealthy} currently`,
            },
          ],
        },
      );
    for (const b of pdbs) {
      const key = podKey(b.metadata.namespace, b.metadata.name);
      const pinned = this.overrides.get(key);
      if (pinned !== undefined) this.overrides.set(key, Math.max(0, pinned - 1));
    }
  }

  private matching(p: KubePod): KubePdb[] {
    return this.store
      .list<KubePdb>('poddisruptionbudgets', p.metadata.namespace)
      .filter((b) =>
        Object.entries(b.spec.selector.matchLabels).every(([k, v]) => p.metadata.labels?.[k] === v),
      );
  }

  /** Brings every PDB's status in line with its pods (written only when something changed, as a controller would). */
  recompute(): void {
    for (const b of this.store.list<KubePdb>('poddisruptionbudgets')) {
      const pods = this.store
        .list<KubePod>('pods', b.metadata.namespace)
        .filter((p) =>
          Object.entries(b.spec.selector.matchLabels).every(([k, v]) => p.metadata.labels?.[k] === v),
        );
      const healthy = pods.filter(
        (p) => p.status.phase === 'Running' && !p.metadata.deletionTimestamp,
      ).length;
      const expected = pods.length;
      const desired =
        typeof b.spec.minAvailable === 'number'
          ? b.spec.minAvailable
          : typeof b.spec.maxUnavailable === 'number'
            ? Math.max(0, expected - b.spec.maxUnavailable)
            : expected;
      const pinned = this.overrides.get(podKey(b.metadata.namespace, b.metadata.name));
      const allowed = pinned ?? Math.max(0, healthy - desired);
      const st = b.status;
      if (
        st.currentHealthy === healthy &&
        st.desiredHealthy === desired &&
        st.expectedPods === expected &&
        st.disruptionsAllowed === allowed
      )
        continue;
      this.store.update<KubePdb>('poddisruptionbudgets', b.metadata.namespace, b.metadata.name, (pdb) => {
        pdb.status = {
          ...pdb.status,
          currentHealthy: healthy,
          desiredHealthy: desired,
          expectedPods: expected,
          disruptionsAllowed: allowed,
        };
        return pdb;
      });
    }
  }
}
