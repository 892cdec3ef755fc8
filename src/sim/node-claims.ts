import { type KubeNodeClaim, type NodeGroup, parseProviderIdTail } from './cluster-types.js';
import type { KubeNode } from './k8s-objects.js';
import { ApiError, type ResourceStore } from './resource-store.js';
import type { SeededRandom } from './seeded-random.js';

/** What the NodeClaim bookkeeping needs of the cluster. */
export interface NodeClaimsHost {
  readonly store: ResourceStore;
  readonly rng: SeededRandom;
  timestamp(): string;
  /** A tag of an EC2 instance (the NodeClaim name Karpenter tagged it with at launch). */
  instanceTag(instanceId: string, key: string): string | undefined;
  /** Deletes a Node as through the API (drain, terminate the instance). */
  deleteNode(name: string): void;
}

/** Karpenter's (and Auto Mode's) NodeClaims (karpenter.sh/v1): one per node it launched. */
export class NodeClaims {
  /** Node name → the name of its NodeClaim (Karpenter and Auto Mode nodes). */
  private readonly claims = new Map<string, string>();

  constructor(private readonly host: NodeClaimsHost) {}

  /** What Karpenter records for a node it launched: the NodeClaim, Launched / Registered / Initialized / Ready. */
  create(group: Extract<NodeGroup, { kind: 'karpenter' }>, node: KubeNode): void {
    const now = this.host.timestamp();
    // The name the instance was tagged with at launch (no new random draw: seeded fleets keep their names).
    const instanceId = parseProviderIdTail(node.spec.providerID);
    const name =
      this.host.instanceTag(instanceId, 'karpenter.sh/nodeclaim') ?? `${group.pool}-${instanceId.slice(-5)}`;
    const condition = (type: string) => ({
      type,
      status: 'True' as const,
      reason: type,
      lastTransitionTime: now,
    });
    this.host.store.create<KubeNodeClaim>('nodeclaims', {
      apiVersion: 'karpenter.sh/v1',
      kind: 'NodeClaim',
      metadata: {
        name,
        uid: this.host.rng.uuid(),
        resourceVersion: '0',
        creationTimestamp: now,
        labels: {
          'karpenter.sh/nodepool': group.pool,
          'node.kubernetes.io/instance-type': group.instanceType,
          ...(group.autoMode ? { 'eks.amazonaws.com/compute-type': 'auto' } : {}),
        },
        finalizers: ['karpenter.sh/termination'],
      },
      spec: {
        nodeClassRef: group.autoMode
          ? { group: 'eks.amazonaws.com', kind: 'NodeClass', name: 'default' }
          : { group: 'karpenter.k8s.aws', kind: 'EC2NodeClass', name: 'default' },
        requirements: [
          { key: 'node.kubernetes.io/instance-type', operator: 'In', values: [group.instanceType] },
          { key: 'karpenter.sh/capacity-type', operator: 'In', values: ['on-demand'] },
        ],
      },
      status: {
        nodeName: node.metadata.name,
        providerID: node.spec.providerID,
        capacity: { ...node.status.capacity },
        conditions: ['Launched', 'Registered', 'Initialized', 'Ready'].map(condition),
      },
    });
    this.claims.set(node.metadata.name, name);
  }

  of(node: string): KubeNodeClaim | undefined {
    const name = this.claims.get(node);
    const claim = name ? this.host.store.get<KubeNodeClaim>('nodeclaims', undefined, name) : undefined;
    return claim ? structuredClone(claim) : undefined;
  }

  /** DELETE of a NodeClaim: Karpenter drains and deletes its Node and terminates the instance. */
  deleteFromApi(name: string): KubeNodeClaim {
    const claim = this.host.store.get<KubeNodeClaim>('nodeclaims', undefined, name);
    if (!claim)
      throw new ApiError(404, 'NotFound', `nodeclaims.karpenter.sh "${name}" not found`, {
        name,
        group: 'karpenter.sh',
        kind: 'nodeclaims',
      });
    const updated = this.host.store.update<KubeNodeClaim>('nodeclaims', undefined, name, (c) => {
      c.metadata.deletionTimestamp ??= this.host.timestamp();
      return c;
    });
    const node = claim.status.nodeName;
    if (node && this.host.store.get('nodes', undefined, node)) this.host.deleteNode(node);
    return structuredClone(updated);
  }

  /** The NodeClaim's finalizer completes with its instance and Node. */
  remove(node: string): void {
    const claim = this.claims.get(node);
    if (claim) {
      this.claims.delete(node);
      if (this.host.store.get('nodeclaims', undefined, claim))
        this.host.store.delete('nodeclaims', undefined, claim);
    }
  }
}
