/**
 * Where a Slack request is executed, decided from facts alone: this process's cluster and whether it acts
 * for it, the cluster the request names (a button's cluster, `<cluster>/<node>`), the clusters known to
 * the fleet and, for a bare node name, the clusters that have a node of that name.
 */

export type Route =
  /** Execute it in this process. */
  | { to: 'here' }
  /** Queue it for that cluster's leader. */
  | { to: 'queue'; cluster: string }
  /** A bare node name several clusters have: the person picks one of these `<cluster>/<node>`. */
  | { to: 'choose'; options: string[] }
  /** The request names a cluster the fleet does not know. */
  | { to: 'unknown-cluster'; cluster: string; known: string[] };

export interface RouteInput {
  /** This process's cluster. */
  self: string;
  /** Whether this process acts for its cluster (holds the lease). */
  acting: boolean;
  /** The cluster the request names, when it names one. */
  cluster?: string;
  /** The node the request is about, when it names one without a cluster. */
  node?: string;
  /** The clusters known to the fleet (those that published a summary). */
  known: readonly string[];
  /** The clusters having `node`; read only when the request names a node and no cluster. */
  nodeClusters?: readonly string[];
  /**
   * False for a read this process can answer from its own cluster's store without acting; such a request
   * for this cluster is answered here even by a standby.
   */
  needsLeader: boolean;
}

export function routeRequest(input: RouteInput): Route {
  let cluster = input.cluster;
  if (cluster === undefined && input.node !== undefined) {
    const having = [...new Set(input.nodeClusters ?? [])].sort();
    if (having.length > 1) return { to: 'choose', options: having.map((c) => `${c}/${input.node}`) };
    // A node no cluster has published is looked up here, where "no such node" is answered.
    cluster = having[0] ?? input.self;
  }
  cluster ??= input.self;
  if (cluster === input.self) {
    return input.acting || !input.needsLeader ? { to: 'here' } : { to: 'queue', cluster };
  }
  if (!input.known.includes(cluster)) {
    return { to: 'unknown-cluster', cluster, known: [...input.known].sort() };
  }
  return { to: 'queue', cluster };
}

/** A cluster name as CLUSTER_NAME accepts it (an EKS cluster name). */
export const clusterNamePattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;

/** `<cluster>/<node>` → its parts; a bare name → the node alone. The parts are not validated here. */
export function splitNodeRef(ref: string): { cluster?: string; node: string } {
  const slash = ref.indexOf('/');
  if (slash < 0) return { node: ref };
  return { cluster: ref.slice(0, slash), node: ref.slice(slash + 1) };
}
