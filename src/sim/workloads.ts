import type {
  ContainerSpec,
  KubePdb,
  KubePod,
  KubeTrainingJob,
  ObjectMeta,
  OwnerReference,
} from './k8s-objects.js';
import type { SeededRandom } from './seeded-random.js';

/**
 * Builders for the workloads a GPU cluster runs, shaped like what the real controllers create:
 * DaemonSet pods (dcgm-exporter, aws-node, kube-proxy, dcgm-server), a Kubeflow PyTorchJob's pods, a
 * Deployment's pods behind a PodDisruptionBudget, and a static (mirror) pod.
 */
export const DCGM_EXPORTER_NAMESPACE = 'gpu-operator';
export const DCGM_EXPORTER_PORT = 9400;
export const TRAINING_NAMESPACE = 'ml-team';
export const TRAINING_JOB_NAME = 'llama-finetune';
export const SERVING_NAMESPACE = 'serving';
export const SERVING_APP = 'inference';
export const SERVING_PDB = 'inference-pdb';

export interface PodPlacement {
  nodeName?: string;
  hostIP?: string;
  podIP?: string;
}

function meta(
  rng: SeededRandom,
  now: string,
  name: string,
  namespace: string,
  labels: Record<string, string>,
  owner?: OwnerReference,
  annotations?: Record<string, string>,
): ObjectMeta {
  return {
    name,
    namespace,
    uid: rng.uuid(),
    resourceVersion: '0',
    creationTimestamp: now,
    labels,
    ...(annotations ? { annotations } : {}),
    ...(owner ? { ownerReferences: [owner] } : {}),
  };
}

function pod(
  m: ObjectMeta,
  containers: ContainerSpec[],
  at: PodPlacement,
  now: string,
  extra: Partial<KubePod['spec']> = {},
): KubePod {
  const running = at.nodeName !== undefined;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: m,
    spec: {
      ...(at.nodeName ? { nodeName: at.nodeName } : {}),
      containers,
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      ...extra,
    },
    status: running
      ? {
          phase: 'Running',
          hostIP: at.hostIP,
          podIP: at.podIP,
          startTime: now,
          conditions: [
            { type: 'PodScheduled', status: 'True' },
            { type: 'Initialized', status: 'True' },
            { type: 'ContainersReady', status: 'True' },
            { type: 'Ready', status: 'True' },
          ],
          containerStatuses: containers.map((c) => ({
            name: c.name,
            ready: true,
            restartCount: 0,
            image: c.image,
            started: true,
          })),
        }
      : { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False' }] },
  };
}

export function daemonSetOwner(name: string, uid: string): OwnerReference {
  return { apiVersion: 'apps/v1', kind: 'DaemonSet', name, uid, controller: true, blockOwnerDeletion: true };
}

export interface DaemonSetSpec {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  container: ContainerSpec;
  gpuOnly: boolean;
}

export const DAEMONSETS: readonly DaemonSetSpec[] = [
  {
    name: 'aws-node',
    namespace: 'kube-system',
    labels: { 'k8s-app': 'aws-node', 'app.kubernetes.io/name': 'aws-node' },
    container: {
      name: 'aws-node',
      image: '602401143452.dkr.ecr.us-east-1.amazonaws.com/amazon-k8s-cni:v1.19.2',
    },
    gpuOnly: false,
  },
  {
    name: 'kube-proxy',
    namespace: 'kube-system',
    labels: { 'k8s-app': 'kube-proxy' },
    container: {
      name: 'kube-proxy',
      image: '602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/kube-proxy:v1.31.3-minimal-eksbuild.2',
    },
    gpuOnly: false,
  },
  {
    name: 'nvidia-dcgm-exporter',
    namespace: DCGM_EXPORTER_NAMESPACE,
    labels: { app: 'nvidia-dcgm-exporter' },
    container: {
      name: 'nvidia-dcgm-exporter',
      image: 'nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3-4.1.3-ubuntu22.04',
      ports: [{ name: 'metrics', containerPort: DCGM_EXPORTER_PORT, protocol: 'TCP' }],
    },
    gpuOnly: true,
  },
];

