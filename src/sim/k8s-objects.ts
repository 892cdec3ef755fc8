/**
 * Kubernetes objects as the simulator stores and serves them: plain JSON, shaped like the API server's
 * output (timestamps are strings on the wire). Only the fields the simulator sets are typed.
 */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
}

export interface NodeConditionObject {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastHeartbeatTime?: string;
  lastTransitionTime?: string;
}

export interface Taint {
  key: string;
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  timeAdded?: string;
}

export interface KubeNode extends KubeObject {
  apiVersion: 'v1';
  kind: 'Node';
  spec: { providerID: string; unschedulable?: boolean; taints?: Taint[]; podCIDR?: string };
  status: {
    capacity: Record<string, string>;
    allocatable: Record<string, string>;
    conditions: NodeConditionObject[];
    addresses: { type: string; address: string }[];
    nodeInfo: {
      bootID: string;
      machineID: string;
      systemUUID: string;
      kernelVersion: string;
      osImage: string;
      containerRuntimeVersion: string;
      kubeletVersion: string;
      kubeProxyVersion: string;
      operatingSystem: string;
      architecture: string;
    };
    daemonEndpoints?: { kubeletEndpoint: { Port: number } };
  };
}

export interface ContainerSpec {
  name: string;
  image: string;
  ports?: { name?: string; containerPort: number; protocol: string }[];
  resources?: { limits?: Record<string, string>; requests?: Record<string, string> };
}

export interface KubePod extends KubeObject {
  apiVersion: 'v1';
  kind: 'Pod';
  spec: {
    nodeName?: string;
    containers: ContainerSpec[];
    restartPolicy?: string;
    priorityClassName?: string;
    tolerations?: { key?: string; operator?: string; effect?: string }[];
    terminationGracePeriodSeconds?: number;
  };
  status: {
    phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';
    podIP?: string;
    hostIP?: string;
    startTime?: string;
    conditions?: { type: string; status: string; lastTransitionTime?: string }[];
    containerStatuses?: {
      name: string;
      ready: boolean;
      restartCount: number;
      image: string;
      started?: boolean;
    }[];
  };
}

export interface KubePdb extends KubeObject {
  apiVersion: 'policy/v1';
  kind: 'PodDisruptionBudget';
  spec: {
    selector: { matchLabels: Record<string, string> };
    minAvailable?: number | string;
    maxUnavailable?: number | string;
  };
  status: {
    currentHealthy: number;
    desiredHealthy: number;
    disruptionsAllowed: number;
    expectedPods: number;
    observedGeneration: number;
  };
}

export interface JobCondition {
  type: 'Created' | 'Running' | 'Restarting' | 'Succeeded' | 'Failed';
  status: 'True' | 'False';
  reason: string;
  message: string;
  lastUpdateTime: string;
  lastTransitionTime: string;
}

export interface KubeTrainingJob extends KubeObject {
  spec: Record<string, unknown>;
  status: {
    conditions: JobCondition[];
    replicaStatuses?: Record<string, { active?: number }>;
    startTime?: string;
  };
}

export interface KubeLease extends KubeObject {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** Resource plural: `nodes`, `pods`, `leases`, `poddisruptionbudgets`, `pytorchjobs` … */
  resource: string;
  object: KubeObject;
  /** The object's resourceVersion as a number (global, etcd-like). */
  rv: number;
}
