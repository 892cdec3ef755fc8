import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadDcgmFrCatalog, loadXidCatalog } from '../classify/catalog.js';
import { classifySnapshot, type RuleContext } from '../classify/rules.js';
import type { GpuNode } from '../domain/node.js';
import { defaultClassificationPolicy } from '../domain/policy.js';
import { podExecutor } from '../k8s/exec.js';
import { toGpuNode } from '../k8s/node-mapper.js';
import { SimCluster, type SimClusterOptions } from '../sim/cluster.js';
import { attachExec, type SimExec, type SimExecHandler } from '../sim/exec-server.js';
import { type SimK8sServer, startSimK8s } from '../sim/k8s-server.js';
import { kubeconfigFor } from '../sim/kubeconfig.js';
import type { Collector } from './collector.js';
import {
  createDcgmServerCollector,
  DCGM_SERVER_COMMANDS,
  type ExecPort,
  kernelXidLines,
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
  const p = cluster.dcgmServerPod(node);
  return p ? { namespace: p.metadata.namespace ?? '', name: p.metadata.name } : undefined;
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

async function start(dcgmServer: SimClusterOptions['dcgmServer']): Promise<void> {
  cluster = new SimCluster({ nodes: 3, dcgmServer });
  sim = await startSimK8s(cluster);
  simExec = attachExec(sim, cluster, (req) => override?.(req));
  kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(sim.url));
  collector = createDcgmServerCollector({ exec: podExecutor(kc), findPod, timeoutMs: 5000 });
  nodes = cluster
    .listNodes()
    .filter((n) => n.metadata.labels?.['nvidia.com/gpu.present'] === 'true')
    .map((n) => n.metadata.name);
}

beforeEach(async () => {
  override = undefined;
  // The stock EKS node monitoring agent pods: dcgmi, but no sh and no dmesg.
  await start(true);
});

afterEach(async () => {
  simExec.close();
  await sim.close();
  cluster.close();
  sim.log.assertNoUnexpected();
});

const commandsRun = () => sim.log.find('execPod').map((r) => (r as { command?: string[] }).command ?? []);
const kernelMissing = {
  part: 'kernel_log',
  reason: expect.stringContaining("`dmesg` is not in the pod's image"),
};