/**
 * The DCGM host-engine pods the dcgm-server source execs into, in the shapes real clusters run them.
 * `tools` lists the binaries in the image; a spec without it has a full Ubuntu userland (sh, dmesg, grep, tail,
 * head, dcgmi).
 */
export interface DcgmServerSpec extends DaemonSetSpec {
  tools?: readonly string[];
}

/**
 * The EKS node monitoring agent chart (aws/eks-node-monitoring-agent, templates/dcgm-daemonset.yaml): DaemonSet
 * `dcgm-server` in the release namespace, labels `k8s-app: dcgm-server, version: v1`, container
 * `eks-node-monitoring-agent-dcgm` running `/usr/bin/nv-hostengine` from the agent's own minimal image —
 * `dcgmi` is there, `sh`, `dmesg`, `grep` and `tail` are not. The stock shape, so the simulator's default.
 */
export const DCGM_SERVER_DAEMONSET: DcgmServerSpec = {
  name: 'dcgm-server',
  namespace: 'kube-system',
  labels: { 'k8s-app': 'dcgm-server', version: 'v1' },
  container: {
    name: 'eks-node-monitoring-agent-dcgm',
    image: '602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/eks-node-monitoring-agent:v1.7.0-eksbuild.1',
    ports: [{ containerPort: 5555, protocol: 'TCP' }],
  },
  gpuOnly: true,
  tools: ['nv-hostengine', 'dcgmi', 'eks-node-monitoring-agent'],
};

/** The same chart pinned back to the Ubuntu-based dcgm-exporter image (`dcgmAgent.image.tag`): it has a shell. */
export const DCGM_SERVER_DAEMONSET_WITH_SHELL: DcgmServerSpec = {
  name: 'dcgm-server',
  namespace: 'kube-system',
  labels: { 'k8s-app': 'dcgm-server', version: 'v1' },
  container: {
    name: 'eks-node-monitoring-agent-dcgm',
    image:
      '602401143452.dkr.ecr.us-west-2.amazonaws.com/eks/observability/dcgm-exporter:4.1.1-4.0.4-ubuntu22.04',
    ports: [{ containerPort: 5555, protocol: 'TCP' }],
  },
  gpuOnly: true,
};

/** The GPU Operator's standalone host engine: `nvidia-dcgm` pods, label `app=nvidia-dcgm`, Ubuntu image. */
export const GPU_OPERATOR_DCGM_DAEMONSET: DcgmServerSpec = {
  name: 'nvidia-dcgm',
  namespace: DCGM_EXPORTER_NAMESPACE,
  labels: { app: 'nvidia-dcgm' },
  container: {
    name: 'nvidia-dcgm-ctr',
    image: 'nvcr.io/nvidia/cloud-native/dcgm:4.2.3-1-ubuntu22.04',
    ports: [{ name: 'dcgm', containerPort: 5555, protocol: 'TCP' }],
  },
  gpuOnly: true,
};

export type SimDcgmStyle = 'eks-agent' | 'gpu-operator';

export interface SimDcgmServerOptions {
  /** Whose DCGM pods: the EKS node monitoring agent's `dcgm-server` (default) or the GPU Operator's `nvidia-dcgm`. */
  style?: SimDcgmStyle;
  /** Namespace of the pods (the agent chart installs into its release namespace). */
  namespace?: string;
  /** Whether the image has a shell and dmesg. Default: eks-agent false (stock chart), gpu-operator true. */
  shell?: boolean;
}

