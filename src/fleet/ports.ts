/**
 * What the chat layer needs from the fleet: who the clusters are (read models any process may read) and
 * the queue to a cluster's leader (where a request this process may not act on goes).
 */
import type { LeaderRequest } from './requests.js';
import type { FleetCluster } from './summary.js';

export interface FleetDirectory {
  /** Every cluster that has published a summary, by name. */
  clusters(): FleetCluster[];
  cluster(name: string): FleetCluster | undefined;
  /** The clusters that have a node of this name, by name. */
  clustersHavingNode(node: string): string[];
}

export interface LeaderQueue {
  /** Queues `request` for `cluster`'s leader; returns the request's id. */
  enqueue(cluster: string, request: LeaderRequest): number;
}

/** This process's place in the fleet, as the chat layer routes with it. */
export interface FleetContext {
  /** This process's cluster (CLUSTER_NAME). */
  cluster: string;
  /** True while this process acts for its cluster (it holds the lease). */
  acting(): boolean;
  directory: FleetDirectory;
  queue: LeaderQueue;
}
