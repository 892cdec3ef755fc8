/**
 * The simulated EKS cluster in one call. `startSimulator()` serves, on ephemeral loopback ports:
 *   - a Kubernetes API server subset (nodes, pods, evictions, PDBs, leases, Kubeflow jobs, watches,
 *     the dcgm-exporter pod proxy, and with `dcgmServer` pod exec into dcgm-server pods) reached
 *     through a kubeconfig file it writes (`KUBECONFIG`);
 *   - one AWS endpoint for EC2, Auto Scaling, CloudWatch, SNS, Lambda and Bedrock Runtime
 *     (`AWS_ENDPOINT_URL`), whose reboots and terminations act on the simulated nodes;
 *   - a Slack Web API fake (`SLACK_API_URL`, token `SLACK_BOT_TOKEN`) unless `slack: false`;
 *   - the control API (control-api.ts) unless `controlPort: false`.
 * All fakes record into ONE RequestLog, so a test can ask "did anything mutate the cluster?".
 * `env` holds every variable a gpu-medic process needs to talk to it; `close()` stops everything and
 * removes the kubeconfig it wrote. For a simulator in its own process see process.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { type SimAws, startSimAws } from './aws-server.js';
import { SimCluster } from './cluster.js';
import { CountingRequestLog, startControlApi } from './control-api.js';
import type { CounterSet } from './dcgm-exporter.js';
import { attachExec, type SimExec, type SimExecHandler } from './exec-server.js';
import type { GpuShape } from './gpu-shapes.js';
import { type K8sRecordedRequest, type SimK8sServer, startSimK8s } from './k8s-server.js';
import { SIM_K8S_TOKEN, writeKubeconfig } from './kubeconfig.js';
import { type SimPrometheus, type SimPrometheusOptions, startSimPrometheus } from './prometheus-server.js';
import type { RecordedRequest } from './recorder.js';
import { SIM_SLACK_BOT_TOKEN, type SimSlack, startSimSlack } from './slack-server.js';
import { SIM_TLS_CA, SIM_TLS_SERVER_CERT, SIM_TLS_SERVER_KEY } from './tls-fixture.js';
import type { SimDcgmServerOptions } from './workloads.js';

export interface SimulatorOptions {
  /** GPU nodes (a non-GPU system node is added on top). Default 8. */
  nodes?: number;
  gpusPerNode?: number;
  instanceType?: string;
  clusterName?: string;
  region?: string;
  seed?: number;
  rebootDelayMs?: number;
  /** How long `dcgmi diag -r 1|2|3` runs in the DCGM pods, per level (default 0.5 s, 2 s, 8 s). */
  diagDurationMs?: Record<1 | 2 | 3, number>;
  replaceDelayMs?: number;
  terminateDelayMs?: number;
  rescheduleDelayMs?: number;
  /** From a node's Ready after a boot to the NVIDIA device plugin re-registering (`nvidia.com/gpu` 0 until then). Default 60 s. */
  devicePluginDelayMs?: number;
  /** From a node's Ready after a boot to its restarted dcgm-exporter pod passing readiness. Default 45 s. */
  exporterReadyDelayMs?: number;
  /**
   * Also run DCGM host-engine pods (the dcgm-server collector's source) and serve pod exec into them
   * (exec-server.ts): `true` = the EKS node monitoring agent's stock shell-less `dcgm-server` pods; or a style
   * (`eks-agent`, `gpu-operator`), namespace and whether the image has a shell.
   */
  dcgmServer?: boolean | SimDcgmServerOptions;
  /** Overrides simulated exec commands (a hang, huge output) when `dcgmServer` is on. */
  execHandler?: SimExecHandler;
  /** Training job, serving pods and PDB on the nodes. Default true. */
  workloads?: boolean;
  /** How GPU node i shares its GPUs: `gpuShapes[i % length]` (SimClusterOptions.gpuShapes). Default all plain. */
  gpuShapes?: GpuShape[];
  /** Time-slicing replicas per GPU on time-sliced nodes. Default 4. */
  timeSlicingReplicas?: number;
  /** The exporters' counters file: `stock` (dcgm-exporter's default, the default) or `full` (gpu-medic's CSV). */
  counters?: CounterSet;
  /** Time-sliced GPUs offered as `nvidia.com/gpu.shared` (renameByDefault). Default false. */
  timeSlicingRename?: boolean;
  /** Karpenter nodes among `nodes` (default a quarter when there are 4 or more). */
  karpenterNodes?: number;
  /** EKS Auto Mode nodes among `nodes` (default 0). */
  autoModeNodes?: number;
  /** Karpenter consolidation of empty nodes after this long (default off). */
  consolidateAfterMs?: number;
  /** Start the Slack Web API fake. Default true. */
  slack?: boolean;
  /** Where to write the kubeconfig; default a file in a fresh temp directory (removed on close). */
  kubeconfigPath?: string;
  /** Keep at most this many requests in the shared log (the benchmark makes millions). 0 = all. */
  logLimit?: number;
  /** Port of the HTTP control API (0 = ephemeral, the default); `false` = no control API. */
  controlPort?: number | false;
  /**
   * Serve the Kubernetes API over HTTPS with the test-only certificate of tls-fixture.ts; the kubeconfig then
   * trusts its CA (certificate-authority-data) instead of skipping verification, as on EKS. Default false.
   */
  tls?: boolean;
  /**
   * Also run a Prometheus over the exporters (prometheus-server.ts), its base URL in `env.PROMETHEUS_URL`:
   * `true` (scrape every second) or its options.
   */
  prometheus?: boolean | Omit<SimPrometheusOptions, 'log'>;
  logger?: Logger;
}