/** The DCGM pod spec for the simulator's `dcgmServer` option; undefined when there are none. */
export function dcgmServerSpec(
  option: boolean | SimDcgmServerOptions | undefined,
): DcgmServerSpec | undefined {
  if (!option) return undefined;
  const o = option === true ? {} : option;
  const style = o.style ?? 'eks-agent';
  const shell = o.shell ?? style === 'gpu-operator';
  let base: DcgmServerSpec;
  if (style === 'gpu-operator') {
    base = shell
      ? GPU_OPERATOR_DCGM_DAEMONSET
      : { ...GPU_OPERATOR_DCGM_DAEMONSET, tools: ['nv-hostengine', 'dcgmi'] };
  } else base = shell ? DCGM_SERVER_DAEMONSET_WITH_SHELL : DCGM_SERVER_DAEMONSET;
  return o.namespace ? { ...base, namespace: o.namespace } : { ...base };
}

export function daemonSetPod(
  rng: SeededRandom,
  now: string,
  ds: DaemonSetSpec,
  dsUid: string,
  at: PodPlacement,
  hostNetwork: boolean,
): KubePod {
  const m = meta(
    rng,
    now,
    `${ds.name}-${rng.suffix()}`,
    ds.namespace,
    { ...ds.labels },
    daemonSetOwner(ds.name, dsUid),
  );
  const p = pod(m, [ds.container], at, now, {
    tolerations: [{ operator: 'Exists' }],
    priorityClassName: 'system-node-critical',
  });
  if (hostNetwork && at.hostIP) p.status.podIP = at.hostIP;
  return p;
}

export function mirrorPod(
  rng: SeededRandom,
  now: string,
  nodeName: string,
  nodeUid: string,
  at: PodPlacement,
): KubePod {
  const name = `node-health-probe-${nodeName}`;
  const m = meta(
    rng,
    now,
    name,
    'kube-system',
    { component: 'node-health-probe', tier: 'node' },
    { apiVersion: 'v1', kind: 'Node', name: nodeName, uid: nodeUid, controller: true },
    {
      'kubernetes.io/config.hash': rng.hex(32),
      'kubernetes.io/config.mirror': rng.hex(32),
      'kubernetes.io/config.source': 'file',
    },
  );
  const p = pod(m, [{ name: 'probe', image: 'public.ecr.aws/docker/library/busybox:1.36' }], at, now, {
    priorityClassName: 'system-node-critical',
  });
  if (at.hostIP) p.status.podIP = at.hostIP;
  return p;
}

export function pytorchJob(rng: SeededRandom, now: string, workers: number): KubeTrainingJob {
  const container = {
    name: 'pytorch',
    image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/llama-train:2025.01',
    resources: { limits: { 'nvidia.com/gpu': '8' } },
  };
  const template = { spec: { containers: [container] } };
  const replicaSpecs: Record<string, unknown> = {
    Master: { replicas: 1, restartPolicy: 'OnFailure', template },
  };
  if (workers > 0) replicaSpecs.Worker = { replicas: workers, restartPolicy: 'OnFailure', template };
  return {
    apiVersion: 'kubeflow.org/v1',
    kind: 'PyTorchJob',
    metadata: {
      name: TRAINING_JOB_NAME,
      namespace: TRAINING_NAMESPACE,
      uid: rng.uuid(),
      resourceVersion: '0',
      creationTimestamp: now,
      generation: 1,
    },
    spec: { pytorchReplicaSpecs: replicaSpecs, runPolicy: { cleanPodPolicy: 'None' } },
    status: {
      startTime: now,
      conditions: [
        jobCondition(
          'Created',
          'True',
          'PyTorchJobCreated',
          `PyTorchJob ${TRAINING_JOB_NAME} is created.`,
          now,
        ),
        jobCondition(
          'Running',
          'True',
          'PyTorchJobRunning',
          `PyTorchJob ${TRAINING_JOB_NAME} is running.`,
          now,
        ),
      ],
      replicaStatuses: { Master: { active: 1 }, ...(workers > 0 ? { Worker: { active: workers } } : {}) },
    },
  };
}

