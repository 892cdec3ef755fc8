/**
 * Issue 7, "Done when": RBAC and IAM stay honest. The real runtime runs the end-to-end flows against the
 * simulated cluster (reboot, replace through an Auto Scaling group, through Karpenter and through plain
 * EC2, a Kubeflow job followed, leader election, a fault only the LLM can read, every notification sink,
 * and a scan through the dcgm-server pods). Every (group, resource, verb) the Kubernetes fake served and
 * every AWS action the AWS fake served is then held against manifests/ and iam/: a call nothing grants,
 * or a grant nothing uses, fails with the list. A last block proves the comparison can fail.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../../src/app/runtime.js';
import { loadConfig } from '../../src/config/config.js';
import type { Incident } from '../../src/domain/incident.js';
import { isOpen } from '../../src/domain/incident.js';
import { offeredCategoryEnum } from '../../src/eval/oracle.js';
import { silentLogger } from '../../src/log/logger.js';
import type { ConverseRequest } from '../../src/sim/aws-server.js';
import { type Simulator, type SimulatorOptions, startSimulator } from '../../src/sim/index.js';
import type { K8sRecordedRequest } from '../../src/sim/k8s-server.js';
import {
  compareIam,
  compareRbac,
  describeComparison,
  grantedIn,
  iamActionFor,
  kustomizeNamespace,
  loadClusterRoleRules,
  loadIamActions,
  loadRoleRules,
  loadRoles,
  type RbacTriple,
  servedTriple,
  tripleKey,
} from '../support/rbac.js';
import { restoreEnv } from '../support/sim-runtime.js';
import { waitFor } from '../support/wait.js';

/**
 * Grants the flows cannot show being used, each with the reason it stays. Everything else must be served.
 * An entry that is served after all, or granted by nothing, fails the test too (the list must not rot).
 */
const RBAC_ALLOWED_UNUSED: Record<string, string> = {
  'core/pods/exec:get':
    'client-node opens exec as a WebSocket GET, which API servers before v1.35 authorize as `get` on ' +
    'pods/exec (kubernetes#78741); the simulator models v1.35+, where the same upgrade needs `create` ' +
    '(KEP-4006), so only `create` shows up here',
  'kubeflow.org/tfjobs:get':
    'same code path as pytorchjobs (customResourceOf: kind → plural); the simulated workloads are PyTorchJobs',
  'kubeflow.org/mpijobs:get': 'same code path as pytorchjobs; the simulated workloads are PyTorchJobs',
  'kubeflow.org/xgboostjobs:get': 'same code path as pytorchjobs; the simulated workloads are PyTorchJobs',
  'kubeflow.org/paddlejobs:get':
    'same code path as pytorchjobs (PaddleJob is a training-operator kind the code follows); the simulator serves no PaddleJobs',
  'kubeflow.org/jaxjobs:get':
    'same code path as pytorchjobs (JAXJob is a training-operator kind the code follows); the simulator serves no JAXJobs',
  'trainer.kubeflow.org/trainjobs:get':
    'a Kubeflow Trainer v2 TrainJob is followed by the same getNamespacedCustomObject call; the simulator has no TrainJob GET route',
};

const IAM_ALLOWED_UNUSED: Record<string, string> = {
  'ec2:DescribeInstances':
    'called only when a replace resumes after a restart, or when Auto Scaling answers ValidationError to a ' +
    'terminate; both are recovery paths the flows here do not reach deterministically',
  'aps:QueryMetrics':
    'optional, only with DCGM_SOURCE=prometheus against an Amazon Managed Prometheus workspace; the flows here ' +
    'scrape the exporters, and the SigV4-signed queries for `aps` are tested against the simulated Prometheus ' +
    '(src/collect/prometheus-client.test.ts), not the AWS fake',
};

/** Non-resource URLs every authenticated user may GET (system:discovery, system:public-info-viewer). */
const PUBLIC_NON_RESOURCE = [/^\/version\/?$/, /^\/apis?\/?$/, /^\/(healthz|livez|readyz)$/];