describe('dcgm-server collector → rule classifier, through real exec (stock shell-less agent pods)', () => {
  it('a healthy node reads as HEALTHY with every GPU; kernel lines are a missing part, not a failure', async () => {
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
    expect(snapshot.signals).toEqual(['xid', 'ecc', 'health']);
    expect(snapshot.missingParts).toEqual([kernelMissing]);
    expect(snapshot.missingParts?.[0]?.reason).toContain('executable file not found in $PATH');
    expect(verdict.category).toBe('HEALTHY');
    // One exec per command, all argv (no shell), on the node's dcgm-server pod.
    const execs = sim.log.find('execPod');
    expect(execs).toHaveLength(4);
    expect(new Set(execs.map((r) => (r as { name?: string }).name))).toEqual(new Set([findPod(name)?.name]));
    expect(
      commandsRun()
        .map((c) => c[0])
        .sort(),
    ).toEqual(['dcgmi', 'dcgmi', 'dcgmi', 'dmesg']);
  });

  it('a binary found missing in a pod is not asked for again there; the part stays reported missing', async () => {
    const name = nodes[0] ?? '';
    await scan(name);
    const again = await scan(name);
    expect(again.snapshot.missingParts).toEqual([kernelMissing]);
    expect(again.snapshot.gpus).toHaveLength(8);
    expect(commandsRun().filter((c) => c[0] === 'dmesg')).toHaveLength(1);
    expect(commandsRun().filter((c) => c[0] === 'dcgmi')).toHaveLength(6);
  });

  it('XID 79 on GPU 3 → XID_CRITICAL_79; 230 read as the last code, not 79 errors', async () => {
    const name = nodes[1] ?? '';
    cluster.injectXid(name, 3, 79);
    const { snapshot, verdict } = await scan(name);
    expect(snapshot.gpus[3]).toMatchObject({ index: 3, xidLast: 79 });
    expect(snapshot.gpus[3]?.xidCount).toBeUndefined();
    expect(snapshot.logLines).toBeUndefined();
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

  it('a GPU that fell off the bus is missing from DCGM → GPU_MISSING (its XID 79 is only in the kernel log)', async () => {
    const name = nodes[0] ?? '';
    cluster.injectXid(name, 2, 79);
    cluster.dropGpu(name, 2);
    const { snapshot, verdict } = await scan(name);
    expect(snapshot.gpus.map((g) => g.index)).toEqual([0, 1, 3, 4, 5, 6, 7]);
    expect(verdict.findings.map((f) => f.category)).toEqual(['GPU_MISSING']);
  });
});

describe('DCGM pods whose image has dmesg (GPU Operator nvidia-dcgm)', () => {
  beforeEach(async () => {
    simExec.close();
    await sim.close();
    cluster.close();
    await start({ style: 'gpu-operator' });
  });

  it('reads the XID kernel lines with `dmesg` as argv, filtered here', async () => {
    const name = nodes[1] ?? '';
    cluster.injectXid(name, 3, 79);
    const { snapshot, verdict } = await scan(name);
    expect(findPod(name)?.namespace).toBe('gpu-operator');
    expect(snapshot.logLines).toEqual([expect.stringMatching(/NVRM: Xid \(PCI:0000:86:00\): 79,/)]);
    expect(snapshot.signals).toEqual(['xid', 'ecc', 'health', 'kernel_log']);
    expect(snapshot.missingParts).toBeUndefined();
    expect(verdict).toMatchObject({ category: 'XID_CRITICAL_79', gpu: 3 });
    expect(commandsRun()).toContainEqual(['dmesg']);
    expect(commandsRun().some((c) => c[0] === 'sh')).toBe(false);
  });

  it('a GPU that fell off the bus → GPU_MISSING alongside the XID 79 the kernel logged', async () => {
    const name = nodes[0] ?? '';
    cluster.injectXid(name, 2, 79);
    cluster.dropGpu(name, 2);
    const { verdict } = await scan(name);
    expect(verdict.findings.map((f) => f.category)).toEqual(
      expect.arrayContaining(['XID_CRITICAL_79', 'GPU_MISSING']),
    );
  });
});

describe('kernelXidLines', () => {
  it('keeps the last 20 lines that mention an XID, like grep -i xid | tail -20', () => {
    const lines = Array.from(
      { length: 30 },
      (_, i) => `[${i}.0] NVRM: Xid (PCI:0000:01:00): 13, pid=${i}, x`,
    );
    const dmesg = [
      '[0.1] Linux version 6.1',
      ...lines,
      '[99.0] eth0: link up',
      '[99.1] nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 20034, Fatal',
    ].join('\n');
    const kept = kernelXidLines(dmesg).split('\n');
    expect(kept).toHaveLength(20);
    expect(kept[0]).toContain('pid=11,');
    expect(kept.at(-1)).toContain('SXid');
    expect(kernelXidLines('[1.0] nothing here\n')).toBe('');
  });
});

describe('parts fail independently; the node fails only without a GPU list', () => {
  it('a failing `dcgmi discovery` → dcgmi_discovery missing; dmon still lists every GPU; no COLLECTION_FAILED', async () => {
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
    expect(snapshot.error).toBeUndefined();
    expect(snapshot.gpus).toHaveLength(8);
    expect(snapshot.gpus[1]?.xidLast).toBe(48);
    expect(snapshot.missingParts).toEqual([
      {
        part: 'dcgmi_discovery',
        reason: expect.stringContaining(
          '`dcgmi discovery -l` exited with code 255: Error: unable to establish a connection',
        ),
      },
      kernelMissing,
    ]);
    const categories = verdict.findings.map((f) => f.category);
    expect(categories).toContain('XID_CRITICAL_48');
    expect(categories).not.toContain('COLLECTION_FAILED');
    expect(categories).not.toContain('GPU_MISSING');
  });

  it('a failing `dcgmi health` → dcgmi_health missing and no health signal; the rest stands', async () => {
    override = (req) =>
      req.command[1] === 'health'
        ? { stdout: '', stderr: 'Error: health watches not set\n', exitCode: 255 }
        : undefined;
    const { snapshot, verdict } = await scan(nodes[0] ?? '');
    expect(snapshot.error).toBeUndefined();
    expect(snapshot.signals).toEqual(['xid', 'ecc']);
    expect(snapshot.missingParts?.map((m) => m.part)).toEqual(['dcgmi_health', 'kernel_log']);
    expect(snapshot.gpus).toHaveLength(8);
    expect(verdict.category).toBe('HEALTHY');
  });

  it('host engine down (every dcgmi fails) → error kind exec; health alone never reads as missing GPUs', async () => {
    override = (req) =>
      req.command[0] === 'dcgmi' && req.command[1] !== 'health'
        ? { stdout: '', stderr: 'Error: unable to establish a connection\n', exitCode: 255 }
        : undefined;
    cluster.setHealth(nodes[0] ?? '', 2, 'warn', 'NVLink replay errors on GPU 2');
    const { snapshot, verdict } = await scan(nodes[0] ?? '');
    expect(snapshot.error?.kind).toBe('exec');
    expect(snapshot.error?.message).toContain('no GPU list');
    expect(snapshot.error?.message).toContain('dcgmi dmon -e 230,319 -c 1');
    const categories = verdict.findings.map((f) => f.category);
    expect(categories).toContain('COLLECTION_FAILED');
    expect(categories).not.toContain('GPU_MISSING');
  });

  it('garbage from discovery is a missing part and unparsed text, not missing GPUs', async () => {
    override = (req) =>
      req.command[1] === 'discovery' ? { stdout: 'segfault in libdcgm.so\n', exitCode: 0 } : undefined;
    const { snapshot, verdict } = await scan(nodes[0] ?? '');
    expect(snapshot.error).toBeUndefined();
    expect(snapshot.missingParts?.[0]).toEqual({
      part: 'dcgmi_discovery',
      reason: expect.stringContaining('no "GPUs found" line'),
    });
    expect(snapshot.unparsed).toContain('segfault in libdcgm.so');
    expect(verdict.findings.map((f) => f.category)).not.toContain('GPU_MISSING');
  });

  it('a command wrapper answering 127 marks the binary unavailable there', async () => {
    await start({ style: 'gpu-operator' });
    override = (req) =>
      req.command[0] === 'dmesg' ? { stdout: '', stderr: 'dmesg: not found\n', exitCode: 127 } : undefined;
    const first = await scan(nodes[0] ?? '');
    expect(first.snapshot.missingParts).toEqual([
      { part: 'kernel_log', reason: expect.stringContaining('`dmesg` is not available in the pod') },
    ]);
    await scan(nodes[0] ?? '');
    expect(commandsRun().filter((c) => c[0] === 'dmesg')).toHaveLength(1);
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

  it('no DCGM pod on the node → reported without any exec', async () => {
    collector = createDcgmServerCollector({
      exec: podExecutor(kc),
      findPod: () => undefined,
      timeoutMs: 5000,
    });
    const { snapshot } = await scan(nodes[0] ?? '');
    expect(snapshot.error).toEqual({
      kind: 'no-exporter',
      message: `no DCGM host-engine pod on node ${nodes[0]}`,
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

  it('runs the sample commands as argv, never through a shell', () => {
    expect(DCGM_SERVER_COMMANDS.dmon).toEqual(['dcgmi', 'dmon', '-e', '230,319', '-c', '1']);
    expect(DCGM_SERVER_COMMANDS.health).toEqual(['dcgmi', 'health', '-c', '-j']);
    expect(DCGM_SERVER_COMMANDS.kernel).toEqual(['dmesg']);
    expect(
      Object.values(DCGM_SERVER_COMMANDS).every((c) => !['sh', 'bash', '/bin/sh'].includes(c[0] ?? '')),
    ).toBe(true);
  });
});