export function jobCondition(
  type: 'Created' | 'Running' | 'Restarting' | 'Succeeded' | 'Failed',
  status: 'True' | 'False',
  reason: string,
  message: string,
  now: string,
): KubeTrainingJob['status']['conditions'][number] {
  return { type, status, reason, message, lastUpdateTime: now, lastTransitionTime: now };
}

export type ReplicaType = 'master' | 'worker';

export function pytorchJobPod(
  rng: SeededRandom,
  now: string,
  job: KubeTrainingJob,
  replicaType: ReplicaType,
  index: number,
  at: PodPlacement,
): KubePod {
  const jobName = job.metadata.name;
  const m = meta(
    rng,
    now,
    `${jobName}-${replicaType}-${index}`,
    job.metadata.namespace ?? TRAINING_NAMESPACE,
    {
      'training.kubeflow.org/job-name': jobName,
      'training.kubeflow.org/operator-name': 'pytorchjob-controller',
      'training.kubeflow.org/replica-type': replicaType,
      'training.kubeflow.org/replica-index': String(index),
      ...(replicaType === 'master' ? { 'training.kubeflow.org/job-role': 'master' } : {}),
    },
    {
      apiVersion: 'kubeflow.org/v1',
      kind: 'PyTorchJob',
      name: jobName,
      uid: job.metadata.uid,
      controller: true,
      blockOwnerDeletion: true,
    },
  );
  return pod(
    m,
    [
      {
        name: 'pytorch',
        image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/llama-train:2025.01',
        ports: [{ name: 'pytorchjob-port', containerPort: 23456, protocol: 'TCP' }],
        resources: { limits: { 'nvidia.com/gpu': '8' }, requests: { 'nvidia.com/gpu': '8' } },
      },
    ],
    at,
    now,
    { restartPolicy: 'OnFailure' },
  );
}

export function servingPod(
  rng: SeededRandom,
  now: string,
  rsUid: string,
  rsName: string,
  at: PodPlacement,
): KubePod {
  const m = meta(
    rng,
    now,
    `${rsName}-${rng.suffix()}`,
    SERVING_NAMESPACE,
    { app: SERVING_APP, 'pod-template-hash': rsName.split('-').pop() ?? '' },
    {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      name: rsName,
      uid: rsUid,
      controller: true,
      blockOwnerDeletion: true,
    },
  );
  return pod(
    m,
    [
      {
        name: 'vllm',
        image: 'vllm/vllm-openai:v0.7.2',
        ports: [{ name: 'http', containerPort: 8000, protocol: 'TCP' }],
        resources: { limits: { 'nvidia.com/gpu': '1' }, requests: { 'nvidia.com/gpu': '1' } },
      },
    ],
    at,
    now,
  );
}

export function servingPdb(rng: SeededRandom, now: string, minAvailable: number): KubePdb {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: {
      name: SERVING_PDB,
      namespace: SERVING_NAMESPACE,
      uid: rng.uuid(),
      resourceVersion: '0',
      creationTimestamp: now,
      generation: 1,
    },
    spec: { selector: { matchLabels: { app: SERVING_APP } }, minAvailable },
    status: {
      currentHealthy: 0,
      desiredHealthy: minAvailable,
      disruptionsAllowed: 0,
      expectedPods: 0,
      observedGeneration: 1,
    },
  };
}

/** GPUs a pod asks for (`nvidia.com/gpu` limits, as the device plugin counts them). */
export function podGpuRequest(p: KubePod): number {
  let n = 0;
  for (const c of p.spec.containers) n += Number(c.resources?.limits?.['nvidia.com/gpu'] ?? 0) || 0;
  return n;
}

export function isDaemonSetPod(p: KubePod): boolean {
  return p.metadata.ownerReferences?.some((o) => o.kind === 'DaemonSet') ?? false;
}

export function isMirrorPod(p: KubePod): boolean {
  return p.metadata.annotations?.['kubernetes.io/config.mirror'] !== undefined;
}
