/**
 * Outbox payloads are read back from SQLite, so they are parsed, not trusted: a hand-edited or truncated
 * row becomes one dead message with a clear error instead of a crashed worker.
 */
import { z } from 'zod';
import { NotifiedSteps } from './message.js';

export const StoredNotification = z
  .object({
    schema: z.literal('gpu-medic.notification/v1'),
    incident_id: z.string().min(1),
    cluster: z.string(),
    node: z.string(),
    instance_id: z.string().nullable(),
    category: z.string(),
    severity: z.string(),
    action: z.string(),
    step: z.enum(NotifiedSteps),
    at: z.string(),
    dry_run: z.boolean(),
    error_type: z.string(),
  })
  .loose();
export type StoredNotification = z.infer<typeof StoredNotification>;

export const StoredClusterMetrics = z.object({
  kind: z.literal('cluster_metrics'),
  cluster: z.string().min(1),
  at: z.number().finite(),
  unhealthyGpuNodes: z.number().finite().nonnegative(),
  breakerOpen: z.boolean(),
});
export type StoredClusterMetrics = z.infer<typeof StoredClusterMetrics>;

export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}
