import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { execInPod } from '../k8s/exec.js';
import { SimCluster } from './cluster.js';
import type { SimClusterOptions } from './cluster-types.js';
import { attachExec, type SimExec } from './exec-server.js';
import { type SimK8sServer, startSimK8s } from './k8s-server.js';
import { kubeconfigFor } from './kubeconfig.js';
import { EXPORTER_DEPLOY_LABEL } from './nvidia-smi.js';

let cluster: SimCluster;
let sim: SimK8sServer;
let simExec: SimExec;

afterEach(async () => {
  simExec.close();
  await sim.close();
  cluster.close();
  sim.log.assertNoUnexpected();
});

/** A cluster whose workloads fill some nodes; `node` is a GPU node with no workload (`busy`: one with one). */
async function start(
  opts: Partial<SimClusterOptions>,
  busy = false,
): Promise<{ node: string; run: (...argv: string[]) => Promise<{ exitCode: number; stdout: string }> }> {
  cluster = new SimCluster({ nodes: 8, dcgmServer: { style: 'gpu-operator' }, ...opts });
  sim = await startSimK8s(cluster);
  simExec = attachExec(sim, cluster);
  const name =
    cluster
      .listNodes()
      .filter((n) => n.metadata.labels?.['nvidia.com/gpu.present'] === 'true')
      .map((n) => n.metadata.name)
      .find((n) => cluster.gpuState(n).some((g) => g.pod) === busy) ?? '';
  const pod = cluster.dcgmServerPod(name);
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfigFor(sim.url));
  return {
    node: name,
    run: async (...command) => {
      const out = await execInPod(kc, {
        namespace: pod?.metadata.namespace ?? '',
        pod: pod?.metadata.name ?? '',
        command,
        timeoutMs: 5000,
      });
      return { exitCode: out.exitCode, stdout: out.stdout };
    },
  };
}

/** Pauses the node's exporter as the GPU Operator's deploy label does (its NVML handles are then gone). */
function pauseExporter(node: string): void {
  cluster.labelNode(node, EXPORTER_DEPLOY_LABEL, 'paused-for-gpu-reset');
}

describe('nvidia-smi --gpu-reset in a DCGM pod', () => {
  it('refuses while the exporter holds the GPUs, in nvidia-smi words; resets one GPU once it is paused', async () => {
    const { node, run } = await start({ instanceType: 'g6e.12xlarge' });
    const free = 2;
    cluster.injectXid(node, free, 119);
    const refused = await run('nvidia-smi', '--gpu-reset', '-i', '2');
    expect(refused.exitCode).toBe(255);
    expect(refused.stdout).toMatch(
      /The following GPUs could not be reset:\n {2}GPU 00000000:[0-9A-F]+:00\.0: In use by another client/,
    );
    expect(refused.stdout).toContain('1 device is currently being used by one or more other processes');
    expect(cluster.gpuState(node)[2]?.xidLast).toBe(119);

    pauseExporter(node);
    const ok = await run('nvidia-smi', '-r', '-i', '2');
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout).toMatch(/GPU 00000000:[0-9A-F]+:00\.0 was successfully reset\.\nAll done\.\n$/);
    expect(cluster.gpuState(node)[2]?.xidLast).toBe(0);
    expect(cluster.gpuResets.done).toEqual([{ node, gpus: [2], wholeNode: false }]);
  });

  it('refuses while a workload pod is allocated to the GPU', async () => {
    const { node, run } = await start({ instanceType: 'g6e.12xlarge' }, true);
    pauseExporter(node);
    const busy = cluster.gpuState(node).find((g) => g.pod);
    expect(busy).toBeDefined();
    const r = await run('nvidia-smi', '--gpu-reset', '-i', String(busy?.index));
    expect(r.exitCode).toBe(255);
    expect(r.stdout).toContain('In use by another client');
  });

  it('on an NVSwitch p5 refuses one GPU and resets all GPUs together', async () => {
    const { node, run } = await start({ instanceType: 'p5.48xlarge', workloads: true });
    pauseExporter(node);
    cluster.injectXid(node, 5, 119);
    const one = await run('nvidia-smi', '-r', '-i', '5');
    expect(one.exitCode).toBe(3);
    expect(one.stdout).toContain('NVSwitch');
    expect(cluster.gpuState(node)[5]?.xidLast).toBe(119);
    const all = await run('nvidia-smi', '--gpu-reset');
    expect(all.exitCode).toBe(0);
    expect(all.stdout.match(/was successfully reset/g)).toHaveLength(8);
    expect(cluster.gpuResets.done).toEqual([{ node, gpus: [0, 1, 2, 3, 4, 5, 6, 7], wholeNode: true }]);
    expect(cluster.gpuState(node)[5]?.xidLast).toBe(0);
  });

  it('a persistent fault comes back after the reset; an injected failure fails it; a lost GPU cannot be reset', async () => {
    const { node, run } = await start({ instanceType: 'g6e.12xlarge', workloads: true });
    pauseExporter(node);
    cluster.injectXid(node, 1, 119, undefined, { persistent: true });
    expect((await run('nvidia-smi', '-r', '-i', '1')).exitCode).toBe(0);
    expect(cluster.gpuState(node)[1]?.xidLast).toBe(119);

    cluster.injectXid(node, 0, 119);
    cluster.gpuResets.failNext(node);
    const failed = await run('nvidia-smi', '-r', '-i', '0');
    expect(failed.exitCode).toBe(255);
    expect(failed.stdout).toContain(': Unknown Error');
    expect(cluster.gpuState(node)[0]?.xidLast).toBe(119);
    expect((await run('nvidia-smi', '-r', '-i', '0')).exitCode).toBe(0);

    cluster.dropGpu(node, 3);
    const lost = await run('nvidia-smi', '-r', '-i', '3');
    expect(lost.exitCode).toBe(15);
    expect(lost.stdout).toContain('GPU is lost');
  });

  it('the stock EKS agent image has no nvidia-smi: the runtime cannot start it', async () => {
    const { run } = await start({ dcgmServer: true });
    await expect(run('nvidia-smi', '-r')).rejects.toThrow(/executable file not found/);
  });
});
