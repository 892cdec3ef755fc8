import type { SimInstance } from './cloud-effects.js';
import { AUTO_MODE_OPERATOR, type NodeGroup, type NodeState } from './cluster-types.js';
import { type GpuShape, gfdLabels, migLayout } from './gpu-shapes.js';
import { instanceTypeInfo } from './instance-types.js';
import type { KubeNode } from './k8s-objects.js';
import { baseConditions } from './node-conditions.js';
import type { SeededRandom } from './seeded-random.js';
import { H100_MODEL, makeGpu, type SimGpu } from './sim-gpu.js';

/** What building a node needs of the cluster. */
export interface NodeFactoryHost {
  readonly clusterName: string;
  readonly region: string;
  readonly rng: SeededRandom;
  /** Epoch milliseconds of the cluster's clock (an instance's launch time). */
  now(): number;
  timestamp(): string;
  gpusPerNode(): number;
  kubeletVersion(): string;
  shapeOptions(): { replicas: number; rename: boolean };
  /** The GPU resources the device plugin advertises for the node (capacity, or allocatable). */
  advertised(s: NodeState, shape: GpuShape, gpus: SimGpu[], allocatable: boolean): Record<string, string>;
}

/** A node that comes back with the identity it had (a managed-node-group kubelet registering again). */
export interface ReusedIdentity {
  name: string;
  instanceId: string;
  ip: string;
  az: string;
}

/**
 * Builds a node as EKS would register it: the EC2 instance (tags by node group, Karpenter or Auto Mode), the
 * node's GPUs in their shape, and the Node object with the labels, capacity, conditions and node info that
 * kubelet, GPU feature discovery and the device plugin put on it. Random draws follow the order the cluster
 * always used, so a seed gives the same fleet.
 */
export class NodeFactory {
  private readonly usedIps = new Set<string>();

  constructor(private readonly host: NodeFactoryHost) {}

  /**
   * A node's state and, unless it reuses an identity, the EC2 instance behind it. `nodeCount` (nodes already in
   * the cluster) spreads the zones; a node `joining` after start-up is like a node after a reboot: the device
   * plugin and the agents come later.
   */
  newNode(
    group: NodeGroup,
    reuse: ReusedIdentity | undefined,
    gpuShape: GpuShape,
    at: { nodeCount: number; joining: boolean },
  ): { state: NodeState; instance?: SimInstance } {
    const { rng } = this.host;
    const ip = reuse?.ip ?? this.newIp();
    const name = reuse?.name ?? `ip-${ip.replaceAll('.', '-')}.ec2.internal`;
    const zones = ['a', 'b', 'c'];
    const az = reuse?.az ?? `${this.host.region}${zones[at.nodeCount % zones.length]}`;
    const instanceId = reuse?.instanceId ?? `i-0${rng.hex(16)}`;
    const info = instanceTypeInfo(group.instanceType);
    const gpuNode = group.kind === 'karpenter' || group.gpu;
    const gpuCount = gpuNode ? this.host.gpusPerNode() : 0;
    const shape: GpuShape = gpuNode ? gpuShape : 'plain';
    const model = info.gpuModel || undefined;
    const gpus = Array.from({ length: gpuCount }, (_, i) => {
      const g = makeGpu(i, rng, model);
      const mig = migLayout(shape, g.model, i, gpuCount);
      if (mig) g.migInstances = mig;
      return g;
    });
    const instance = reuse ? undefined : this.instance(group, { instanceId, name, az });
    const state: NodeState = {
      name,
      ip,
      az,
      instanceId,
      group,
      gpuNode,
      shape,
      gpus,
      kernelLog: [],
      exporterMode: 'ok',
      persistent: [],
      rebooting: false,
      injectedConditions: new Set(),
      allocations: new Map(),
      pluginRegistered: !(at.joining && gpuNode),
      agentsStarting: at.joining && gpuNode,
      rebootHangs: false,
      bootTimers: [],
    };
    return instance ? { state, instance } : { state };
  }

  private newIp(): string {
    for (;;) {
      const ip = `10.0.${this.host.rng.int(0, 255)}.${this.host.rng.int(1, 254)}`;
      if (!this.usedIps.has(ip)) {
        this.usedIps.add(ip);
        return ip;
      }
    }
  }

  /** The EC2 instance record, tagged as its node group's ASG, Karpenter or Auto Mode tags it. */
  private instance(group: NodeGroup, id: { instanceId: string; name: string; az: string }): SimInstance {
    const { clusterName } = this.host;
    const tags: Record<string, string> = {
      Name:
        group.kind === 'managed'
          ? `${clusterName}-${group.name}-Node`
          : `${clusterName}/karpenter/${group.pool}`,
      [`kubernetes.io/cluster/${clusterName}`]: 'owned',
      'eks:cluster-name': clusterName,
    };
    if (group.kind === 'managed') {
      tags['eks:nodegroup-name'] = group.name;
      tags['aws:autoscaling:groupName'] = group.asg;
    } else if (group.autoMode) {
      tags['eks:eks-cluster-name'] = clusterName;
      tags['eks:kubernetes-node-pool-name'] = group.pool;
      tags['eks:kubernetes-node-class-name'] = 'default';
      tags['karpenter.sh/nodepool'] = group.pool;
    } else {
      tags['karpenter.sh/nodepool'] = group.pool;
      tags['karpenter.k8s.aws/ec2nodeclass'] = 'default';
      tags['karpenter.sh/nodeclaim'] = `${group.pool}-${this.host.rng.suffix()}`;
    }
    return {
      instanceId: id.instanceId,
      instanceType: group.instanceType,
      availabilityZone: id.az,
      state: 'running',
      ...(group.kind === 'managed' ? { autoScalingGroup: group.asg } : {}),
      ...(group.kind === 'karpenter' && group.autoMode ? { operator: AUTO_MODE_OPERATOR } : {}),
      privateDnsName: id.name,
      launchTime: new Date(this.host.now()).toISOString(),
      tags,
    };
  }