export interface MutatingRequestsOptions {
  /** Count Lease writes too (leader election renews one every few seconds). Default false. */
  includeLeases?: boolean;
}

export interface Simulator {
  cluster: SimCluster;
  k8s: SimK8sServer;
  /** Pod exec, when `dcgmServer` is on. */
  exec?: SimExec;
  aws: SimAws;
  slack?: SimSlack;
  /** The Prometheus over the exporters, when `prometheus` is on. */
  prometheus?: SimPrometheus;
  kubeconfigPath: string;
  /** The one log every fake records into. */
  log: CountingRequestLog;
  /** KUBECONFIG, AWS_*, SLACK_API_URL, SLACK_BOT_TOKEN, CLUSTER_NAME … for a gpu-medic process. */
  env: Record<string, string>;
  control?: { url: string };
  /** Requests that changed the cluster or its instances (PATCH/POST/PUT/DELETE, EC2/ASG reboots and terminations). */
  mutatingRequests(opts?: MutatingRequestsOptions): RecordedRequest[];
  /** Throws listing every request a fake did not know. */
  assertNoUnexpected(): void;
  close(): Promise<void>;
}

/** Fake credentials: the AWS fake checks the SigV4 scope, never the secret. */
export const SIM_AWS_CREDENTIALS = { accessKeyId: 'AKIDSIMULATOR', secretAccessKey: 'sim-secret' } as const;

const MUTATING_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const MUTATING_AWS_OPERATIONS = new Set([
  'RebootInstances',
  'TerminateInstances',
  'StopInstances',
  'StartInstances',
  'TerminateInstanceInAutoScalingGroup',
  'SetInstanceHealth',
]);

