import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadDcgmFrCatalog, loadXidCatalog } from '../classify/catalog.js';
import { classifySnapshot, type RuleContext } from '../classify/rules.js';
import type { GpuNode } from '../domain/node.js';
import { defaultClassificationPolicy } from '../domain/policy.js';
import { podExecutor } from '../k8s/exec.js';
import { toGpuNode } from '../k8s/node-mapper.js';
import { SimCluster } from '../sim/cluster.js';
import { attachExec, type SimExec, type SimExecHandler } from '../sim/exec-server.js';
import { type SimK8sServer, startSimK8s } from '../sim/k8s-server.js';
import { kubeconfigFor } from '../sim/kubeconfig.js';
import type { Collector } from './collector.js';
import {
  createDcgmServerCollector,
  DCGM_SERVER_COMMANDS,
  type ExecPort,
  type PodRef,
} from './dcgm-server.js';

const ctx: RuleContext = {
  catalog: loadXidCatalog(),
  policy: defaultClassificationPolicy,
  frCodes: loadDcgmFrCatalog(),
};

let cluster: SimCluster;
let sim: SimK8sServer;
let simExec: SimExec;
let kc: KubeConfig;
let override: SimExecHandler | undefined;
let collector: Collector;
let nodes: string[];

const findPod = (node: string): PodRef | undefined => {
  const p = cluster
    .listPods({ namespace: 'kube-system', nodeName: node })
    .find((x) => x.metadata.labels?.['k8s-app'] === 'dcgm-server');
  return p ? { namespace: 'kube-system', name: p.metadata.name } : undefined;
};

async function gpuNode(name: string): Promise<GpuNode> {
  const v1 = await kc.makeApiClient(CoreV1Api).readNode({ name });
  const n = toGpuNode(v1);
  if (!n) throw new Error(`${name} is not a GPU node`);
  return n;
}

async function scan(name: string) {
  const snapshot = await collector.collect(await gpuNode(name), new AbortController().signal);
  return { snapshot, verdict: classifySnapshot(snapshot, ctx) };
}

beforeEach(async () => {
  override = undefined;
  cluster = new SimCluster({ nodes: 3, dcgmServer: true });
  sim = await startSimK8s(cluster);
  simExec = attachExec(sim, cluster, (req) => override?.(req));
  kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(sim.url));
  collector = createDcgmServerCollector({ exec: podExecutor(kc), findPod, timeoutMs: 5000 });
  nodes = cluster
    .listNodes()
    .filter((n) => n.metadata.labels?.['nvidia.com/gpu.present'] === 'true')
    .map((n) => n.metadata.name);
});

afterEach(async () => {
  simExec.close();
  await sim.close();
  cluster.close();
  sim.log.assertNoUnexpected();
});

describe('dcgm-server collector → rule classifier, through real exec', () => {
  it('a healthy node reads as HEALTHY with every GPU, conditions and boot ID', async () => {
    const name = nodes[0] ?? '';
    const { snapshot, verdict } = await scan(name);
    expect(snapshot).toMatchObject({
      node: name,
      source: 'dcgm-server',
      expectedGpus: 8,
      allocatableGpus: 8,
    });
    expect(snapshot.error).toBeUndefined();
    expect(snapshot.bootId).toBe(cluster.getNode(name)?.status.nodeInfo.bootID);
    expect(snapshot.conditions?.some((c) => c.type === 'Ready')).toBe(true);
    expect(snapshot.gpus).toHaveLength(8);
    expect(snapshot.gpus.map((g) => g.uuid)).toEqual(cluster.gpuState(name).map((g) => g.uuid));
    expect(snapshot.gpus.every((g) => g.xidLast === 0 && g.eccDbeVolatile === 0 && g.health === 'pass')).toBe(
      true,
    );
    expect(verdict.category).toBe('HEALTHY');
    // One exec per command, all four recorded as pods/exec on the node's dcgm-server pod.
    const execs = sim.log.find('execPod');
    expect(execs).toHaveLength(4);
    expect(new Set(execs.map((r) => (r as { name?: string }).name))).toEqual(new Set([findPod(name)?.name]));
  });

  it('XID 79 on GPU 3 → XID_CRITICAL_79; 230 read as the last code, not 79 errors', async () => {
    const name = nodes[1] ?? '';
    cluster.injectXid(name, 3, 79);
    const { snapshot, verdict } = await scan(name);
    expect(snapshot.gpus[3]).toMatchObject({ index: 3, xidLast: 79 });
    expect(snapshot.gpus[3]?.xidCount).toBeUndefined();
    expect(snapshot.logLines).toEqual([expect.stringMatching(/NVRM: Xid \(PCI:0000:86:00\): 79,/)]);
    // The classifier names the fault; the remediation policy (not this) picks replace for XID 79.
    expect(verdict).toMatchObject({ category: 'XID_CRITICAL_79', severity: 'critical', xid: 79, gpu: 3 });
    expect(verdict.findings.filter((f) => f.category === 'XID_CRITICAL_79')).toHaveLength(1);
  });

  it('ECC DBE → ECC_ERROR (dmon 319 and DCGM health agree)', async () => {
    const name = nodes[0] ?? '';
    cluster.injectEcc(name, 5, { dbe: 2 });
    const { snapshot, verdict } = await scan(name);
    expect(snapshot.gpus[5]).toMatchObject({ eccDbeVolatile: 2, health: 'fail' });
    expect(verdict.findings.map((f) => f.category)).toContain('ECC_ERROR');
    expect(verdict.severity).toBe('critical');
  });

  it('DCGM health FAIL → GPU_HEALTH_ERROR on that GPU', async () => {
    const name = nodes[2] ?? '';
    cluster.setHealth(name, 6, 'fail', 'Detected more than 8 PCIe replays per minute for GPU 6 : 40');
    const { snapshot, verdict } = await scan(name);
    expect(snapshot.gpus[6]?.healthIncidents).toEqual([
      {
        severity: 'fail',
        system: 'PCIe',
        message: 'Detected more than 8 PCIe replays per minute for GPU 6 : 40',
      },
    ]);
    expect(verdict).toMatchObject({ category: 'GPU_HEALTH_ERROR', gpu: 6, severity: 'critical' });
  });

  it('a GPU that fell off the bus is missing from DCGM → GPU_MISSING alongside the XID', async () => {
    const name = nodes[0] ?? '';
    cluster.injectXid(name, 2, 79);
    cluster.dropGpu(name, 2);
    const { snapshot, verdict } = await scan(name);
    expect(snapshot.gpus.map((g) => g.index)).toEqual([0, 1, 3, 4, 5, 6, 7]);
    expect(verdict.findings.map((f) => f.category)).toEqual(
      expect.arrayContaining(['XID_CRITICAL_79', 'GPU_MISSING']),
    );
  });
});

