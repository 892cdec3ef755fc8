import type { Logger } from 'pino';
import { AUTO_REPAIR_WAIT_MS, type NodeGroup, type NodeState } from './cluster-types.js';
import type { KubeNode } from './k8s-objects.js';
import type { ResourceStore } from './resource-store.js';
import type { SimTimer } from './sim-clock.js';

/** EKS node auto repair setting of a managed node group. */
export interface NodeRepairSetting {
  enabled: boolean;
  action?: 'reboot' | 'replace' | 'none';
  waitMs?: number;
}

/** What EKS node auto repair needs of the cluster: its nodes, node groups, timers and EC2 actions. */
export interface NodeRepairHost {
  readonly clusterName: string;
  readonly region: string;
  readonly store: ResourceStore;
  readonly log: Logger | undefined;
  /** The cluster's managed node groups (the GPU group and the system group). */
  readonly managedGroups: NodeGroup[];
  nodeStates(): NodeState[];
  nodeState(name: string): NodeState | undefined;
  later(ms: number, fn: () => void): SimTimer;
  rebootInstance(instanceId: string): boolean;
  terminateInstance(instanceId: string, opts: { decrementDesiredCapacity: boolean }): unknown;
}

/**
 * EKS node auto repair (managed node groups when enabled, Auto Mode nodes always) and the managed node
 * groups' DescribeNodegroup answer.
 */
export class EksNodeRepair {
  /** node/condition/lastTransitionTime of the bad spells auto repair is timing. */
  private readonly repairWatches = new Set<string>();
  private readonly nodeRepair = new Map<string, NodeRepairSetting>();

  constructor(private readonly host: NodeRepairHost) {}

  /**
   * EKS node auto repair of a managed node group (DescribeNodegroup `nodeRepairConfig`). When enabled, a node
   * of the group whose repairable condition stays bad for the documented wait (AcceleratedHardwareReady 10 min,
   * the node monitoring agent's other conditions 30 min; `waitMs` overrides both) is rebooted or replaced,
   * as EKS chooses per fault (`action`; `none` models a repair that does not happen, e.g. above the group's
   * unhealthy-node threshold). Auto Mode nodes always have it on, with Replace.
   */
  setNodeRepair(
    nodegroup: string,
    setting: { enabled: boolean; action?: 'reboot' | 'replace' | 'none'; waitMs?: number },
  ): void {
    if (!this.host.managedGroups.some((g) => g.kind === 'managed' && g.name === nodegroup))
      throw new Error(`no managed node group ${nodegroup}`);
    this.nodeRepair.set(nodegroup, setting);
  }

  describeNodegroup(clusterName: string, nodegroupName: string): Record<string, unknown> | undefined {
    if (clusterName !== this.host.clusterName) return undefined;
    const group = this.host.managedGroups.find((g) => g.kind === 'managed' && g.name === nodegroupName);
    if (!group || group.kind !== 'managed') return undefined;
    const size = this.host.nodeStates().filter((n) => n.group === group).length;
    const account = '123456789012';
    const created = Math.floor(new Date('2026-01-15T09:00:00Z').getTime() / 1000);
    return {
      nodegroupName: group.name,
      nodegroupArn: `arn:aws:eks:${this.host.region}:${account}:nodegroup/${this.host.clusterName}/${group.name}/${group.asg.slice(-36)}`,
      clusterName: this.host.clusterName,
      version: '1.31',
      releaseVersion: '1.31.4-20250123',
      createdAt: created,
      modifiedAt: created,
      status: 'ACTIVE',
      capacityType: 'ON_DEMAND',
      scalingConfig: { minSize: 0, maxSize: Math.max(size, 1) * 2, desiredSize: size },
      instanceTypes: [group.instanceType],
      subnets: ['subnet-0a1b2c3d4e5f60001', 'subnet-0a1b2c3d4e5f60002'],
      amiType: group.gpu ? 'AL2023_x86_64_NVIDIA' : 'AL2023_x86_64_STANDARD',
      nodeRole: `arn:aws:iam::${account}:role/${this.host.clusterName}-node`,
      labels: {},
      resources: { autoScalingGroups: [{ name: group.asg }] },
      health: { issues: [] },
      updateConfig: { maxUnavailable: 1 },
      // The API leaves the field out for a group created without it; enabled: false once someone set it.
      ...(this.nodeRepair.has(group.name)
        ? { nodeRepairConfig: { enabled: this.nodeRepair.get(group.name)?.enabled === true } }
        : {}),
      tags: {},
    };
  }

  /** What EKS node auto repair did to nodes, in order. */
  readonly autoRepairs: { node: string; action: 'reboot' | 'replace'; condition: string }[] = [];

  watch(s: NodeState, type: string, status: string): void {
    const wait = AUTO_REPAIR_WAIT_MS[type];
    if (wait === undefined || status === 'True') return;
    const auto = s.group.kind === 'karpenter' && s.group.autoMode === true;
    const setting = s.group.kind === 'managed' ? this.nodeRepair.get(s.group.name) : undefined;
    if (!auto && setting?.enabled !== true) return;
    const action = auto ? 'replace' : (setting?.action ?? 'reboot');
    const since = this.host.store
      .get<KubeNode>('nodes', undefined, s.name)
      ?.status.conditions.find((c) => c.type === type)?.lastTransitionTime;
    const spell = `${s.name}/${type}/${since ?? ''}`;
    if (this.repairWatches.has(spell)) return;
    this.repairWatches.add(spell);
    this.host.later(setting?.waitMs ?? wait, () => {
      this.repairWatches.delete(spell);
      if (this.host.nodeState(s.name) !== s || action === 'none') return;
      const now = this.host.store
        .get<KubeNode>('nodes', undefined, s.name)
        ?.status.conditions.find((c) => c.type === type);
      // Still the same bad spell: nothing cured it (or rebooted it) in the meantime.
      if (!now || now.status === 'True' || now.lastTransitionTime !== since) return;
      this.autoRepairs.push({ node: s.name, action, condition: type });
      this.host.log?.info({ node: s.name, action, condition: type }, 'sim: EKS node auto repair acted');
      if (action === 'reboot') this.host.rebootInstance(s.instanceId);
      else this.host.terminateInstance(s.instanceId, { decrementDesiredCapacity: false });
    });
  }
}
