import type { KubeLease } from './k8s-objects.js';
import { ApiError, type ResourceStore } from './resource-store.js';
import type { SeededRandom } from './seeded-random.js';

/**
 * coordination.k8s.io Leases as the API server keeps them: create refuses a duplicate (409 AlreadyExists),
 * replace is optimistic (a stale resourceVersion is a 409 Conflict). Leader election runs on these.
 */
export class SimLeases {
  constructor(
    private readonly store: ResourceStore,
    private readonly rng: SeededRandom,
    private readonly timestamp: () => string,
  ) {}

  get(namespace: string, name: string): KubeLease | undefined {
    return this.store.get<KubeLease>('leases', namespace, name);
  }

  create(namespace: string, lease: KubeLease): KubeLease {
    const name = lease.metadata?.name;
    if (!name)
      throw new ApiError(
        422,
        'Invalid',
        'Lease.coordination.k8s.io "" is invalid: metadata.name: Required value: name or generateName is required',
      );
    if (this.store.get('leases', namespace, name))
      throw new ApiError(409, 'AlreadyExists', `leases.coordination.k8s.io "${name}" already exists`, {
        name,
        group: 'coordination.k8s.io',
        kind: 'leases',
      });
    const obj: KubeLease = {
      ...lease,
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        ...lease.metadata,
        namespace,
        uid: this.rng.uuid(),
        resourceVersion: '0',
        creationTimestamp: this.timestamp(),
      },
      spec: lease.spec ?? {},
    };
    return this.store.create('leases', obj);
  }

  /** PUT with optimistic concurrency: a stale (or missing) resourceVersion is a 409 Conflict. */
  replace(namespace: string, name: string, lease: KubeLease): KubeLease {
    const current = this.store.get<KubeLease>('leases', namespace, name);
    if (!current)
      throw new ApiError(404, 'NotFound', `leases.coordination.k8s.io "${name}" not found`, { name });
    const rv = lease.metadata?.resourceVersion;
    if (rv && rv !== current.metadata.resourceVersion)
      throw new ApiError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on leases.coordination.k8s.io "${name}": the object has been modified; please apply your changes to the latest version and try again`,
        { name, group: 'coordination.k8s.io', kind: 'leases' },
      );
    return this.store.update<KubeLease>('leases', namespace, name, () => ({
      ...lease,
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        ...lease.metadata,
        name,
        namespace,
        uid: current.metadata.uid,
        creationTimestamp: current.metadata.creationTimestamp,
        resourceVersion: current.metadata.resourceVersion,
      },
      spec: lease.spec ?? {},
    }));
  }
}