describe('failures are snapshots, never throws', () => {
  it('a failing dcgmi (host engine down) → error kind exec; the other outputs are kept; no GPU_MISSING', async () => {
    const name = nodes[0] ?? '';
    cluster.injectXid(name, 1, 48);
    override = (req) =>
      req.command[1] === 'discovery'
        ? {
            stdout: '',
            stderr: 'Error: unable to establish a connection to the specified host: localhost\n',
            exitCode: 255,
          }
        : undefined;
    const { snapshot, verdict } = await scan(name);
    expect(snapshot.error?.kind).toBe('exec');
    expect(snapshot.error?.message).toContain('dcgmi discovery -l');
    expect(snapshot.error?.message).toContain(
      'exited with code 255: Error: unable to establish a connection',
    );
    expect(snapshot.gpus[1]?.xidLast).toBe(48);
    const categories = verdict.findings.map((f) => f.category);
    expect(categories).toContain('XID_CRITICAL_48');
    expect(categories).toContain('COLLECTION_FAILED');
    expect(categories).not.toContain('GPU_MISSING');
  });

  it('garbage from discovery is a parse error and unparsed text, not missing GPUs', async () => {
    override = (req) =>
      req.command[1] === 'discovery' ? { stdout: 'segfault in libdcgm.so\n', exitCode: 0 } : undefined;
    const { snapshot, verdict } = await scan(nodes[0] ?? '');
    expect(snapshot.error?.kind).toBe('parse');
    expect(snapshot.unparsed).toContain('segfault in libdcgm.so');
    expect(verdict.findings.map((f) => f.category)).not.toContain('GPU_MISSING');
  });

  it('every command timing out → error kind timeout', async () => {
    override = () => new Promise(() => undefined);
    collector = createDcgmServerCollector({ exec: podExecutor(kc), findPod, timeoutMs: 150 });
    const { snapshot, verdict } = await scan(nodes[0] ?? '');
    expect(snapshot.error?.kind).toBe('timeout');
    expect(snapshot.gpus).toEqual([]);
    expect(verdict.category).toBe('COLLECTION_FAILED');
  });

  it('a dcgm-server pod that vanished → exec error naming the pod', async () => {
    const name = nodes[0] ?? '';
    collector = createDcgmServerCollector({
      exec: podExecutor(kc),
      findPod: () => ({ namespace: 'kube-system', name: 'dcgm-server-gone' }),
      timeoutMs: 5000,
    });
    const { snapshot } = await scan(name);
    expect(snapshot.error).toMatchObject({ kind: 'exec' });
    expect(snapshot.error?.message).toContain('kube-system/dcgm-server-gone: pod not found');
  });

  it('no dcgm-server pod on the node → reported without any exec', async () => {
    collector = createDcgmServerCollector({
      exec: podExecutor(kc),
      findPod: () => undefined,
      timeoutMs: 5000,
    });
    const { snapshot } = await scan(nodes[0] ?? '');
    expect(snapshot.error).toEqual({
      kind: 'no-exporter',
      message: `no dcgm-server pod on node ${nodes[0]}`,
    });
    expect(sim.log.find('execPod')).toEqual([]);
  });

  it('an exec port that throws anything is contained', async () => {
    const exec: ExecPort = {
      exec: async () => {
        throw new TypeError('boom');
      },
    };
    collector = createDcgmServerCollector({ exec, findPod, timeoutMs: 5000 });
    const { snapshot } = await scan(nodes[0] ?? '');
    expect(snapshot.error?.kind).toBe('exec');
    expect(snapshot.error?.message).toContain('boom');
  });

  it('runs the sample commands (dmon with both fields, health as JSON)', () => {
    expect(DCGM_SERVER_COMMANDS.dmon).toEqual(['dcgmi', 'dmon', '-e', '230,319', '-c', '1']);
    expect(DCGM_SERVER_COMMANDS.health).toEqual(['dcgmi', 'health', '-c', '-j']);
  });
});