  /** The Node object the kubelet registers; `nodeCount` (the nodes with this one) picks its zone id label. */
  nodeObject(s: NodeState, nodeCount: number): KubeNode {
    const { rng } = this.host;
    const { name, ip, az, instanceId, group, gpuNode, shape, gpus } = s;
    const instanceType = group.instanceType;
    const info = instanceTypeInfo(instanceType);
    const now = this.host.timestamp();
    const labels: Record<string, string> = {
      'beta.kubernetes.io/arch': 'amd64',
      'beta.kubernetes.io/instance-type': instanceType,
      'beta.kubernetes.io/os': 'linux',
      'failure-domain.beta.kubernetes.io/region': this.host.region,
      'failure-domain.beta.kubernetes.io/zone': az,
      'kubernetes.io/arch': 'amd64',
      'kubernetes.io/hostname': name,
      'kubernetes.io/os': 'linux',
      'node.kubernetes.io/instance-type': instanceType,
      'topology.k8s.aws/zone-id': `use1-az${(nodeCount % 6) + 1}`,
      'topology.kubernetes.io/region': this.host.region,
      'topology.kubernetes.io/zone': az,
    };
    if (group.kind === 'managed') {
      labels['eks.amazonaws.com/capacityType'] = 'ON_DEMAND';
      labels['eks.amazonaws.com/nodegroup'] = group.name;
      labels['eks.amazonaws.com/nodegroup-image'] = 'ami-0c1d2e3f4a5b6c7d8';
    } else {
      if (group.autoMode) labels['eks.amazonaws.com/compute-type'] = 'auto';
      labels['karpenter.sh/nodepool'] = group.pool;
      labels['karpenter.sh/capacity-type'] = 'on-demand';
      labels['karpenter.sh/initialized'] = 'true';
      labels['karpenter.sh/registered'] = 'true';
      labels['karpenter.k8s.aws/instance-family'] = instanceType.split('.')[0] ?? '';
      labels['karpenter.k8s.aws/instance-size'] = instanceType.split('.')[1] ?? '';
    }
    if (gpuNode)
      Object.assign(labels, gfdLabels(shape, gpus[0]?.model ?? H100_MODEL, gpus, this.host.shapeOptions()));
    const memKi = info.memoryGiB * 1024 * 1024;
    const capacity: Record<string, string> = {
      cpu: String(info.cpu),
      'ephemeral-storage': '524275692Ki',
      'hugepages-1Gi': '0',
      'hugepages-2Mi': '0',
      memory: `${memKi - 16_384}Ki`,
      pods: gpuNode ? '100' : '58',
    };
    const allocatable: Record<string, string> = {
      cpu: `${info.cpu * 1000 - 550}m`,
      'ephemeral-storage': '482098735124',
      'hugepages-1Gi': '0',
      'hugepages-2Mi': '0',
      memory: `${Math.floor(memKi * 0.97)}Ki`,
      pods: capacity.pods ?? '100',
    };
    if (gpuNode) {
      Object.assign(capacity, this.host.advertised(s, shape, gpus, false));
      Object.assign(allocatable, this.host.advertised(s, shape, gpus, true));
      if (info.efa > 0) {
        capacity['vpc.amazonaws.com/efa'] = String(info.efa);
        allocatable['vpc.amazonaws.com/efa'] = String(info.efa);
      }
    }
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        uid: rng.uuid(),
        resourceVersion: '0',
        creationTimestamp: now,
        labels,
        annotations: {
          'alpha.kubernetes.io/provided-node-ip': ip,
          'node.alpha.kubernetes.io/ttl': '0',
          'volumes.kubernetes.io/controller-managed-attach-detach': 'true',
        },
        ...(group.kind === 'karpenter' ? { finalizers: ['karpenter.sh/termination'] } : {}),
      },
      spec: { providerID: `aws:///${az}/${instanceId}` },
      status: {
        capacity,
        allocatable,
        conditions: baseConditions(gpuNode, now),
        addresses: [
          { type: 'InternalIP', address: ip },
          { type: 'InternalDNS', address: name },
          { type: 'Hostname', address: name },
        ],
        daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
        nodeInfo: {
          bootID: rng.uuid(),
          machineID: rng.hex(32),
          systemUUID: `ec2${rng.hex(5)}-${rng.hex(4)}-${rng.hex(4)}-${rng.hex(4)}-${rng.hex(12)}`,
          kernelVersion: '6.1.119-129.201.amzn2023.x86_64',
          osImage: 'Amazon Linux 2023.6.20250107',
          containerRuntimeVersion: 'containerd://1.7.25',
          kubeletVersion: this.host.kubeletVersion(),
          kubeProxyVersion: this.host.kubeletVersion(),
          operatingSystem: 'linux',
          architecture: 'amd64',
        },
      },
    };
  }
}