const POD_NAMESPACE = 'gpu-medic';
const TOPIC_ARN = 'arn:aws:sns:us-east-1:111122223333:gpu-medic-alerts';

const savedEnv = { ...process.env };
let dir: string;
let dbCounter = 0;

/** What the flows made the fakes serve, accumulated over every simulator. */
const served = {
  k8s: new Map<string, RbacTriple>(),
  /** tripleKey → namespaces the requests named ('' = cluster-scoped). */
  namespaces: new Map<string, Set<string>>(),
  nonResource: new Set<string>(),
  aws: new Set<string>(),
  /** service:operation pairs with no known IAM action. */
  unmappedAws: new Set<string>(),
};

function collect(sim: Simulator): void {
  for (const r of sim.log.requests) {
    if (r.service === 'k8s') {
      const k = r as K8sRecordedRequest;
      const t = servedTriple(k);
      if (!t) {
        served.nonResource.add(`${k.method} ${k.path}`);
        continue;
      }
      const key = tripleKey(t);
      served.k8s.set(key, t);
      const ns = served.namespaces.get(key) ?? new Set<string>();
      ns.add(k.namespace ?? '');
      served.namespaces.set(key, ns);
    } else if (r.service !== 'slack') {
      const action = iamActionFor(r.service, r.operation);
      if (action) served.aws.add(action);
      else served.unmappedAws.add(`${r.service}:${r.operation ?? `${r.method} ${r.path}`}`);
    }
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gpu-medic-rbac-'));
});

afterAll(() => {
  restoreEnv(savedEnv);
  rmSync(dir, { recursive: true, force: true });
});

interface Harness {
  sim: Simulator;
  rt: Runtime;
  gpuNodes: string[];
}

/** A fresh simulator and runtime (leader election on); `fn` runs between start and stop; the log is collected. */
async function withHarness(
  simOpts: SimulatorOptions,
  env: Record<string, string>,
  fn: (h: Harness) => Promise<void>,
): Promise<void> {
  const sim = await startSimulator({
    // ECC DBE faults are read from the exporter's ECC counters: opt into the full counter set (stock has none).
    counters: 'full',
    rebootDelayMs: 800,
    replaceDelayMs: 1200,
    devicePluginDelayMs: 400,
    exporterReadyDelayMs: 300,
    terminateDelayMs: 300,
    rescheduleDelayMs: 300,
    slack: false,
    controlPort: false,
    ...simOpts,
  });
  let rt: Runtime | undefined;
  try {
    Object.assign(process.env, sim.env);
    const config = loadConfig({
      ...sim.env,
      DB_PATH: join(dir, `gpu-medic-${++dbCounter}.db`),
      MONITOR_INTERVAL: '1',
      CLASSIFIER: 'rules',
      POD_NAMESPACE,
      REMEDIATIONS_PER_HOUR: '50',
      MAX_UNHEALTHY_PERCENT: '60',
      LOG_LEVEL: 'silent',
      ...env,
    });
    rt = await createRuntime(config, {
      logger: silentLogger(),
      engine: { pollMs: 200 },
      leaderElection: true,
      opsServer: false,
    });
    const gpuNodes = sim.cluster
      .listNodes()
      .filter((n) => n.status?.capacity?.['nvidia.com/gpu'])
      .map((n) => n.metadata?.name ?? '');
    await rt.start();
    await waitFor('leadership', () => (rt?.leader?.isLeader() ? true : undefined));
    await waitFor('the first scan of every GPU node', () =>
      gpuNodes.every((n) => rt?.lastScan.has(n)) ? true : undefined,
    );
    await fn({ sim, rt, gpuNodes });
    await rt.stop();
    rt = undefined;
    sim.assertNoUnexpected();
  } finally {
    await rt?.stop();
    collect(sim);
    await sim.close();
  }
}

