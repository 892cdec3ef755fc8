/**
 * Keeping gpu-medic away from a node for a while. Every surface (Slack, the alert buttons, the CLI) goes
 * through here, so an exclusion asked for without an end gets the same default everywhere.
 */
import { defaultExclusionMs, maxExclusionMs } from '../domain/exclusion.js';
import { hasGpus } from '../domain/gpu-count.js';
import { isWorking } from '../domain/incident.js';
import { refused, type ServiceResult } from '../domain/service-result.js';
import type { ServiceKit } from './service-kit.js';

export { defaultExclusionMs, maxExclusionMs };

export interface ExcludeOptions {
  /** When the exclusion ends (epoch ms); without it, `defaultExclusionMs` from now. */
  until?: number;
  reason: string;
}

export class Exclusions {
  constructor(private readonly kit: ServiceKit) {}

  exclude(nodeName: string, options: ExcludeOptions, actor: string): Promise<ServiceResult> {
    return this.kit.guarded(actor, 'exclude', { node: nodeName, reason: options.reason }, async () => {
      const { cluster, exclusions, incidents, clock } = this.kit.deps;
      const now = clock.now();
      const until = options.until ?? now + defaultExclusionMs;
      if (!(until > now)) return refused('invalid', { reason: 'past_end' });
      if (until - now > maxExclusionMs)
        return refused('invalid', { reason: 'too_long', maxMs: maxExclusionMs });
      const node = await cluster.getNode(nodeName);
      if (!node) return refused('not_found', { reason: 'no_node', node: nodeName });
      if (!hasGpus(node)) return refused('not_gpu', { reason: 'not_gpu', node: nodeName, action: 'exclude' });
      exclusions.put({
        node: nodeName,
        reason: options.reason,
        createdBy: actor,
        createdAt: now,
        expiresAt: until,
      });
      const running = incidents.list({ node: nodeName, open: true }).find((i) => isWorking(i.state));
      return {
        ok: true,
        outcome: {
          kind: 'excluded',
          node: nodeName,
          until,
          ...(running ? { runningIncidentId: running.id } : {}),
        },
      };
    });
  }

  unexclude(nodeName: string, actor: string): Promise<ServiceResult> {
    return this.kit.guarded(actor, 'unexclude', { node: nodeName }, () => {
      if (!this.kit.deps.exclusions.remove(nodeName)) {
        return refused('not_found', { reason: 'not_excluded', node: nodeName });
      }
      return { ok: true, outcome: { kind: 'unexcluded', node: nodeName } };
    });
  }
}
