/**
 * What a cluster's leader publishes about its cluster for every other process of the fleet: the counts
 * `/gpu status` shows and the open incidents. Read back from the database, so it is validated.
 */
import { z } from 'zod';

export const ClusterSummary = z.object({
  gpuNodes: z.number().int().nonnegative(),
  /** GPUs the nodes are expected to have (capacity), when known. */
  gpus: z.number().int().nonnegative().optional(),
  healthy: z.number().int().nonnegative(),
  warning: z.number().int().nonnegative(),
  critical: z.number().int().nonnegative(),
  unknown: z.number().int().nonnegative(),
  inRemediation: z.number().int().nonnegative(),
  excluded: z.number().int().nonnegative(),
  breaker: z.enum(['closed', 'open', 'paused']),
  dryRun: z.boolean(),
  openIncidents: z
    .array(
      z.object({
        id: z.string(),
        node: z.string(),
        severity: z.string(),
        state: z.string(),
        category: z.string().optional(),
      }),
    )
    .max(500),
});
export type ClusterSummary = z.infer<typeof ClusterSummary>;

/** One cluster as the fleet sees it: its last published summary, who wrote it and when. */
export interface FleetCluster {
  cluster: string;
  leader?: string;
  heartbeatAt: number;
  /** Undefined when the stored summary does not parse (a newer release wrote it, or a hand edit). */
  summary?: ClusterSummary;
}

/** A cluster whose leader has not reported for this long is flagged, and requests for it are not queued. */
export const LEADER_SILENT_AFTER_MS = 5 * 60_000;