function closedIncident(rt: Runtime, node: string, match: (i: Incident) => boolean): Incident | undefined {
  return rt.store.incidents.listByNode(node, 100).find((i) => match(i) && !isOpen(i.state));
}

/** A scripted model: picks the offered category naming the XID, as a careful model would. */
function modelAnswer(xid: number) {
  return (request: ConverseRequest) => {
    const offered = offeredCategoryEnum(request);
    const category = offered.find((c) => c.includes(String(xid))) ?? offered[0] ?? 'UNKNOWN';
    return {
      toolUse: {
        name: 'classify_gpu_fault',
        input: {
          category,
          severity: 'warning',
          gpu: 3,
          xid,
          confidence: 0.9,
          explanation: `XID ${xid} is not in the catalog; scripted answer.`,
        },
      },
    };
  };
}

interface Receiver {
  url: string;
  bodies: string[];
  close(): Promise<void>;
}

async function startWebhookReceiver(): Promise<Receiver> {
  const bodies: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/gpu-medic`,
    bodies,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('the end-to-end flows the permissions are checked against', () => {
  it('remediates through every path and notifies every sink (exporter source)', async () => {
    const webhook = await startWebhookReceiver();
    try {
      await withHarness(
        { nodes: 8 },
        {
          CLASSIFIER: 'hybrid',
          SNS_TOPIC_ARN: TOPIC_ARN,
          LAMBDA_FUNCTION: 'gpu-medic-events',
          WEBHOOK_URL: webhook.url,
          WEBHOOK_SECRET: 'rbac-test-secret',
          CLOUDWATCH_NAMESPACE: 'GPUMedic',
        },
        async ({ sim, rt, gpuNodes }) => {
          const info = (n: string) => sim.cluster.nodeInfo(n);
          const managed = gpuNodes.filter((n) => info(n)?.autoScalingGroup !== undefined);
          const karpenter = gpuNodes.filter((n) => info(n)?.karpenterNodePool !== undefined);
          expect(managed.length).toBeGreaterThanOrEqual(3);
          expect(karpenter.length).toBeGreaterThanOrEqual(2);
          const withJob = managed.find((n) =>
            sim.cluster
              .listPods({ nodeName: n })
              .some((p) => p.metadata.ownerReferences?.some((o) => o.kind === 'PyTorchJob')),
          );
          expect(withJob, 'a managed node runs a PyTorchJob pod').toBeDefined();
          const rebootTarget = withJob ?? '';
          const asgTarget = managed.find((n) => n !== rebootTarget) ?? '';
          const llmTarget = managed.find((n) => n !== rebootTarget && n !== asgTarget) ?? '';
          const [karpenterTarget = '', plainEc2Target = ''] = karpenter;

          // ECC DBE → reboot; the node runs a Kubeflow job, which is followed until it runs again.
          sim.cluster.injectEcc(rebootTarget, 5, { dbe: 2 });
          const rebooted = await waitFor('the reboot to finish', () =>
            closedIncident(rt, rebootTarget, (i) => i.plannedAction === 'reboot'),
          );
          expect(rebooted.state, rebooted.stateReason).toBe('resolved');
          expect(sim.log.find('RebootInstances')).toHaveLength(1);
          expect(sim.log.requests.some((r) => r.operation === 'getPyTorchJob')).toBe(true);

          // XID 79 on a managed node group node → terminate in its Auto Scaling group.
          sim.cluster.injectXid(asgTarget, 2, 79);
          const asgReplaced = await waitFor('the ASG replace to finish', () =>
            closedIncident(rt, asgTarget, (i) => i.plannedAction === 'replace'),
          );
          expect(asgReplaced.state, asgReplaced.stateReason).toBe('resolved');
          expect(sim.log.find('TerminateInstanceInAutoScalingGroup')).toHaveLength(1);

          // XID 79 on a Karpenter node → delete the Node object.
          sim.cluster.injectXid(karpenterTarget, 1, 79);
          const karpenterReplaced = await waitFor('the Karpenter replace to finish', () =>
            closedIncident(rt, karpenterTarget, (i) => i.plannedAction === 'replace'),
          );
          expect(karpenterReplaced.state, karpenterReplaced.stateReason).toBe('resolved');
          expect(sim.log.find('deleteNode').map((r) => r.path)).toEqual([`/api/v1/nodes/${karpenterTarget}`]);

          // A node in neither a node group nor a NodePool (self-managed, no ASG) → TerminateInstances.
          const plain = sim.cluster.getNode(plainEc2Target);
          if (!plain) throw new Error(`no node ${plainEc2Target}`);
          const labels = Object.fromEntries(
            Object.entries(plain.metadata.labels ?? {}).filter(([k]) => !k.startsWith('karpenter.')),
          );
          sim.cluster.updateNodeFromApi(
            plainEc2Target,
            { ...plain, metadata: { ...plain.metadata, labels } },
            undefined,
          );
          await waitFor('the watch to see the relabelled node', () =>
            rt.sensing.watcher.list().find((n) => n.name === plainEc2Target && !n.karpenterNodePool),
          );
          sim.cluster.injectXid(plainEc2Target, 0, 79);
          const ec2Replaced = await waitFor('the plain EC2 replace to finish', () =>
            closedIncident(rt, plainEc2Target, (i) => i.plannedAction === 'replace'),
          );
          expect(ec2Replaced.state, ec2Replaced.stateReason).toBe('resolved');
          expect(sim.log.find('TerminateInstances')).toHaveLength(1);

          // An XID the catalog does not know: the rules cannot read it, so Bedrock is asked.
          sim.aws.bedrock.script(modelAnswer(250));
          sim.cluster.injectXid(llmTarget, 3, 250, 'unknown engine fault');
          await waitFor('a Bedrock Converse call', () =>
            sim.aws.bedrock.calls.length > 0 ? true : undefined,
          );
          await waitFor('an incident from the LLM verdict', () =>
            rt.store.incidents.listByNode(llmTarget, 10).find((i) => i.xid === 250),
          );

          // EKS node auto repair is on for the node group and the node monitoring agent flags the GPU: gpu-medic
          // reads the group's nodeRepairConfig (eks:DescribeNodegroup) and leaves the node to EKS.
          sim.cluster.setNodeRepair('gpu-ng-1', { enabled: true, action: 'none' });
          sim.cluster.setCondition(rebootTarget, {
            type: 'AcceleratedHardwareReady',
            status: 'False',
            reason: 'NvidiaXID79Error',
          });
          await waitFor('the watch to see the condition', () =>
            rt.sensing.watcher
              .get(rebootTarget)
              ?.conditions.find((c) => c.type === 'AcceleratedHardwareReady' && c.status === 'False'),
          );
          sim.cluster.injectXid(rebootTarget, 4, 79);
          await waitFor('the deferral to EKS node auto repair', () =>
            rt.services.activeDeferral(rebootTarget),
          );
          expect(sim.log.find('DescribeNodegroup')).toHaveLength(1);

          // Every sink delivered, and the Lease was renewed (not only created).
          await waitFor('SNS, Lambda, CloudWatch and webhook deliveries', () =>
            sim.aws.state.sns.length > 0 &&
            sim.aws.state.lambda.length > 0 &&
            sim.aws.state.cloudwatch.length > 0 &&
            webhook.bodies.length > 0
              ? true
              : undefined,
          );
          expect(sim.aws.state.sns.every((m) => m.topicArn === TOPIC_ARN)).toBe(true);
          await waitFor('a Lease renewal', () =>
            sim.log.find('replaceLease').length > 0 ? true : undefined,
          );
          expect(sim.log.find('createLease')).toHaveLength(1);
        },
      );
    } finally {
      await webhook.close();
    }
  }, 90_000);

  it('scans through the EKS dcgm-server pods with pod exec (DCGM_SOURCE=dcgm-server)', async () => {
    await withHarness(
      { nodes: 2, dcgmServer: true },
      { DCGM_SOURCE: 'dcgm-server' },
      async ({ sim, rt, gpuNodes }) => {
        const execs = sim.log.requests.filter(
          (r) => r.service === 'k8s' && (r as K8sRecordedRequest).subresource === 'exec',
        );
        expect(execs.length).toBeGreaterThanOrEqual(gpuNodes.length);
        for (const n of gpuNodes) expect(rt.lastScan.get(n)?.snapshot.error).toBeUndefined();
        // The exporter is not read at all in this mode.
        expect(sim.log.requests.some((r) => (r as K8sRecordedRequest).subresource === 'proxy')).toBe(false);
      },
    );
  }, 60_000);
});

describe('RBAC against what the Kubernetes fake served', () => {
  const granted = () => [...loadClusterRoleRules(), ...loadRoleRules()];

  it('grants every call the flows made and nothing they did not (allow-listed extras explained)', () => {
    const servedTriples = [...served.k8s.values()];
    expect(servedTriples.length, 'the flows ran').toBeGreaterThan(5);
    const c = compareRbac(granted(), servedTriples, RBAC_ALLOWED_UNUSED);
    const table = servedTriples.map(tripleKey).sort().join('\n  ');
    expect(c, `${describeComparison('ClusterRole + Role', c)}\nserved:\n  ${table}`).toEqual({
      missing: [],
      unused: [],
      staleAllowances: [],
    });
  });

  it('is authorized in every namespace it called: a Role grants only in its own namespace', () => {
    const clusterRules = loadClusterRoleRules();
    const roles = loadRoles();
    const denied: string[] = [];
    for (const [key, t] of served.k8s) {
      for (const ns of served.namespaces.get(key) ?? []) {
        if (!grantedIn(clusterRules, roles, t, ns)) denied.push(`${key} in ${ns || '(cluster)'}`);
      }
    }
    expect(denied).toEqual([]);
    // Exec and proxy were used, each only in the namespace its Role names; the ClusterRole grants neither.
    for (const sub of ['core/pods/exec:create', 'core/pods/proxy:get']) {
      const role = roles.find((r) => r.rules.some((g) => tripleKey(g) === sub));
      expect([...(served.namespaces.get(sub) ?? [])], sub).toEqual([role?.namespace]);
      expect(clusterRules.map(tripleKey)).not.toContain(sub);
    }
    // And the check can fail: the exporter proxy in a namespace without the Role is refused.
    const proxy = served.k8s.get('core/pods/proxy:get');
    if (!proxy) throw new Error('no proxy request served');
    expect(grantedIn(clusterRules, roles, proxy, 'monitoring')).toBe(false);
  });

  it('uses leases only in its own namespace, through the namespaced Role', () => {
    const roleNamespace = kustomizeNamespace();
    expect(roleNamespace).toBe(POD_NAMESPACE);
    const leaseKeys = [...served.k8s.keys()].filter((k) => k.startsWith('coordination.k8s.io/leases:'));
    expect(leaseKeys.sort()).toEqual([
      'coordination.k8s.io/leases:create',
      'coordination.k8s.io/leases:get',
      'coordination.k8s.io/leases:update',
    ]);
    for (const k of leaseKeys) expect([...(served.namespaces.get(k) ?? [])], k).toEqual([POD_NAMESPACE]);
    const role = loadRoles().find((r) => r.name === 'gpu-medic-leader-election');
    expect(role?.namespace).toBe(POD_NAMESPACE);
    for (const k of leaseKeys) expect(role?.rules.map(tripleKey), k).toContain(k);
  });

  it('reaches no non-resource URL beyond the public discovery ones', () => {
    const odd = [...served.nonResource].filter(
      (s) => !PUBLIC_NON_RESOURCE.some((re) => re.test(s.split(' ')[1] ?? '')),
    );
    expect(odd).toEqual([]);
  });
});

describe('the IAM policy against what the AWS fake served', () => {
  it('allows every action the flows called and nothing they did not (allow-listed extras explained)', () => {
    expect([...served.unmappedAws], 'operations with no known IAM action').toEqual([]);
    const servedActions = [...served.aws].sort();
    expect(servedActions.length, 'the flows ran').toBeGreaterThan(5);
    const c = compareIam(loadIamActions(), servedActions, IAM_ALLOWED_UNUSED);
    expect(
      c,
      `${describeComparison('iam/gpu-medic-policy.json', c)}\nserved: ${servedActions.join(', ')}`,
    ).toEqual({
      missing: [],
      unused: [],
      staleAllowances: [],
    });
  });
});

describe('the comparison fails when a grant is removed or added', () => {
  it('reports each served RBAC triple as missing once its rule is removed', () => {
    const all = [...loadClusterRoleRules(), ...loadRoleRules()];
    const servedTriples = [...served.k8s.values()];
    expect(servedTriples.length).toBeGreaterThan(0);
    for (const t of servedTriples) {
      const mutated = all.filter((g) => tripleKey(g) !== tripleKey(t));
      expect(compareRbac(mutated, servedTriples, RBAC_ALLOWED_UNUSED).missing, tripleKey(t)).toEqual([
        tripleKey(t),
      ]);
    }
  });

  it('reports an extra RBAC grant as unused, and a wildcard as covering everything', () => {
    const all = [...loadClusterRoleRules(), ...loadRoleRules()];
    const servedTriples = [...served.k8s.values()];
    const extra = { apiGroup: '', resource: 'secrets', verb: 'get' };
    expect(compareRbac([...all, extra], servedTriples, RBAC_ALLOWED_UNUSED).unused).toEqual([
      'core/secrets:get',
    ]);
    const wildcard = [{ apiGroup: '*', resource: '*', verb: '*' }];
    expect(compareRbac(wildcard, servedTriples).missing).toEqual([]);
    expect(compareRbac(wildcard, [], {}).unused).toEqual(['*/*:*']);
  });

  it('reports a stale allow-list entry', () => {
    const servedTriples = [...served.k8s.values()];
    const first = servedTriples[0];
    if (!first) throw new Error('nothing served');
    const c = compareRbac(loadClusterRoleRules(), servedTriples, { [tripleKey(first)]: 'wrongly listed' });
    expect(c.staleAllowances).toEqual([tripleKey(first)]);
  });

  it('reports each served AWS action as missing once removed from the policy, and an extra as unused', () => {
    const actions = loadIamActions();
    const servedActions = [...served.aws];
    expect(servedActions.length).toBeGreaterThan(0);
    for (const a of servedActions) {
      const mutated = actions.filter((g) => g !== a);
      expect(compareIam(mutated, servedActions, IAM_ALLOWED_UNUSED).missing, a).toEqual([a]);
    }
    expect(compareIam([...actions, 'ec2:StopInstances'], servedActions, IAM_ALLOWED_UNUSED).unused).toEqual([
      'ec2:StopInstances',
    ]);
    expect(compareIam(['ec2:*'], ['ec2:RebootInstances']).missing).toEqual([]);
  });

  it.each([
    ['ec2', 'RebootInstances', 'ec2:RebootInstances'],
    ['autoscaling', 'TerminateInstanceInAutoScalingGroup', 'autoscaling:TerminateInstanceInAutoScalingGroup'],
    ['cloudwatch', 'PutMetricData', 'cloudwatch:PutMetricData'],
    ['sns', 'Publish', 'sns:Publish'],
    ['lambda', 'Invoke', 'lambda:InvokeFunction'],
    ['bedrock', 'Converse', 'bedrock:InvokeModel'],
    ['bedrock', 'ConverseStream', 'bedrock:InvokeModelWithResponseStream'],
    ['slack', 'chat.postMessage', undefined],
    ['lambda', undefined, undefined],
  ])('maps %s %s to the IAM action %s', (service, operation, action) => {
    expect(iamActionFor(service, operation)).toBe(action);
  });
});