/** Is this request one that changes cluster or instance state (not a notification, not a read)? */
export function isMutatingRequest(r: RecordedRequest, opts: MutatingRequestsOptions = {}): boolean {
  if (r.service === 'k8s') {
    if (!MUTATING_METHODS.has(r.method)) return false;
    const resource =
      (r as K8sRecordedRequest).resource ?? (r.path.includes('/leases') ? 'leases' : undefined);
    return opts.includeLeases === true || resource !== 'leases';
  }
  if (r.service === 'ec2' || r.service === 'autoscaling')
    return r.operation !== undefined && MUTATING_AWS_OPERATIONS.has(r.operation);
  return false;
}

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const logger = opts.logger;
  const cluster = new SimCluster({
    ...(opts.nodes !== undefined ? { nodes: opts.nodes } : {}),
    ...(opts.gpusPerNode !== undefined ? { gpusPerNode: opts.gpusPerNode } : {}),
    ...(opts.instanceType !== undefined ? { instanceType: opts.instanceType } : {}),
    ...(opts.clusterName !== undefined ? { clusterName: opts.clusterName } : {}),
    ...(opts.region !== undefined ? { region: opts.region } : {}),
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(opts.rebootDelayMs !== undefined ? { rebootDelayMs: opts.rebootDelayMs } : {}),
    ...(opts.diagDurationMs !== undefined ? { diagDurationMs: opts.diagDurationMs } : {}),
    ...(opts.replaceDelayMs !== undefined ? { replaceDelayMs: opts.replaceDelayMs } : {}),
    ...(opts.terminateDelayMs !== undefined ? { terminateDelayMs: opts.terminateDelayMs } : {}),
    ...(opts.rescheduleDelayMs !== undefined ? { rescheduleDelayMs: opts.rescheduleDelayMs } : {}),
    ...(opts.devicePluginDelayMs !== undefined ? { devicePluginDelayMs: opts.devicePluginDelayMs } : {}),
    ...(opts.exporterReadyDelayMs !== undefined ? { exporterReadyDelayMs: opts.exporterReadyDelayMs } : {}),
    ...(opts.dcgmServer !== undefined ? { dcgmServer: opts.dcgmServer } : {}),
    ...(opts.workloads !== undefined ? { workloads: opts.workloads } : {}),
    ...(opts.gpuShapes !== undefined ? { gpuShapes: opts.gpuShapes } : {}),
    ...(opts.timeSlicingReplicas !== undefined ? { timeSlicingReplicas: opts.timeSlicingReplicas } : {}),
    ...(opts.counters !== undefined ? { counters: opts.counters } : {}),
    ...(opts.timeSlicingRename !== undefined ? { timeSlicingRename: opts.timeSlicingRename } : {}),
    ...(opts.karpenterNodes !== undefined ? { karpenterNodes: opts.karpenterNodes } : {}),
    ...(opts.autoModeNodes !== undefined ? { autoModeNodes: opts.autoModeNodes } : {}),
    ...(opts.consolidateAfterMs !== undefined ? { consolidateAfterMs: opts.consolidateAfterMs } : {}),
    ...(logger ? { logger } : {}),
  });
  const log = new CountingRequestLog(opts.logLimit ?? 0);
  // Everything started so far, stopped in reverse order if a later step fails.
  const closers: Array<() => Promise<void> | void> = [() => cluster.close()];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.reverse()) await c();
    closers.length = 0;
  };
  try {
    const k8s = await startSimK8s(cluster, {
      log,
      token: SIM_K8S_TOKEN,
      ...(opts.tls ? { tls: { cert: SIM_TLS_SERVER_CERT, key: SIM_TLS_SERVER_KEY } } : {}),
      ...(logger ? { logger } : {}),
    });
    closers.push(() => k8s.close());
    // Pod exec only matters for the dcgm-server collector; its sessions close before the API server.
    const exec = opts.dcgmServer
      ? attachExec(k8s, cluster, opts.execHandler, logger ? { logger } : {})
      : undefined;
    if (exec) closers.push(() => exec.close());
    const aws = await startSimAws(cluster, {
      log,
      region: cluster.region,
      ...(opts.logLimit ? { stateLimit: opts.logLimit } : {}),
    });
    closers.push(() => aws.close());
    const slack = opts.slack === false ? undefined : await startSimSlack({ log });
    if (slack) closers.push(() => slack.close());
    const prometheus = opts.prometheus
      ? await startSimPrometheus(cluster, { log, ...(opts.prometheus === true ? {} : opts.prometheus) })
      : undefined;
    if (prometheus) closers.push(() => prometheus.close());

    let kubeconfigPath = opts.kubeconfigPath;
    if (!kubeconfigPath) {
      const dir = await mkdtemp(join(tmpdir(), 'gpu-medic-sim-'));
      closers.push(() => rm(dir, { recursive: true, force: true }));
      kubeconfigPath = join(dir, 'kubeconfig');
    }
    await writeKubeconfig(k8s.url, kubeconfigPath, {
      clusterName: cluster.clusterName,
      ...(opts.tls ? { caPem: SIM_TLS_CA } : {}),
    });

    const control =
      opts.controlPort === false
        ? undefined
        : await startControlApi(cluster, log, {
            port: opts.controlPort ?? 0,
            bedrock: aws.bedrock,
            k8s,
            aws,
            ...(logger ? { logger } : {}),
          });
    if (control) closers.push(() => control.close());

    const env: Record<string, string> = {
      KUBECONFIG: kubeconfigPath,
      CLUSTER_NAME: cluster.clusterName,
      AWS_REGION: cluster.region,
      AWS_ENDPOINT_URL: aws.url,
      AWS_ACCESS_KEY_ID: SIM_AWS_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: SIM_AWS_CREDENTIALS.secretAccessKey,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...(slack ? { SLACK_API_URL: slack.url, SLACK_BOT_TOKEN: SIM_SLACK_BOT_TOKEN } : {}),
      ...(prometheus ? { PROMETHEUS_URL: prometheus.url } : {}),
    };

    let closing: Promise<void> | undefined;
    return {
      cluster,
      k8s,
      ...(exec ? { exec } : {}),
      aws,
      ...(slack ? { slack } : {}),
      ...(prometheus ? { prometheus } : {}),
      kubeconfigPath,
      log,
      env,
      ...(control ? { control: { url: control.url } } : {}),
      mutatingRequests: (o = {}) => log.requests.filter((r) => isMutatingRequest(r, o)),
      assertNoUnexpected: () => log.assertNoUnexpected(),
      close() {
        closing ??= closeAll();
        return closing;
      },
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

export type { ControlServer } from './control-api.js';
export {
  applyClear,
  applyFault,
  applyPdb,
  ClearRequest,
  ControlError,
  CountingRequestLog,
  clusterState,
  FaultRequest,
  nodeState,
  PdbRequest,
  type SimNodeState,
  type SimState,
} from './control-api.js';
