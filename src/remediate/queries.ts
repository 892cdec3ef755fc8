/** The read models behind `/gpu status`, the App Home and `/gpu status <node>`: facts, no wording. */
import { hasGpus } from '../domain/gpu-count.js';
import { isWorking } from '../domain/incident.js';
import { isOptedOut } from '../domain/node.js';
import type { NodeStatus, StatusReport } from '../domain/service-result.js';
import type { Brakes } from './breaker.js';
import type { ServiceKit } from './service-kit.js';

export class Queries {
  constructor(
    private readonly kit: ServiceKit,
    private readonly brakes: Brakes,
  ) {}

  status(): StatusReport {
    const { incidents, exclusions, clock } = this.kit.deps;
    const { safety } = this.kit;
    const now = clock.now();
    const open = incidents.list({ open: true });
    return {
      dryRun: safety.dryRun,
      paused: this.brakes.paused(),
      breaker: this.brakes.breaker(),
      inFlight: open.filter((i) => isWorking(i.state)),
      awaitingApproval: open.filter((i) => i.state === 'awaiting_approval'),
      exclusions: exclusions.list(now),
      remediationsLastHour: this.brakes.recentStarts(now).length,
      limits: {
        maxConcurrent: safety.maxConcurrent,
        perHour: safety.perHour,
        maxUnhealthyPercent: safety.maxUnhealthyPercent,
        ...(safety.maxUnhealthyNodes !== undefined ? { maxUnhealthyNodes: safety.maxUnhealthyNodes } : {}),
      },
    };
  }

  async nodeStatus(nodeName: string): Promise<NodeStatus> {
    const { cluster, exclusions, incidents, clock } = this.kit.deps;
    const node = await cluster.getNode(nodeName);
    const excluded = exclusions.get(nodeName, clock.now());
    return {
      node: nodeName,
      exists: node !== undefined,
      gpuNode: node ? hasGpus(node) : false,
      ...(node
        ? {
            unschedulable: node.unschedulable,
            ready: node.ready,
            gpus: {
              ...(node.allocatableGpus !== undefined ? { allocatable: node.allocatableGpus } : {}),
              ...(node.expectedGpus !== undefined ? { expected: node.expectedGpus } : {}),
              ...(node.gpuSharing ? { sharing: node.gpuSharing } : {}),
            },
          }
        : {}),
      ...(excluded ? { excluded } : {}),
      optOut: node ? isOptedOut(node) : false,
      openIncidents: incidents.list({ node: nodeName, open: true }),
    };
  }
}
